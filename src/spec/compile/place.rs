//! Where a template is: which variables exist there ([`Ctx`]), and what `room` is at that point
//! ([`RoomVar`]), as the checker tracks them through a spec.

use super::super::{RoomFamily, template::Root};
use crate::rooms::RoomPattern;

/// Where a template is, which decides the variables it may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    OnConnect,
    ClientEvent,
    Access,
    Snapshot,
    StoreRule,
    Route,
    Timer,
}

impl Ctx {
    pub(super) fn allows(self, root: Root) -> bool {
        use Root::*;
        match self {
            Ctx::OnConnect => matches!(root, Socket | User | Room | State | Now | Gateway),
            Ctx::ClientEvent => matches!(root, Socket | User | Payload | Room | State | Now | Gateway),
            Ctx::Access => matches!(root, Socket | User),
            Ctx::Snapshot => matches!(root, Room | Entry | Now),
            Ctx::StoreRule | Ctx::Route => matches!(root, Event | Data | Now),
            Ctx::Timer => matches!(root, Tenant | State | Now | Gateway),
        }
    }

    pub(super) fn describe(self) -> &'static str {
        match self {
            Ctx::OnConnect => "on_connect",
            Ctx::ClientEvent => "a client event",
            Ctx::Access => "an access rule",
            Ctx::Snapshot => "a snapshot",
            Ctx::StoreRule => "a state rule",
            Ctx::Route => "a publish route",
            Ctx::Timer => "a timer",
        }
    }
}

/// What a template can ask of a room family through `room`.
#[derive(Debug, Clone)]
pub(super) struct FamilyView {
    pub(super) name: String,
    pub(super) params: Vec<String>,
    pub(super) has_snapshot: bool,
}

impl FamilyView {
    pub(super) fn new(name: &str, pattern: &RoomPattern, has_snapshot: bool) -> Self {
        Self { name: name.to_string(), params: pattern.params().iter().map(|p| p.name.clone()).collect(), has_snapshot }
    }

    pub(super) fn of(family: &RoomFamily) -> Self {
        Self::new(&family.name, &family.pattern, family.snapshot.is_some())
    }
}

/// What `room` is where a template is.
#[derive(Debug, Clone)]
pub(super) enum RoomVar {
    /// Not set: no `join` or `leave` before the template (or no `room` there at all).
    Unset,
    /// The room joined or left last, of one of these families; empty when it could be of any.
    Joined(Vec<FamilyView>),
    /// The room whose snapshot the template helps build.
    Snapshotting(FamilyView),
}

impl RoomVar {
    /// After a join or leave whose family is not known when the spec loads.
    pub(super) fn any() -> Self {
        RoomVar::Joined(Vec::new())
    }
}

/// Where a template is: which variables exist there, and what `room` is.
#[derive(Debug, Clone)]
pub(super) struct Place {
    pub(super) ctx: Ctx,
    pub(super) room: RoomVar,
}

impl Place {
    pub(super) fn new(ctx: Ctx) -> Self {
        Self { ctx, room: RoomVar::Unset }
    }
}

//! The template language of namespace specs: `{...}` placeholders in strings, and JSON-shaped
//! values built from them.
//!
//! A placeholder holds an expression: a path from a root variable (`payload.resourceId`,
//! `state.executions[payload.executionId]`), a literal (`null`, `'text'`, `3`), or alternatives
//! joined by `??` (the first one that is set). A string that is exactly one placeholder renders to
//! the value itself, whatever its JSON type; any other string renders to text. Inside an object, a
//! field whose value is unset is left out, as `JSON.stringify` drops `undefined`.
//!
//! Templates are parsed once, when a spec is loaded, and rendered against a [`Scope`] that knows
//! what the roots mean in the current context (a client event, a published event, a timer...).
//!
//! Here the language itself: the roots, paths and expressions a placeholder holds. Beside it:
//! `parse` (placeholder expressions), `string` ([`StrTemplate`]), `value` ([`ValueTemplate`],
//! [`deep_merge`]) and `eval` (what a [`Scope`] lends, and how a path is followed in it).

mod eval;
mod parse;
mod string;
#[cfg(test)]
mod tests;
mod value;

use std::fmt;

use serde_json::Value;

pub use eval::{Scope, key_string};
pub use string::StrTemplate;
pub use value::{Rendered, ValueTemplate, deep_merge};

/// The variables an expression can start from. Which ones exist depends on where the template is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Root {
    /// The socket: `socket.id`, `socket.transport`.
    Socket,
    /// The authenticated user: `user.id`, `user.tenantId`, `user.roles`, `user.authenticated`.
    User,
    /// The client event's first argument.
    Payload,
    /// The published event: `event.type`, `event.tenantId`, `event.data`, `event.timestamp`.
    Event,
    /// Shorthand for `event.data`.
    Data,
    /// The room just joined (`room.key`, `room.params.*`, `room.snapshot`), or the room whose
    /// snapshot is being built.
    Room,
    /// Last-known state: `state.<store>` or `state.<store>[key]`.
    State,
    /// The current time as an ISO 8601 string.
    Now,
    /// The tenant a timer is emitting for: `tenant.id`, `tenant.stats`.
    Tenant,
    /// A stored entry, while matching a snapshot filter.
    Entry,
    /// The gateway process: `gateway.stats` (connections, message rates, latencies, CPU, memory).
    Gateway,
}

impl Root {
    const ALL: [Root; 11] = [
        Root::Socket,
        Root::User,
        Root::Payload,
        Root::Event,
        Root::Data,
        Root::Room,
        Root::State,
        Root::Now,
        Root::Tenant,
        Root::Entry,
        Root::Gateway,
    ];

    /// The name used in templates.
    pub fn name(self) -> &'static str {
        match self {
            Root::Socket => "socket",
            Root::User => "user",
            Root::Payload => "payload",
            Root::Event => "event",
            Root::Data => "data",
            Root::Room => "room",
            Root::State => "state",
            Root::Now => "now",
            Root::Tenant => "tenant",
            Root::Entry => "entry",
            Root::Gateway => "gateway",
        }
    }

    fn from_name(name: &str) -> Option<Root> {
        Root::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The fields this root has, when they are fixed (what the engine's scopes provide:
    /// `engine::actions`, `engine::publish`, `engine::timers`, `auth::Identity::to_json`), so that
    /// a spec reading any other is refused when it loads instead of rendering nothing. `None` for
    /// roots whose fields are the spec's or a client's (`payload`, `data`, `state`, `entry`).
    pub fn fields(self) -> Option<&'static [&'static str]> {
        match self {
            Root::Socket => Some(&["id", "transport", "rooms"]),
            Root::User => Some(&["id", "tenantId", "roles", "authenticated", "expiresAt"]),
            Root::Event => Some(&["type", "tenantId", "data", "timestamp"]),
            Root::Room => Some(&["key", "name", "params", "snapshot"]),
            Root::Tenant => Some(&["id", "stats"]),
            Root::Gateway => Some(&["stats"]),
            Root::Now => Some(&[]),
            Root::Payload | Root::Data | Root::State | Root::Entry => None,
        }
    }
}

/// One step of a path after its root.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name`
    Field(String),
    /// `[expression]`: a field named by, or an array index given by, another expression.
    Index(Box<Expr>),
}

/// A path such as `state.executions[payload.executionId].status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// Where the path starts.
    pub root: Root,
    /// The steps after the root.
    pub segments: Vec<Segment>,
}

/// An expression inside `{...}`.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A path from a root variable.
    Path(Path),
    /// `null`, `true`, `false`, a number or a `'quoted string'`.
    Literal(Value),
    /// `a ?? b ?? c`: the first alternative that is set.
    Coalesce(Vec<Expr>),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.root.name())?;
        for seg in &self.segments {
            match seg {
                Segment::Field(name) => write!(f, ".{name}")?,
                Segment::Index(_) => f.write_str("[..]")?,
            }
        }
        Ok(())
    }
}

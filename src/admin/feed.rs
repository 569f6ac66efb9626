//! The engine's [`Observer`]: each change to this node's sockets becomes one of the protocol's
//! events (`socket_connected`, `room_joined`, `room_left`, `socket_updated`,
//! `socket_disconnected`), built once and queued for the admin sockets of this node
//! ([`super::listeners`], which sends it); and connections and disconnections are counted per
//! second for `server_stats`.
//!
//! The hooks run on the connections' own paths, so they never wait: with nobody watching they
//! cost one atomic load (joins, leaves, upgrades) or a count (connections, disconnections);
//! while an admin watches they build the event (bounded in bytes, `wire`) and hand it to a queue
//! bounded in count and in bytes. No lock a hook takes is ever held while a socket list is
//! built: lists are built by the listeners' task. When the queue is full the event is dropped
//! and counted, and every admin socket gets a fresh list instead.
//!
//! Why a list and the events agree: an admin socket is counted as watching (so the hooks start
//! queueing) before its list is taken, and the engine calls a hook after the change it reports.
//! A change reported before the list is taken is in the list; one reported after reaches the
//! admin after the list. (One racing the list may be in both: the UI takes a repeated socket or
//! room once, except that a room's page may count one member twice until the next list.)

use crate::clock::{iso_now, now_millis};
use std::{
    borrow::Cow,
    collections::HashSet,
    sync::{
        Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use serde_json::value::RawValue;
use socketioxide::{adapter::Adapter, extract::SocketRef, socket::Sid};
use tokio::sync::mpsc;

use super::wire::{self, EventCounts};
use crate::{
    engine::{Observer, PublicId, SocketView},
    metrics::AdminMetrics,
};

/// Changes queued for the listeners at most, in number and in bytes: past either, a change is
/// dropped (and every admin socket then gets a fresh list).
const QUEUE_MAX: usize = 16 * 1024;
const QUEUE_MAX_BYTES: usize = 4 * 1024 * 1024;

/// A change to this node's sockets, as the protocol's event(s), ready to send.
#[derive(Debug)]
pub(super) enum Change {
    /// `socket_connected(socket, at)`.
    Connected { socket: Box<RawValue>, at: String },
    /// `room_joined(nsp, room, id, at)`.
    Joined { nsp: String, room: String, id: String, at: String },
    /// `room_left(nsp, room, id, at)`.
    Left { nsp: String, room: String, id: String, at: String },
    /// `socket_updated({id, nsp, transport})`.
    Upgraded { nsp: String, id: String },
    /// `room_left` for each of its rooms (as Node's adapter leaves them, so the UI's room lists
    /// shrink too), then `socket_disconnected(nsp, id, reason, at)`.
    Disconnected { nsp: String, id: String, reason: &'static str, rooms: Vec<String>, at: String },
}

impl Change {
    /// About the bytes it takes on the wire (what the byte bounds count).
    pub(super) fn size(&self) -> usize {
        const PER_EVENT: usize = 32;
        match self {
            Self::Connected { socket, at } => socket.get().len() + at.len() + PER_EVENT,
            Self::Joined { nsp, room, id, at } | Self::Left { nsp, room, id, at } => {
                nsp.len() + room.len() + id.len() + at.len() + PER_EVENT
            }
            Self::Upgraded { nsp, id } => nsp.len() + id.len() + 2 * PER_EVENT,
            Self::Disconnected { nsp, id, reason, rooms, at } => {
                let each = nsp.len() + id.len() + at.len() + PER_EVENT;
                rooms.iter().map(|r| r.len() + each).sum::<usize>() + each + reason.len()
            }
        }
    }
}

/// What the listeners' task is told about admin sockets.
pub(super) enum Control<A: Adapter> {
    /// A new admin socket, to be sent a list and then every change.
    Attach(SocketRef<A>),
    /// An admin socket that left.
    Detach(Sid),
}

/// The receiving ends, for the listeners' task.
pub(super) struct Receivers<A: Adapter> {
    pub changes: mpsc::Receiver<Change>,
    pub control: mpsc::UnboundedReceiver<Control<A>>,
}

/// The observer of this node's sockets.
pub(super) struct Feed<A: Adapter> {
    /// Sockets are listed and followed (`ADMIN_MODE=development`).
    detail: bool,
    /// The admin sockets of this node. Only admin logins and logouts take this lock.
    admins: Mutex<HashSet<Sid>>,
    /// `admins.len()` when `detail`, else 0: whether the hooks report, in one atomic load.
    watchers: AtomicUsize,
    changes: mpsc::Sender<Change>,
    /// Bytes of the changes in `changes`.
    queued_bytes: AtomicUsize,
    /// A change was dropped from a full queue: every admin socket needs a fresh list.
    lost: AtomicBool,
    /// Told of admin sockets coming and going; unbounded, but admin sockets are few (see
    /// `MAX_ADMIN_SOCKETS`) and each sends two messages.
    control: mpsc::UnboundedSender<Control<A>>,
    counts: Mutex<EventCounts>,
    metrics: AdminMetrics,
}

impl<A: Adapter> Feed<A> {
    /// A feed; `detail` lists and follows sockets. The receivers go to the listeners' task.
    pub(super) fn new(detail: bool, metrics: AdminMetrics) -> (Self, Receivers<A>) {
        let (changes, changes_rx) = mpsc::channel(QUEUE_MAX);
        let (control, control_rx) = mpsc::unbounded_channel();
        let feed = Self {
            detail,
            admins: Mutex::new(HashSet::new()),
            watchers: AtomicUsize::new(0),
            changes,
            queued_bytes: AtomicUsize::new(0),
            lost: AtomicBool::new(false),
            control,
            counts: Mutex::new(EventCounts::default()),
            metrics,
        };
        (feed, Receivers { changes: changes_rx, control: control_rx })
    }

    fn admins(&self) -> std::sync::MutexGuard<'_, HashSet<Sid>> {
        self.admins.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an admin socket: sends it `intro` (event, payload) in order; the listeners' task
    /// then sends it the list of sockets, and from then on every change.
    pub(super) fn attach(&self, socket: SocketRef<A>, intro: &[(&str, serde_json::Value)]) {
        for (event, payload) in intro {
            if let Err(e) = socket.emit(*event, payload) {
                tracing::debug!(error = %e, event, "admin view: could not greet an admin socket");
            }
        }
        let mut admins = self.admins();
        if !admins.insert(socket.id) || !self.detail {
            return;
        }
        // Watching from now on, before the list is taken (see the module's comment).
        self.watchers.store(admins.len(), Ordering::SeqCst);
        drop(admins);
        // The task stops only when the feed is gone.
        let _ = self.control.send(Control::Attach(socket));
    }

    /// Removes an admin socket that left (once, however often it is called).
    pub(super) fn detach(&self, id: Sid) {
        let mut admins = self.admins();
        if !admins.remove(&id) || !self.detail {
            return;
        }
        self.watchers.store(admins.len(), Ordering::SeqCst);
        drop(admins);
        let _ = self.control.send(Control::Detach(id));
    }

    /// How many admin sockets this node has.
    pub(super) fn admin_count(&self) -> usize {
        self.admins().len()
    }

    /// Whether this node has admin sockets.
    pub(super) fn has_listeners(&self) -> bool {
        self.admin_count() > 0
    }

    /// The counts since the last call, for `server_stats`.
    pub(super) fn take_counts(&self) -> Vec<serde_json::Value> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// The listeners' task took `bytes` of changes off the queue.
    pub(super) fn dequeued(&self, bytes: usize) {
        self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Whether a change was dropped since the last call.
    pub(super) fn take_lost(&self) -> bool {
        self.lost.swap(false, Ordering::SeqCst)
    }

    /// The admin view's counters.
    pub(super) fn metrics(&self) -> &AdminMetrics {
        &self.metrics
    }

    /// Counts one admin socket as watching, for tests that have no socket to attach.
    #[cfg(test)]
    pub(super) fn watch_for_tests(&self) {
        self.watchers.fetch_add(1, Ordering::SeqCst);
    }

    /// Queues `change` without waiting; drops it (and counts it) if the queue is full.
    fn queue(&self, change: Change) {
        let size = change.size();
        let before = self.queued_bytes.fetch_add(size, Ordering::Relaxed);
        if before + size > QUEUE_MAX_BYTES || self.changes.try_send(change).is_err() {
            self.queued_bytes.fetch_sub(size, Ordering::Relaxed);
            self.lost.store(true, Ordering::SeqCst);
            self.metrics.dropped_queue_full.inc();
        }
    }

    fn count(&self, kind: &'static str, detail: Option<&'static str>) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).count(now_millis(), kind, detail);
    }
}

/// How room `name` is shown (`wire::room`), reusing the string when it is shown whole.
fn shown(name: String) -> String {
    match wire::room(&name) {
        Cow::Borrowed(_) => name,
        Cow::Owned(cut) => cut,
    }
}

impl<A: Adapter> Observer for Feed<A> {
    fn watching(&self) -> bool {
        self.watchers.load(Ordering::SeqCst) > 0
    }

    fn connected(&self, socket: &SocketView<'_>) {
        self.count("rawConnection", None);
        if !self.watching() {
            return;
        }
        match serde_json::value::to_raw_value(&wire::socket(socket)) {
            Ok(socket) => self.queue(Change::Connected { socket, at: iso_now() }),
            Err(e) => tracing::warn!(error = %e, "admin view: a socket could not be serialized"),
        }
    }

    fn disconnected(&self, namespace: &str, id: PublicId, reason: &'static str, rooms: Vec<String>) {
        self.count("rawDisconnection", Some(reason));
        if !self.watching() {
            return;
        }
        let rooms = rooms.into_iter().map(shown).collect();
        self.queue(Change::Disconnected {
            nsp: namespace.to_string(),
            id: id.to_string(),
            reason,
            rooms,
            at: iso_now(),
        });
    }

    fn joined(&self, namespace: &str, id: PublicId, room: String) {
        let room = shown(room);
        self.queue(Change::Joined { nsp: namespace.to_string(), room, id: id.to_string(), at: iso_now() });
    }

    fn left(&self, namespace: &str, id: PublicId, room: String) {
        let room = shown(room);
        self.queue(Change::Left { nsp: namespace.to_string(), room, id: id.to_string(), at: iso_now() });
    }

    fn upgraded(&self, namespace: &str, id: PublicId) {
        self.queue(Change::Upgraded { nsp: namespace.to_string(), id: id.to_string() });
    }
}

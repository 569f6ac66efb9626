//! The admin sockets of this node and what they are told: the engine's [`Observer`] turns each
//! socket's life into the protocol's events (`socket_connected`, `room_joined`, `room_left`,
//! `socket_updated`, `socket_disconnected`), sent to every admin socket here, and counts
//! connections and disconnections per second for `server_stats`.
//!
//! An admin socket joins with `all_sockets`, this node's sockets at that moment. The list is
//! taken while the admin sockets' lock is held, and every event is sent under the same lock, so
//! an event is either in the list or after it, never lost between the two. (An event racing the
//! list may also be in it; the UI takes a repeated socket or room once, except that a room's
//! page may then count one member twice until the next list.)
//!
//! Events go to this node's admin sockets only: a node's socket list is its own (see `mod.rs`).
//! Sends never wait: an admin socket whose queue is full misses the event, is marked behind, and
//! gets a fresh `all_sockets` at the next `server_stats` tick, which resets the UI's lists.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::SystemTime,
};

use serde::Serialize;
use serde_json::Value;
use socketioxide::{SendError, SocketError, adapter::Adapter, extract::SocketRef, socket::Sid};

use super::wire::{self, EventCounts};
use crate::engine::{Observer, PublicId, Roster, SocketView};

/// Most sockets one `all_sockets` lists: past it the list is cut (and a warning logged), so an
/// admin connecting to a very busy node does not get a message of hundreds of megabytes.
/// `ADMIN_MODE=production` lists none.
const MAX_LISTED: usize = 10_000;

/// An admin socket of this node.
struct Listener<A: Adapter> {
    socket: SocketRef<A>,
    /// It missed an event (full queue): resend the whole list.
    behind: bool,
}

/// The observer of this node's sockets, and the admin sockets it reports to.
pub struct Feed<A: Adapter> {
    roster: Arc<dyn Roster>,
    /// Sockets are listed and followed (`ADMIN_MODE=development`).
    detail: bool,
    /// `listeners.len()` when `detail`, else 0, for [`Observer::watching`] without the lock.
    watchers: AtomicUsize,
    listeners: Mutex<Vec<Listener<A>>>,
    counts: Mutex<EventCounts>,
}

fn now_iso() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or_default()
}

impl<A: Adapter> Feed<A> {
    /// A feed of `roster`'s sockets; `detail` lists and follows them.
    pub fn new(roster: Arc<dyn Roster>, detail: bool) -> Self {
        Self {
            roster,
            detail,
            watchers: AtomicUsize::new(0),
            listeners: Mutex::new(Vec::new()),
            counts: Mutex::new(EventCounts::default()),
        }
    }

    fn listeners(&self) -> std::sync::MutexGuard<'_, Vec<Listener<A>>> {
        self.listeners.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds an admin socket: sends it `intro` (event, payload) in order, then the list of
    /// sockets, and from then on every event.
    pub fn attach(&self, socket: SocketRef<A>, intro: &[(&str, Value)]) {
        let mut listeners = self.listeners();
        let mut listener = Listener { socket, behind: false };
        for (event, payload) in intro {
            send(&mut listener, event, payload);
        }
        if self.detail {
            send(&mut listener, "all_sockets", &self.list());
            self.watchers.fetch_add(1, Ordering::Relaxed);
        }
        listeners.push(listener);
    }

    /// Removes an admin socket that left.
    pub fn detach(&self, id: Sid) {
        let mut listeners = self.listeners();
        let before = listeners.len();
        listeners.retain(|l| l.socket.id != id);
        if self.detail {
            self.watchers.fetch_sub(before - listeners.len(), Ordering::Relaxed);
        }
    }

    /// Whether this node has admin sockets.
    pub fn has_listeners(&self) -> bool {
        !self.listeners().is_empty()
    }

    /// The counts since the last call, for `server_stats`.
    pub fn take_counts(&self) -> Vec<Value> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Sends a fresh list to the admin sockets that missed events.
    pub fn catch_up(&self) {
        let mut listeners = self.listeners();
        // Without `detail` there is no list to resend (what was missed was a count).
        if !self.detail || !listeners.iter().any(|l| l.behind) {
            return;
        }
        let list = self.list();
        for listener in listeners.iter_mut().filter(|l| l.behind) {
            listener.behind = false;
            send(listener, "all_sockets", &list);
        }
    }

    /// This node's sockets, at most [`MAX_LISTED`].
    fn list(&self) -> Vec<Value> {
        let mut list = Vec::new();
        let mut total = 0usize;
        self.roster.each_socket(&mut |view| {
            total += 1;
            if list.len() < MAX_LISTED {
                list.push(wire::socket(view));
            }
        });
        if total > MAX_LISTED {
            tracing::warn!(total, listed = MAX_LISTED, "admin view: too many sockets to list; the list is cut");
        }
        list
    }

    /// Sends an event to every admin socket of this node.
    fn broadcast(&self, event: &str, args: &impl Serialize) {
        for listener in self.listeners().iter_mut() {
            send(listener, event, args);
        }
    }

    fn count(&self, kind: &'static str, detail: Option<&'static str>) {
        self.counts.lock().unwrap_or_else(|e| e.into_inner()).count(now_ms(), kind, detail);
    }
}

/// Sends without waiting; a full queue marks the listener behind.
fn send<A: Adapter>(listener: &mut Listener<A>, event: &str, args: &(impl Serialize + ?Sized)) {
    match listener.socket.emit(event, args) {
        Ok(()) => {}
        Err(SendError::Socket(SocketError::InternalChannelFull)) => {
            if !listener.behind {
                tracing::info!("admin view: an admin socket's queue is full; it will get a fresh list");
            }
            listener.behind = true;
        }
        // Closed: it is being detached.
        Err(e) => tracing::debug!(error = %e, "admin view: could not send to an admin socket"),
    }
}

impl<A: Adapter> Observer for Feed<A> {
    fn watching(&self) -> bool {
        self.watchers.load(Ordering::Relaxed) > 0
    }

    fn connected(&self, socket: &SocketView<'_>) {
        self.count("rawConnection", None);
        if self.watching() {
            self.broadcast("socket_connected", &(wire::socket(socket), now_iso()));
        }
    }

    fn disconnected(&self, namespace: &str, id: PublicId, reason: &'static str, rooms: Vec<String>) {
        self.count("rawDisconnection", Some(reason));
        if !self.watching() {
            return;
        }
        let (id, at) = (id.to_string(), now_iso());
        let mut listeners = self.listeners();
        for listener in listeners.iter_mut() {
            // Its rooms first, as Node's adapter leaves them, so the UI's room lists shrink too.
            for room in &rooms {
                send(listener, "room_left", &(namespace, room, &id, &at));
            }
            send(listener, "socket_disconnected", &(namespace, &id, reason, &at));
        }
    }

    fn joined(&self, namespace: &str, id: PublicId, room: String) {
        self.broadcast("room_joined", &(namespace, room, id.to_string(), now_iso()));
    }

    fn left(&self, namespace: &str, id: PublicId, room: String) {
        self.broadcast("room_left", &(namespace, room, id.to_string(), now_iso()));
    }

    fn upgraded(&self, namespace: &str, id: PublicId) {
        let update = serde_json::json!({ "id": id.to_string(), "nsp": namespace, "transport": "websocket" });
        self.broadcast("socket_updated", &update);
    }
}

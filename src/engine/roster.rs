//! What the engine shows an observer of this node's connections (the admin view, `crate::admin`):
//! a [`Roster`] to ask about the present, an [`Observer`] told of changes as they happen, from
//! both fronts.
//!
//! Every connection appears under its public id, never its Engine.IO session id (a credential for
//! a polling session), with what an operator needs: its namespace, rooms (as
//! [`rooms::display_name`] shows them), client address, transport, when it connected, who it is,
//! and the request that opened it. Sockets of one Engine.IO session share a [`ClientId`], a keyed
//! hash of the session id that cannot be turned back into it.
//!
//! The observer is called on the connection's own path (connect, joins, disconnect), so it must
//! not block. Joins, leaves and upgrades are only reported while it says someone is watching:
//! with nobody watching, the hooks cost one atomic load.

use std::{
    fmt,
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    ops::ControlFlow,
    sync::Arc,
};

use socketioxide::socket::Sid;

use super::{Shared, member_state::PublicId};
use crate::auth::Identity;

/// An opaque id shared by the sockets of one client connection (an Engine.IO session, or a plain
/// WebSocket): a keyed hash, so it says which sockets belong together and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ClientId(u64);

impl ClientId {
    /// An id for tests (and `crate::fuzzing`) that build views by hand.
    pub(crate) fn for_tests(n: u64) -> Self {
        Self(n)
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// The key of [`ClientId`]s, random per process.
#[derive(Debug, Default)]
pub(crate) struct ClientIds(RandomState);

impl ClientIds {
    pub(crate) fn of_session(&self, sid: Sid) -> ClientId {
        ClientId(self.0.hash_one((0u8, sid)))
    }

    pub(crate) fn of_conn(&self, endpoint: usize, conn: u64) -> ClientId {
        ClientId(self.0.hash_one((1u8, endpoint, conn)))
    }
}

/// One connection of this node, as an observer sees it.
#[derive(Debug)]
pub(crate) struct SocketView<'a> {
    /// Its namespace; for a plain WebSocket endpoint, [`endpoint_name`].
    pub namespace: &'a str,
    /// The id everyone else knows it by.
    pub id: PublicId,
    /// Shared by the sockets of one client connection.
    pub client: ClientId,
    /// `websocket` or `polling`.
    pub transport: &'static str,
    /// The client's address (through `TRUSTED_PROXIES`).
    pub address: Option<IpAddr>,
    /// When it connected, in ms since the epoch.
    pub connected_at_ms: u64,
    /// Who it is.
    pub identity: Arc<Identity>,
    /// The rooms it is in, as [`crate::rooms::display_name`] shows them.
    pub rooms: Vec<String>,
    /// The request that opened it (Socket.IO sockets). It may carry credentials (a token in the
    /// query or a header, cookies): whoever shows it strips them.
    pub request: Option<&'a http::request::Parts>,
}

/// Told of changes to this node's connections. Must not block.
pub(crate) trait Observer: Send + Sync {
    /// Whether anyone is watching now: joins, leaves and upgrades are only reported then.
    fn watching(&self) -> bool;
    /// A connection was admitted (before its namespace's `on_connect` actions join any room).
    fn connected(&self, socket: &SocketView<'_>);
    /// A connection left, from these rooms, for `reason`.
    fn disconnected(&self, namespace: &str, id: PublicId, reason: &'static str, rooms: Vec<String>);
    /// It joined `room` (a display name).
    fn joined(&self, namespace: &str, id: PublicId, room: String);
    /// It left `room`.
    fn left(&self, namespace: &str, id: PublicId, room: String);
    /// Its transport is now WebSocket (a long-polling client upgraded).
    fn upgraded(&self, namespace: &str, id: PublicId);
}

/// How many clients this node serves.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ClientCounts {
    /// Client connections: Engine.IO sessions with an admitted socket, plus plain WebSockets.
    pub clients: usize,
    /// Those of them still on long-polling.
    pub polling: usize,
}

/// Whether this node is in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClusterState {
    /// One node.
    Alone,
    /// In a cluster that can be reached now.
    Reachable,
    /// In a cluster whose Redis is away: only this node's sockets can be reached.
    Unreachable,
}

/// What an observer may ask about this node's connections, and do to them.
pub(crate) trait Roster: Send + Sync {
    /// Connections per namespace (Socket.IO namespaces, then plain endpoints), this node's.
    fn namespaces(&self) -> Vec<(String, usize)>;
    /// Client connections on this node.
    fn clients(&self) -> ClientCounts;
    /// Calls `visit` with every connection of this node, until it breaks.
    fn each_socket(&self, visit: &mut dyn FnMut(&SocketView<'_>) -> ControlFlow<()>);
    /// Disconnects the connection with public id `id` in `namespace` (with `whole_client`, its
    /// whole Engine.IO session, every namespace). Whether it was found on this node.
    fn disconnect(&self, namespace: &str, id: &str, whole_client: bool) -> bool;
    /// Starts telling `observer` of changes (once).
    fn observe(&self, observer: Arc<dyn Observer>);
    /// Cluster membership.
    fn cluster(&self) -> ClusterState;
}

/// The name a plain WebSocket endpoint is shown under: its HTTP path may be a Socket.IO
/// namespace's name too (seed 001's `/ws` beside seed 002's).
pub(crate) fn endpoint_name(path: &str) -> String {
    format!("{path} (plain WebSocket)")
}

impl Shared {
    /// The observer, if one is attached.
    pub(crate) fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.get()
    }

    /// The observer, if one is attached and someone is watching.
    pub(crate) fn watcher(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.get().filter(|o| o.watching())
    }
}

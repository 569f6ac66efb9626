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
    collections::HashSet,
    fmt,
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    ops::ControlFlow,
    sync::Arc,
    time::Duration,
};

use axum::extract::ConnectInfo;
use socketioxide::{
    TransportType,
    adapter::Adapter,
    extract::SocketRef,
    socket::{DisconnectReason, Sid},
};

use super::{Engine, Shared, namespace::NamespaceRuntime, session::Session};
use crate::{auth::Identity, connection::CutReason, engine::session::PublicId, rooms};

/// How long an upgrade is watched for its end: Engine.IO's upgrade timeout is 10 s by default.
const UPGRADE_WATCH: Duration = Duration::from_secs(15);
/// How long an upgrading session may have no socket of the engine's before it is not watched.
const UPGRADE_NO_SOCKETS: Duration = Duration::from_secs(2);

/// An opaque id shared by the sockets of one client connection (an Engine.IO session, or a plain
/// WebSocket): a keyed hash, so it says which sockets belong together and nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientId(u64);

impl ClientId {
    /// An id for tests (and `crate::fuzzing`) that build views by hand.
    pub fn for_tests(n: u64) -> Self {
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
    fn of_session(&self, sid: Sid) -> ClientId {
        ClientId(self.0.hash_one((0u8, sid)))
    }

    fn of_conn(&self, endpoint: usize, conn: u64) -> ClientId {
        ClientId(self.0.hash_one((1u8, endpoint, conn)))
    }
}

/// One connection of this node, as an observer sees it.
#[derive(Debug)]
pub struct SocketView<'a> {
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
    /// The rooms it is in, as [`rooms::display_name`] shows them.
    pub rooms: Vec<String>,
    /// The request that opened it (Socket.IO sockets). It may carry credentials (a token in the
    /// query or a header, cookies): whoever shows it strips them.
    pub request: Option<&'a http::request::Parts>,
}

/// Told of changes to this node's connections. Must not block.
pub trait Observer: Send + Sync {
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
pub struct ClientCounts {
    /// Client connections: Engine.IO sessions with an admitted socket, plus plain WebSockets.
    pub clients: usize,
    /// Those of them still on long-polling.
    pub polling: usize,
}

/// Whether this node is in a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClusterState {
    /// One node.
    Alone,
    /// In a cluster that can be reached now.
    Reachable,
    /// In a cluster whose Redis is away: only this node's sockets can be reached.
    Unreachable,
}

/// What an observer may ask about this node's connections, and do to them.
pub trait Roster: Send + Sync {
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
pub fn endpoint_name(path: &str) -> String {
    format!("{path} (plain WebSocket)")
}

/// Node's socket.io words for why a socket left, which the admin UI's users know.
pub(super) fn reason_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

fn transport_name(transport: TransportType) -> &'static str {
    match transport {
        TransportType::Websocket => "websocket",
        TransportType::Polling => "polling",
    }
}

impl Shared {
    /// The observer, if one is attached.
    pub(super) fn observer(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.get()
    }

    /// The observer, if one is attached and someone is watching.
    pub(super) fn watcher(&self) -> Option<&Arc<dyn Observer>> {
        self.observer.get().filter(|o| o.watching())
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// How the observer sees socket `s`.
    pub(super) fn view<'a>(&'a self, s: &'a SocketRef<A>, session: &Session) -> SocketView<'a> {
        let parts = s.req_parts();
        let address = parts
            .extensions
            .get::<ConnectInfo<std::net::SocketAddr>>()
            .map(|ConnectInfo(peer)| self.shared.trusted_proxies.client_ip(peer.ip(), &parts.headers));
        SocketView {
            namespace: &self.spec.path,
            id: session.public_id,
            client: self.shared.client_ids.of_session(s.id),
            transport: transport_name(s.transport_type()),
            address,
            connected_at_ms: session.connected_at_ms,
            identity: session.identity(),
            rooms: s.rooms().iter().map(|r| rooms::display_name(r)).collect(),
            request: Some(parts),
        }
    }

    /// This node's admitted sockets with their sessions.
    fn local_sessions(&self) -> Vec<(SocketRef<A>, Arc<Session>)> {
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return Vec::new() };
        op.local()
            .sockets()
            .into_iter()
            .filter_map(|s| s.extensions.get::<Arc<Session>>().map(|session| (s, session)))
            .collect()
    }
}

impl super::native::Endpoint {
    /// How the observer sees connection `conn`.
    pub(super) fn view<'a>(&self, name: &'a str, conn: &super::native::ConnView<'_>) -> SocketView<'a> {
        SocketView {
            namespace: name,
            id: conn.session.public_id,
            client: self.shared.client_ids.of_conn(self.index, conn.id),
            transport: "websocket",
            address: conn.address,
            connected_at_ms: conn.session.connected_at_ms,
            identity: conn.session.identity(),
            rooms: conn.rooms.iter().map(|r| rooms::display_name(r)).collect(),
            request: None,
        }
    }
}

impl<A: Adapter> Roster for Engine<A> {
    fn namespaces(&self) -> Vec<(String, usize)> {
        let sio = self
            .namespaces
            .iter()
            .map(|ns| (ns.spec.path.clone(), self.shared.ns_connections[ns.index].1.get().max(0) as usize));
        let native = self.endpoints.iter().map(|ep| (endpoint_name(&ep.spec.path), ep.connection_count()));
        sio.chain(native).collect()
    }

    fn clients(&self) -> ClientCounts {
        let (mut sessions, mut polling) = (HashSet::new(), HashSet::new());
        for ns in self.namespaces.iter() {
            for (s, _) in ns.local_sessions() {
                sessions.insert(s.id);
                if s.transport_type() == TransportType::Polling {
                    polling.insert(s.id);
                }
            }
        }
        let native: usize = self.endpoints.iter().map(|ep| ep.connection_count()).sum();
        ClientCounts { clients: sessions.len() + native, polling: polling.len() }
    }

    fn each_socket(&self, visit: &mut dyn FnMut(&SocketView<'_>) -> ControlFlow<()>) {
        for ns in self.namespaces.iter() {
            for (s, session) in ns.local_sessions() {
                if visit(&ns.view(&s, &session)).is_break() {
                    return;
                }
            }
        }
        let mut stopped = false;
        for ep in self.endpoints.iter() {
            let name = endpoint_name(&ep.spec.path);
            ep.each_conn(&mut |conn| {
                // Views are what costs; the rest of the walk is a skip.
                if !stopped {
                    stopped = visit(&ep.view(&name, conn)).is_break();
                }
            });
            if stopped {
                return;
            }
        }
    }

    fn disconnect(&self, namespace: &str, id: &str, whole_client: bool) -> bool {
        if let Some(ns) = self.namespace(namespace) {
            let Some((s, _)) = ns.local_sessions().into_iter().find(|(_, session)| session.public_id.to_string() == id)
            else {
                return false;
            };
            if whole_client {
                self.shared.sessions.close(s.id, s.transport_type(), s.protocol(), s.req_parts(), CutReason::Admin);
            } else if let Err(e) = s.disconnect() {
                tracing::debug!(error = %e, "could not disconnect a socket");
            }
            return true;
        }
        self.endpoints
            .iter()
            .find(|ep| endpoint_name(&ep.spec.path) == namespace)
            .is_some_and(|ep| ep.close_by_public_id(id))
    }

    fn observe(&self, observer: Arc<dyn Observer>) {
        if self.shared.observer.set(observer).is_err() {
            tracing::warn!("the engine already has an observer");
        }
    }

    fn cluster(&self) -> ClusterState {
        match self.shared.cluster.get() {
            None => ClusterState::Alone,
            Some(c) if c.connected() => ClusterState::Reachable,
            Some(_) => ClusterState::Unreachable,
        }
    }
}

impl<A: Adapter> Engine<A> {
    /// A long-polling session asked to upgrade to WebSocket: once it has, the observer hears of
    /// it for each of the session's sockets. socketioxide says nothing when an upgrade completes,
    /// so the session's transport is looked at until it changes (or the upgrade timed out).
    pub(super) fn watch_upgrade(&self, sid: Sid) {
        if self.shared.watcher().is_none() {
            return;
        }
        let engine = self.clone();
        tokio::spawn(async move {
            let started = tokio::time::Instant::now();
            while started.elapsed() < UPGRADE_WATCH {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let sockets: Vec<(&str, SocketRef<A>)> = engine
                    .namespaces
                    .iter()
                    .filter_map(|ns| Some((ns.spec.path.as_str(), ns.io.of(ns.spec.path.as_str())?.get_socket(sid)?)))
                    .collect();
                // None yet: the client may connect its namespaces while it upgrades, but a
                // session with none for a while has none of ours (the admin's own, say).
                if sockets.is_empty() && started.elapsed() > UPGRADE_NO_SOCKETS {
                    return;
                }
                if !sockets.is_empty() && sockets.iter().all(|(_, s)| s.transport_type() == TransportType::Websocket) {
                    let Some(observer) = engine.shared.watcher() else { return };
                    for (path, s) in sockets {
                        if let Some(session) = s.extensions.get::<Arc<Session>>() {
                            observer.upgraded(path, session.public_id);
                        }
                    }
                    return;
                }
            }
        });
    }
}

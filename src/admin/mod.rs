//! The admin view: the server side of the official Socket.IO Admin UI's protocol
//! (`@socket.io/admin-ui`) on namespace `/admin`, and the UI itself at `/admin/`, so operators
//! see the gateway's servers, namespaces, sockets, rooms and clients, live.
//!
//! - `gate`: who may connect (the UI's basic auth against a bcrypt hash, login sessions, limits);
//! - `feed`: the engine's observer, which queues each change for the admin sockets of this node;
//! - `listeners`: those admin sockets, and the task that sends them lists and changes within
//!   byte budgets;
//! - `wire`: the protocol's payloads, bounded in bytes; `handshake`: what an admin sees of a
//!   socket's opening request (no credentials);
//! - `ui`: the UI's files, embedded at build time (`build/admin_ui.rs`).
//!
//! The engine is read through its [`Roster`] and observed as an [`Observer`](crate::engine::Observer): this module
//! never touches a socket of the gateway's namespaces directly, and never sees a session id.
//!
//! What is supported (the `config` event's `supportedFeatures`): `AGGREGATED_EVENTS`
//! (`server_stats` every [`STATS_PERIOD`] with connection counts per second), `ALL_EVENTS`
//! (sockets listed and followed live; not with `ADMIN_MODE=production`) and `DISCONNECT` (a
//! socket, or its whole client; not with `ADMIN_READONLY`). Joining, leaving and emitting are
//! not: they would go around the specs' access rules and tenant scoping. Client events are not
//! mirrored to the UI (`event_received`/`event_sent`): that would copy every tenant's traffic to
//! the admin sockets.
//!
//! In a cluster each node sends its own `server_stats` to every admin socket through the
//! adapter (this node's only while Redis is away), and the UI adds them up by `serverId`, so the
//! dashboard and the servers page cover the cluster. Sockets are listed and followed per node:
//! the sockets, rooms and clients pages show the node the UI is connected to.

mod feed;
mod gate;
pub(crate) mod handshake;
mod listeners;
pub(crate) mod ui;
pub(crate) mod wire;

use std::{
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::extract::ConnectInfo;
use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::Adapter,
    extract::{Event, SocketRef, TryData},
    handler::ConnectHandler,
};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::task::JoinHandle;

use crate::{
    config::{AdminConfig, AdminMode},
    engine::{ClusterState, Roster},
    metrics::{AdminMetrics, LoginOutcome},
    net::client_ip::TrustedProxies,
};
use feed::Feed;
use gate::{Credentials, Gate, Login};
use listeners::Listeners;
use wire::ServerInfo;

/// The namespace the UI connects to (its default).
pub(crate) const NAMESPACE: &str = "/admin";

/// How often each node sends its `server_stats` (the official server's period; the UI marks a
/// server unhealthy after 10 s without).
pub(crate) const STATS_PERIOD: Duration = Duration::from_secs(2);

/// Admin sockets one node serves at most: what the admin view costs the node grows with them
/// (each has its own byte budget, `listeners`).
const MAX_ADMIN_SOCKETS: usize = 16;

/// What the namespace's handlers share.
struct Shared<A: Adapter> {
    io: SocketIo<A>,
    roster: Arc<dyn Roster>,
    feed: Arc<Feed<A>>,
    gate: Gate,
    server: ServerInfo,
    features: Vec<&'static str>,
    readonly: bool,
    trusted_proxies: TrustedProxies,
}

/// The admin namespace of this node.
pub(crate) struct Admin<A: Adapter> {
    shared: Arc<Shared<A>>,
    /// The listeners' task, until it is spawned.
    listeners: Mutex<Option<Listeners<A>>>,
}

impl<A: Adapter> Admin<A> {
    /// Mounts namespace `/admin` on `io` and starts observing `roster`, counting in `metrics`.
    /// With a remote adapter, the returned future subscribes the namespace and must be awaited.
    pub(crate) fn mount(
        io: &SocketIo<A>,
        roster: Arc<dyn Roster>,
        config: &AdminConfig,
        trusted_proxies: TrustedProxies,
        metrics: AdminMetrics,
    ) -> (Self, A::InitRes)
    where
        A: DefinedAdapter,
    {
        let detail = config.mode == AdminMode::Development;
        let (feed, receivers) = Feed::new(detail, metrics.clone());
        let feed = Arc::new(feed);
        roster.observe(feed.clone());
        let listeners = Listeners::new(roster.clone(), feed.clone(), receivers);
        let shared = Arc::new(Shared {
            io: io.clone(),
            roster,
            feed,
            gate: Gate::new(config.username.clone(), config.password_hash.clone(), metrics),
            server: ServerInfo::current(),
            features: wire::features(config.readonly, detail),
            readonly: config.readonly,
            trusted_proxies,
        });
        let (on_auth, on_connect) = (shared.clone(), shared.clone());
        let authenticate = move |s: SocketRef<A>, TryData(credentials): TryData<Credentials>| {
            let shared = on_auth.clone();
            async move { shared.authenticate(s, credentials.unwrap_or_default()).await }
        };
        let connected = move |s: SocketRef<A>| {
            let shared = on_connect.clone();
            async move { shared.connected(s) }
        };
        let init = io.ns(NAMESPACE, connected.with(authenticate));
        (Self { shared, listeners: Mutex::new(Some(listeners)) }, init)
    }

    /// What the start-up log says about the admin view.
    pub(crate) fn describe(&self) -> String {
        format!(
            "admin UI at /admin/, namespace {NAMESPACE}, server id {}, features {:?}",
            self.shared.server.id, self.shared.features
        )
    }

    /// Starts sending this node's `server_stats` every [`STATS_PERIOD`], and lists and changes
    /// to the admin sockets, until aborted (once).
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let shared = self.shared.clone();
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner()).take();
        tokio::spawn(async move {
            let stats = async {
                let mut ticks = tokio::time::interval(STATS_PERIOD);
                ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    ticks.tick().await;
                    shared.send_stats().await;
                    shared.gate.cleanup();
                }
            };
            // One task for both, so aborting it stops both; neither waits on the other.
            match listeners {
                Some(listeners) => tokio::join!(stats, listeners.run()).0,
                None => stats.await,
            }
        })
    }
}

impl<A: Adapter> Shared<A> {
    /// The connect middleware: runs before CONNECT is sent, so a refused socket gets a
    /// `connect_error` with the reason, and an admitted one has its command handler before it
    /// can send anything.
    async fn authenticate(self: Arc<Self>, s: SocketRef<A>, credentials: Credentials) -> Result<(), gate::Refused> {
        let client = self.client_ip(&s);
        if self.feed.admin_count() >= MAX_ADMIN_SOCKETS {
            tracing::info!(client = ?client, "admin view: connection refused, as many admin sockets as this node serves");
            self.feed.metrics().login(LoginOutcome::Busy);
            return Err(gate::Refused::TooManyAdmins);
        }
        match self.gate.admit(&credentials, client).await {
            Ok(login) => {
                tracing::info!(client = ?client, with = if login == Login::Resumed { "session" } else { "password" }, "admin view: an admin connected");
                s.extensions.insert(Arc::new(login));
                if !self.readonly {
                    let shared = self.clone();
                    // A tuple, so every argument is read (a single type reads the first only).
                    s.on("_disconnect", move |TryData(args): TryData<(String, bool, String)>| {
                        let shared = shared.clone();
                        async move { shared.disconnect_command(args.ok(), client) }
                    });
                }
                // The UI offers some of these whatever the config says (its "Join a room" field).
                s.on_fallback(move |s: SocketRef<A>, event: Event| async move {
                    tracing::info!(client = ?client, event = %event.0, ns = s.ns(), "admin view: not supported here, ignored");
                });
                let feed = self.feed.clone();
                s.on_disconnect(move |s: SocketRef<A>| {
                    let feed = feed.clone();
                    async move { feed.detach(s.id) }
                });
                Ok(())
            }
            Err(refused) => {
                tracing::info!(client = ?client, reason = %refused, "admin view: connection refused");
                Err(refused)
            }
        }
    }

    /// After CONNECT: the session id of a password login, the config, this node's stats, the
    /// sockets, and from then on every change.
    fn connected(&self, s: SocketRef<A>) {
        let mut intro = Vec::new();
        if let Some(login) = s.extensions.remove::<Arc<Login>>()
            && let Login::Password(session) = &*login
        {
            intro.push(("session", json!(session)));
        }
        intro.push(("config", json!({ "supportedFeatures": self.features })));
        // Its own node's at once, not in up to two seconds; the other nodes' come with theirs.
        intro.push(("server_stats", self.stats(Vec::new())));
        self.feed.attach(s.clone(), &intro);
        // It may have left before it was attached: its disconnect handler found nothing then.
        if !s.connected() {
            self.feed.detach(s.id);
        }
    }

    /// `_disconnect(namespace, close, id)`: disconnects the socket with that public id from its
    /// namespace, or with `close` its whole client. Only ids: the UI's room-wide form
    /// (`MDISCONNECT`) is not offered, and a missing id never means "everyone".
    fn disconnect_command(&self, args: Option<(String, bool, String)>, client: Option<IpAddr>) {
        let Some((namespace, close, id)) = args else {
            tracing::debug!("admin view: a _disconnect without a namespace, a flag and a socket id was ignored");
            return;
        };
        let found = self.roster.disconnect(&namespace, &id, close);
        tracing::info!(admin = ?client, ns = %namespace, socket = %id, whole_client = close, found, "admin view: disconnect requested");
    }

    /// This node's `server_stats`, with these counts.
    fn stats(&self, events: Vec<Value>) -> Value {
        wire::server_stats(&self.server, self.roster.clients(), &self.roster.namespaces(), events)
    }

    /// Sends this node's `server_stats` to every admin socket: through the adapter to every
    /// node's, or this node's alone while the cluster is unreachable.
    async fn send_stats(&self) {
        let events = self.feed.take_counts();
        let cluster = self.roster.cluster();
        // Alone with nobody watching, there is no one to count for.
        if cluster != ClusterState::Reachable && !self.feed.has_listeners() {
            return;
        }
        let stats = self.stats(events);
        let Some(op) = self.io.of(NAMESPACE) else { return };
        let result = match cluster {
            ClusterState::Alone | ClusterState::Unreachable => op.local().emit("server_stats", &stats).await,
            ClusterState::Reachable => match op.clone().emit("server_stats", &stats).await {
                Err(socketioxide::BroadcastError::Adapter(e)) => {
                    tracing::debug!(error = %e, "admin view: stats to other nodes failed; sending this node's");
                    op.local().emit("server_stats", &stats).await
                }
                other => other,
            },
        };
        if let Err(e) = result {
            tracing::debug!(error = %e, "admin view: server_stats not delivered to every admin socket");
        }
    }

    fn client_ip(&self, s: &SocketRef<A>) -> Option<IpAddr> {
        let parts = s.req_parts();
        let ConnectInfo(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>()?;
        Some(self.trusted_proxies.client_ip(peer.ip(), &parts.headers))
    }
}

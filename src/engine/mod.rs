//! The engine: serves namespace specs on socketioxide, and delivers published events.
//!
//! - `namespace`: admission (tokens) and the socketioxide handlers of one spec;
//! - `dispatch`: a client event from packet to answer (limits, schema, actions, errors);
//! - `actions`: joining and leaving rooms under access rules, emitting, replying;
//! - `publish`: checking a batch of published events and fanning one out by rooms, with or
//!   without waiting for the clients' acks (notifications);
//! - `api`: the HTTP API's other operations on sockets: raw emits and statistics;
//! - `perf`: the live performance figures of `{gateway.stats}`;
//! - `state`: last-known state built from published events;
//! - `slow`: slow consumers, whose full queue ends their session;
//! - `roster`: this node's connections as an observer (the admin view) sees them, under their
//!   public ids, and the hooks that tell it of changes;
//! - `timers`, `expiry`, `limits`, `session`, `errors`, `clock`: what their names say.
//!
//! Everything here is generic over the socketioxide adapter, so the same engine runs on the
//! in-memory adapter and, for a cluster, on a remote one. It never names a namespace: what a
//! namespace does comes from its spec. Nor does it name Redis: in a cluster, published events and
//! raw emits go through a [`ClusterLink`] (see `crate::cluster`), which brings them back to every
//! node's [`Engine::apply`], and each node delivers them to its own sockets.

mod actions;
mod api;
mod clock;
mod dispatch;
pub mod errors;
mod expiry;
pub(crate) mod limits;
mod member;
mod namespace;
pub mod native;
mod outbound;
mod perf;
mod publish;
mod roster;
mod runtime;
mod session;
mod slow;
mod state;
mod timers;

use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use serde_json::{Value, json};
use socketioxide::{
    SocketIo,
    adapter::{Adapter, LocalAdapter},
};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::task::JoinHandle;

pub use api::{EmitRequest, RoomQuery};
pub use publish::{AckReport, PublishedEvent};
pub use roster::{ClientCounts, ClientId, ClusterState, Observer, Roster, SocketView, endpoint_name};
pub use session::PublicId;

use crate::{
    auth::TokenVerifier,
    backlog::BacklogLimits,
    client_ip::TrustedProxies,
    config::LimitsConfig,
    metrics::{Metrics, NamespaceMetrics},
    sessions::{SessionDirectory, Sessions},
    spec::{NamespaceSpec, TimerInterval, Transport},
};
use expiry::ExpiryQueue;
use member::MemberKey;
use namespace::NamespaceRuntime;
use runtime::SpecRuntime;

/// What every namespace shares. Behind one `Arc`, built once at start-up.
pub(crate) struct Shared {
    /// Verifies handshake and refresh tokens.
    pub verifier: TokenVerifier,
    /// Per-socket limits.
    pub limits: LimitsConfig,
    /// Sockets by token expiry.
    pub expiry: ExpiryQueue,
    /// Counters, also read by `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Connected sockets per Socket.IO namespace, by namespace index, with the namespace's path
    /// (the namespaces' own gauges, shared).
    pub ns_connections: Vec<(String, prometheus_client::metrics::gauge::Gauge)>,
    /// When each namespace last looked for slow consumers (ms since the epoch), by index.
    pub slow_sweeps: Vec<std::sync::atomic::AtomicU64>,
    /// Rates and latencies for `{gateway.stats}`.
    pub perf: perf::PerfSampler,
    /// Where connections come from, for per-IP limits.
    pub trusted_proxies: TrustedProxies,
    /// How far behind a Socket.IO session may fall before it is ended as a slow consumer.
    pub backlog_limits: BacklogLimits,
    /// The cookie tokens are read from, in namespaces that allow it.
    pub auth_cookie_name: String,
    /// Origins a cookie-authenticated handshake may come from (the CORS origins).
    pub allowed_origins: Vec<String>,
    /// The cluster, when this node is a member of one.
    pub cluster: OnceLock<Arc<dyn ClusterLink>>,
    /// The Engine.IO front, which ends sessions' transports.
    pub sessions: Arc<Sessions>,
    /// The byte budgets of last-known state, shared by every namespace's stores.
    pub state_budget: state::StateBudget,
    /// Told of connections' lives (the admin view), when one is attached.
    pub observer: OnceLock<Arc<dyn Observer>>,
    /// The key of the client ids shown to the observer.
    pub client_ids: roster::ClientIds,
}

/// What the engine needs from a cluster. Implemented by `crate::cluster` over Redis; the engine
/// only knows this trait.
pub trait ClusterLink: Send + Sync {
    /// Sends `message` to every node, this one included, in one order for all. While the cluster
    /// is unreachable the link applies it on this node at once and sends it to the others later.
    /// Resolves once it is sent (or applied here), so a caller's next message comes after it.
    /// Fails when the link has stopped (the node is shutting down) and the message went nowhere.
    fn submit(
        &self,
        message: Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LinkStopped>> + Send>>;
    /// Why the cluster is degraded, if it is (for `/readyz`).
    fn degraded(&self) -> Option<String>;
    /// Whether cross-node operations (relays, acks, room counts) can be attempted now.
    fn connected(&self) -> bool;
    /// The latest [`Engine::node_snapshot`]s of the other live nodes.
    fn peers(&self) -> Vec<Value>;
}

/// The cluster link has stopped: a message submitted went nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStopped;

/// Why published work (events, a raw emit) was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// The work is wrong; the message says what (the API answers 400).
    #[error("{0}")]
    Invalid(String),
    /// The node is stopping and could not send it on: nothing was delivered anywhere; it may be
    /// sent again, to another node (the API answers 503).
    #[error("this node is shutting down and took nothing: send it again, to another node")]
    Unavailable,
}

impl From<String> for PublishError {
    fn from(message: String) -> Self {
        PublishError::Invalid(message)
    }
}

impl From<LinkStopped> for PublishError {
    fn from(_: LinkStopped) -> Self {
        PublishError::Unavailable
    }
}

/// Work every node of a cluster applies to its own sockets.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// Published events (a checked batch).
    Events(Vec<PublishedEvent>),
    /// A raw emit (checked).
    Emit(EmitRequest),
}

impl Outgoing {
    /// The wire form between nodes.
    pub fn to_json(&self) -> Value {
        match self {
            Outgoing::Events(events) => {
                json!({ "events": events.iter().map(PublishedEvent::to_json).collect::<Vec<_>>() })
            }
            Outgoing::Emit(e) => json!({ "emit": {
                "namespace": e.namespace, "rooms": e.rooms, "event": e.event, "data": e.data, "tenantId": e.tenant,
            } }),
        }
    }

    /// Reads the wire form back.
    pub fn from_json(mut value: Value) -> Result<Self, String> {
        if let Some(Value::Array(events)) = value.get_mut("events").map(Value::take) {
            return events
                .into_iter()
                .enumerate()
                .map(|(i, e)| PublishedEvent::from_json(e, &format!("events[{i}]")))
                .collect::<Result<_, _>>()
                .map(Outgoing::Events);
        }
        let emit = value.get("emit").ok_or("neither `events` nor `emit`")?;
        let text = |field: &str| emit.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(Outgoing::Emit(EmitRequest {
            namespace: text("namespace").ok_or("emit.namespace")?,
            rooms: emit
                .get("rooms")
                .and_then(Value::as_array)
                .ok_or("emit.rooms")?
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect(),
            event: text("event").ok_or("emit.event")?,
            data: emit.get("data").cloned().unwrap_or(Value::Null),
            tenant: text("tenantId"),
        }))
    }
}

impl Shared {
    /// Whether this node is in a cluster that can be reached now (`false` alone).
    pub fn cluster_reachable(&self) -> bool {
        self.cluster.get().is_some_and(|c| c.connected())
    }

    /// Why the cluster is degraded, if this node is in one and it is.
    pub fn cluster_degraded(&self) -> Option<String> {
        self.cluster.get().and_then(|c| c.degraded())
    }

    /// The other live nodes' snapshots (none alone).
    pub fn peers(&self) -> Vec<Value> {
        self.cluster.get().map(|c| c.peers()).unwrap_or_default()
    }

    /// `{gateway.stats}`: connections per namespace, message rates and latencies since the last
    /// reading, process CPU and memory.
    pub fn gateway_stats(&self) -> Value {
        let by_namespace: serde_json::Map<String, Value> =
            self.ns_connections.iter().map(|(path, g)| (path.clone(), json!(g.get().max(0)))).collect();
        let mut by_namespace = by_namespace;
        let mut total = self.metrics.connections.get().max(0) as u64;
        let peers = self.peers();
        for peer in &peers {
            for (path, ns) in peer["namespaces"].as_object().into_iter().flatten() {
                let n = ns["connections"].as_u64().unwrap_or(0);
                total += n;
                if let Some(count) = by_namespace.get_mut(path) {
                    *count = json!(count.as_u64().unwrap_or(0) + n);
                }
            }
        }
        let connections = json!({ "total": total, "byNamespace": by_namespace });
        let mut stats = self.perf.sample(&self.metrics, connections);
        stats["cluster"] = json!({ "nodes": peers.len() + 1 });
        stats
    }
}

/// Disconnects sockets whose token expired, at the instant it does (`exp` plus the leeway).
async fn expire_tokens<A: Adapter>(
    namespaces: Arc<[Arc<NamespaceRuntime<A>>]>,
    endpoints: Arc<[Arc<native::Endpoint>]>,
    shared: Arc<Shared>,
) {
    // Also the longest sleep: a far-off (or never) expiry is looked at again once an hour.
    const IDLE: Duration = Duration::from_secs(3600);
    let verifier = &shared.verifier;
    loop {
        let now = clock::now_millis();
        let due_in = match shared.expiry.next() {
            Some(exp) => Duration::from_millis(verifier.expiry_instant_ms(exp).saturating_sub(now)).min(IDLE),
            None => IDLE,
        };
        tokio::select! {
            () = tokio::time::sleep(due_in) => {}
            () = shared.expiry.earlier_scheduled() => continue,
        }
        // Nothing is due before the leeway has passed since the epoch; the queue is then left.
        let Some(cutoff) = verifier.expired_up_to(clock::now_millis()) else { continue };
        for (exp, index, key) in shared.expiry.take_due(cutoff) {
            match key {
                MemberKey::Socket(sid) => {
                    if let Some(ns) = namespaces.get(index) {
                        ns.expire(sid, exp);
                    }
                }
                MemberKey::Conn(id) => {
                    if let Some(ep) = endpoints.get(index) {
                        ep.expire(id, exp);
                    }
                }
            }
        }
    }
}

/// Which sessions have sockets here, for the session front.
impl<A: Adapter> SessionDirectory for Engine<A> {
    fn is_open(&self, sid: socketioxide::socket::Sid) -> bool {
        self.namespaces.first().is_some_and(|ns| ns.io.nsps().iter().any(|op| op.get_socket(sid).is_some()))
    }

    fn upgrading(&self, sid: socketioxide::socket::Sid) {
        self.watch_upgrade(sid);
    }
}

/// The engine's settings, taken from [`crate::config::Config`].
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Per-socket limits.
    pub limits: LimitsConfig,
    /// `metrics_interval` timers.
    pub metrics_interval: Duration,
    /// How often rate-limiter entries of quiet sockets are dropped.
    pub cleanup_interval: Duration,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// The cookie tokens are read from, in namespaces that allow it.
    pub auth_cookie_name: String,
    /// Origins a cookie-authenticated handshake may come from (and a plain WebSocket's origin).
    pub allowed_origins: Vec<String>,
    /// Plain WebSocket endpoints.
    pub native: crate::config::NativeConfig,
    /// How far behind a Socket.IO session may fall (`WS_MAX_BUFFER_BYTES`, `WS_WRITE_TIMEOUT`).
    pub backlog: BacklogLimits,
}

/// The running specs, on both fronts. Cheap to clone.
pub struct Engine<A: Adapter = LocalAdapter> {
    /// Specs served as Socket.IO namespaces.
    namespaces: Arc<[Arc<NamespaceRuntime<A>>]>,
    /// Specs served as plain WebSocket endpoints.
    endpoints: Arc<[Arc<native::Endpoint>]>,
    shared: Arc<Shared>,
    settings: EngineSettings,
}

impl<A: Adapter> Clone for Engine<A> {
    fn clone(&self) -> Self {
        Self {
            namespaces: self.namespaces.clone(),
            endpoints: self.endpoints.clone(),
            shared: self.shared.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<A: Adapter> Engine<A> {
    /// An engine serving `specs` on `io`.
    pub fn new(
        specs: Vec<NamespaceSpec>,
        io: SocketIo<A>,
        verifier: TokenVerifier,
        settings: EngineSettings,
        metrics: Arc<Metrics>,
        sessions: Arc<Sessions>,
    ) -> Self {
        let (socketio, websocket): (Vec<NamespaceSpec>, Vec<NamespaceSpec>) =
            specs.into_iter().partition(|s| s.transport == Transport::SocketIo);
        // Every series a namespace uses is made now, so serving it never creates one.
        let with_metrics = |specs: Vec<NamespaceSpec>| -> Vec<(NamespaceSpec, NamespaceMetrics)> {
            specs
                .into_iter()
                .map(|spec| {
                    let events = spec.events.keys().map(String::as_str).chain([spec.auth.refresh_event.as_str()]);
                    let m = metrics.namespace(&spec.path, spec.transport.name(), events);
                    (spec, m)
                })
                .collect()
        };
        let (socketio, websocket) = (with_metrics(socketio), with_metrics(websocket));
        let shared = Arc::new(Shared {
            verifier,
            limits: settings.limits.clone(),
            expiry: ExpiryQueue::default(),
            perf: perf::PerfSampler::new(&metrics),
            ns_connections: socketio.iter().map(|(s, m)| (s.path.clone(), m.connections.clone())).collect(),
            metrics,
            slow_sweeps: socketio.iter().map(|_| Default::default()).collect(),
            trusted_proxies: settings.trusted_proxies.clone(),
            backlog_limits: settings.backlog,
            auth_cookie_name: settings.auth_cookie_name.clone(),
            allowed_origins: settings.allowed_origins.clone(),
            cluster: OnceLock::new(),
            sessions,
            state_budget: state::StateBudget::new(settings.limits.state_bytes_per_tenant, settings.limits.state_bytes),
            observer: OnceLock::new(),
            client_ids: roster::ClientIds::default(),
        });
        // Indexes are per front: the expiry queue tells the fronts apart by the member's key.
        let namespaces = socketio
            .into_iter()
            .enumerate()
            .map(|(i, (spec, m))| {
                Arc::new(NamespaceRuntime::new(SpecRuntime::new(spec, i, shared.clone(), m), io.clone()))
            })
            .collect();
        let endpoints = websocket
            .into_iter()
            .enumerate()
            .map(|(i, (spec, m))| {
                Arc::new(native::Endpoint::new(SpecRuntime::new(spec, i, shared.clone(), m), settings.native.clone()))
            })
            .collect();
        Self { namespaces, endpoints, shared, settings }
    }

    /// The specs served, Socket.IO namespaces first.
    pub fn specs(&self) -> impl Iterator<Item = &NamespaceSpec> {
        self.namespaces.iter().map(|n| &n.spec).chain(self.endpoints.iter().map(|e| &e.spec))
    }

    /// Who a valid client token names (for endpoints that accept tokens or API keys).
    pub fn verify_token(&self, token: &str) -> Option<crate::auth::Identity> {
        self.shared.verifier.verify(token).ok()
    }

    /// The plain WebSocket endpoint at HTTP path `path`.
    pub fn endpoint(&self, path: &str) -> Option<Arc<native::Endpoint>> {
        self.endpoints.iter().find(|e| e.spec.path == path).cloned()
    }

    /// The HTTP paths of the plain WebSocket endpoints.
    pub fn endpoint_paths(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.spec.path.clone()).collect()
    }

    /// Closes every plain WebSocket connection (shutdown), waiting up to `within`.
    pub async fn close_endpoints(&self, within: Duration) {
        futures_util::future::join_all(self.endpoints.iter().map(|e| e.close_all(within))).await;
    }

    /// An endpoint's figures over the whole cluster: this node's plus its peers'.
    pub fn endpoint_stats(&self, path: &str, scope: native::StatsScope<'_>) -> Option<native::EndpointStats> {
        let ep = self.endpoints.iter().find(|e| e.spec.path == path)?;
        Some(ep.cluster_stats(&self.shared.peers(), scope))
    }

    /// Registers every namespace with socketioxide. Remote adapters return a future per namespace
    /// (their subscriptions) for the caller to await.
    pub fn mount(&self, io: &SocketIo<A>) -> Vec<A::InitRes>
    where
        A: DefinedAdapter,
    {
        self.namespaces.iter().map(|ns| io.ns(ns.spec.path.clone(), ns.connect_handler())).collect()
    }

    /// Checks a batch of published events against every spec; the error names the event.
    pub fn check(&self, events: &[PublishedEvent]) -> Result<(), String> {
        for (i, event) in events.iter().enumerate() {
            let at = format!("events[{i}]");
            let mut routed = false;
            for rt in self.runtimes().filter(|rt| rt.accepts(event)) {
                routed = true;
                rt.check(event, &at)?;
            }
            if !routed {
                return Err(format!("{at}.type `{}` is not routed by any namespace spec", event.event_type()));
            }
        }
        Ok(())
    }

    /// Checks a batch and, when it is valid, delivers every event in order: on this node, or in a
    /// cluster on every node (each to its own sockets).
    pub async fn publish(&self, events: Vec<PublishedEvent>) -> Result<usize, PublishError> {
        self.check(&events)?;
        let count = events.len();
        match self.shared.cluster.get() {
            Some(cluster) => cluster.submit(Outgoing::Events(events)).await?,
            None => {
                for event in &events {
                    self.deliver(event).await;
                }
            }
        }
        self.shared.metrics.events_accepted.inc_by(count as u64);
        Ok(count)
    }

    /// Joins a cluster: from now on publishes and raw emits go through `cluster`, which calls
    /// [`Engine::apply`] on every node.
    pub fn attach_cluster(&self, cluster: Arc<dyn ClusterLink>) {
        if self.shared.cluster.set(cluster).is_err() {
            tracing::warn!("the engine is already attached to a cluster");
        }
    }

    /// Why the cluster is degraded, if this node is in one and it is.
    pub fn cluster_degraded(&self) -> Option<String> {
        self.shared.cluster_degraded()
    }

    /// Applies checked work to this node's sockets (from this node or another).
    pub async fn apply(&self, message: &Outgoing) {
        match message {
            Outgoing::Events(events) => {
                for event in events {
                    self.deliver(event).await;
                }
            }
            Outgoing::Emit(request) => self.emit_local(request).await,
        }
    }

    /// Checks events that arrive from outside the HTTP API (a Redis input every node receives
    /// itself) and delivers them to this node's sockets only.
    pub async fn deliver_checked(&self, events: &[PublishedEvent]) -> Result<(), String> {
        self.check(events)?;
        for event in events {
            self.deliver(event).await;
        }
        Ok(())
    }

    /// Applies one (checked) event on this node: state, then emits to local sockets.
    pub async fn deliver(&self, event: &PublishedEvent) {
        let started = std::time::Instant::now();
        for ns in self.namespaces.iter().filter(|ns| ns.accepts(event)) {
            ns.deliver(event).await;
        }
        for ep in self.endpoints.iter().filter(|ep| ep.accepts(event)) {
            ep.deliver(event);
        }
        self.shared.metrics.publish_delivery.record(started.elapsed());
    }

    /// Checks one event and delivers it, waiting up to `timeout` for every reached socket to
    /// acknowledge it (the client calls the event's callback). Counts over every namespace that
    /// routes the event.
    pub async fn deliver_with_acks(&self, event: PublishedEvent, timeout: Duration) -> Result<AckReport, String> {
        self.check(std::slice::from_ref(&event))?;
        // Every namespace at once: delivery to one must not wait for another's acks.
        // Plain WebSocket endpoints have no acks: they are delivered to and not counted.
        for ep in self.endpoints.iter().filter(|ep| ep.accepts(&event)) {
            ep.deliver(&event);
        }
        let deliveries =
            self.namespaces.iter().filter(|ns| ns.accepts(&event)).map(|ns| ns.deliver_with_acks(&event, timeout));
        let mut report = AckReport::default();
        for one in futures_util::future::join_all(deliveries).await {
            report += one;
        }
        self.shared.metrics.events_accepted.inc();
        Ok(report)
    }

    /// Every spec's runtime, both fronts.
    fn runtimes(&self) -> impl Iterator<Item = &SpecRuntime> {
        self.namespaces.iter().map(|n| &***n).chain(self.endpoints.iter().map(|e| &***e))
    }

    fn namespace(&self, path: &str) -> Option<&Arc<NamespaceRuntime<A>>> {
        self.namespaces.iter().find(|ns| ns.spec.path == path)
    }

    /// Starts the background work: timers, rate-limiter cleanup, the token-expiry sweep, the
    /// plain WebSocket heartbeats and the runtime-lag probe.
    /// The tasks run until aborted.
    pub fn spawn_tasks(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for ns in self.namespaces.iter() {
            for index in 0..ns.spec.timers.len() {
                let ns = ns.clone();
                let period = match ns.spec.timers[index].interval {
                    TimerInterval::Fixed(d) => d,
                    TimerInterval::Metrics => self.settings.metrics_interval,
                };
                tasks.push(tokio::spawn(async move {
                    let mut ticks = tokio::time::interval(period);
                    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                    ticks.tick().await;
                    loop {
                        ticks.tick().await;
                        ns.run_timer(&ns.spec.timers[index]).await;
                    }
                }));
            }
        }
        let namespaces = self.namespaces.clone();
        let endpoints = self.endpoints.clone();
        let cleanup = self.settings.cleanup_interval;
        let shared = self.shared.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(cleanup);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                namespaces.iter().for_each(|ns| ns.cleanup());
                endpoints.iter().for_each(|ep| ep.cleanup());
                shared.sessions.cleanup();
            }
        }));
        tasks.push(tokio::spawn(expire_tokens(self.namespaces.clone(), self.endpoints.clone(), self.shared.clone())));
        for ep in self.endpoints.iter() {
            tasks.push(tokio::spawn(ep.clone().run_heartbeat()));
        }
        tasks.push(tokio::spawn(self.shared.metrics.clone().probe_runtime_lag()));
        tasks
    }
}

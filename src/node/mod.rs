//! A node: the engine core with both fronts over it, as one running gateway serves its specs.
//! It owns which spec each front serves, hands published work to the members of both, and runs
//! the background tasks (timers, expiry, cleanup). The HTTP API, the cluster and the admin view
//! reach the fronts through it.
//!
//! - `api`: what the HTTP API does to sockets besides publishing: raw emits and statistics;
//! - `presence`: who is connected to a room or a tenant, over the cluster, and the join and leave
//!   events specs ask for;
//! - `roster`: this node's connections on both fronts, as the admin view lists them;
//! - `feed`: every published event in one order with ids, and a bounded history of them, which
//!   the backend event stream reads (fed here on a single node, by the cluster's bus otherwise).
//!
//! Generic over the socketioxide adapter, so the same node runs on the in-memory adapter and, in a
//! cluster, on a remote one.

mod api;
mod feed;
mod presence;
mod roster;

pub(crate) use feed::Cursor;
pub(crate) use feed::{EventFeed, FedEvent, Read};

use std::{sync::Arc, time::Duration};

use socketioxide::{
    SocketIo,
    adapter::{Adapter, LocalAdapter},
};
use socketioxide_core::adapter::DefinedAdapter;
use tokio::task::JoinHandle;

use crate::{
    auth::TokenVerifier,
    clock,
    config::LimitsConfig,
    engine::{
        AckReport, ClusterLink, Outgoing, PublishError, PublishedEvent, Shared, member::MemberKey, runtime::SpecRuntime,
    },
    front::{
        socketio::{
            SocketIoShared,
            engineio::{SessionDirectory, Sessions},
            namespace::NamespaceRuntime,
        },
        websocket,
    },
    metrics::{Metrics, NamespaceMetrics},
    net::{backlog::BacklogLimits, client_ip::TrustedProxies},
    spec::{NamespaceSpec, TimerInterval, Transport},
};

/// Disconnects sockets whose token expired, at the instant it does (`exp` plus the leeway).
async fn expire_tokens<A: Adapter>(
    namespaces: Arc<[Arc<NamespaceRuntime<A>>]>,
    endpoints: Arc<[Arc<websocket::Endpoint>]>,
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
impl<A: Adapter> SessionDirectory for Node<A> {
    fn is_open(&self, sid: socketioxide::socket::Sid) -> bool {
        self.namespaces.first().is_some_and(|ns| ns.io.nsps().iter().any(|op| op.get_socket(sid).is_some()))
    }

    fn upgrading(&self, sid: socketioxide::socket::Sid) {
        self.watch_upgrade(sid);
    }
}

/// The engine's settings, taken from [`crate::config::Config`].
#[derive(Debug, Clone)]
pub(crate) struct NodeSettings {
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
    /// The event stream's history and per-consumer bounds.
    pub event_stream: crate::config::EventStreamConfig,
}

impl NodeSettings {
    /// The node's settings, as `config` gives them.
    pub(crate) fn from_config(config: &crate::config::Config) -> Self {
        Self {
            limits: config.limits.clone(),
            metrics_interval: config.metrics_interval,
            cleanup_interval: config.cleanup_interval,
            trusted_proxies: config.trusted_proxies.clone(),
            auth_cookie_name: config.auth_cookie_name.clone(),
            allowed_origins: config.cors_origins.clone(),
            native: config.native.clone(),
            backlog: BacklogLimits {
                bytes: config.transport.max_buffer_bytes,
                stall_ms: u64::try_from(config.http.write_timeout.as_millis()).unwrap_or(u64::MAX),
            },
            event_stream: config.event_stream.clone(),
        }
    }
}

/// The running specs, on both fronts. Cheap to clone.
pub(crate) struct Node<A: Adapter = LocalAdapter> {
    /// Specs served as Socket.IO namespaces.
    namespaces: Arc<[Arc<NamespaceRuntime<A>>]>,
    /// Specs served as plain WebSocket endpoints.
    endpoints: Arc<[Arc<websocket::Endpoint>]>,
    shared: Arc<Shared>,
    /// What the Socket.IO front's namespaces share.
    sio: Arc<SocketIoShared>,
    /// Published events for the backend event stream: shared by every clone, fed once.
    feed: Arc<EventFeed>,
    /// Client events waiting for the cluster's bus, for the event stream.
    streaming: Arc<StreamQueue>,
    settings: NodeSettings,
}

/// Client events (`forward: { to: stream }`) waiting for the bus, at most, in count and bytes
/// (as JSON); beyond either, one is refused (busy) and counted.
const STREAM_QUEUE: usize = 1024;
const STREAM_QUEUE_BYTES: usize = 8 * 1024 * 1024;
/// Most queued client events one bus message carries.
const STREAM_BATCH: usize = 256;

/// Client events on their way to the bus, in the order sockets sent them: one task takes them
/// in batches and submits each batch after the previous one went.
struct StreamQueue {
    sender: tokio::sync::mpsc::Sender<(PublishedEvent, usize)>,
    /// The task's end, until it starts.
    receiver: std::sync::Mutex<Option<tokio::sync::mpsc::Receiver<(PublishedEvent, usize)>>>,
    /// Bytes of the events queued.
    bytes: std::sync::atomic::AtomicUsize,
}

impl<A: Adapter> Clone for Node<A> {
    fn clone(&self) -> Self {
        Self {
            namespaces: self.namespaces.clone(),
            endpoints: self.endpoints.clone(),
            shared: self.shared.clone(),
            sio: self.sio.clone(),
            feed: self.feed.clone(),
            streaming: self.streaming.clone(),
            settings: self.settings.clone(),
        }
    }
}

impl<A: Adapter> Node<A> {
    /// A node serving `specs` on `io`.
    pub(crate) fn new(
        specs: Vec<NamespaceSpec>,
        io: SocketIo<A>,
        verifier: TokenVerifier,
        settings: NodeSettings,
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
        let shared = Arc::new(Shared::new(
            verifier,
            settings.limits.clone(),
            metrics,
            socketio.iter().map(|(s, m)| (s.path.clone(), m.connections.clone())).collect(),
            settings.auth_cookie_name.clone(),
            settings.allowed_origins.clone(),
        ));
        let sio = Arc::new(SocketIoShared {
            sessions,
            slow_sweeps: socketio.iter().map(|_| Default::default()).collect(),
            backlog_limits: settings.backlog,
            trusted_proxies: settings.trusted_proxies.clone(),
        });
        // Indexes are per front: the expiry queue tells the fronts apart by the member's key.
        let namespaces = socketio
            .into_iter()
            .enumerate()
            .map(|(i, (spec, m))| {
                Arc::new(NamespaceRuntime::new(SpecRuntime::new(spec, i, shared.clone(), m), io.clone(), sio.clone()))
            })
            .collect();
        let endpoints = websocket
            .into_iter()
            .enumerate()
            .map(|(i, (spec, m))| {
                Arc::new(websocket::Endpoint::new(
                    SpecRuntime::new(spec, i, shared.clone(), m),
                    settings.native.clone(),
                    settings.trusted_proxies.clone(),
                ))
            })
            .collect();
        let feed = Arc::new(EventFeed::new(&settings.event_stream));
        let (sender, receiver) = tokio::sync::mpsc::channel(STREAM_QUEUE);
        let streaming = Arc::new(StreamQueue {
            sender,
            receiver: std::sync::Mutex::new(Some(receiver)),
            bytes: Default::default(),
        });
        Self { namespaces, endpoints, shared, sio, feed, streaming, settings }
    }

    /// The specs served, Socket.IO namespaces first.
    pub(crate) fn specs(&self) -> impl Iterator<Item = &NamespaceSpec> {
        self.namespaces.iter().map(|n| &n.spec).chain(self.endpoints.iter().map(|e| &e.spec))
    }

    /// Who a valid client token names (for endpoints that accept tokens or API keys).
    pub(crate) fn verify_token(&self, token: &str) -> Option<crate::auth::Identity> {
        self.shared.verifier.verify(token).ok()
    }

    /// The plain WebSocket endpoint at HTTP path `path`.
    pub(crate) fn endpoint(&self, path: &str) -> Option<Arc<websocket::Endpoint>> {
        self.endpoints.iter().find(|e| e.spec.path == path).cloned()
    }

    /// The HTTP paths of the plain WebSocket endpoints.
    pub(crate) fn endpoint_paths(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.spec.path.clone()).collect()
    }

    /// Closes every plain WebSocket connection (shutdown), waiting up to `within`.
    pub(crate) async fn close_endpoints(&self, within: Duration) {
        futures_util::future::join_all(self.endpoints.iter().map(|e| e.close_all(within))).await;
    }

    /// An endpoint's figures over the whole cluster: this node's plus its peers'.
    pub(crate) fn endpoint_stats(
        &self,
        path: &str,
        scope: websocket::StatsScope<'_>,
    ) -> Option<websocket::EndpointStats> {
        let ep = self.endpoints.iter().find(|e| e.spec.path == path)?;
        Some(ep.cluster_stats(&self.shared.peers(), scope))
    }

    /// Registers every namespace with socketioxide. Remote adapters return a future per namespace
    /// (their subscriptions) for the caller to await.
    pub(crate) fn mount(&self, io: &SocketIo<A>) -> Vec<A::InitRes>
    where
        A: DefinedAdapter,
    {
        self.namespaces.iter().map(|ns| io.ns(ns.spec.path.clone(), ns.connect_handler())).collect()
    }

    /// Checks a batch of published events against every spec; the error names the event.
    pub(crate) fn check(&self, events: &[PublishedEvent]) -> Result<(), String> {
        for (i, event) in events.iter().enumerate() {
            let mut routed = false;
            for rt in self.runtimes().filter(|rt| rt.accepts(event)) {
                routed = true;
                rt.check(event, i)?;
            }
            if !routed {
                return Err(format!("events[{i}].type `{}` is not routed by any namespace spec", event.event_type()));
            }
        }
        Ok(())
    }

    /// Where a published event would reach a room every tenant shares: its first platform-wide
    /// room family and namespace, as `` `platform_admins` rooms of /ws ``.
    pub(crate) fn platform_room(&self, event: &PublishedEvent) -> Option<String> {
        self.runtimes()
            .filter(|rt| rt.accepts(event))
            .find_map(|rt| rt.platform_room(event).map(|room| format!("`{room}` rooms of {}", rt.spec.path)))
    }

    /// Checks a batch and, when it is valid, delivers every event in order: on this node, or in a
    /// cluster on every node (each to its own sockets).
    pub(crate) async fn publish(&self, events: Vec<PublishedEvent>) -> Result<usize, PublishError> {
        self.check(&events)?;
        let count = events.len();
        match self.shared.cluster.get() {
            Some(cluster) => cluster.submit(Outgoing::Events(events)).await?,
            None => {
                for event in &events {
                    self.deliver(event).await;
                }
                // In a cluster the bus feeds what it reads off the stream instead, so that every
                // node has the same ids in the same order.
                self.feed.push_local(&events);
            }
        }
        self.shared.metrics.events_accepted.inc_by(count as u64);
        Ok(count)
    }

    /// Joins a cluster: from now on publishes and raw emits go through `cluster`, which calls
    /// [`Node::apply`] on every node.
    pub(crate) fn attach_cluster(&self, cluster: Arc<dyn ClusterLink>) {
        if self.shared.cluster.set(cluster).is_err() {
            tracing::warn!("the engine is already attached to a cluster");
        }
    }

    /// Where `forward` actions hand client events (set once, at assembly).
    pub(crate) fn attach_backends(&self, backends: Arc<dyn crate::engine::forward::Backends>) {
        if self.shared.backends.set(backends).is_err() {
            tracing::warn!("the engine already has its backends");
        }
    }

    /// Feeds a client event (`forward: { to: stream }`) to the backend event stream: here, or
    /// in a cluster through the bus, so every node's stream has it with the same id (queued, in
    /// order, for the task that submits them). False when the queue is full.
    pub(crate) fn stream_client_event(&self, event: PublishedEvent) -> bool {
        use std::sync::atomic::Ordering;
        if self.shared.cluster.get().is_none() {
            self.feed.push_local(std::slice::from_ref(&event));
            return true;
        }
        let size = serde_json::to_vec(&event.to_json()).map_or(0, |v| v.len());
        let queue = &self.streaming;
        let taken = queue
            .bytes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                (b + size <= STREAM_QUEUE_BYTES).then_some(b + size)
            })
            .is_ok();
        if !taken {
            return false;
        }
        if queue.sender.try_send((event, size)).is_err() {
            queue.bytes.fetch_sub(size, Ordering::Relaxed);
            return false;
        }
        true
    }

    /// Submits the queued client events to the bus, in order, a batch at a time.
    async fn stream_to_bus(
        shared: Arc<Shared>,
        queue: Arc<StreamQueue>,
        mut receiver: tokio::sync::mpsc::Receiver<(PublishedEvent, usize)>,
    ) {
        let mut batch = Vec::with_capacity(STREAM_BATCH);
        while receiver.recv_many(&mut batch, STREAM_BATCH).await > 0 {
            let bytes: usize = batch.iter().map(|(_, size)| size).sum();
            queue.bytes.fetch_sub(bytes, std::sync::atomic::Ordering::Relaxed);
            let events: Vec<PublishedEvent> = batch.drain(..).map(|(event, _)| event).collect();
            let Some(cluster) = shared.cluster.get() else { continue };
            if cluster.submit(Outgoing::Stream(events)).await.is_err() {
                tracing::debug!("client events for the event stream were not sent: the node is stopping");
            }
        }
    }

    /// Published events, for the backend event stream.
    pub(crate) fn feed(&self) -> &Arc<EventFeed> {
        &self.feed
    }

    /// The event stream's bounds.
    pub(crate) fn event_stream_settings(&self) -> &crate::config::EventStreamConfig {
        &self.settings.event_stream
    }

    /// Why the cluster is degraded, if this node is in one and it is.
    pub(crate) fn cluster_degraded(&self) -> Option<String> {
        self.shared.cluster_degraded()
    }

    /// Applies checked work to this node's sockets (from this node or another).
    pub(crate) async fn apply(&self, message: &Outgoing) {
        match message {
            Outgoing::Events(events) => {
                for event in events {
                    self.deliver(event).await;
                }
            }
            Outgoing::Emit(request) => self.emit_local(request).await,
            // For the event stream only, which the bus feeds.
            Outgoing::Stream(_) => {}
        }
    }

    /// Checks events that arrive from outside the HTTP API (a Redis input every node receives
    /// itself) and delivers them to this node's sockets only.
    pub(crate) async fn deliver_checked(&self, events: &[PublishedEvent]) -> Result<(), String> {
        self.check(events)?;
        for event in events {
            self.deliver(event).await;
        }
        Ok(())
    }

    /// Forgets every room's history (new epochs from the next event on): this node missed
    /// published events, so its history would recover clients without them.
    pub(crate) fn history_lost(&self) {
        for ep in self.endpoints.iter() {
            ep.history.forget();
        }
        for ns in self.namespaces.iter() {
            ns.history.forget();
        }
    }

    /// The rooms with history each event of a batch is kept in, on every spec: `(event's index,
    /// spec's path, room's internal name, what it keeps)`, which a cluster numbers as the batch
    /// goes on the bus.
    pub(crate) fn history_rooms(
        &self,
        events: &[PublishedEvent],
    ) -> Vec<(usize, String, String, crate::spec::HistorySpec)> {
        let mut rooms = Vec::new();
        for (i, event) in events.iter().enumerate() {
            for rt in self.runtimes() {
                for (room, spec) in rt.history_rooms(event) {
                    rooms.push((i, rt.spec.path.clone(), room, spec));
                }
            }
        }
        rooms
    }

    /// Room families with history that every tenant shares (`scope: global`), as `<path> <name>`:
    /// a bus split by tenant cannot number their events in one order.
    pub(crate) fn global_history_families(&self) -> Vec<String> {
        self.runtimes()
            .flat_map(|rt| {
                rt.spec
                    .rooms
                    .iter()
                    .filter(|f| f.history.is_some() && f.scope == crate::rooms::RoomScope::Global)
                    .map(move |f| format!("{} {}", rt.spec.path, f.name))
            })
            .collect()
    }

    /// Applies one (checked) event on this node: state, then emits to local sockets.
    pub(crate) async fn deliver(&self, event: &PublishedEvent) {
        // One unit of the task's budget an event: a batch yields to other tasks once its
        // writes have spent the budget, and the next events' writes are again made at once by
        // this task (the plain front writes to idle connections itself while budget remains).
        tokio::task::coop::consume_budget().await;
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
    pub(crate) async fn deliver_with_acks(
        &self,
        event: PublishedEvent,
        timeout: Duration,
    ) -> Result<AckReport, String> {
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
    pub(crate) fn spawn_tasks(&self) -> Vec<JoinHandle<()>> {
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
        let sio = self.sio.clone();
        tasks.push(tokio::spawn(async move {
            let mut ticks = tokio::time::interval(cleanup);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                namespaces.iter().for_each(|ns| ns.cleanup());
                endpoints.iter().for_each(|ep| ep.cleanup());
                sio.sessions.cleanup();
            }
        }));
        let streaming = self.streaming.receiver.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(receiver) = streaming {
            tasks.push(tokio::spawn(Self::stream_to_bus(self.shared.clone(), self.streaming.clone(), receiver)));
        }
        tasks.push(tokio::spawn(expire_tokens(self.namespaces.clone(), self.endpoints.clone(), self.shared.clone())));
        for ep in self.endpoints.iter() {
            tasks.push(tokio::spawn(ep.clone().run_heartbeat()));
        }
        tasks.push(tokio::spawn(self.shared.metrics.clone().probe_runtime_lag()));
        tasks.extend(self.spawn_presence_events());
        tasks
    }
}

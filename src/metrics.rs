//! What the gateway counts and times, exposed at `/metrics` in the Prometheus text format
//! (version 0.0.4), every name prefixed `realtime_gateway_`.
//!
//! `prometheus-client` holds the registry, the typed families and the encoding; this module
//! says what is measured and hands out the series. Hot paths (every client event, every
//! delivery) pay atomic adds only:
//! - labelled series are resolved once, when a namespace is mounted ([`Metrics::namespace`]),
//!   and kept as handles ([`NamespaceMetrics`]): no family lookup, lock or allocation per event;
//! - histograms are [`Histogram`], which records without a lock;
//! - label values come from the specs (namespaces, declared events) and from fixed enums
//!   ([`labels`]), never from what a client sends, so the number of series is bounded.

mod histogram;
pub mod labels;

use std::{
    collections::HashMap,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric, prometheus_text},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::Gauge,
        info::Info,
    },
    registry::{Registry, Unit},
};

pub use histogram::Histogram;
pub use labels::{CloseReason, DropReason, Rejection};

pub use labels::CutReason;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The label value of client events a namespace does not declare (and of messages without a
/// readable name), so that clients cannot add series by inventing event names.
pub const OTHER_EVENT: &str = "_other";

/// Bucket bounds, in seconds, for handling one client event: synchronous work, microseconds to
/// a few milliseconds.
const EVENT_BUCKETS: &[f64] = &[0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25];
/// For admitting a connection: a token check (an RS256 signature is the slow case).
const HANDSHAKE_BUCKETS: &[f64] =
    &[0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1];
/// From receipt to the emit on this node: rendering, state updates, fan-out.
const DELIVERY_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// A publish call, from request to answer: parsing, validation, state and fan-out on this node
/// (or the bus append in a cluster).
const PUBLISH_REQUEST_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// How late the runtime's periodic probe ran: near zero when idle, tens of milliseconds and more
/// when the node has more to do than its cores.
const RUNTIME_LAG_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
/// From the append on one node to the apply on another: Redis round trips, and outages.
const BUS_LAG_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Durations of one kind of work for the `/ws` performance stream: count, total and the largest
/// since the last reading (which a histogram cannot say).
#[derive(Debug, Default)]
pub struct Latency {
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Latency {
    /// Records one duration.
    pub fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// `(count, total µs)` so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.count.load(Ordering::Relaxed), self.total_us.load(Ordering::Relaxed))
    }

    /// The largest duration in µs since the previous call, which starts a new period.
    pub fn take_max(&self) -> u64 {
        self.max_us.swap(0, Ordering::Relaxed)
    }
}

/// `{namespace, protocol}`: a spec's path, and how its clients connect (`socketio`,
/// `websocket`): Socket.IO namespace `/ws` and the plain WebSocket endpoint `/ws` are two.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NsLabels {
    namespace: String,
    protocol: &'static str,
}

/// `{namespace, protocol, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NsReasonLabels {
    namespace: String,
    protocol: &'static str,
    reason: &'static str,
}

/// `{namespace, protocol, event}`; `event` is declared by the spec, or [`OTHER_EVENT`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EventLabels {
    namespace: String,
    protocol: &'static str,
    event: String,
}

/// `{reason}`, `{origin}`, `{connection}`, `{version}`: one fixed value.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabel {
    origin: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionLabel {
    connection: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// The labelled families that namespaces take their series from.
#[derive(Debug)]
struct NamespaceFamilies {
    connections: Family<NsLabels, Gauge>,
    opened: Family<NsLabels, Counter>,
    closed: Family<NsReasonLabels, Counter>,
    rejections: Family<NsReasonLabels, Counter>,
    events: HistogramFamily<EventLabels>,
    handshakes: HistogramFamily<NsLabels>,
    deliveries: HistogramFamily<NsLabels>,
}

/// Everything the gateway counts. One per process, behind an `Arc`.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: NamespaceFamilies,
    /// Sockets connected (admitted) right now, all Socket.IO namespaces.
    pub connections: Gauge,
    /// Connections turned away for their token.
    pub auth_refused: Counter,
    /// Client events received.
    pub events_received: Counter,
    /// Client events answered with an error.
    pub events_rejected: Counter,
    /// Client events refused by a rate limit.
    pub rate_limited: Counter,
    /// Events accepted by the publish API.
    pub events_accepted: Counter,
    /// Route emits performed (one per event per namespace that routes it).
    pub published: Counter,
    /// Messages not delivered to a connection, by [`DropReason`].
    dropped: Vec<Counter>,
    /// Bytes queued for Socket.IO slow consumers when they were ended, never written.
    pub abandoned_bytes: Counter,
    /// Connections turned away by a per-IP connection limit.
    pub connections_throttled: Counter,
    /// Client events relayed to rooms.
    pub relayed: Counter,
    /// Time to handle one client event (all namespaces), for the performance stream.
    pub event_handling: Latency,
    /// Time to deliver one published event on this node, for the performance stream.
    pub publish_delivery: Latency,
    /// `POST /api/v1/events` calls, request to answer.
    pub publish_request: Histogram,
    /// How late the runtime's 100 ms probe ran: the node's overload signal.
    pub runtime_lag: Histogram,
    /// Open TCP connections (HTTP, long-polling and WebSocket).
    pub tcp_connections: Gauge,
    /// Plain WebSocket connections (endpoints with `transport: websocket`) now.
    pub native_connections: Gauge,
    /// TCP connections closed at once because their address already holds its maximum.
    pub connections_refused_per_ip: Counter,
    /// Connections cut by the gateway, by [`CutReason`].
    cuts: Vec<Counter>,
    /// Engine.IO sessions refused because their address opened too many recently.
    pub handshakes_throttled: Counter,
    /// Requests naming a session (`sid`) from another address than the one that opened it.
    pub session_address_mismatch: Counter,
    /// Redis and the bus, when this node is in a cluster.
    pub cluster: Option<ClusterMetrics>,
    /// The admin view's.
    pub admin: AdminMetrics,
}

/// The series of one namespace (or plain WebSocket endpoint), resolved when it is mounted.
#[derive(Debug)]
pub struct NamespaceMetrics {
    /// Its connections now.
    pub connections: Gauge,
    opened: Counter,
    /// By [`CloseReason`].
    closed: Vec<Counter>,
    /// By [`Rejection`].
    rejections: Vec<Counter>,
    /// Admission time: throttle check, token verification.
    pub handshake: Histogram,
    /// From receipt of a published event (API call, bus read, Redis input) to its emit here.
    pub publish_delivery: Histogram,
    /// Handling time of each declared event (and the refresh event).
    events: HashMap<String, Histogram>,
    /// Handling time of everything else.
    other_events: Histogram,
}

impl NamespaceMetrics {
    /// Counts a connection admitted.
    pub fn connected(&self) {
        self.opened.inc();
        self.connections.inc();
    }

    /// Counts a connection gone, for `reason`.
    pub fn disconnected(&self, reason: CloseReason) {
        self.closed[reason as usize].inc();
        self.connections.dec();
    }

    /// Counts a client refused, for `reason`.
    pub fn rejected(&self, reason: Rejection) {
        self.rejections[reason as usize].inc();
    }

    /// The handling-time series of client event `name` (`None`: no readable name). One lookup
    /// in a map built at start-up and never written again: no lock.
    pub fn event(&self, name: Option<&str>) -> &Histogram {
        name.and_then(|n| self.events.get(n)).unwrap_or(&self.other_events)
    }
}

/// Redis and the bus, for a cluster member. Clones share their series.
#[derive(Debug, Clone)]
pub struct ClusterMetrics {
    /// 1 while Redis answers and every subscription is in place, else 0.
    pub redis_connected: Gauge,
    reconnects: Family<ConnectionLabel, Counter>,
    /// Time from a bus message's append to its apply here, for this node's own messages
    /// (a Redis round trip) and for other nodes' (also their clocks' skew).
    pub bus_lag_local: Histogram,
    /// (see `bus_lag_local`)
    pub bus_lag_remote: Histogram,
    /// Messages applied here while Redis was away, waiting to be appended for the other nodes.
    pub bus_backlog: Gauge,
    /// Messages dropped from a full backlog: the other nodes never get them.
    pub bus_backlog_dropped: Counter,
    /// Gaps found in other nodes' bus messages, and the messages they skipped (never applied).
    pub bus_gaps: Counter,
    /// (see `bus_gaps`)
    pub bus_missed: Counter,
}

impl ClusterMetrics {
    /// The Redis connections of a node, as the `connection` label names them.
    pub const CONNECTIONS: [&'static str; 4] = ["commands", "bus_reader", "inputs", "adapter"];

    /// The reconnect counter of one of [`Self::CONNECTIONS`].
    pub fn reconnects(&self, connection: &'static str) -> Counter {
        debug_assert!(Self::CONNECTIONS.contains(&connection));
        self.reconnects.get_or_create_owned(&ConnectionLabel { connection })
    }
}

impl Default for Metrics {
    /// A single node's metrics (no cluster series).
    fn default() -> Self {
        Self::new(false)
    }
}

/// Registers a metric under `name` and hands it back.
fn registered<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register(name, help, metric.clone());
    metric
}

fn seconds<M>(registry: &mut Registry, name: &str, help: &str, metric: M) -> M
where
    M: prometheus_client::registry::Metric + Clone,
{
    registry.register_with_unit(name, help, Unit::Seconds, metric.clone());
    metric
}

impl Metrics {
    /// The metrics of a node; `clustered` adds Redis's and the bus's.
    pub fn new(clustered: bool) -> Self {
        let mut registry = Registry::with_prefix("realtime_gateway");
        let r = &mut registry;
        registry_info(r);
        let connections =
            registered(r, "connections", "Sockets connected now, all Socket.IO namespaces.", Gauge::default());
        let auth_refused = registered(r, "auth_refused", "Connections refused for their token.", Counter::default());
        let events_received = registered(r, "client_events", "Client events received.", Counter::default());
        let events_rejected =
            registered(r, "client_events_rejected", "Client events answered with an error.", Counter::default());
        let rate_limited =
            registered(r, "client_events_rate_limited", "Client events refused by a rate limit.", Counter::default());
        let events_accepted =
            registered(r, "published_events", "Events accepted by the publish API.", Counter::default());
        let published = registered(
            r,
            "route_emits",
            "Emits of published events and raw emits, one per event per namespace.",
            Counter::default(),
        );
        let dropped_family = registered(
            r,
            "deliveries_dropped",
            "Messages not delivered to a connection, by reason: its send queue was full, it was closing, or the message could not be serialized.",
            Family::<ReasonLabel, Counter>::default(),
        );
        let dropped = DropReason::ALL
            .iter()
            .map(|d| dropped_family.get_or_create_owned(&ReasonLabel { reason: d.as_str() }))
            .collect();
        let abandoned_bytes = registered(
            r,
            "slow_consumer_abandoned_bytes",
            "Bytes queued for Socket.IO clients ended as slow consumers, never written to them.",
            Counter::default(),
        );
        let connections_throttled = registered(
            r,
            "connections_throttled",
            "Connections turned away by a per-IP connection limit.",
            Counter::default(),
        );
        let relayed = registered(r, "relayed_events", "Client events relayed to rooms.", Counter::default());
        let native_connections =
            registered(r, "native_connections", "Plain WebSocket connections now.", Gauge::default());
        let publish_request = seconds(
            r,
            "publish_request_duration",
            "POST /api/v1/events calls, from request to answer (validation, state and fan-out on this node; in a cluster, the bus append).",
            Histogram::new(PUBLISH_REQUEST_BUCKETS),
        );
        let runtime_lag = seconds(
            r,
            "runtime_lag",
            "How late a task scheduled every 100 ms ran: near zero unless the node has more work than its cores.",
            Histogram::new(RUNTIME_LAG_BUCKETS),
        );
        let tcp_connections = registered(
            r,
            "tcp_connections",
            "Open TCP connections: HTTP, long-polling and WebSocket.",
            Gauge::default(),
        );
        let connections_refused_per_ip = registered(
            r,
            "connections_refused_per_ip",
            "TCP connections closed at once because their address holds MAX_CONNECTIONS_PER_IP.",
            Counter::default(),
        );
        let cut_family = registered(
            r,
            "connections_cut",
            "Connections cut by the gateway, by reason.",
            Family::<ReasonLabel, Counter>::default(),
        );
        let cuts = [CutReason::WriteTimeout, CutReason::SlowConsumer, CutReason::Refused, CutReason::Admin]
            .iter()
            .map(|c| cut_family.get_or_create_owned(&ReasonLabel { reason: c.as_str() }))
            .collect();
        let handshakes_throttled = registered(
            r,
            "handshakes_throttled",
            "Engine.IO sessions refused by WS_HANDSHAKE_RATE_LIMIT.",
            Counter::default(),
        );
        let session_address_mismatch = registered(
            r,
            "session_address_mismatch",
            "Requests naming a session from another address than the one that opened it.",
            Counter::default(),
        );
        let families = NamespaceFamilies {
            connections: registered(
                r,
                "namespace_connections",
                "Connections now, by namespace (Socket.IO) or endpoint (plain WebSocket).",
                Family::default(),
            ),
            opened: registered(r, "connections_opened", "Connections admitted, by namespace.", Family::default()),
            closed: registered(
                r,
                "connections_closed",
                "Admitted connections that left their namespace, by namespace and reason.",
                Family::default(),
            ),
            rejections: registered(
                r,
                "rejections",
                "Clients refused, at connect or on an event, by namespace and reason (the error type they were sent, or throttle).",
                Family::default(),
            ),
            events: seconds(
                r,
                "client_event_duration",
                "Time to handle one client event, from receipt to answer, by namespace and event.",
                Family::new_with_constructor(|| Histogram::new(EVENT_BUCKETS)),
            ),
            handshakes: seconds(
                r,
                "handshake_duration",
                "Time to admit a connection to a namespace: limits and token verification.",
                Family::new_with_constructor(|| Histogram::new(HANDSHAKE_BUCKETS)),
            ),
            deliveries: seconds(
                r,
                "publish_delivery_duration",
                "Time from receiving a published event (API call, bus read or Redis input) to its emit on this node, by namespace.",
                Family::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS)),
            ),
        };
        r.register_collector(Box::new(LogLinesDropped));
        let cluster = clustered.then(|| cluster_metrics(r));
        let admin = admin_metrics(r);
        Self {
            registry,
            families,
            connections,
            auth_refused,
            events_received,
            events_rejected,
            rate_limited,
            events_accepted,
            published,
            dropped,
            abandoned_bytes,
            connections_throttled,
            relayed,
            event_handling: Latency::default(),
            publish_delivery: Latency::default(),
            publish_request,
            runtime_lag,
            tcp_connections,
            native_connections,
            connections_refused_per_ip,
            cuts,
            handshakes_throttled,
            session_address_mismatch,
            cluster,
            admin,
        }
    }

    /// Probes the runtime every 100 ms and records how late each probe ran, until aborted. A
    /// node whose cores cannot keep up (too many deliveries to write) shows it here first.
    pub async fn probe_runtime_lag(self: std::sync::Arc<Self>) {
        const PERIOD: Duration = Duration::from_millis(100);
        let mut due = tokio::time::Instant::now() + PERIOD;
        loop {
            tokio::time::sleep_until(due).await;
            let now = tokio::time::Instant::now();
            self.runtime_lag.observe(now.saturating_duration_since(due));
            due = now + PERIOD;
        }
    }

    /// The series of the namespace (or endpoint) at `path`, served over `protocol`
    /// (`socketio`, `websocket`), whose client events are `events`. Call once per namespace, at
    /// start-up: every series it will use is created here, at zero.
    pub fn namespace<'a>(
        &self,
        path: &str,
        protocol: &'static str,
        events: impl IntoIterator<Item = &'a str>,
    ) -> NamespaceMetrics {
        let f = &self.families;
        let ns = NsLabels { namespace: path.to_string(), protocol };
        let with_reason = |reason: &'static str| NsReasonLabels { namespace: path.to_string(), protocol, reason };
        let event = |name: &str| {
            f.events.get_or_create_owned(&EventLabels {
                namespace: path.to_string(),
                protocol,
                event: name.to_string(),
            })
        };
        NamespaceMetrics {
            connections: f.connections.get_or_create_owned(&ns),
            opened: f.opened.get_or_create_owned(&ns),
            closed: CloseReason::ALL.iter().map(|c| f.closed.get_or_create_owned(&with_reason(c.as_str()))).collect(),
            rejections: Rejection::ALL
                .iter()
                .map(|r| f.rejections.get_or_create_owned(&with_reason(r.as_str())))
                .collect(),
            handshake: f.handshakes.get_or_create_owned(&ns),
            publish_delivery: f.deliveries.get_or_create_owned(&ns),
            events: events.into_iter().map(|name| (name.to_string(), event(name))).collect(),
            other_events: event(OTHER_EVENT),
        }
    }

    /// Counts a connection cut for `reason`.
    pub fn connections_cut(&self, reason: CutReason) {
        let index = match reason {
            CutReason::WriteTimeout => 0,
            CutReason::SlowConsumer => 1,
            CutReason::Refused => 2,
            CutReason::Admin => 3,
        };
        self.cuts[index].inc();
    }

    /// Counts `n` messages not delivered, for `reason`.
    pub fn dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason as usize].inc_by(n);
    }

    /// Messages not delivered so far, all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().map(Counter::get).sum()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        if let Err(e) = prometheus_text::encode(&mut out, &self.registry) {
            // Writing to a String cannot fail; a metric's encoder could, and a partial page
            // would be misread, so nothing is better.
            tracing::error!(error = %e, "could not encode the metrics");
            out.clear();
        }
        out
    }
}

/// `build_info{version}` 1: which release each node runs, for dashboards' per-node views.
fn registry_info(registry: &mut Registry) {
    registry.register(
        "build",
        "The gateway's version.",
        Info::new(VersionLabel { version: env!("CARGO_PKG_VERSION") }),
    );
}

/// `log_lines_dropped_total{reason}`, read from [`crate::telemetry`] at each scrape: the log
/// writer counts on its own, from before the metrics exist.
#[derive(Debug)]
struct LogLinesDropped;

impl Collector for LogLinesDropped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let dropped = crate::telemetry::dropped_lines();
        let mut family = encoder.encode_descriptor(
            "log_lines_dropped",
            "Log lines not written, by reason: their place in the code logged more than its rate (rate_limited), or the queue to stdout was full (queue_full).",
            None,
            MetricType::Counter,
        )?;
        for (reason, count) in [("rate_limited", dropped.rate_limited), ("queue_full", dropped.queue_full)] {
            ConstCounter::new(count).encode(family.encode_family(&ReasonLabel { reason })?)?;
        }
        Ok(())
    }
}

fn cluster_metrics(r: &mut Registry) -> ClusterMetrics {
    let reconnects = registered(
        r,
        "redis_reconnects",
        "Reconnections to Redis, by connection (commands, bus_reader, inputs, adapter).",
        Family::<ConnectionLabel, Counter>::default(),
    );
    for connection in ClusterMetrics::CONNECTIONS {
        reconnects.get_or_create_owned(&ConnectionLabel { connection });
    }
    let lag = seconds(
        r,
        "bus_lag",
        "Time from a bus message's append on one node to its apply on this one, by origin (local: this node's own, remote: another node's).",
        HistogramFamily::<OriginLabel>::new_with_constructor(|| Histogram::new(BUS_LAG_BUCKETS)),
    );
    ClusterMetrics {
        redis_connected: registered(
            r,
            "redis_connected",
            "1 while Redis answers and every subscription is in place, 0 while the node serves only its own sockets.",
            Gauge::default(),
        ),
        reconnects,
        bus_lag_local: lag.get_or_create_owned(&OriginLabel { origin: "local" }),
        bus_lag_remote: lag.get_or_create_owned(&OriginLabel { origin: "remote" }),
        bus_backlog: registered(
            r,
            "bus_backlog",
            "Bus messages applied here while Redis was away, waiting to be sent to the other nodes.",
            Gauge::default(),
        ),
        bus_backlog_dropped: registered(
            r,
            "bus_backlog_dropped",
            "Bus messages dropped from a full backlog: the other nodes never receive them.",
            Counter::default(),
        ),
        bus_gaps: registered(
            r,
            "bus_gaps",
            "Gaps found in another node's bus messages (trimmed from the stream before this node read them, lost with Redis's data, or dropped from that node's full backlog).",
            Counter::default(),
        ),
        bus_missed: registered(
            r,
            "bus_missed",
            "Bus messages of other nodes this node never applied, as the gaps in their sequence numbers count them.",
            Counter::default(),
        ),
    }
}

/// The admin view's series (`crate::admin`). Clones share their series.
#[derive(Debug, Clone)]
pub struct AdminMetrics {
    /// Changes dropped because the feed's queue was full (every admin socket then gets a list).
    pub dropped_queue_full: Counter,
    /// Changes an admin socket was not sent: over its byte budget, or behind until a fresh list.
    pub dropped_budget: Counter,
    /// Changes or lists an admin socket's full send queue refused.
    pub dropped_socket_full: Counter,
    /// Admin logins, by [`LoginOutcome`] (its index).
    logins: Vec<Counter>,
    /// bcrypt checks run.
    pub password_checks: Counter,
}

/// How an admin login ended, as `admin_logins_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    /// In with a login session: no password check.
    Session,
    /// In with the password.
    Password,
    /// Wrong or missing credentials.
    Invalid,
    /// Over its address's attempts.
    Throttled,
    /// Refused at once: the node's attempts, its queue of checks or its admin sockets were full.
    Busy,
}

impl LoginOutcome {
    const ALL: [Self; 5] = [Self::Session, Self::Password, Self::Invalid, Self::Throttled, Self::Busy];

    fn as_str(self) -> &'static str {
        match self {
            Self::Session => "session",
            Self::Password => "password",
            Self::Invalid => "invalid",
            Self::Throttled => "throttled",
            Self::Busy => "busy",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

impl AdminMetrics {
    /// Counts a login that ended as `outcome`.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins[outcome as usize].inc();
    }
}

fn admin_metrics(r: &mut Registry) -> AdminMetrics {
    let dropped = registered(
        r,
        "admin_events_dropped",
        "Admin view events not sent, by reason: the feed's queue was full, an admin socket was over its byte budget (or behind, waiting for a fresh list), or its send queue was full.",
        Family::<ReasonLabel, Counter>::default(),
    );
    let logins = registered(
        r,
        "admin_logins",
        "Admin view logins, by outcome: session, password, invalid, throttled (its address's attempts), busy (refused at once: the node's attempts or queue of password checks were full).",
        Family::<OutcomeLabel, Counter>::default(),
    );
    let logins =
        LoginOutcome::ALL.iter().map(|o| logins.get_or_create_owned(&OutcomeLabel { outcome: o.as_str() })).collect();
    AdminMetrics {
        dropped_queue_full: dropped.get_or_create_owned(&ReasonLabel { reason: "queue_full" }),
        dropped_budget: dropped.get_or_create_owned(&ReasonLabel { reason: "budget" }),
        dropped_socket_full: dropped.get_or_create_owned(&ReasonLabel { reason: "socket_full" }),
        logins,
        password_checks: registered(
            r,
            "admin_password_checks",
            "Admin view password (bcrypt) checks run.",
            Counter::default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_login_outcomes_sit_at_their_own_index() {
        assert!(LoginOutcome::ALL.iter().enumerate().all(|(i, o)| *o as usize == i));
        let metrics = Metrics::default();
        metrics.admin.login(LoginOutcome::Busy);
        assert!(metrics.render().contains("realtime_gateway_admin_logins_total{outcome=\"busy\"} 1"));
    }

    #[test]
    fn existing_names_are_kept_and_namespace_series_exist_from_the_start() {
        let metrics = Metrics::default();
        let ns = metrics.namespace("/workflow", "socketio", ["subscribe"]);
        ns.connected();
        ns.rejected(Rejection::Validation);
        ns.event(Some("subscribe")).observe(Duration::from_micros(70));
        ns.event(Some("made-up")).observe(Duration::from_micros(70));
        metrics.dropped(DropReason::QueueFull, 2);
        let text = metrics.render();
        for line in [
            "realtime_gateway_connections 0",
            "realtime_gateway_auth_refused_total 0",
            "realtime_gateway_deliveries_dropped_total{reason=\"queue_full\"} 2",
            "realtime_gateway_connections_cut_total{reason=\"slow_consumer\"} 0",
            "realtime_gateway_namespace_connections{namespace=\"/workflow\",protocol=\"socketio\"} 1",
            "realtime_gateway_rejections_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"validation\"} 1",
            "realtime_gateway_rejections_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"throttle\"} 0",
            "realtime_gateway_connections_closed_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"client\"} 0",
            "realtime_gateway_client_event_duration_seconds_count{namespace=\"/workflow\",protocol=\"socketio\",event=\"subscribe\"} 1",
            "realtime_gateway_client_event_duration_seconds_bucket{namespace=\"/workflow\",protocol=\"socketio\",event=\"_other\",le=\"0.0001\"} 1",
            "realtime_gateway_build_info{version=\"0.1.0\"} 1",
            "realtime_gateway_log_lines_dropped_total{reason=\"rate_limited\"} 0",
            "realtime_gateway_log_lines_dropped_total{reason=\"queue_full\"} 0",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
        assert!(!text.contains("made-up"), "a client's event name never becomes a label");
        assert!(!text.contains("redis_connected"), "no cluster series on a single node");
        assert!(Metrics::new(true).render().contains("realtime_gateway_redis_connected 0"));
    }
}

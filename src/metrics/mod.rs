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
//!
//! Here: [`Metrics`], the node's registry and its node-wide series (grouped in `node`); beside
//! it the series of each namespace (`namespace`), of a cluster member (`cluster`), of the
//! admin view (`admin`), of idempotent publishing (`idempotency`), of room history (`history`),
//! of the backend event stream (`events`), of outbound bridges and their sinks (`bridges`), of
//! presence (`presence`) and of client events forwarded to backends (`forward`), the label
//! values and sets (`labels`), and the two recorders
//! ([`Histogram`], [`Latency`]).

mod admin;
mod bridges;
mod cluster;
mod events;
mod forward;
mod histogram;
mod history;
mod idempotency;
pub(crate) mod labels;
mod latency;
mod namespace;
mod node;
mod presence;
#[cfg(test)]
mod tests;

use std::time::Duration;

use prometheus_client::{
    collector::Collector,
    encoding::{DescriptorEncoder, EncodeMetric, prometheus_text},
    metrics::{
        MetricType,
        counter::{ConstCounter, Counter},
        family::Family,
        gauge::Gauge,
        info::Info,
    },
    registry::{Registry, Unit},
};

pub(crate) use admin::AdminMetrics;
pub(crate) use bridges::{BridgeMetrics, SinkDrop, SinkKind};
pub(crate) use cluster::ClusterMetrics;
pub(crate) use events::EventStreamMetrics;
pub(crate) use forward::{ForwardMetrics, ForwardOutcome};
pub(crate) use histogram::Histogram;
pub(crate) use history::HistoryMetrics;
pub(crate) use idempotency::IdempotencyMetrics;
pub(crate) use labels::{CloseReason, CutReason, DropReason, LoginOutcome, Rejection, StreamCut};
pub(crate) use latency::Latency;
pub(crate) use namespace::NamespaceMetrics;
pub(crate) use presence::PresenceMetrics;

use labels::{ReasonLabel, VersionLabel};
use namespace::NamespaceFamilies;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub(crate) const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The label value of client events a namespace does not declare (and of messages without a
/// readable name), so that clients cannot add series by inventing event names.
pub(crate) const OTHER_EVENT: &str = "_other";

/// A family of histograms, each made with its buckets.
type HistogramFamily<S> = Family<S, Histogram, fn() -> Histogram>;

/// Everything the gateway counts. One per process, behind an `Arc`.
#[derive(Debug)]
pub(crate) struct Metrics {
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
    /// Idempotent publishing's.
    pub idempotency: IdempotencyMetrics,
    /// Room history's.
    pub history: HistoryMetrics,
    /// The backend event stream's.
    pub event_stream: EventStreamMetrics,
    /// Outbound bridges' and their sinks'.
    pub bridges: BridgeMetrics,
    /// Presence's.
    pub presence: PresenceMetrics,
    /// Forwarded client events'.
    pub forward: ForwardMetrics,
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
    /// The metrics of a node; `clustered` adds Redis's and the bus's. Series are registered in
    /// the order `/metrics` lists them.
    pub(crate) fn new(clustered: bool) -> Self {
        let mut registry = Registry::with_prefix("realtime_gateway");
        let r = &mut registry;
        registry_info(r);
        let traffic = node::Traffic::register(r);
        let timings = node::Timings::register(r);
        let protection = node::Protection::register(r);
        let families = NamespaceFamilies::register(r);
        r.register_collector(Box::new(LogLinesDropped));
        let cluster = clustered.then(|| ClusterMetrics::register(r));
        let admin = AdminMetrics::register(r);
        let idempotency = IdempotencyMetrics::register(r);
        let history = HistoryMetrics::register(r);
        let event_stream = EventStreamMetrics::register(r);
        let bridges = BridgeMetrics::register(r);
        let presence = PresenceMetrics::register(r);
        let forward = ForwardMetrics::register(r);
        Self {
            registry,
            families,
            connections: traffic.connections,
            auth_refused: traffic.auth_refused,
            events_received: traffic.events_received,
            events_rejected: traffic.events_rejected,
            rate_limited: traffic.rate_limited,
            events_accepted: traffic.events_accepted,
            published: traffic.published,
            dropped: traffic.dropped,
            abandoned_bytes: traffic.abandoned_bytes,
            connections_throttled: traffic.connections_throttled,
            relayed: traffic.relayed,
            event_handling: Latency::default(),
            publish_delivery: Latency::default(),
            publish_request: timings.publish_request,
            runtime_lag: timings.runtime_lag,
            tcp_connections: protection.tcp_connections,
            native_connections: traffic.native_connections,
            connections_refused_per_ip: protection.connections_refused_per_ip,
            cuts: protection.cuts,
            handshakes_throttled: protection.handshakes_throttled,
            session_address_mismatch: protection.session_address_mismatch,
            cluster,
            admin,
            idempotency,
            history,
            event_stream,
            bridges,
            presence,
            forward,
        }
    }

    /// Probes the runtime every 100 ms and records how late each probe ran, until aborted. A
    /// node whose cores cannot keep up (too many deliveries to write) shows it here first.
    pub(crate) async fn probe_runtime_lag(self: std::sync::Arc<Self>) {
        const PERIOD: Duration = Duration::from_millis(100);
        let mut due = tokio::time::Instant::now() + PERIOD;
        loop {
            tokio::time::sleep_until(due).await;
            let now = tokio::time::Instant::now();
            self.runtime_lag.observe(now.saturating_duration_since(due));
            due = now + PERIOD;
        }
    }

    /// Counts a connection cut for `reason`.
    pub(crate) fn connections_cut(&self, reason: CutReason) {
        self.cuts[reason as usize].inc();
    }

    /// Counts `n` messages not delivered, for `reason`.
    pub(crate) fn dropped(&self, reason: DropReason, n: u64) {
        self.dropped[reason as usize].inc_by(n);
    }

    /// The Prometheus text exposition.
    pub(crate) fn render(&self) -> String {
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

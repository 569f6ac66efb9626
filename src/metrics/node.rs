//! The node-wide series that are not per namespace, in three groups, registered in this order
//! (which is the order `/metrics` lists them in): [`Traffic`] (connections, client events,
//! publishes, deliveries), [`Timings`] (publish calls, the runtime's lag) and [`Protection`]
//! (what the listener and the transports turned away or cut). `Metrics::new` moves their
//! series into its own fields.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{CutReason, DropReason, Histogram, labels::ReasonLabel, registered, seconds};

/// A publish call, from request to answer: parsing, validation, state and fan-out on this node
/// (or the bus append in a cluster).
const PUBLISH_REQUEST_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// How late the runtime's periodic probe ran: near zero when idle, tens of milliseconds and more
/// when the node has more to do than its cores.
const RUNTIME_LAG_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

/// Connections, client events, publishes and deliveries (see the fields of `Metrics`).
pub(super) struct Traffic {
    pub(super) connections: Gauge,
    pub(super) auth_refused: Counter,
    pub(super) events_received: Counter,
    pub(super) events_rejected: Counter,
    pub(super) rate_limited: Counter,
    pub(super) events_accepted: Counter,
    pub(super) published: Counter,
    /// By [`DropReason`] (its index).
    pub(super) dropped: Vec<Counter>,
    pub(super) abandoned_bytes: Counter,
    pub(super) connections_throttled: Counter,
    pub(super) relayed: Counter,
    pub(super) native_connections: Gauge,
}

impl Traffic {
    pub(super) fn register(r: &mut Registry) -> Self {
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
        Self {
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
            native_connections,
        }
    }
}

/// How long publish calls take, and how late the runtime runs.
pub(super) struct Timings {
    pub(super) publish_request: Histogram,
    pub(super) runtime_lag: Histogram,
}

impl Timings {
    pub(super) fn register(r: &mut Registry) -> Self {
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
        Self { publish_request, runtime_lag }
    }
}

/// What the listener and the transports turned away or cut.
pub(super) struct Protection {
    pub(super) tcp_connections: Gauge,
    pub(super) connections_refused_per_ip: Counter,
    /// By [`CutReason`] (its index).
    pub(super) cuts: Vec<Counter>,
    pub(super) handshakes_throttled: Counter,
    pub(super) session_address_mismatch: Counter,
}

impl Protection {
    pub(super) fn register(r: &mut Registry) -> Self {
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
        let cuts = CutReason::ALL
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
        Self { tcp_connections, connections_refused_per_ip, cuts, handshakes_throttled, session_address_mismatch }
    }
}

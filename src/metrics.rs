//! Process-wide counters, exposed at `/metrics` in the Prometheus text format.
//!
//! A handful of atomics rendered by hand: the format is a few lines per metric, and the counters
//! sit on hot paths (every event, every delivery), where an atomic add is all we want to pay.

use std::{
    fmt::Write,
    sync::atomic::{AtomicI64, AtomicU64, Ordering},
};

use crate::connection::CutReason;

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current count.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    /// Adds one.
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes one.
    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Durations of one kind of work: count, total and the largest since the last reading.
#[derive(Debug, Default)]
pub struct Latency {
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Latency {
    /// Records one duration.
    pub fn record(&self, took: std::time::Duration) {
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

/// Everything the gateway counts.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Sockets connected (admitted) right now, all namespaces.
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
    /// Messages not delivered to a socket because its send buffer was full or it was closing.
    pub deliveries_dropped: Counter,
    /// Connections turned away by a per-IP connection limit.
    pub connections_throttled: Counter,
    /// Client events relayed to rooms.
    pub relayed: Counter,
    /// Time to handle one client event, from receipt to answer.
    pub event_handling: Latency,
    /// Time to deliver one published event on this node, from acceptance to the last emit.
    pub publish_delivery: Latency,
    /// Open TCP connections (HTTP, long-polling and WebSocket).
    pub tcp_connections: Gauge,
    /// Plain WebSocket connections (endpoints with `transport: websocket`) now.
    pub native_connections: Gauge,
    /// TCP connections closed at once because their address already holds its maximum.
    pub connections_refused_per_ip: Counter,
    /// Connections cut by the gateway, by [`CutReason`].
    pub cut_write_timeout: Counter,
    /// (see `cut_write_timeout`)
    pub cut_slow_consumer: Counter,

    /// (see `cut_write_timeout`)
    pub cut_refused: Counter,
    /// (see `cut_write_timeout`)
    pub cut_admin: Counter,
    /// Engine.IO sessions refused because their address opened too many recently.
    pub handshakes_throttled: Counter,
    /// Requests naming a session (`sid`) from another address than the one that opened it.
    pub session_address_mismatch: Counter,
}

impl Metrics {
    /// Counts a connection cut for `reason`.
    pub fn connections_cut(&self, reason: CutReason) {
        match reason {
            CutReason::WriteTimeout => self.cut_write_timeout.inc(),
            CutReason::SlowConsumer => self.cut_slow_consumer.inc(),
            CutReason::Refused => self.cut_refused.inc(),
            CutReason::Admin => self.cut_admin.inc(),
        }
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP realtime_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE realtime_gateway_{name} {kind}");
            let _ = writeln!(out, "realtime_gateway_{name} {value}");
        };
        metric("connections", "gauge", "Sockets connected now, all namespaces.", self.connections.get().to_string());
        metric(
            "auth_refused_total",
            "counter",
            "Connections refused for their token.",
            self.auth_refused.get().to_string(),
        );
        metric("client_events_total", "counter", "Client events received.", self.events_received.get().to_string());
        metric(
            "client_events_rejected_total",
            "counter",
            "Client events answered with an error.",
            self.events_rejected.get().to_string(),
        );
        metric(
            "client_events_rate_limited_total",
            "counter",
            "Client events refused by a rate limit.",
            self.rate_limited.get().to_string(),
        );
        metric(
            "published_events_total",
            "counter",
            "Events accepted by the publish API.",
            self.events_accepted.get().to_string(),
        );
        metric(
            "route_emits_total",
            "counter",
            "Emits of published events, one per event per namespace.",
            self.published.get().to_string(),
        );
        metric(
            "deliveries_dropped_total",
            "counter",
            "Messages dropped because a socket's send buffer was full or it was closing.",
            self.deliveries_dropped.get().to_string(),
        );
        metric(
            "connections_throttled_total",
            "counter",
            "Connections turned away by a per-IP connection limit.",
            self.connections_throttled.get().to_string(),
        );
        metric("relayed_events_total", "counter", "Client events relayed to rooms.", self.relayed.get().to_string());
        metric(
            "native_connections",
            "gauge",
            "Plain WebSocket connections now.",
            self.native_connections.get().to_string(),
        );
        metric(
            "tcp_connections",
            "gauge",
            "Open TCP connections: HTTP, long-polling and WebSocket.",
            self.tcp_connections.get().to_string(),
        );
        metric(
            "connections_refused_per_ip_total",
            "counter",
            "TCP connections closed at once because their address holds MAX_CONNECTIONS_PER_IP.",
            self.connections_refused_per_ip.get().to_string(),
        );
        let _ =
            writeln!(out, "# HELP realtime_gateway_connections_cut_total Connections cut by the gateway, by reason.");
        let _ = writeln!(out, "# TYPE realtime_gateway_connections_cut_total counter");
        for (reason, counter) in [
            (CutReason::WriteTimeout, &self.cut_write_timeout),
            (CutReason::SlowConsumer, &self.cut_slow_consumer),
            (CutReason::Refused, &self.cut_refused),
            (CutReason::Admin, &self.cut_admin),
        ] {
            let _ = writeln!(
                out,
                "realtime_gateway_connections_cut_total{{reason=\"{}\"}} {}",
                reason.as_str(),
                counter.get()
            );
        }
        let mut metric = |name: &str, kind: &str, help: &str, value: String| {
            let _ = writeln!(out, "# HELP realtime_gateway_{name} {help}");
            let _ = writeln!(out, "# TYPE realtime_gateway_{name} {kind}");
            let _ = writeln!(out, "realtime_gateway_{name} {value}");
        };
        metric(
            "handshakes_throttled_total",
            "counter",
            "Engine.IO sessions refused by WS_HANDSHAKE_RATE_LIMIT.",
            self.handshakes_throttled.get().to_string(),
        );
        metric(
            "session_address_mismatch_total",
            "counter",
            "Requests naming a session from another address than the one that opened it.",
            self.session_address_mismatch.get().to_string(),
        );
        out
    }
}

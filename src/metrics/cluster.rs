//! The series of a cluster member: its Redis connections, and the bus between nodes (lag,
//! backlog, gaps). A single node has none of them.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{
    Histogram, HistogramFamily,
    labels::{ConnectionLabel, OriginLabel},
    registered, seconds,
};

/// From the append on one node to the apply on another: Redis round trips, and outages.
const BUS_LAG_BUCKETS: &[f64] =
    &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

/// Redis and the bus, for a cluster member. Clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct ClusterMetrics {
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
    pub(crate) const CONNECTIONS: [&'static str; 4] = ["commands", "bus_reader", "inputs", "adapter"];

    /// The reconnect counter of one of [`Self::CONNECTIONS`].
    pub(crate) fn reconnects(&self, connection: &'static str) -> Counter {
        debug_assert!(Self::CONNECTIONS.contains(&connection));
        self.reconnects.get_or_create_owned(&ConnectionLabel { connection })
    }

    /// Registers a cluster member's series.
    pub(super) fn register(r: &mut Registry) -> Self {
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
}

//! Outbound bridges' series (`bridge`, `sink`): connections made and lost, messages each way,
//! and what the sinks delivered or dropped, by reason. Totals over all bridges: a bridge's own
//! counts are in `GET /api/v1/bridges`, so bridge names never become label values here.

use prometheus_client::{
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::{labels::ReasonLabel, registered};

/// Why a sink dropped an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkDrop {
    /// Its queue was full (count or bytes).
    QueueFull,
    /// Every delivery attempt failed.
    Failed,
    /// The strategy names a sink this release does not have (database, kafka).
    Unavailable,
}

impl SinkDrop {
    const ALL: [SinkDrop; 3] = [SinkDrop::QueueFull, SinkDrop::Failed, SinkDrop::Unavailable];

    fn as_str(self) -> &'static str {
        match self {
            SinkDrop::QueueFull => "queue_full",
            SinkDrop::Failed => "failed",
            SinkDrop::Unavailable => "unavailable",
        }
    }
}

/// The bridges' series. Clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct BridgeMetrics {
    /// Connections established (first ones and reconnections).
    pub connects: Counter,
    /// Connections lost or failed to establish.
    pub connect_failures: Counter,
    /// Messages sent to peers.
    pub messages_out: Counter,
    /// Messages received from peers (subscribed events only).
    pub messages_in: Counter,
    /// Messages a sink delivered.
    pub sink_delivered: Counter,
    /// Messages sinks dropped, by [`SinkDrop`] (its index).
    sink_dropped: Vec<Counter>,
}

impl BridgeMetrics {
    /// Counts a message a sink dropped for `reason`.
    pub(crate) fn sink_drop(&self, reason: SinkDrop) {
        self.sink_dropped[reason as usize].inc();
    }

    /// How many messages sinks dropped for `reason`.
    #[cfg(test)]
    pub(crate) fn sink_dropped(&self, reason: SinkDrop) -> u64 {
        self.sink_dropped[reason as usize].get()
    }

    /// Registers the series, every reason at zero.
    pub(super) fn register(r: &mut Registry) -> Self {
        let connects = registered(r, "bridge_connects", "Outbound bridge connections established.", Counter::default());
        let connect_failures = registered(
            r,
            "bridge_connect_failures",
            "Outbound bridge connections that failed to establish or were lost.",
            Counter::default(),
        );
        let messages_out = registered(
            r,
            "bridge_messages_out",
            "Messages sent by outbound bridges to their peers.",
            Counter::default(),
        );
        let messages_in = registered(
            r,
            "bridge_messages_in",
            "Subscribed events outbound bridges received from their peers.",
            Counter::default(),
        );
        let sink_delivered = registered(
            r,
            "bridge_sink_delivered",
            "Incoming bridge messages a sink delivered (a callback answered 2xx).",
            Counter::default(),
        );
        let family = registered(
            r,
            "bridge_sink_dropped",
            "Incoming bridge messages dropped by a sink, by reason: queue_full (past its count or bytes), failed (every retry failed), unavailable (a strategy this release does not deliver to).",
            Family::<ReasonLabel, Counter>::default(),
        );
        let sink_dropped =
            SinkDrop::ALL.iter().map(|d| family.get_or_create_owned(&ReasonLabel { reason: d.as_str() })).collect();
        Self { connects, connect_failures, messages_out, messages_in, sink_delivered, sink_dropped }
    }
}

//! Outbound bridges' series (`bridge`, `sink`): connections made and lost, messages each way,
//! and what the sinks delivered or dropped, by reason. Totals over all bridges: a bridge's own
//! counts are in `GET /api/v1/bridges`, so bridge names never become label values here.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::registered;

/// Which sink (`sink` label): seed 003's `messageHandling` parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkKind {
    /// `callback`: the webhook.
    Callback,
    /// `database`: PostgreSQL.
    Database,
    /// `kafka`.
    Kafka,
}

impl SinkKind {
    const ALL: [SinkKind; 3] = [SinkKind::Callback, SinkKind::Database, SinkKind::Kafka];

    /// As the seed's strategy names it (the label's value).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SinkKind::Callback => "callback",
            SinkKind::Database => "database",
            SinkKind::Kafka => "kafka",
        }
    }
}

/// Why a sink dropped an incoming message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SinkDrop {
    /// Its queue was full (count or bytes): the destination is down or slower than the peer.
    QueueFull,
    /// The destination refused it for good (every attempt failed, a final 4xx, a row or record
    /// PostgreSQL or Kafka refused).
    Failed,
    /// Still queued when the gateway stopped.
    Shutdown,
}

impl SinkDrop {
    const ALL: [SinkDrop; 3] = [SinkDrop::QueueFull, SinkDrop::Failed, SinkDrop::Shutdown];

    fn as_str(self) -> &'static str {
        match self {
            SinkDrop::QueueFull => "queue_full",
            SinkDrop::Failed => "failed",
            SinkDrop::Shutdown => "shutdown",
        }
    }
}

/// `{sink}`: a fixed value.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkLabel {
    sink: &'static str,
}

/// `{sink, reason}`: fixed values.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SinkReasonLabels {
    sink: &'static str,
    reason: &'static str,
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
    /// Messages delivered, by [`SinkKind`] (its index).
    sink_delivered: Vec<Counter>,
    /// Messages dropped, by [`SinkKind`] and [`SinkDrop`] (`kind * reasons + reason`).
    sink_dropped: Vec<Counter>,
}

impl BridgeMetrics {
    /// Counts `n` messages sink `sink` delivered.
    pub(crate) fn sink_delivered(&self, sink: SinkKind, n: u64) {
        self.sink_delivered[sink as usize].inc_by(n);
    }

    /// Counts `n` messages sink `sink` dropped for `reason`.
    pub(crate) fn sink_drop(&self, sink: SinkKind, reason: SinkDrop, n: u64) {
        self.sink_dropped[sink as usize * SinkDrop::ALL.len() + reason as usize].inc_by(n);
    }

    /// How many messages sink `sink` dropped for `reason`.
    #[cfg(test)]
    pub(crate) fn sink_dropped(&self, sink: SinkKind, reason: SinkDrop) -> u64 {
        self.sink_dropped[sink as usize * SinkDrop::ALL.len() + reason as usize].get()
    }

    /// How many messages sink `sink` delivered.
    #[cfg(test)]
    pub(crate) fn sink_delivered_count(&self, sink: SinkKind) -> u64 {
        self.sink_delivered[sink as usize].get()
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
        let delivered = registered(
            r,
            "bridge_sink_delivered",
            "Incoming bridge messages a sink delivered, by sink: callback (answered 2xx), database (row committed), kafka (record acknowledged).",
            Family::<SinkLabel, Counter>::default(),
        );
        let sink_delivered =
            SinkKind::ALL.iter().map(|k| delivered.get_or_create_owned(&SinkLabel { sink: k.as_str() })).collect();
        let dropped = registered(
            r,
            "bridge_sink_dropped",
            "Incoming bridge messages dropped by a sink, by sink and reason: queue_full (past its count or bytes, the destination down or slow), failed (refused for good or every retry failed), shutdown (still queued when the gateway stopped).",
            Family::<SinkReasonLabels, Counter>::default(),
        );
        let sink_dropped = SinkKind::ALL
            .iter()
            .flat_map(|k| SinkDrop::ALL.iter().map(move |d| (k, d)))
            .map(|(k, d)| dropped.get_or_create_owned(&SinkReasonLabels { sink: k.as_str(), reason: d.as_str() }))
            .collect();
        Self { connects, connect_failures, messages_out, messages_in, sink_delivered, sink_dropped }
    }
}

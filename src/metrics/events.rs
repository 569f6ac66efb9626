//! The backend event stream's series (`http::stream`): consumers connected, consumers cut and
//! why, and resumes that could not be served without a gap.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{StreamCut, labels::ReasonLabel, registered};

/// The event stream's series. Clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct EventStreamMetrics {
    /// Consumers connected now.
    pub consumers: Gauge,
    /// Consumers cut, by [`StreamCut`] (its index).
    cuts: Vec<Counter>,
    /// Resumes (`Last-Event-ID`) whose events were no longer all held: `event: gap` sent.
    pub gaps: Counter,
}

impl EventStreamMetrics {
    /// Counts a consumer cut for `reason`.
    pub(crate) fn cut(&self, reason: StreamCut) {
        self.cuts[reason as usize].inc();
    }

    /// Registers the series, every reason at zero.
    pub(super) fn register(r: &mut Registry) -> Self {
        let consumers = registered(
            r,
            "event_stream_consumers",
            "Backend event stream consumers (GET /api/v1/events/stream) connected to this node now.",
            Gauge::default(),
        );
        let family = registered(
            r,
            "event_stream_consumers_cut",
            "Event stream consumers cut by the gateway, by reason: behind (past the lag a consumer may have, or behind the history), stalled (took nothing for a few seconds while events waited).",
            Family::<ReasonLabel, Counter>::default(),
        );
        let cuts =
            StreamCut::ALL.iter().map(|c| family.get_or_create_owned(&ReasonLabel { reason: c.as_str() })).collect();
        let gaps = registered(
            r,
            "event_stream_gaps",
            "Event stream resumes told of a gap: the Last-Event-ID was older than this node's history.",
            Counter::default(),
        );
        Self { consumers, cuts, gaps }
    }
}

//! The series of idempotent publishing (`crate::idempotency`, `crate::http`): calls answered
//! from memory instead of run again, events not delivered twice, entries this node's store
//! holds and had to evict, and claims kept on this node because Redis was unreachable.

use prometheus_client::{
    metrics::{counter::Counter, gauge::Gauge},
    registry::Registry,
};

use super::registered;

/// Idempotent publishing's series. Clones share their series.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdempotencyMetrics {
    /// Calls answered with a remembered answer (`Idempotent-Replayed: true`).
    pub replayed: Counter,
    /// Calls refused because the same key was in flight (409) or came with another body (422).
    pub refused: Counter,
    /// Published events not delivered because their `id` was seen within the window.
    pub duplicate_events: Counter,
    /// Entries in this node's store now.
    pub entries: Gauge,
    /// Live entries this node's store dropped to stay within its bounds.
    pub evicted: Counter,
    /// Claims kept in this node's memory because Redis could not be reached.
    pub fallbacks: Counter,
}

impl IdempotencyMetrics {
    /// Series registered nowhere, for unit tests.
    #[cfg(test)]
    pub(crate) fn unregistered() -> Self {
        Self::default()
    }

    /// Registers the series.
    pub(super) fn register(r: &mut Registry) -> Self {
        IdempotencyMetrics {
            replayed: registered(
                r,
                "idempotent_replays",
                "API calls with an Idempotency-Key answered with the first call's answer, not run again.",
                Counter::default(),
            ),
            refused: registered(
                r,
                "idempotent_refusals",
                "API calls refused for their Idempotency-Key: the first call was still running (409), or it had another body (422).",
                Counter::default(),
            ),
            duplicate_events: registered(
                r,
                "duplicate_events",
                "Published events not delivered because an event with the same id and tenant was published within the window.",
                Counter::default(),
            ),
            entries: registered(
                r,
                "idempotency_entries",
                "Idempotency keys and event ids this node's memory holds now.",
                Gauge::default(),
            ),
            evicted: registered(
                r,
                "idempotency_evicted",
                "Idempotency entries this node's memory dropped before their window ended, to stay within its count and byte bounds.",
                Counter::default(),
            ),
            fallbacks: registered(
                r,
                "idempotency_fallbacks",
                "Idempotency claims kept in this node's memory because Redis could not be reached.",
                Counter::default(),
            ),
        }
    }
}

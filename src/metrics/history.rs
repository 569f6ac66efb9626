//! The series of room history (`crate::engine::history`): what this node's memory holds, what it
//! dropped to stay within its bounds (by why), and how recoveries came out.

use prometheus_client::{
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};

use super::{labels::ReasonLabel, registered};

/// Room history's series. Clones share their series.
#[derive(Debug, Clone, Default)]
pub(crate) struct HistoryMetrics {
    /// Events all rooms' histories hold now.
    pub entries: Gauge,
    /// Their estimated bytes.
    pub bytes: Gauge,
    /// Events dropped because their room held its `size` already.
    pub evicted_size: Counter,
    /// Events dropped because they were older than their room's `ttl`.
    pub evicted_age: Counter,
    /// Events dropped before their time to keep the node within `HISTORY_MAX_BYTES`.
    pub evicted_bytes: Counter,
    /// Events dropped because the node's history no longer held every event (a cluster gap).
    pub evicted_lost: Counter,
    /// Subscriptions with `since` answered `recovered: true`.
    pub recovered: Counter,
    /// Subscriptions with `since` answered `recovered: false`.
    pub not_recovered: Counter,
}

impl HistoryMetrics {
    /// Registers the series.
    pub(super) fn register(r: &mut Registry) -> Self {
        let evicted = registered(
            r,
            "history_evicted",
            "Events dropped from room history, by reason: the room held its size (size), they outlived its ttl (age), the node held HISTORY_MAX_BYTES (bytes), or a cluster node missed bus messages and forgot its history (lost).",
            Family::<ReasonLabel, Counter>::default(),
        );
        let recoveries = registered(
            r,
            "history_recoveries",
            "Subscriptions with `since`, by outcome: the missed events were sent (recovered) or the history no longer covered them (not_recovered).",
            Family::<ReasonLabel, Counter>::default(),
        );
        HistoryMetrics {
            entries: registered(r, "history_entries", "Events room history holds on this node now.", Gauge::default()),
            bytes: registered(
                r,
                "history_bytes",
                "Estimated bytes of the events room history holds on this node now.",
                Gauge::default(),
            ),
            evicted_size: evicted.get_or_create_owned(&ReasonLabel { reason: "size" }),
            evicted_age: evicted.get_or_create_owned(&ReasonLabel { reason: "age" }),
            evicted_bytes: evicted.get_or_create_owned(&ReasonLabel { reason: "bytes" }),
            evicted_lost: evicted.get_or_create_owned(&ReasonLabel { reason: "lost" }),
            recovered: recoveries.get_or_create_owned(&ReasonLabel { reason: "recovered" }),
            not_recovered: recoveries.get_or_create_owned(&ReasonLabel { reason: "not_recovered" }),
        }
    }
}

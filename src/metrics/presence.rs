//! Presence's series (`crate::engine::presence`, the API's `presence`): join and leave events
//! announced, those a coalescing window swallowed (a reconnect inside it changes nothing), those
//! dropped by the per-second cap or the pending bound, and the API's cross-node questions.

use prometheus_client::{metrics::counter::Counter, registry::Registry};

use super::registered;

/// Presence's series. Clones share their series.
#[derive(Debug, Clone, Default)]
pub(crate) struct PresenceMetrics {
    /// Online and offline events sent.
    pub announced: Counter,
    /// Changes that came back to the state last announced within one window: nothing sent.
    pub coalesced: Counter,
    /// Changes not announced: over the family's `max_per_second`, or past the pending bound.
    pub dropped: Counter,
    /// Presence questions this node asked the other nodes (`GET /api/v1/presence`).
    pub queries: Counter,
    /// Of those, answered without every node's part (a node did not answer in time, or Redis
    /// was unreachable).
    pub incomplete: Counter,
}

impl PresenceMetrics {
    /// Registers the series.
    pub(super) fn register(r: &mut Registry) -> Self {
        PresenceMetrics {
            announced: registered(
                r,
                "presence_events",
                "Presence join and leave events (a user's first connection in a room, its last one leaving) sent.",
                Counter::default(),
            ),
            coalesced: registered(
                r,
                "presence_coalesced",
                "Presence changes not announced because the user was back to the state last announced within the coalescing window.",
                Counter::default(),
            ),
            dropped: registered(
                r,
                "presence_dropped",
                "Presence changes not announced: over a room family's max_per_second, or past the bound on pending changes.",
                Counter::default(),
            ),
            queries: registered(
                r,
                "presence_queries",
                "Presence questions this node asked the other nodes of its cluster.",
                Counter::default(),
            ),
            incomplete: registered(
                r,
                "presence_incomplete",
                "Presence answers given without every node's part (a node did not answer in time, or Redis was unreachable).",
                Counter::default(),
            ),
        }
    }
}

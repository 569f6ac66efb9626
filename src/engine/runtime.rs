//! A spec as the engine runs it, whatever front its clients come through: the spec, its
//! last-known state, its rate limiters and its per-tenant counters. The Socket.IO front
//! (`namespace`) and the plain WebSocket front (`native`) each wrap one of these with their own
//! connections; actions (`actions`), client events (`dispatch`) and published events (`publish`)
//! work on it alone.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use super::{
    Shared,
    history::History,
    limits::{IpLimiter, MemberLimiter},
    presence::PresenceEvents,
    state::Stores,
};
use crate::{
    metrics::NamespaceMetrics,
    spec::{NamespaceSpec, RateLimit},
};

/// How many tenants' published events a spec counts: a bound on memory whatever tenant ids
/// backends publish under.
const TENANTS_COUNTED: std::num::NonZeroUsize = std::num::NonZeroUsize::new(10_000).expect("not zero");

/// One spec and what serving it needs, front-independent.
pub(crate) struct SpecRuntime {
    /// The spec served.
    pub spec: NamespaceSpec,
    /// Position among the engine's runtimes (the expiry queue refers to runtimes by it).
    pub index: usize,
    pub(crate) shared: Arc<Shared>,
    pub(crate) stores: Stores,
    /// The recent events of its rooms whose family keeps history.
    pub(crate) history: History,
    /// One limiter per rate-limited event.
    pub(crate) event_limiters: HashMap<String, MemberLimiter>,
    /// All events of one member together (`WS_MAX_EVENTS_PER_SECOND`).
    pub(crate) flood_limiter: MemberLimiter,
    /// Token refreshes, which cost a signature check each.
    pub(crate) refresh_limiter: MemberLimiter,
    /// New connections per client IP, when the spec limits them.
    pub(crate) connect_limiter: Option<IpLimiter>,
    /// Events published per tenant, for `tenant.stats`: the [`TENANTS_COUNTED`] tenants that
    /// published last (a tenant forgotten starts again from zero).
    pub(crate) tenant_events: Mutex<lru::LruCache<String, u64>>,
    /// Its series in `/metrics`, resolved at start-up.
    pub(crate) metrics: NamespaceMetrics,
    /// The largest payload any of its events (or the refresh event) takes, so a larger one is
    /// refused before it is parsed.
    pub(crate) largest_payload: usize,
    /// Join and leave events' counts, when a room family asks for them (none: presence costs
    /// this spec nothing).
    pub(crate) presence: Option<PresenceEvents>,
    /// Per room family: whether its name is another family's, a server-only one, for a family
    /// whose pattern has no parameters (its one name is then known before any event: routing
    /// does not look for its owner again for each).
    pub(crate) shadowed: Vec<bool>,
}

impl std::fmt::Debug for SpecRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpecRuntime").field("path", &self.spec.path).finish()
    }
}

impl SpecRuntime {
    pub(crate) fn new(spec: NamespaceSpec, index: usize, shared: Arc<Shared>, metrics: NamespaceMetrics) -> Self {
        let event_limiters = spec
            .events
            .values()
            .filter_map(|e| e.rate_limit.map(|l| (e.name.clone(), MemberLimiter::new(l))))
            .collect();
        let flood_limiter = MemberLimiter::new(RateLimit {
            max: shared.limits.events_per_second.saturating_mul(2),
            per: Duration::from_secs(2),
        });
        let refresh_limiter = MemberLimiter::new(RateLimit { max: 10, per: Duration::from_secs(60) });
        let stores = Stores::new(&spec.stores, shared.state_budget.clone());
        let history = History::new(shared.history_budget.clone(), shared.metrics.history.clone());
        let connect_limiter = spec.auth.connections_per_ip.map(IpLimiter::new);
        let largest_payload =
            spec.events.values().filter_map(|e| e.max_bytes).fold(shared.limits.max_event_bytes, usize::max);
        let caps = spec.rooms.iter().map(|f| f.presence.as_ref().map(|p| p.max_per_second)).collect();
        let presence = PresenceEvents::new(caps, shared.metrics.presence.clone());
        let shadowed = (0..spec.rooms.len()).map(|id| spec.is_shadowed(id)).collect();
        Self {
            shadowed,
            presence,
            largest_payload,
            spec,
            index,
            shared,
            stores,
            history,
            event_limiters,
            flood_limiter,
            refresh_limiter,
            connect_limiter,
            tenant_events: Mutex::new(lru::LruCache::new(TENANTS_COUNTED)),
            metrics,
        }
    }

    /// Presence events: a connection of `user` entered (`joined`) or left internal room `room`
    /// (any filtered variant: callers report each room once, not each variant).
    pub(crate) fn presence_changed(&self, room: &str, user: Option<&str>, joined: bool) {
        let (Some(presence), Some(user)) = (&self.presence, user) else { return };
        let Some((_, visible)) = crate::rooms::split_internal(room) else { return };
        let Some((family, _)) = self.spec.family_of(visible) else { return };
        let base = crate::rooms::without_filters(room);
        match joined {
            true => presence.joined(family, base, user),
            false => presence.left(family, base, user),
        }
    }

    /// Presence events: a connection of `user` in `rooms` (internal names, variants included)
    /// is gone.
    pub(crate) fn presence_gone<'a>(&self, rooms: impl IntoIterator<Item = &'a str>, user: Option<&str>) {
        if self.presence.is_none() || user.is_none() {
            return;
        }
        let mut bases: Vec<&str> = rooms.into_iter().map(crate::rooms::without_filters).collect();
        bases.sort_unstable();
        bases.dedup();
        for room in bases {
            self.presence_changed(room, user, false);
        }
    }

    /// Drops rate-limiter entries of quiet members.
    pub(crate) fn cleanup(&self) {
        for l in self.event_limiters.values() {
            l.cleanup();
        }
        self.flood_limiter.cleanup();
        self.refresh_limiter.cleanup();
        if let Some(l) = &self.connect_limiter {
            l.cleanup();
        }
        self.history.sweep();
    }
}

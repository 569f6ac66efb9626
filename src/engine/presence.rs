//! Presence: who is connected to a room (or a tenant) of one namespace, and the join and leave
//! events a spec asks for.
//!
//! Two parts with different costs:
//! - **Who is here** is never stored: a node answers it from the room membership it keeps anyway
//!   ([`LocalPresence`], counted by the node when asked), and the API asks every live node
//!   ([`PresenceQuestion`] through the `ClusterLink`). A connect or disconnect costs presence
//!   nothing, and a dead node's connections are in no answer given after it stopped answering.
//! - **Join and leave events** (`presence:` on a room family) need to know when a user's first
//!   connection enters a room and its last one leaves, so for those families only this node
//!   counts connections per (room, user) ([`PresenceEvents`]). A change waits [`PRESENCE_WINDOW`]
//!   from its first move before it is announced (the node flushes every [`PRESENCE_FLUSH`]): a
//!   user who left and came back within it (a reconnect) is announced nothing, and each family
//!   sends at most its `max_per_second`; both are counted. The counts are this node's: a user with connections on
//!   two nodes is announced by each (docs/namespace-spec.md says so).

use std::{
    collections::{HashMap, hash_map::Entry},
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::{
    metrics::PresenceMetrics,
    spec::{RoomId, Transport},
};

/// How long a change waits to be announced, from its first move: a user back to the state last
/// announced within it is announced nothing.
pub(crate) const PRESENCE_WINDOW: Duration = Duration::from_secs(1);
/// How often the node announces the changes whose window has passed.
pub(crate) const PRESENCE_FLUSH: Duration = Duration::from_millis(250);
/// Most changes waiting for the next flush, per namespace; changes beyond are dropped, counted.
const MAX_PENDING: usize = 100_000;
/// Most users one node lists in an answer, and one API answer lists: beyond, users are counted
/// in `connections` only and the answer says it is truncated.
pub(crate) const MAX_USERS: usize = 10_000;

/// A presence question every node answers for its own connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PresenceQuestion {
    /// The namespace's path (a plain WebSocket endpoint's HTTP path, with `transport`).
    pub namespace: String,
    /// Which front's spec at that path: a Socket.IO namespace and a plain WebSocket endpoint may
    /// share one (seed 001's `/ws` beside seed 002's).
    pub transport: Transport,
    /// The room's internal name; none for the whole namespace (or tenant).
    pub room: Option<String>,
    /// Only this tenant's connections (none: every tenant's).
    pub tenant: Option<String>,
}

impl PresenceQuestion {
    /// The wire form between nodes.
    pub(crate) fn to_json(&self) -> Value {
        json!({ "namespace": self.namespace, "transport": self.transport.name(), "room": self.room, "tenantId": self.tenant })
    }

    /// Reads the wire form back.
    pub(crate) fn from_json(value: &Value) -> Option<Self> {
        let text = |field: &str| value.get(field).and_then(Value::as_str).map(str::to_string);
        // A node of an earlier version asks of Socket.IO namespaces only, and sends no transport.
        let transport = match text("transport").as_deref() {
            Some("websocket") => Transport::WebSocket,
            _ => Transport::SocketIo,
        };
        Some(Self { namespace: text("namespace")?, transport, room: text("room"), tenant: text("tenantId") })
    }
}

/// One node's answer: connections per user (with the user's tenant, which tells apart equal user
/// ids of two tenants in a platform-wide answer) and all connections, anonymous ones included.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LocalPresence {
    /// Connections per `(tenant, user)`.
    pub users: HashMap<(Option<String>, String), u64>,
    /// Every connection counted, with a user or not.
    pub connections: u64,
    /// Users were left out to stay within [`MAX_USERS`].
    pub truncated: bool,
}

/// What the other nodes answered a [`PresenceQuestion`].
#[derive(Debug, Clone, Default)]
pub(crate) struct PresenceAnswers {
    /// One answer per node that answered.
    pub answers: Vec<LocalPresence>,
    /// Whether every node that was asked answered in time.
    pub complete: bool,
}

impl LocalPresence {
    /// Counts one connection of `user` (none: anonymous) in `tenant`.
    pub(crate) fn add(&mut self, tenant: Option<&str>, user: Option<&str>) {
        self.connections += 1;
        if let Some(user) = user {
            self.count((tenant.map(str::to_string), user.to_string()), 1);
        }
    }

    fn count(&mut self, user: (Option<String>, String), n: u64) {
        let full = self.users.len() >= MAX_USERS;
        match self.users.entry(user) {
            Entry::Occupied(mut e) => *e.get_mut() += n,
            Entry::Vacant(_) if full => self.truncated = true,
            Entry::Vacant(e) => {
                e.insert(n);
            }
        }
    }

    /// Adds another node's answer.
    pub(crate) fn merge(&mut self, other: LocalPresence) {
        self.connections += other.connections;
        self.truncated |= other.truncated;
        for (user, n) in other.users {
            self.count(user, n);
        }
    }

    /// The wire form between nodes: `{connections, users: [[tenant, user, connections]]}`.
    pub(crate) fn to_json(&self) -> Value {
        let users: Vec<Value> = self.users.iter().map(|((tenant, user), n)| json!([tenant, user, n])).collect();
        json!({ "connections": self.connections, "users": users, "truncated": self.truncated })
    }

    /// Reads the wire form back (what does not parse is left out).
    pub(crate) fn from_json(value: &Value) -> Self {
        let mut out = LocalPresence {
            connections: value["connections"].as_u64().unwrap_or(0),
            truncated: value["truncated"].as_bool().unwrap_or(false),
            ..Default::default()
        };
        for entry in value["users"].as_array().into_iter().flatten() {
            let (Some(user), Some(n)) = (entry[1].as_str(), entry[2].as_u64()) else { continue };
            out.count((entry[0].as_str().map(str::to_string), user.to_string()), n);
        }
        out
    }
}

/// A change to announce: `user` came to (`online`) or left internal room `room` of `family`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Announcement {
    /// The room family.
    pub family: RoomId,
    /// The room's internal name (without filters).
    pub room: String,
    /// The user.
    pub user: String,
    /// Whether it came (or went).
    pub online: bool,
}

type Key = (RoomId, String, String);

#[derive(Debug, Default)]
struct Counts {
    /// This node's connections per (family, room, user), for families with presence events.
    here: HashMap<Key, u32>,
    /// Changed and not announced yet: whether the user was present before the first change, and
    /// when that was.
    pending: HashMap<Key, (bool, Instant)>,
}

/// This node's counts for the room families with presence events, and the changes to announce.
/// One per namespace that asks for events; a namespace that does not has none and pays nothing.
#[derive(Debug)]
pub(crate) struct PresenceEvents {
    counts: Mutex<Counts>,
    /// Each family's `max_per_second` (none: no events), by family id.
    caps: Vec<Option<u32>>,
    metrics: PresenceMetrics,
}

impl PresenceEvents {
    /// The counts of a spec whose families have these caps (`None`: no events); none at all when
    /// no family asks for events.
    pub(crate) fn new(caps: Vec<Option<u32>>, metrics: PresenceMetrics) -> Option<Self> {
        caps.iter().any(Option::is_some).then(|| Self { counts: Mutex::default(), caps, metrics })
    }

    /// Whether `family` has events.
    pub(crate) fn tracks(&self, family: RoomId) -> bool {
        self.caps.get(family).is_some_and(Option::is_some)
    }

    /// One more connection of `user` in `room` (internal name without filters) of `family`.
    pub(crate) fn joined(&self, family: RoomId, room: &str, user: &str) {
        if !self.tracks(family) {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let key = (family, room.to_string(), user.to_string());
        let n = counts.here.entry(key.clone()).or_default();
        *n += 1;
        if *n == 1 {
            counts.note(key, false, &self.metrics);
        }
    }

    /// One connection fewer of `user` in `room` of `family`.
    pub(crate) fn left(&self, family: RoomId, room: &str, user: &str) {
        if !self.tracks(family) {
            return;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let key = (family, room.to_string(), user.to_string());
        let Entry::Occupied(mut n) = counts.here.entry(key) else { return };
        *n.get_mut() -= 1;
        if *n.get() == 0 {
            let (key, _) = n.remove_entry();
            counts.note(key, true, &self.metrics);
        }
    }

    /// The changes whose window has passed by `now` that are still changes (a user who came back
    /// to the state last announced is left out and counted as coalesced), at most each family's
    /// cap for one [`PRESENCE_FLUSH`] (the rest dropped and counted).
    pub(crate) fn flush(&self, now: Instant) -> Vec<Announcement> {
        let due = {
            let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
            let Counts { here, pending } = &mut *counts;
            let mut due = Vec::new();
            pending.retain(|key, (before, since)| {
                if now.saturating_duration_since(*since) < PRESENCE_WINDOW {
                    return true;
                }
                due.push((here.contains_key(key), *before, key.clone()));
                false
            });
            due
        };
        let flush_ms = PRESENCE_FLUSH.as_millis() as u64;
        let mut budget: Vec<u64> =
            self.caps.iter().map(|cap| cap.map_or(0, |c| (u64::from(c) * flush_ms).div_ceil(1000))).collect();
        let mut out = Vec::new();
        for (present, before, (family, room, user)) in due {
            if present == before {
                self.metrics.coalesced.inc();
            } else if budget[family] == 0 {
                self.metrics.dropped.inc();
            } else {
                budget[family] -= 1;
                out.push(Announcement { family, room, user, online: present });
            }
        }
        out
    }

    /// Connections counted now, for tests.
    #[cfg(test)]
    fn count(&self, family: RoomId, room: &str, user: &str) -> u32 {
        let counts = self.counts.lock().unwrap();
        counts.here.get(&(family, room.to_string(), user.to_string())).copied().unwrap_or(0)
    }
}

impl Counts {
    /// Records that `key` changed, remembering the state before its first change since the last
    /// flush.
    fn note(&mut self, key: Key, before: bool, metrics: &PresenceMetrics) {
        if self.pending.len() >= MAX_PENDING && !self.pending.contains_key(&key) {
            metrics.dropped.inc();
            return;
        }
        self.pending.entry(key).or_insert((before, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A moment past every window opened so far.
    fn later() -> Instant {
        Instant::now() + PRESENCE_WINDOW
    }

    fn events() -> PresenceEvents {
        PresenceEvents::new(vec![None, Some(8)], PresenceMetrics::default()).unwrap()
    }

    #[test]
    fn a_spec_without_presence_events_has_no_counts() {
        assert!(PresenceEvents::new(vec![None, None], PresenceMetrics::default()).is_none());
    }

    #[test]
    fn first_connection_comes_and_last_one_goes() {
        let p = events();
        p.joined(1, "t\u{1}r", "u");
        p.joined(1, "t\u{1}r", "u");
        assert_eq!(
            p.flush(later()),
            vec![Announcement { family: 1, room: "t\u{1}r".into(), user: "u".into(), online: true }]
        );
        p.left(1, "t\u{1}r", "u");
        assert_eq!(p.flush(later()), vec![], "one of two connections left: still online");
        p.left(1, "t\u{1}r", "u");
        assert_eq!(
            p.flush(later()),
            vec![Announcement { family: 1, room: "t\u{1}r".into(), user: "u".into(), online: false }]
        );
        assert_eq!(p.count(1, "t\u{1}r", "u"), 0);
    }

    #[test]
    fn a_change_waits_for_its_window() {
        let p = events();
        p.joined(1, "r", "u");
        assert_eq!(p.flush(Instant::now()), vec![]);
        assert_eq!(p.flush(later()).len(), 1);
    }

    #[test]
    fn a_reconnect_within_the_window_announces_nothing() {
        let p = events();
        p.joined(1, "r", "u");
        p.flush(later());
        p.left(1, "r", "u");
        p.joined(1, "r", "u");
        assert_eq!(p.flush(later()), vec![]);
        assert_eq!(p.metrics.coalesced.get(), 1);
    }

    #[test]
    fn families_without_events_are_not_counted() {
        let p = events();
        p.joined(0, "r", "u");
        assert_eq!(p.count(0, "r", "u"), 0);
        assert_eq!(p.flush(later()), vec![]);
    }

    #[test]
    fn a_family_sends_at_most_its_cap_per_flush() {
        let p = events();
        // 8 a second: 2 per flush.
        for user in ["a", "b", "c", "d"] {
            p.joined(1, "r", user);
        }
        assert_eq!(p.flush(later()).len(), 2);
        assert_eq!(p.metrics.dropped.get(), 2);
    }

    #[test]
    fn answers_merge_across_nodes() {
        let mut a = LocalPresence::default();
        a.add(Some("t"), Some("u"));
        a.add(Some("t"), None);
        let mut b = LocalPresence::from_json(&a.to_json());
        b.add(Some("t"), Some("v"));
        a.merge(b);
        assert_eq!(a.connections, 5);
        assert_eq!(a.users[&(Some("t".into()), "u".into())], 2);
        assert_eq!(a.users[&(Some("t".into()), "v".into())], 1);
    }
}

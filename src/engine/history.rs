//! Room history: the recent events of each room whose family keeps history (`history: {size,
//! ttl}` in its spec), so that a client that reconnects gets what it missed, and positions that
//! say where each event stands in its room.
//!
//! A room's events are numbered from 1 by `offset`, one more per event; its `epoch` is chosen at
//! random when the room's history begins, so a position from a history that was lost (a restart,
//! a room whose events all aged out, another node's numbering) never matches a history that does
//! not hold what followed it. A client's `since` is recovered all or nothing: every event after
//! it, or none (`None`), never a part.
//!
//! Bounds: per room, `size` events no older than `ttl` (the spec's); per node, `HISTORY_MAX_BYTES`
//! for all rooms of all endpoints together ([`HistoryBudget`]), estimated as what the events'
//! texts and filter values take plus a fixed cost per event and per room (an event kept in several
//! rooms of an endpoint is one shared text with a short tail per room, [`KeptText`], and counted
//! so: its shared part split among the rooms). Past the node's budget,
//! the oldest events of the endpoint being written go first (as last-known state evicts within
//! the store being written). A room that holds no event is forgotten, with its epoch. Every drop
//! is counted by why (`history_evicted_total{reason}`).
//!
//! This is one node's memory. Positions come from one of two places: this node numbers a room
//! itself (one node, or an event a cluster node applied on its own while Redis was away), or the
//! cluster gives them ([`Given`]: numbered once, in Redis, as the event was put on the bus, so the
//! same on every node; `cluster::stream`). Every node keeps every room's events in the order it
//! applies the bus, so a client recovers on any node whose history holds what followed its
//! position. A room keeps one numbering at a time: an event numbered the other way, of another
//! epoch, or whose offset is not the next (this node did not apply one numbered in between)
//! starts the room again from it, so a room's events are always consecutive within its epoch
//! and a recovery never skips one. A node behind the client (it has not applied the last events
//! the client got elsewhere) recovers it with nothing yet and the front skips what it already
//! has ([`Since::Ahead`]).
//!
//! One lock per endpoint, taken through [`History::lock`]: a front holds it while it appends an
//! event and queues it to the room's members, and while it joins a member, reads what it missed
//! and queues that, so a recovering member gets each event once, in order, from the history or
//! live, never both (nothing awaits under it).

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicUsize, Ordering},
    },
    time::Instant,
};

use bytes::Bytes;

use crate::{metrics::HistoryMetrics, rooms::FilterReach, spec::HistorySpec};

/// What an event costs beside its text and filter values (its entry, its queue slot).
const ENTRY_OVERHEAD: usize = 64;
/// What a room costs beside its name (its map slot, its queue, its place among the oldest).
const ROOM_OVERHEAD: usize = 160;

/// Where an event stands in its room: its offset, and the epoch of the history that numbered it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Position {
    /// 1 for a room's first event, one more for each next.
    pub offset: u64,
    /// Which history: another epoch is another numbering.
    pub epoch: Arc<str>,
}

/// A position the cluster gave an event in one room of one spec: the same on every node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Given {
    /// The spec's path (`/ws`).
    pub path: Box<str>,
    /// The room's internal name, without filter values.
    pub room: Box<str>,
    /// Where the event stands in it.
    pub position: Position,
}

/// What a history holds after a client's position.
#[derive(Debug)]
pub(crate) enum Since {
    /// Every event after it, in order (none: nothing was missed).
    Events(Vec<Kept>),
    /// The client saw events up to this offset of the room's epoch that this node has not applied
    /// yet (it got them from another node, a little ahead): nothing is missed, and the room's next
    /// events up to this offset are the ones it has.
    Ahead(u64),
}

/// How far ahead of this node a client's position may be and still be taken as a node behind
/// (beyond, it is not believed: `recovered: false`).
const MAX_AHEAD: u64 = 1_000;

/// The byte budget of all endpoints' history on this node.
#[derive(Debug, Clone)]
pub(crate) struct HistoryBudget {
    /// Most bytes all rooms together may hold.
    pub total: usize,
    /// Bytes held now, shared by every endpoint's [`History`].
    pub used: Arc<AtomicUsize>,
}

impl HistoryBudget {
    /// A budget of `total` bytes, none used yet.
    pub(crate) fn new(total: usize) -> Self {
        Self { total, used: Arc::new(AtomicUsize::new(0)) }
    }
}

/// One event kept: its offset, what the front sends for it, and the filter values it was routed
/// with (which of the room's filtered variants it reached; empty for a room without filters), so
/// a recovery sends a member only what its filters let through.
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// Its offset in the room.
    pub offset: u64,
    /// The front's serialized message for it, position included.
    pub text: KeptText,
    /// The variants it reached.
    pub reach: FilterReach,
}

impl Kept {
    /// Whether a member in these variants of the room (their names' suffixes after the room's)
    /// gets it: any of them reached, or the room has no filters.
    pub(crate) fn passes<S: AsRef<str>>(&self, variants: &[S]) -> bool {
        self.reach.is_empty() || variants.iter().any(|v| self.reach.reaches(v.as_ref()))
    }
}

/// A kept event's message as the front serialized it: `head` then `tail`. An event kept in several
/// rooms of an endpoint is serialized once: every room shares its `head` (the event, which can be
/// large), and only `tail` (the room's name and position, a few dozen bytes) is the room's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeptText {
    head: Bytes,
    tail: Box<str>,
    /// The part of `head` this room is counted for: the shared head's bytes split among its
    /// rooms, so the budget counts it once, not once a room.
    head_share: usize,
}

impl KeptText {
    /// `head` (shared by `rooms` rooms) followed by `tail`.
    pub(crate) fn new(head: Bytes, tail: String, rooms: usize) -> Self {
        let head_share = head.len().div_ceil(rooms.max(1));
        Self { head, tail: tail.into_boxed_str(), head_share }
    }

    /// The whole message's length.
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.tail.len()
    }

    /// Whether nothing was kept (the front could not serialize the event).
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole message, in one buffer.
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut whole = Vec::with_capacity(self.len());
        whole.extend_from_slice(&self.head);
        whole.extend_from_slice(self.tail.as_bytes());
        whole
    }

    /// What this room is counted for of the message.
    fn counted(&self) -> usize {
        self.head_share + self.tail.len()
    }
}

struct Entry {
    kept: Kept,
    at: Instant,
    /// Its place in the endpoint's order of appends.
    seq: u64,
    bytes: usize,
}

struct Room {
    epoch: Arc<str>,
    /// The last offset given.
    last: u64,
    /// Numbered by the cluster ([`Given`]), not by this node.
    given: bool,
    spec: HistorySpec,
    entries: VecDeque<Entry>,
}

/// Why events leave a history before a recovery could read them.
#[derive(Debug, Clone, Copy)]
enum Eviction {
    Size,
    Age,
    Bytes,
    Lost,
}

/// The history of one endpoint's rooms.
pub(crate) struct History {
    rooms: Mutex<Rooms>,
    budget: HistoryBudget,
    metrics: HistoryMetrics,
}

#[derive(Default)]
struct Rooms {
    rooms: HashMap<Arc<str>, Room>,
    /// Each room once, by the `seq` of its oldest event: the endpoint's oldest event first.
    oldest: BTreeSet<(u64, Arc<str>)>,
    seq: u64,
}

/// The endpoint's history, locked (see the module's comment).
pub(crate) struct Locked<'a> {
    rooms: MutexGuard<'a, Rooms>,
    history: &'a History,
}

impl History {
    /// An empty history within `budget`, counted in `metrics`.
    pub(crate) fn new(budget: HistoryBudget, metrics: HistoryMetrics) -> Self {
        Self { rooms: Mutex::new(Rooms::default()), budget, metrics }
    }

    /// Locks the endpoint's history.
    pub(crate) fn lock(&self) -> Locked<'_> {
        Locked { rooms: self.rooms.lock().unwrap_or_else(|e| e.into_inner()), history: self }
    }

    /// Drops the events that outlived their room's `ttl` (the cleanup task; reads skip them
    /// meanwhile).
    pub(crate) fn sweep(&self) {
        let mut locked = self.lock();
        let now = Instant::now();
        let rooms: Vec<Arc<str>> = locked.rooms.rooms.keys().cloned().collect();
        for room in rooms {
            locked.expire(&room, now);
        }
    }

    /// Forgets every room (its events and its epoch): the events it was given are no longer all
    /// the events there were (a cluster node that missed some), so no recovery may claim them.
    pub(crate) fn forget(&self) {
        let mut locked = self.lock();
        let rooms: Vec<Arc<str>> = locked.rooms.rooms.keys().cloned().collect();
        for room in rooms {
            while locked.rooms.rooms.contains_key(&room) {
                locked.drop_oldest(&room, Eviction::Lost);
            }
        }
    }

    /// Rooms and events held now (tests and the docs' measurements).
    #[cfg(test)]
    fn counts(&self) -> (usize, usize) {
        let rooms = self.rooms.lock().unwrap_or_else(|e| e.into_inner());
        (rooms.rooms.len(), rooms.rooms.values().map(|r| r.entries.len()).sum())
    }
}

fn new_epoch() -> Arc<str> {
    // 48 random bits: two histories of one room meeting on the same epoch is not a concern.
    Arc::from(format!("{:012x}", rand::random::<u64>() >> 16))
}

impl Locked<'_> {
    /// Appends an event to `room` (kept as `spec` says), at the position the cluster gave it there
    /// (`None`: numbered by this node), rendered by `render` once its position is known. A room numbered the other way, of another epoch, or whose last offset
    /// is not the one before, starts again from this event (what it held is dropped, counted as
    /// `lost`).
    pub(crate) fn append_at(
        &mut self,
        room: &str,
        spec: HistorySpec,
        reach: FilterReach,
        given: Option<&Position>,
        render: impl FnOnce(&Position) -> KeptText,
    ) {
        let now = Instant::now();
        self.expire(room, now);
        let follows = self.rooms.rooms.get(room).is_none_or(|r| match given {
            Some(p) => r.given && r.epoch == p.epoch && p.offset == r.last + 1,
            None => !r.given,
        });
        if !follows {
            while let Some(key) = self.rooms.rooms.get_key_value(room).map(|(k, _)| k.clone()) {
                self.drop_oldest(&key, Eviction::Lost);
            }
        }
        let rooms = &mut *self.rooms;
        rooms.seq += 1;
        let seq = rooms.seq;
        let (key, created) = match rooms.rooms.get_key_value(room) {
            Some((key, _)) => (key.clone(), false),
            None => (Arc::<str>::from(room), true),
        };
        let entry = rooms.rooms.entry(key.clone()).or_insert_with(|| match given {
            Some(p) => Room {
                epoch: p.epoch.clone(),
                last: p.offset.saturating_sub(1),
                given: true,
                spec,
                entries: VecDeque::new(),
            },
            None => Room { epoch: new_epoch(), last: 0, given: false, spec, entries: VecDeque::new() },
        });
        // A spec is fixed for the process; the latest is kept all the same.
        entry.spec = spec;
        entry.last += 1;
        let position = Position { offset: entry.last, epoch: entry.epoch.clone() };
        let text = render(&position);
        let bytes =
            ENTRY_OVERHEAD + text.counted() + reach.bytes() + if created { ROOM_OVERHEAD + room.len() } else { 0 };
        if entry.entries.is_empty() {
            rooms.oldest.insert((seq, key.clone()));
        }
        entry.entries.push_back(Entry { kept: Kept { offset: position.offset, text, reach }, at: now, seq, bytes });
        self.history.budget.used.fetch_add(bytes, Ordering::Relaxed);
        self.history.metrics.entries.inc();
        self.history.metrics.bytes.inc_by(bytes as i64);
        while self.rooms.rooms.get(&key).is_some_and(|r| r.entries.len() > r.spec.size) {
            self.drop_oldest(&key, Eviction::Size);
        }
        while self.history.budget.used.load(Ordering::Relaxed) > self.history.budget.total {
            let Some((_, oldest)) = self.rooms.oldest.first().cloned() else { break };
            self.drop_oldest(&oldest, Eviction::Bytes);
        }
    }

    /// Every event of `room` after `offset` in history `epoch`, in order; `None` when the room's
    /// history does not hold all of them (another epoch, events dropped since, or an offset it
    /// never gave). For a room the cluster numbers, a position a little ahead of this node's last
    /// ([`MAX_AHEAD`] at most) is [`Since::Ahead`]: the caller skips the room's events up to it
    /// as they come (beyond, or in a room this node numbers, `None`).
    pub(crate) fn since_at(&mut self, room: &str, offset: u64, epoch: &str) -> Option<Since> {
        self.expire(room, Instant::now());
        let r = self.rooms.rooms.get(room)?;
        if &*r.epoch != epoch {
            return None;
        }
        if offset > r.last {
            return (r.given && offset - r.last <= MAX_AHEAD).then_some(Since::Ahead(offset));
        }
        let first = r.entries.front().map_or(r.last + 1, |e| e.kept.offset);
        if first > offset + 1 {
            return None;
        }
        Some(Since::Events(r.entries.iter().filter(|e| e.kept.offset > offset).map(|e| e.kept.clone()).collect()))
    }

    /// The last `n` events of `room` (fewer when it holds fewer), oldest first: what a late
    /// joiner is sent.
    pub(crate) fn last(&mut self, room: &str, n: usize) -> Vec<Kept> {
        self.expire(room, Instant::now());
        let Some(r) = self.rooms.rooms.get(room) else { return Vec::new() };
        r.entries.iter().skip(r.entries.len().saturating_sub(n)).map(|e| e.kept.clone()).collect()
    }

    /// Drops `room`'s events older than its `ttl`.
    fn expire(&mut self, room: &str, now: Instant) {
        loop {
            let Some(r) = self.rooms.rooms.get(room) else { return };
            let Some(oldest) = r.entries.front() else { return };
            if now.saturating_duration_since(oldest.at) <= r.spec.ttl {
                return;
            }
            let key = self.rooms.rooms.get_key_value(room).map(|(k, _)| k.clone());
            let Some(key) = key else { return };
            self.drop_oldest(&key, Eviction::Age);
        }
    }

    /// Drops the oldest event of `room`, counted for `why`; a room left empty is forgotten.
    fn drop_oldest(&mut self, room: &Arc<str>, why: Eviction) {
        let rooms = &mut *self.rooms;
        let Some(r) = rooms.rooms.get_mut(room) else { return };
        let Some(entry) = r.entries.pop_front() else { return };
        rooms.oldest.remove(&(entry.seq, room.clone()));
        match r.entries.front() {
            Some(next) => {
                rooms.oldest.insert((next.seq, room.clone()));
            }
            None => {
                rooms.rooms.remove(room);
            }
        }
        self.history.budget.used.fetch_sub(entry.bytes, Ordering::Relaxed);
        let metrics = &self.history.metrics;
        metrics.entries.dec();
        metrics.bytes.dec_by(entry.bytes as i64);
        match why {
            Eviction::Size => metrics.evicted_size.inc(),
            Eviction::Age => metrics.evicted_age.inc(),
            Eviction::Bytes => metrics.evicted_bytes.inc(),
            Eviction::Lost => metrics.evicted_lost.inc(),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn spec(size: usize, ttl_ms: u64) -> HistorySpec {
        HistorySpec { size, ttl: Duration::from_millis(ttl_ms) }
    }

    fn history(total: usize) -> History {
        History::new(HistoryBudget::new(total), HistoryMetrics::default())
    }

    fn append(h: &History, room: &str, spec: HistorySpec) -> Position {
        let mut got = None;
        h.lock().append_at(room, spec, FilterReach::default(), None, |p| {
            got = Some(p.clone());
            KeptText::new(Bytes::new(), format!("{}@{}", p.offset, p.epoch), 1)
        });
        got.unwrap()
    }

    fn append_given(h: &History, room: &str, spec: HistorySpec, offset: u64, epoch: &str) -> Position {
        let given = Position { offset, epoch: epoch.into() };
        let mut got = None;
        h.lock().append_at(room, spec, FilterReach::default(), Some(&given), |p| {
            got = Some(p.clone());
            KeptText::new(Bytes::new(), format!("{}@{}", p.offset, p.epoch), 1)
        });
        got.unwrap()
    }

    /// The offsets recovered after `offset` (`None`: not recovered, or ahead).
    fn since(h: &History, room: &str, offset: u64, epoch: &str) -> Option<Vec<u64>> {
        match h.lock().since_at(room, offset, epoch)? {
            Since::Events(kept) => Some(kept.iter().map(|k| k.offset).collect()),
            Since::Ahead(_) => None,
        }
    }

    #[test]
    fn offsets_count_up_per_room_and_since_returns_what_follows_all_or_nothing() {
        let h = history(1 << 20);
        let s = spec(3, 60_000);
        let a1 = append(&h, "a", s);
        let b1 = append(&h, "b", s);
        assert_eq!((a1.offset, b1.offset), (1, 1));
        assert_ne!(a1.epoch, b1.epoch, "each room's history has its own epoch");
        for _ in 0..3 {
            append(&h, "a", s);
        }
        let epoch = a1.epoch.clone();
        assert_eq!(since(&h, "a", 4, &epoch), Some(vec![]), "nothing missed");
        assert_eq!(since(&h, "a", 1, &epoch), Some(vec![2, 3, 4]));
        assert_eq!(since(&h, "a", 0, &epoch), None, "event 1 was dropped: size 3");
        assert_eq!(since(&h, "a", 2, "other"), None, "another epoch");
        assert_eq!(since(&h, "a", 9, &epoch), None, "an offset never given");
        assert_eq!(since(&h, "nope", 0, &epoch), None);
        assert_eq!(h.metrics.evicted_size.get(), 1);
        assert_eq!(h.metrics.entries.get(), 4);
    }

    #[test]
    fn last_gives_a_rooms_newest_events_oldest_first() {
        let h = history(1 << 20);
        let s = spec(5, 60_000);
        for _ in 0..7 {
            append(&h, "a", s);
        }
        let last = |n| h.lock().last("a", n).iter().map(|k| k.offset).collect::<Vec<_>>();
        assert_eq!(last(3), vec![5, 6, 7]);
        assert_eq!(last(10), vec![3, 4, 5, 6, 7], "no more than the room holds");
        assert!(h.lock().last("nope", 3).is_empty());
    }

    #[test]
    fn events_age_out_and_an_emptied_room_gets_a_new_epoch() {
        let h = history(1 << 20);
        let s = spec(10, 30);
        let first = append(&h, "a", s);
        append(&h, "a", s);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(since(&h, "a", 1, &first.epoch), None, "aged out");
        h.sweep();
        assert_eq!(h.counts(), (0, 0));
        assert_eq!(h.metrics.evicted_age.get(), 2);
        let again = append(&h, "a", s);
        assert_eq!(again.offset, 1);
        assert_ne!(again.epoch, first.epoch);
    }

    #[test]
    fn the_node_budget_drops_the_oldest_events_first_and_counts_them() {
        let h = history(2_000);
        let s = spec(1_000, 60_000);
        for i in 0..40 {
            append(&h, if i % 2 == 0 { "a" } else { "b" }, s);
        }
        let used = h.budget.used.load(Ordering::Relaxed);
        assert!(used <= 2_000, "{used}");
        assert!(h.metrics.evicted_bytes.get() > 0);
        let (_, held) = h.counts();
        assert_eq!(h.metrics.entries.get() as usize, held);
        assert_eq!(h.metrics.bytes.get() as usize, used);
        // What is left is the newest of both rooms.
        let rooms = h.rooms.lock().unwrap();
        let a = &rooms.rooms["a"];
        assert_eq!(a.entries.back().unwrap().kept.offset, 20);
        assert_eq!(rooms.oldest.len(), rooms.rooms.len());
    }

    #[test]
    fn a_forgotten_history_recovers_nothing_and_numbers_anew() {
        let h = history(1 << 20);
        let s = spec(10, 60_000);
        let first = append(&h, "a", s);
        append(&h, "a", s);
        h.forget();
        assert_eq!(h.counts(), (0, 0));
        assert_eq!(h.budget.used.load(Ordering::Relaxed), 0);
        assert_eq!(h.metrics.evicted_lost.get(), 2);
        assert_eq!(since(&h, "a", 1, &first.epoch), None);
        assert_ne!(append(&h, "a", s).epoch, first.epoch);
    }

    #[test]
    fn given_positions_are_kept_as_given_and_a_hole_or_another_numbering_starts_the_room_again() {
        let h = history(1 << 20);
        let s = spec(10, 60_000);
        // A node that starts late holds the room from the first event it applied.
        assert_eq!(append_given(&h, "a", s, 7, "e1"), Position { offset: 7, epoch: "e1".into() });
        append_given(&h, "a", s, 8, "e1");
        assert_eq!(since(&h, "a", 6, "e1"), Some(vec![7, 8]));
        assert_eq!(since(&h, "a", 5, "e1"), None, "offset 6 was never held here");
        // Offset 9 was numbered but never applied here: the room starts again from 10.
        append_given(&h, "a", s, 10, "e1");
        assert_eq!(since(&h, "a", 7, "e1"), None);
        assert_eq!(since(&h, "a", 9, "e1"), Some(vec![10]));
        assert_eq!(h.metrics.evicted_lost.get(), 2);
        // Another epoch (Redis lost its numbering): the old positions recover nothing.
        append_given(&h, "a", s, 1, "e2");
        assert_eq!(since(&h, "a", 10, "e1"), None);
        assert_eq!(since(&h, "a", 0, "e2"), Some(vec![1]));
        // An event this node numbers itself (applied while Redis was away): a new local epoch.
        let local = append(&h, "a", s);
        assert_eq!(local.offset, 1);
        assert_ne!(&*local.epoch, "e2");
        assert_eq!(since(&h, "a", 0, "e2"), None);
        // And back to the cluster's numbering.
        append_given(&h, "a", s, 2, "e2");
        assert_eq!(since(&h, "a", 1, "e2"), Some(vec![2]));
        assert_eq!(since(&h, "a", 0, &local.epoch), None);
    }

    #[test]
    fn a_position_a_little_ahead_of_this_node_is_ahead_only_for_a_room_the_cluster_numbers() {
        let h = history(1 << 20);
        let s = spec(10, 60_000);
        append_given(&h, "a", s, 1, "e1");
        append_given(&h, "a", s, 2, "e1");
        assert!(matches!(h.lock().since_at("a", 5, "e1"), Some(Since::Ahead(5))));
        assert!(h.lock().since_at("a", 2 + MAX_AHEAD + 1, "e1").is_none(), "too far ahead to believe");
        assert!(h.lock().since_at("a", 5, "e0").is_none(), "another epoch");
        let local = append(&h, "b", s);
        assert!(h.lock().since_at("b", 3, &local.epoch).is_none(), "a room this node numbers is never behind");
    }
}

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
//! texts and filter values take plus a fixed cost per event and per room. An event kept in several
//! rooms of an endpoint is one shared head ([`KeptHead`], the front's message up to its room and
//! position), counted so: its bytes split among the rooms; the front closes it with the room's
//! name and the position when it sends it, so nothing is kept per room and event but the entry.
//! Past the node's budget,
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
    collections::{BTreeMap, HashMap, VecDeque},
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

/// Where an event [`Locked::append_at`] kept stands: its offset, and its room's epoch when the
/// node's budget may have dropped the room meanwhile (else it is read from the room when asked).
#[derive(Debug)]
pub(crate) struct Appended {
    /// Its offset in the room.
    pub offset: u64,
    epoch: Option<Arc<str>>,
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

/// One event as a read gives it back: where it stands in its room, the room's visible name, the
/// front's serialized head for it, and the filter values it was routed with (which of the room's
/// filtered variants it reached; empty for a room without filters), so a recovery sends a member
/// only what its filters let through. The front closes the head with the room and position
/// (they are the room's, kept once, not the event's).
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// Its offset in the room, and the room's epoch.
    pub position: Position,
    /// The room's visible name (a channel, a subscription key), which the message names.
    pub room: Arc<str>,
    /// The front's message for it, up to its room and position.
    pub head: KeptHead,
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

/// A kept event's message as the front serialized it, up to where its room and position go:
/// every room it is kept in shares it (the event, which can be large), and the front closes it
/// with the room's name and the event's position there when it sends it. Nothing is kept per room
/// and event beyond the entry itself.
#[derive(Debug, Clone, Default)]
pub(crate) struct KeptHead {
    /// The message's first part.
    pub bytes: Bytes,
    /// How the front closes it (the front's own code: where the position goes).
    pub form: u8,
    /// The part of `bytes` each room is counted for: the shared head's bytes split among its
    /// rooms, so the budget counts it once, not once a room.
    share: usize,
}

impl KeptHead {
    /// `bytes`, closed as `form` says, shared by `rooms` rooms.
    pub(crate) fn new(bytes: Bytes, form: u8, rooms: usize) -> Self {
        let share = bytes.len().div_ceil(rooms.max(1));
        Self { bytes, form, share }
    }

    /// Whether nothing was kept (the front could not serialize the event).
    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

/// What a room's name and a position add to a kept message, counted per entry beside its share of
/// the head (the front renders them only when it sends the event).
const TAIL_ESTIMATE: usize = 64;

struct Entry {
    offset: u64,
    head: KeptHead,
    reach: FilterReach,
    at: Instant,
    /// Its place in the endpoint's order of appends.
    seq: u64,
    bytes: usize,
}

struct Room {
    /// Its key in the map (the internal name), and its visible name.
    name: Arc<str>,
    visible: Arc<str>,
    epoch: Arc<str>,
    /// The last offset given.
    last: u64,
    /// Numbered by the cluster ([`Given`]), not by this node.
    given: bool,
    spec: HistorySpec,
    entries: VecDeque<Entry>,
    /// When its oldest event was kept: with the room, so that checking its age does not read an
    /// entry written long ago.
    oldest_at: Instant,
    /// Its key in [`Rooms::oldest`]: the `seq` of an event no newer than its oldest.
    listed: u64,
}

impl Room {
    /// Whether its oldest event outlived the room's `ttl` at `now`.
    fn oldest_expired(&self, now: Instant) -> bool {
        !self.entries.is_empty() && now.saturating_duration_since(self.oldest_at) > self.spec.ttl
    }

    /// The event at `entry` as a read gives it back.
    fn kept(&self, entry: &Entry) -> Kept {
        Kept {
            position: Position { offset: entry.offset, epoch: self.epoch.clone() },
            room: self.visible.clone(),
            head: entry.head.clone(),
            reach: entry.reach.clone(),
        }
    }
}

/// Why events leave a history before a recovery could read them (in [`Tally::evicted`]'s order).
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
    /// Each room holding events once, by the `seq` of its oldest event when it was listed: the
    /// endpoint's oldest event first. A room's own evictions (one per append, past its size) do
    /// not move it: its key only gets older than its oldest event, never newer, so the first
    /// key whose room still starts with that event is the endpoint's oldest, and only the
    /// budget's evictions look for it, moving the rooms listed too early on their way
    /// ([`Locked::drop_endpoints_oldest`]). Keyed by `seq` alone (unique), so moving a room moves
    /// its name, with no copy.
    oldest: BTreeMap<u64, Arc<str>>,
    seq: u64,
    /// What was added and dropped under the lock, not yet applied to the shared budget and
    /// metrics.
    tally: Tally,
}

/// Changes to the node's budget and the history's metrics made under the lock. Each of those is
/// an atomic that other threads touch too: the budget is settled once per append and the metrics
/// once the lock is let go, instead of several times per event and room.
#[derive(Debug, Default)]
struct Tally {
    /// Bytes kept and freed since the budget was settled.
    added: usize,
    freed: usize,
    /// Since the metrics were settled: the change in entries and bytes held, and evictions by
    /// reason (in [`Eviction`]'s order).
    entries: i64,
    bytes: i64,
    evicted: [u64; 4],
}

impl Tally {
    fn kept(&mut self, bytes: usize) {
        self.added += bytes;
        self.entries += 1;
        self.bytes += bytes as i64;
    }

    fn dropped(&mut self, bytes: usize, why: Eviction) {
        self.freed += bytes;
        self.entries -= 1;
        self.bytes -= bytes as i64;
        self.evicted[why as usize] += 1;
    }

    /// Applies the bytes kept and freed to the node's budget; returns what it holds now.
    fn settle_budget(&mut self, budget: &HistoryBudget) -> usize {
        let (added, freed) = (std::mem::take(&mut self.added), std::mem::take(&mut self.freed));
        let before = match added >= freed {
            true => budget.used.fetch_add(added - freed, Ordering::Relaxed),
            false => budget.used.fetch_sub(freed - added, Ordering::Relaxed),
        };
        (before + added).saturating_sub(freed)
    }

    /// Applies the entries, bytes and evictions to the metrics.
    fn settle_metrics(&mut self, metrics: &HistoryMetrics) {
        if self.entries != 0 {
            metrics.entries.inc_by(std::mem::take(&mut self.entries));
        }
        if self.bytes != 0 {
            metrics.bytes.inc_by(std::mem::take(&mut self.bytes));
        }
        let counters = [&metrics.evicted_size, &metrics.evicted_age, &metrics.evicted_bytes, &metrics.evicted_lost];
        for (counter, n) in counters.into_iter().zip(std::mem::take(&mut self.evicted)) {
            if n > 0 {
                counter.inc_by(n);
            }
        }
    }
}

/// The endpoint's history, locked (see the module's comment).
pub(crate) struct Locked<'a> {
    rooms: MutexGuard<'a, Rooms>,
    history: &'a History,
}

impl Drop for Locked<'_> {
    fn drop(&mut self) {
        let history = self.history;
        let tally = &mut self.rooms.tally;
        tally.settle_budget(&history.budget);
        tally.settle_metrics(&history.metrics);
    }
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
    /// Appends an event to `room` (internal name; `visible`: the name its messages give it), kept
    /// as `spec` says, at the position the cluster gave it there (`None`: numbered by this node);
    /// returns where it stands ([`Self::position`] gives the whole position to a caller that sends
    /// it: the room's epoch is copied only then). A room numbered the other way, of another epoch, or whose last offset is not
    /// the one before, starts again from this event (what it held is dropped, counted as `lost`).
    pub(crate) fn append_at(
        &mut self,
        room: &str,
        visible: &str,
        spec: HistorySpec,
        reach: FilterReach,
        given: Option<&Position>,
        head: KeptHead,
    ) -> Appended {
        let now = Instant::now();
        let history = self.history;
        let Rooms { rooms, oldest, seq, tally } = &mut *self.rooms;
        *seq += 1;
        let seq = *seq;
        // The room as it stands, its aged events dropped; all of them when the event does not
        // follow them. A room left empty is forgotten with its epoch and starts again.
        let kept_on = match rooms.get_mut(room) {
            Some(r) => {
                while r.oldest_expired(now) {
                    pop_oldest(r, oldest, tally, Eviction::Age);
                }
                let follows = match given {
                    Some(p) => r.given && r.epoch == p.epoch && p.offset == r.last + 1,
                    None => !r.given,
                };
                while !follows && !r.entries.is_empty() {
                    pop_oldest(r, oldest, tally, Eviction::Lost);
                }
                !r.entries.is_empty()
            }
            None => false,
        };
        let created = !kept_on;
        let r = match rooms.get_mut(room) {
            Some(r) if kept_on => r,
            _ => {
                let name: Arc<str> = Arc::from(room);
                let (epoch, last, given) = match given {
                    Some(p) => (p.epoch.clone(), p.offset.saturating_sub(1), true),
                    None => (new_epoch(), 0, false),
                };
                let fresh = Room {
                    name: name.clone(),
                    visible: Arc::from(visible),
                    epoch,
                    last,
                    given,
                    spec,
                    entries: VecDeque::new(),
                    oldest_at: now,
                    listed: seq,
                };
                match rooms.entry(name) {
                    std::collections::hash_map::Entry::Occupied(mut slot) => {
                        slot.insert(fresh);
                        slot.into_mut()
                    }
                    std::collections::hash_map::Entry::Vacant(slot) => slot.insert(fresh),
                }
            }
        };
        // A spec is fixed for the process; the latest is kept all the same.
        r.spec = spec;
        r.last += 1;
        let offset = r.last;
        let bytes = ENTRY_OVERHEAD
            + head.share
            + TAIL_ESTIMATE
            + reach.bytes()
            + if created { ROOM_OVERHEAD + room.len() + visible.len() } else { 0 };
        if r.entries.is_empty() {
            oldest.insert(seq, r.name.clone());
            r.listed = seq;
            r.oldest_at = now;
        }
        r.entries.push_back(Entry { offset, head, reach, at: now, seq, bytes });
        tally.kept(bytes);
        while r.entries.len() > r.spec.size {
            pop_oldest(r, oldest, tally, Eviction::Size);
        }
        // Within its size the room still holds this event: it is not emptied here. Past the
        // node's budget, the oldest events go, which may be this room's, all of them: its epoch
        // is taken first.
        let mut used = tally.settle_budget(&history.budget);
        let epoch = (used > history.budget.total).then(|| r.epoch.clone());
        while used > history.budget.total && self.drop_endpoints_oldest() {
            used = self.rooms.tally.settle_budget(&history.budget);
        }
        Appended { offset, epoch }
    }

    /// Drops the endpoint's oldest event (for the node's budget); false when it holds none.
    fn drop_endpoints_oldest(&mut self) -> bool {
        let Rooms { rooms, oldest, .. } = &mut *self.rooms;
        let name = loop {
            let Some((&key, name)) = oldest.first_key_value() else { return false };
            let name = name.clone();
            match rooms.get_mut(&name).and_then(|r| Some((r.entries.front()?.seq, r))) {
                Some((seq, _)) if seq == key => break name,
                // Listed before its oldest event: moved to where that event stands.
                Some((seq, r)) => {
                    r.listed = seq;
                    oldest.remove(&key);
                    oldest.insert(seq, name);
                }
                // Not held (the map and the list disagree, which nothing should make happen).
                None => {
                    oldest.remove(&key);
                }
            }
        };
        self.drop_oldest(&name, Eviction::Bytes);
        true
    }

    /// The position of an event just appended to `room`.
    pub(crate) fn position(&self, room: &str, appended: &Appended) -> Position {
        let epoch = match &appended.epoch {
            Some(epoch) => Some(epoch.clone()),
            None => self.rooms.rooms.get(room).map(|r| r.epoch.clone()),
        };
        // Without a budget to meet the room is still there: its epoch is always found.
        Position { offset: appended.offset, epoch: epoch.unwrap_or_else(|| Arc::from("")) }
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
        let first = r.entries.front().map_or(r.last + 1, |e| e.offset);
        if first > offset + 1 {
            return None;
        }
        Some(Since::Events(r.entries.iter().filter(|e| e.offset > offset).map(|e| r.kept(e)).collect()))
    }

    /// The last `n` events of `room` (fewer when it holds fewer), oldest first: what a late
    /// joiner is sent.
    pub(crate) fn last(&mut self, room: &str, n: usize) -> Vec<Kept> {
        self.expire(room, Instant::now());
        let Some(r) = self.rooms.rooms.get(room) else { return Vec::new() };
        r.entries.iter().skip(r.entries.len().saturating_sub(n)).map(|e| r.kept(e)).collect()
    }

    /// Drops `room`'s events older than its `ttl`; a room left empty is forgotten.
    fn expire(&mut self, room: &str, now: Instant) {
        let Rooms { rooms, oldest, tally, .. } = &mut *self.rooms;
        let Some(r) = rooms.get_mut(room) else { return };
        if !r.oldest_expired(now) {
            return;
        }
        while r.oldest_expired(now) {
            pop_oldest(r, oldest, tally, Eviction::Age);
        }
        if r.entries.is_empty() {
            rooms.remove(room);
        }
    }

    /// Drops the oldest event of `room`, counted for `why`; a room left empty is forgotten.
    fn drop_oldest(&mut self, room: &str, why: Eviction) {
        let Rooms { rooms, oldest, tally, .. } = &mut *self.rooms;
        let Some(r) = rooms.get_mut(room) else { return };
        pop_oldest(r, oldest, tally, why);
        if r.entries.is_empty() {
            rooms.remove(room);
        }
    }
}

/// Drops the oldest event of `r`, counted for `why` in `tally`; a room left empty leaves `oldest`
/// (the rooms by their oldest event), and stays in the map: its caller forgets it.
fn pop_oldest(r: &mut Room, oldest: &mut BTreeMap<u64, Arc<str>>, tally: &mut Tally, why: Eviction) {
    let Some(entry) = r.entries.pop_front() else { return };
    match r.entries.front() {
        Some(next) => r.oldest_at = next.at,
        None => {
            oldest.remove(&r.listed);
        }
    }
    tally.dropped(entry.bytes, why);
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
        let head = KeptHead::new(Bytes::from_static(b"e"), 0, 1);
        let mut locked = h.lock();
        let appended = locked.append_at(room, room, spec, FilterReach::default(), None, head);
        locked.position(room, &appended)
    }

    fn append_given(h: &History, room: &str, spec: HistorySpec, offset: u64, epoch: &str) -> Position {
        let given = Position { offset, epoch: epoch.into() };
        let head = KeptHead::new(Bytes::from_static(b"e"), 0, 1);
        let mut locked = h.lock();
        let appended = locked.append_at(room, room, spec, FilterReach::default(), Some(&given), head);
        locked.position(room, &appended)
    }

    /// The offsets recovered after `offset` (`None`: not recovered, or ahead).
    fn since(h: &History, room: &str, offset: u64, epoch: &str) -> Option<Vec<u64>> {
        match h.lock().since_at(room, offset, epoch)? {
            Since::Events(kept) => Some(kept.iter().map(|k| k.position.offset).collect()),
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
        let last = |n| h.lock().last("a", n).iter().map(|k| k.position.offset).collect::<Vec<_>>();
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
        assert_eq!(a.entries.back().unwrap().offset, 20);
        assert_eq!(rooms.oldest.len(), rooms.rooms.len());
    }

    #[test]
    fn the_budget_finds_the_oldest_event_though_rooms_dropped_their_own_since_they_were_listed() {
        let h = history(1 << 20);
        let (small, large) = (spec(2, 60_000), spec(100, 60_000));
        for room in ["a", "a", "b", "a", "a"] {
            append(&h, room, if room == "a" { small } else { large });
        }
        // "a" holds the 4th and 5th events, listed by the 1st; "b" holds the 3rd: the oldest.
        assert!(h.lock().drop_endpoints_oldest());
        assert_eq!(h.counts(), (1, 2), "b's event went, and b with it");
        assert!(h.lock().drop_endpoints_oldest());
        let left: Vec<u64> = h.lock().last("a", 10).iter().map(|k| k.position.offset).collect();
        assert_eq!(left, vec![4]);
        assert!(h.lock().drop_endpoints_oldest());
        assert!(!h.lock().drop_endpoints_oldest(), "nothing is left");
        assert_eq!(h.counts(), (0, 0));
        assert!(h.rooms.lock().unwrap().oldest.is_empty());
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

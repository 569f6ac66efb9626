//! The node's feed of published events, for the backend event stream (`http::stream`): every
//! event published to the gateway, in one order, each with an id, and a history of recent ones
//! bounded in count and bytes, from which a consumer resumes.
//!
//! **Ids**: in a cluster the bus is N shards (Redis streams), each in one order on every node,
//! interleaved differently on each; the cluster feeds what it reads off each shard (every node's
//! entries, its own included) and nothing else. An event's place in its shard is `<ms>-<seq>.<index>`
//! (the entry's stream id, then its index in the entry), and its id on the stream is the frontier
//! after it (`node::cursor`): for each shard the last event of it fed here at or before this one.
//! A consumer resumes from a frontier on any node: per shard, every held event after its slot
//! (`Resume`, then `Cursor` while it differs from this node's). With one shard the frontier is
//! the event's own position, so ids are the same on every node, as before shards. On a single
//! node the feed makes positions the same way (milliseconds, then a counter), so ids still order
//! by time across restarts.
//!
//! Each event is framed for SSE once (`id:` and one `data:` line of JSON), here, and shared by
//! every consumer (a resumed consumer whose frontier is ahead of this node's in some shard frames
//! its own ids until this node catches up). Consumers do not copy events into queues of their
//! own: each reads the history from its place (an ordinal), so what one consumer holds is its
//! place, and how far behind it is comes from ordinals and byte offsets (`lag`), which
//! `http::stream` bounds.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::sync::watch;

mod cursor;

use crate::{clock::now_millis, config::EventStreamConfig, engine::PublishedEvent};
pub(crate) use cursor::Cursor;
use cursor::{EventId, Frontier};

/// One event as the stream sends it.
#[derive(Debug)]
pub(crate) struct FedEvent {
    /// The bus shard it came through (0 on a single node).
    pub shard: usize,
    /// Its place in that shard.
    pub id: EventId,
    /// Its type, which consumers filter on.
    pub event_type: String,
    /// Its tenant, which consumers filter on.
    pub tenant: Option<String>,
    /// `id: <frontier>\ndata: {...}\n\n`, made once.
    pub frame: Bytes,
    /// Bytes of every event fed before it (its frame's offset in the feed).
    pub offset: u64,
}

/// A fed event's JSON, borrowed from the published event.
#[derive(serde::Serialize)]
struct FedFields<'a> {
    #[serde(rename = "type")]
    event_type: &'a str,
    #[serde(rename = "tenantId")]
    tenant_id: Option<&'a str>,
    data: &'a serde_json::Value,
    timestamp: &'a str,
    #[serde(rename = "eventId", skip_serializing_if = "Option::is_none")]
    event_id: Option<&'a str>,
}

impl FedEvent {
    fn new(shard: usize, id: EventId, frontier: &Frontier, event: &PublishedEvent, offset: u64) -> Self {
        // `{type, tenantId, data, timestamp}`: the published event as `POST /api/v1/events`
        // takes it, and `eventId` when its publisher named it (`id` there). Serialized from the
        // event where it is: no copy of its data is made for the frame.
        let fields = FedFields {
            event_type: event.event_type(),
            tenant_id: event.tenant_id(),
            data: event.published_data(),
            timestamp: event.timestamp(),
            event_id: event.id(),
        };
        // JSON escapes line breaks, so the event is one `data:` line.
        let mut frame = format!("id: {frontier}\ndata: ").into_bytes();
        if let Err(e) = serde_json::to_writer(&mut frame, &fields) {
            // A map whose keys are not strings cannot come from JSON; nothing else fails.
            tracing::error!(error = %e, "an event could not be serialized for the event stream");
            frame.extend_from_slice(b"null");
        }
        frame.extend_from_slice(b"\n\n");
        Self {
            shard,
            id,
            event_type: event.event_type().to_string(),
            tenant: event.tenant_id().map(str::to_string),
            frame: Bytes::from(frame),
            offset,
        }
    }

    /// What it costs to hold: its frame and its fields.
    fn bytes(&self) -> usize {
        self.frame.len() + self.event_type.len() + self.tenant.as_ref().map_or(0, String::len) + 64
    }
}

/// Where a consumer starts, and what it was told about a gap.
#[derive(Debug)]
pub(crate) struct Resume {
    /// The ordinal of the first event it reads.
    pub ordinal: u64,
    /// The byte offset of that event (see [`EventFeed::lag`]).
    pub offset: u64,
    /// Set when the history no longer holds every event after the id asked for.
    pub gap: Option<Gap>,
    /// Set while the consumer's frontier differs from this node's: what it skips (events it
    /// had; this node may not have read that far in a shard yet) and the ids it sends.
    pub cursor: Option<Cursor>,
}

/// Events a resuming consumer cannot get: the `event: gap` it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The id it asked to resume after.
    pub last_event_id: String,
    /// The id of the first event held that it is sent, which it continues with; `None` when
    /// none is held.
    pub resumed_from: Option<String>,
}

/// What a read from the history found.
#[derive(Debug)]
pub(crate) enum Read {
    /// Events from the ordinal asked for (none: nothing new yet), and the ordinal after them.
    Events(Vec<Arc<FedEvent>>, u64),
    /// The ordinal asked for is no longer held: the consumer fell behind the history.
    Evicted,
}

/// The feed: history, newest position, and who to wake.
pub(crate) struct EventFeed {
    history: Mutex<History>,
    /// The ordinal after the newest event, and whether the feed is closed (the node stops):
    /// consumers wait on it.
    head: watch::Sender<(u64, bool)>,
    /// Count and bytes the history keeps.
    limits: (usize, usize),
}

struct History {
    events: VecDeque<Arc<FedEvent>>,
    /// The ordinal of `events[0]` (of the next event when there is none).
    first: u64,
    bytes: usize,
    /// Per shard, the frontier before `events[0]`: where this node began the shard, or its
    /// newest evicted event. Resuming from a slot below it has a gap (events after it may be
    /// gone).
    floor: Vec<EventId>,
    /// Per shard, the last event fed (or where this node began it): the newest event's id.
    frontier: Frontier,
    /// The last position given to a local batch: new ones come after it.
    position: (u64, u64),
    /// Bytes of every frame ever fed.
    offset: u64,
}

impl EventFeed {
    /// An empty feed of one shard that starts now, holding what `config` says.
    pub(crate) fn new(config: &EventStreamConfig) -> Self {
        let start = now_millis();
        Self {
            history: Mutex::new(History {
                events: VecDeque::new(),
                first: 0,
                bytes: 0,
                floor: vec![EventId::through(start, 0)],
                frontier: Frontier(vec![EventId::through(start, 0)]),
                position: (start, 0),
                offset: 0,
            }),
            head: watch::channel((0, false)).0,
            limits: (config.history_events.max(1), config.history_bytes),
        }
    }

    fn history(&self) -> std::sync::MutexGuard<'_, History> {
        self.history.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bus has `shards` shards (at least 1): ids are frontiers over them. Called once, before
    /// [`EventFeed::start_at`] and before anything is fed; what was held is dropped.
    pub(crate) fn set_shards(&self, shards: usize) {
        let head = {
            let mut history = self.history();
            let start = EventId::through(history.position.0, history.position.1);
            history.first += history.events.len() as u64;
            history.events.clear();
            history.bytes = 0;
            history.floor = vec![start; shards.max(1)];
            history.frontier = Frontier(history.floor.clone());
            history.first
        };
        self.head.send_modify(|(ordinal, _)| *ordinal = head);
    }

    /// The shards ids are frontiers over.
    pub(crate) fn shards(&self) -> usize {
        self.history().floor.len()
    }

    /// From now on shard `shard`'s positions are the bus's: its events come after the stream
    /// position `ms-seq`, where this node started reading it (a cluster member, before it reads).
    pub(crate) fn start_at(&self, shard: usize, ms: u64, seq: u64) {
        let mut history = self.history();
        let Some(floor) = history.floor.get_mut(shard) else {
            tracing::error!(shard, "the event feed has no such shard; its start is ignored");
            return;
        };
        *floor = EventId::through(ms, seq);
        history.frontier.0[shard] = EventId::through(ms, seq);
        if shard == 0 {
            history.position = (ms, seq);
        }
    }

    /// Feeds a batch published on this node alone (shard 0), giving it the next position.
    pub(crate) fn push_local(&self, events: &[PublishedEvent]) {
        let position = {
            let mut history = self.history();
            let (ms, seq) = history.position;
            let now = now_millis();
            // As Redis numbers stream entries: a clock that went back does not reorder.
            history.position = if now > ms { (now, 0) } else { (ms, seq + 1) };
            history.position
        };
        self.push(0, position, events);
    }

    /// Feeds a batch at position `ms-seq` of shard `shard` (the cluster's bus, in the shard's
    /// stream order).
    pub(crate) fn push_at(&self, shard: usize, ms: u64, seq: u64, events: &[PublishedEvent]) {
        self.push(shard, (ms, seq), events);
    }

    fn push(&self, shard: usize, (ms, seq): (u64, u64), events: &[PublishedEvent]) {
        if events.is_empty() {
            return;
        }
        let head = {
            let mut history = self.history();
            let Some(&last) = history.frontier.0.get(shard) else {
                tracing::error!(shard, "the event feed has no such shard; a batch is not fed");
                return;
            };
            let first_id = EventId { ms, seq, index: 0 };
            if last >= first_id {
                // Only a stream recreated empty with a clock behind the old one's gets here: its
                // ids do not follow the history's, so the history starts again (consumers
                // reading it are behind, and cut; a resume from an old id is a gap).
                tracing::warn!(shard, position = %first_id, "the event stream's ids went back; its history starts again");
                while history.evict_oldest() {}
                history.floor[shard] = EventId::through(ms, seq.saturating_sub(1));
            }
            if shard == 0 {
                history.position = history.position.max((ms, seq));
            }
            for (index, event) in events.iter().enumerate() {
                let id = EventId { ms, seq, index: u32::try_from(index).unwrap_or(u32::MAX - 1) };
                history.frontier.0[shard] = id;
                let fed = Arc::new(FedEvent::new(shard, id, &history.frontier, event, history.offset));
                history.offset += fed.frame.len() as u64;
                history.bytes += fed.bytes();
                history.events.push_back(fed);
            }
            let (count, bytes) = self.limits;
            while history.events.len() > count || (history.bytes > bytes && history.events.len() > 1) {
                history.evict_oldest();
            }
            history.first + history.events.len() as u64
        };
        self.head.send_modify(|(ordinal, _)| *ordinal = head);
    }

    /// Where a consumer starts: after `last_event_id` (a frontier), per shard, when the history
    /// still holds every event after its slot; else, for the shards it does not, at the oldest
    /// event held, with the gap said; with no id, at the next event. An id that is not one of
    /// this feed's (unreadable, or not one slot per shard) is a gap in every shard.
    pub(crate) fn resume(&self, last_event_id: Option<&str>) -> Resume {
        let history = self.history();
        let head = history.first + history.events.len() as u64;
        let Some(asked) = last_event_id else {
            return Resume { ordinal: head, offset: history.offset, gap: None, cursor: None };
        };
        let shards = history.floor.len();
        let (mut skip, gap) = match Frontier::parse(asked, shards) {
            // A slot below the floor is a gap in that shard: the consumer takes every held event
            // of it, and still skips what it had of the others.
            Some(Frontier(slots)) => {
                let skip: Vec<_> =
                    slots.iter().zip(&history.floor).map(|(slot, floor)| (slot >= floor).then_some(*slot)).collect();
                let gap = skip.iter().any(Option::is_none);
                (skip, gap)
            }
            None => (vec![None; shards], true),
        };
        // The first held event it takes, and the node's frontier just before it.
        let mut before = Frontier(history.floor.clone());
        let start = history.events.iter().position(|event| {
            let takes = skip[event.shard].is_none_or(|last| event.id > last);
            if !takes {
                before.0[event.shard] = event.id;
            }
            takes
        });
        // Where this node had fed through a slot before that event, every later event of the
        // shard is new to the consumer: nothing to skip there. Else it has had, per shard, the
        // larger of its slot and this node's.
        for (slot, skip) in before.0.iter_mut().zip(&mut skip) {
            match *skip {
                Some(last) if last <= *slot => *skip = None,
                Some(last) => *slot = last,
                None => {}
            }
        }
        let index = start.unwrap_or(history.events.len());
        let ordinal = history.first + index as u64;
        let cursor = Cursor::new(skip, before.clone());
        let gap = gap.then(|| Gap {
            last_event_id: asked.to_string(),
            resumed_from: start.map(|i| {
                let event = &history.events[i];
                match &cursor {
                    Some(cursor) => cursor.id_of(event),
                    None => frame_id(event),
                }
            }),
        });
        Resume { ordinal, offset: history.offset_of(ordinal), gap, cursor }
    }

    /// Up to `max` events from `ordinal` on.
    pub(crate) fn read(&self, ordinal: u64, max: usize) -> Read {
        let history = self.history();
        if ordinal < history.first {
            return Read::Evicted;
        }
        let from = (ordinal - history.first) as usize;
        let events: Vec<_> = history.events.iter().skip(from).take(max).cloned().collect();
        let next = ordinal + events.len() as u64;
        Read::Events(events, next)
    }

    /// How far behind the newest event a consumer at `ordinal` (byte offset `offset`) is: events
    /// and bytes; `None` when its place is no longer held.
    pub(crate) fn lag(&self, ordinal: u64, offset: u64) -> Option<(u64, u64)> {
        let history = self.history();
        if ordinal < history.first {
            return None;
        }
        let head = history.first + history.events.len() as u64;
        Some((head.saturating_sub(ordinal), history.offset.saturating_sub(offset)))
    }

    /// Watches the newest ordinal and whether the feed is closed.
    pub(crate) fn watch(&self) -> watch::Receiver<(u64, bool)> {
        self.head.subscribe()
    }

    /// The node stops: every consumer's stream ends (its client resumes elsewhere).
    pub(crate) fn close(&self) {
        self.head.send_modify(|(_, closed)| *closed = true);
    }

    /// Events held now, for tests and statistics.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.history().events.len()
    }
}

/// The id in an event's shared frame (`id: <id>` is its first line).
fn frame_id(event: &FedEvent) -> String {
    let line = event.frame.split(|b| *b == b'\n').next().unwrap_or_default();
    String::from_utf8_lossy(line.strip_prefix(b"id: ").unwrap_or(line)).into_owned()
}

impl History {
    /// The byte offset of the event at `ordinal` (the total fed, at the head).
    fn offset_of(&self, ordinal: u64) -> u64 {
        let index = ordinal.saturating_sub(self.first) as usize;
        self.events.get(index).map_or(self.offset, |e| e.offset)
    }

    /// Drops the oldest event: its shard's floor moves up to it. `false` when none is held.
    fn evict_oldest(&mut self) -> bool {
        let Some(oldest) = self.events.pop_front() else { return false };
        self.bytes -= oldest.bytes();
        self.first += 1;
        if let Some(floor) = self.floor.get_mut(oldest.shard) {
            *floor = (*floor).max(oldest.id);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::cursor::Admit;
    use super::*;
    use serde_json::json;

    fn event(n: u64) -> PublishedEvent {
        PublishedEvent::from_json(json!({ "type": "t.x", "tenantId": "a", "data": { "n": n } }), "e").unwrap()
    }

    fn feed(count: usize) -> EventFeed {
        EventFeed::new(&EventStreamConfig { history_events: count, ..Default::default() })
    }

    fn ids(feed: &EventFeed, from: u64) -> Vec<String> {
        match feed.read(from, 100) {
            Read::Events(events, _) => events.iter().map(|e| frame_id(e)).collect(),
            Read::Evicted => panic!("evicted"),
        }
    }

    #[test]
    fn ids_parse_and_order() {
        let id = |s| EventId::parse(s).expect(s);
        assert_eq!(id("1733390000000-3.0").to_string(), "1733390000000-3.0");
        assert!(id("5-9.3") < id("6-0.0"));
        assert!(id("6-0.1") < id("6-1.0"));
        assert!(id("6-1.2") < id("6-1.10"));
        for bad in ["", "1-2", "1.2", "a-1.0", "1-b.0", "1-2.x", "-1.0", "1-2.3.4", "1-2.-3"] {
            assert_eq!(EventId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn frames_are_one_id_and_one_data_line() {
        let feed = feed(10);
        feed.push_at(0, 7, 1, &[event(1), event(2)]);
        let Read::Events(events, next) = feed.read(0, 10) else { panic!() };
        assert_eq!(next, 2);
        let text = std::str::from_utf8(&events[1].frame).unwrap();
        assert!(text.starts_with("id: 7-1.1\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n") && text.matches('\n').count() == 3, "{text}");
    }

    #[test]
    fn resumes_after_a_held_id_and_says_a_gap_past_the_history() {
        let feed = feed(3);
        feed.start_at(0, 10, 0);
        for seq in 1..=5 {
            feed.push_at(0, 10, seq, &[event(seq)]);
        }
        assert_eq!(feed.held(), 3);
        // Held: 10-3, 10-4, 10-5.
        let resume = feed.resume(Some("10-3.0"));
        assert_eq!((resume.ordinal, resume.gap), (3, None));
        assert_eq!(ids(&feed, resume.ordinal), ["10-4.0", "10-5.0"]);
        // The newest evicted: nothing after it is missing.
        assert_eq!(feed.resume(Some("10-2.0")).gap, None);
        // Before it: a gap, continuing with the oldest held.
        let gap = feed.resume(Some("10-1.0"));
        assert_eq!(gap.ordinal, 2);
        assert_eq!(gap.gap.unwrap().resumed_from.as_deref(), Some("10-3.0"));
        // Not an id at all, or from before this node fed anything: a gap too.
        assert!(feed.resume(Some("junk")).gap.is_some());
        assert!(feed.resume(Some("9-0.0")).gap.is_some());
        // Ahead of everything: from the next event on (another node may be ahead of this one),
        // skipping what this node feeds up to it.
        let mut ahead = feed.resume(Some("11-0.0"));
        assert_eq!((ahead.ordinal, ahead.gap), (5, None));
        feed.push_at(0, 11, 0, &[event(6), event(7)]);
        let Read::Events(events, _) = feed.read(5, 10) else { panic!() };
        let cursor = ahead.cursor.as_mut().unwrap();
        assert!(matches!(cursor.admit(&events[0]), Admit::Skip));
        assert!(matches!(cursor.admit(&events[1]), Admit::Send(frame) if frame == events[1].frame));
        assert!(cursor.done());
        assert!(feed.resume(Some("10-5.0")).cursor.is_none());
        assert!(matches!(feed.read(0, 10), Read::Evicted));
    }

    #[test]
    fn lag_counts_events_and_bytes_behind() {
        let feed = feed(10);
        feed.push_at(0, 1, 1, &[event(1), event(2)]);
        let Read::Events(events, _) = feed.read(0, 10) else { panic!() };
        let all = events.iter().map(|e| e.frame.len() as u64).sum::<u64>();
        assert_eq!(feed.lag(0, 0), Some((2, all)));
        assert_eq!(feed.lag(2, all), Some((0, 0)));
    }

    #[test]
    fn local_positions_increase_and_bytes_bound_the_history() {
        let feed = EventFeed::new(&EventStreamConfig { history_bytes: 1, ..Default::default() });
        feed.push_local(&[event(1)]);
        feed.push_local(&[event(2)]);
        assert_eq!(feed.held(), 1, "over its bytes, only the newest is kept");
        let Read::Events(events, _) = feed.read(1, 10) else { panic!() };
        let first = feed.resume(None);
        assert_eq!(first.ordinal, 2);
        assert!(events[0].id > EventId::parse("0-0.0").unwrap());
    }

    /// A consumer as `http::stream` reads: its place, its cursor, the last id it was sent.
    struct Reader {
        ordinal: u64,
        cursor: Option<Cursor>,
        last: Option<String>,
        gap: Option<Gap>,
    }

    impl Reader {
        fn resume(feed: &EventFeed, id: Option<&str>) -> Self {
            let resume = feed.resume(id);
            Self { ordinal: resume.ordinal, cursor: resume.cursor, last: id.map(str::to_string), gap: resume.gap }
        }

        /// Everything it is sent now: each event's shard, place and the id sent.
        fn drain(&mut self, feed: &EventFeed) -> Vec<(usize, EventId, String)> {
            let Read::Events(events, next) = feed.read(self.ordinal, usize::MAX) else { panic!("evicted") };
            self.ordinal = next;
            let mut sent = Vec::new();
            for event in events {
                let Some(frame) = Cursor::frame(&mut self.cursor, &event) else { continue };
                let text = std::str::from_utf8(&frame).unwrap();
                let id = text.strip_prefix("id: ").unwrap().split('\n').next().unwrap().to_string();
                // Its own id, the event's data line.
                let data = &event.frame[4 + frame_id(&event).len()..];
                assert!(frame.ends_with(data), "{text}");
                self.last = Some(id.clone());
                sent.push((event.shard, event.id, id));
            }
            sent
        }
    }

    /// Entries of `shards` shards (one or two events each) fed to a feed in an order of `seed`'s.
    fn entries(shards: usize, per_shard: u64) -> Vec<(usize, u64, usize)> {
        (0..shards).flat_map(|s| (1..=per_shard).map(move |seq| (s, seq, 1 + (seq as usize + s) % 2))).collect()
    }

    fn interleave(entries: &[(usize, u64, usize)], shards: usize, mut seed: u64) -> Vec<(usize, u64, usize)> {
        // Each shard's entries in their order, the shards taken in a random order.
        let mut queues: Vec<VecDeque<_>> =
            (0..shards).map(|s| entries.iter().filter(|e| e.0 == s).copied().collect()).collect();
        let mut order = Vec::new();
        while queues.iter().any(|q| !q.is_empty()) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let open: Vec<_> = (0..shards).filter(|s| !queues[*s].is_empty()).collect();
            let shard = open[(seed % open.len() as u64) as usize];
            order.extend(queues[shard].pop_front());
        }
        order
    }

    fn sharded(shards: usize, count: usize) -> EventFeed {
        let feed = feed(count);
        feed.set_shards(shards);
        for shard in 0..shards {
            feed.start_at(shard, 100, 0);
        }
        feed
    }

    fn push(feed: &EventFeed, entries: &[(usize, u64, usize)]) {
        for &(shard, seq, events) in entries {
            let batch: Vec<_> = (0..events as u64).map(|i| event(seq * 10 + i)).collect();
            feed.push_at(shard, 100, seq, &batch);
        }
    }

    fn all_events(entries: &[(usize, u64, usize)]) -> Vec<(usize, EventId)> {
        let mut all: Vec<_> = entries
            .iter()
            .flat_map(|&(shard, seq, n)| (0..n as u32).map(move |index| (shard, EventId { ms: 100, seq, index })))
            .collect();
        all.sort();
        all
    }

    /// `had` then `then` is every event exactly once.
    fn exactly_once(had: &[(usize, EventId)], then: &[(usize, EventId, String)], all: &[(usize, EventId)]) {
        let mut got: Vec<_> = had.iter().copied().chain(then.iter().map(|(s, id, _)| (*s, *id))).collect();
        got.sort();
        assert_eq!(got, all, "had {had:?}, then {then:?}");
    }

    #[test]
    fn two_shards_interleaved_differently_resume_exactly_on_each_other() {
        let shards = 2;
        let entries = entries(shards, 6);
        let all = all_events(&entries);
        for seed in 1..=20u64 {
            let (a, b) = (sharded(shards, 100), sharded(shards, 100));
            push(&a, &interleave(&entries, shards, seed));
            push(&b, &interleave(&entries, shards, seed.wrapping_mul(7919) + 3));
            let from_a = Reader::resume(&a, None).drain(&a);
            assert!(from_a.is_empty());
            let on_a = Reader { ordinal: 0, cursor: None, last: None, gap: None }.drain(&a);
            for i in 0..on_a.len() {
                // Had the first i+1 events on A; resumes on B.
                let had: Vec<_> = on_a[..=i].iter().map(|(s, id, _)| (*s, *id)).collect();
                let mut reader = Reader::resume(&b, Some(&on_a[i].2));
                assert_eq!(reader.gap, None);
                let on_b = reader.drain(&b);
                exactly_once(&had, &on_b, &all);
                // And from each id B sent, back on A.
                for j in 0..on_b.len() {
                    let had: Vec<_> =
                        had.iter().copied().chain(on_b[..=j].iter().map(|(s, id, _)| (*s, *id))).collect();
                    let mut back = Reader::resume(&a, Some(&on_b[j].2));
                    assert_eq!(back.gap, None);
                    exactly_once(&had, &back.drain(&a), &all);
                }
            }
        }
    }

    #[test]
    fn a_node_behind_skips_what_the_consumer_had_as_it_catches_up() {
        let shards = 3;
        let entries = entries(shards, 5);
        let all = all_events(&entries);
        for seed in 1..=20u64 {
            let a = sharded(shards, 100);
            push(&a, &interleave(&entries, shards, seed));
            let on_a = Reader { ordinal: 0, cursor: None, last: None, gap: None }.drain(&a);
            let order_b = interleave(&entries, shards, seed + 1000);
            for i in (0..on_a.len()).step_by(3) {
                for fed in [0, order_b.len() / 3, order_b.len() / 2] {
                    let had: Vec<_> = on_a[..=i].iter().map(|(s, id, _)| (*s, *id)).collect();
                    let b = sharded(shards, 100);
                    push(&b, &order_b[..fed]);
                    let mut reader = Reader::resume(&b, Some(&on_a[i].2));
                    assert_eq!(reader.gap, None);
                    let mut on_b = reader.drain(&b);
                    // Cut off halfway, it resumes on A from the last id B sent.
                    push(&b, &order_b[fed..]);
                    on_b.extend(reader.drain(&b));
                    exactly_once(&had, &on_b, &all);
                    if let Some(last) = &reader.last {
                        let mut back = Reader::resume(&a, Some(last));
                        assert_eq!(back.gap, None);
                        assert!(back.drain(&a).is_empty(), "nothing is new to it on A");
                    }
                }
            }
        }
    }

    #[test]
    fn a_slot_older_than_the_history_is_a_gap_in_that_shard_only() {
        let a = sharded(2, 100);
        let b = sharded(2, 4);
        // Shard 0 busy, shard 1 quiet: B keeps 4 events, all of shard 0 but one.
        let order = [(1, 1, 1), (0, 1, 1), (0, 2, 1), (0, 3, 1), (0, 4, 1), (1, 2, 1), (0, 5, 1)];
        push(&a, &order);
        push(&b, &order);
        let on_a = Reader { ordinal: 0, cursor: None, last: None, gap: None }.drain(&a);
        assert_eq!(on_a[1].2, "100-1.0,100-1.0");
        // After 0:1 (evicted from B, older than its floor for shard 0): a gap, resumed with the
        // oldest held event of shard 0; shard 1's event 2 still comes, its 1 not again.
        let mut reader = Reader::resume(&b, Some(&on_a[1].2));
        let gap = reader.gap.clone().unwrap();
        assert_eq!(gap.resumed_from.as_deref(), Some("100-3.0,100-1.0"));
        let sent: Vec<_> = reader.drain(&b).into_iter().map(|(_, _, id)| id).collect();
        assert_eq!(sent, ["100-3.0,100-1.0", "100-4.0,100-1.0", "100-4.0,100-2.0", "100-5.0,100-2.0"]);
        // After 0:2, the newest evicted of shard 0: no gap.
        assert_eq!(Reader::resume(&b, Some(&on_a[2].2)).gap, None);
        // Not one slot per shard, or not slots: unknown, a gap from the oldest held.
        for bad in ["100-2.0", "100-2.0,100-1.0,100-1.0", "x,100-1.0", ""] {
            let reader = Reader::resume(&b, Some(bad));
            let gap = reader.gap.unwrap_or_else(|| panic!("{bad}"));
            assert_eq!(gap.resumed_from.as_deref(), Some("100-3.0,100-1.0"));
            assert!(reader.cursor.is_none());
        }
        // Before a node fed anything of a shard, its slot is where it began: `<ms>-<seq>`.
        let c = sharded(2, 10);
        push(&c, &[(0, 1, 1)]);
        assert_eq!(ids(&c, 0), ["100-1.0,100-0"]);
        assert_eq!(Reader::resume(&c, Some("100-1.0,100-0")).gap, None);
        assert!(Reader::resume(&c, Some("100-1.0,99-0")).gap.is_some());
    }
}

//! The node's feed of published events, for the backend event stream (`http::stream`): every
//! event published to the gateway, in one order, each with an id, and a history of recent ones
//! bounded in count and bytes, from which a consumer resumes.
//!
//! **Ids** are `<ms>-<seq>.<index>`: the position of the event's batch, then its index in the
//! batch. In a cluster the position is the bus entry's Redis stream id, so every node gives an
//! event the same id and has the same order, and a consumer may resume on any node; the cluster
//! feeds what it reads off the stream (every node's entries, its own included) and nothing
//! else. On a single node the feed makes positions the same way (milliseconds, then a counter),
//! so ids still order by time across restarts. Ids compare as `(ms, seq, index)`.
//!
//! Each event is framed for SSE once (`id:` and one `data:` line of JSON), here, and shared by
//! every consumer. Consumers do not copy events into queues of their own: each reads the history
//! from its place (an ordinal), so what one consumer holds is its place, and how far behind it
//! is comes from ordinals and byte offsets (`lag`), which `http::stream` bounds.

use std::{
    cmp::Ordering,
    collections::VecDeque,
    fmt,
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use serde_json::json;
use tokio::sync::watch;

use crate::{clock::now_millis, config::EventStreamConfig, engine::PublishedEvent};

/// Where an event is: its batch's position (`ms-seq`) and its index in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventId {
    ms: u64,
    seq: u64,
    index: u32,
}

impl EventId {
    /// Reads `<ms>-<seq>.<index>`; `None` when it is not one.
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let (position, index) = id.split_once('.')?;
        let (ms, seq) = position.split_once('-')?;
        let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
        if !(digits(ms) && digits(seq) && digits(index)) {
            return None;
        }
        Some(Self { ms: ms.parse().ok()?, seq: seq.parse().ok()?, index: index.parse().ok()? })
    }

    /// After every event of the batch at `ms-seq`.
    fn through(ms: u64, seq: u64) -> Self {
        Self { ms, seq, index: u32::MAX }
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}.{}", self.ms, self.seq, self.index)
    }
}

/// One event as the stream sends it.
#[derive(Debug)]
pub(crate) struct FedEvent {
    /// Its id.
    pub id: EventId,
    /// Its type, which consumers filter on.
    pub event_type: String,
    /// Its tenant, which consumers filter on.
    pub tenant: Option<String>,
    /// `id: ...\ndata: {...}\n\n`, made once.
    pub frame: Bytes,
    /// Bytes of every event fed before it (its frame's offset in the feed).
    pub offset: u64,
}

impl FedEvent {
    fn new(id: EventId, event: &PublishedEvent, offset: u64) -> Self {
        // `{type, tenantId, data, timestamp}`: the published event as `POST /api/v1/events`
        // takes it, and `eventId` when its publisher named it (`id` there).
        let mut data = json!({
            "type": event.event_type(),
            "tenantId": event.tenant_id(),
            "data": event.published_data(),
            "timestamp": event.timestamp(),
        });
        if let (Some(event_id), Some(fields)) = (event.id(), data.as_object_mut()) {
            fields.insert("eventId".into(), event_id.into());
        }
        // JSON escapes line breaks, so the event is one `data:` line.
        let frame = format!("id: {id}\ndata: {data}\n\n");
        Self {
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
    /// The id asked for, when it is ahead of this node (another node read further): events up
    /// to it that this node feeds later are not sent again.
    pub skip_through: Option<EventId>,
}

/// Events a resuming consumer cannot get: the `event: gap` it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Gap {
    /// The id it asked to resume after.
    pub last_event_id: String,
    /// The id of the oldest event held, which it continues with; `None` when none is held.
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
    /// Resuming after an id below this has a gap: events after it may be gone (the newest
    /// evicted event, or where this node started feeding).
    floor: EventId,
    /// The last position given to a batch: new ones come after it.
    position: (u64, u64),
    /// Bytes of every frame ever fed.
    offset: u64,
}

impl EventFeed {
    /// An empty feed that starts now, holding what `config` says.
    pub(crate) fn new(config: &EventStreamConfig) -> Self {
        let start = now_millis();
        Self {
            history: Mutex::new(History {
                events: VecDeque::new(),
                first: 0,
                bytes: 0,
                floor: EventId::through(start, 0),
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

    /// From now on ids are the bus's: events come after the stream position `ms-seq`, where this
    /// node started reading it (a cluster member, before it reads).
    pub(crate) fn start_at(&self, ms: u64, seq: u64) {
        let mut history = self.history();
        history.floor = EventId::through(ms, seq);
        history.position = (ms, seq);
    }

    /// Feeds a batch published on this node alone, giving it the next position.
    pub(crate) fn push_local(&self, events: &[PublishedEvent]) {
        let position = {
            let mut history = self.history();
            let (ms, seq) = history.position;
            let now = now_millis();
            // As Redis numbers stream entries: a clock that went back does not reorder.
            history.position = if now > ms { (now, 0) } else { (ms, seq + 1) };
            history.position
        };
        self.push(position, events);
    }

    /// Feeds a batch at stream position `ms-seq` (the cluster's bus, in stream order).
    pub(crate) fn push_at(&self, ms: u64, seq: u64, events: &[PublishedEvent]) {
        self.push((ms, seq), events);
    }

    fn push(&self, (ms, seq): (u64, u64), events: &[PublishedEvent]) {
        if events.is_empty() {
            return;
        }
        let head = {
            let mut history = self.history();
            let first_id = EventId { ms, seq, index: 0 };
            if history.events.back().is_some_and(|last| last.id >= first_id) {
                // Only a stream recreated empty with a clock behind the old one's gets here: its
                // ids do not follow the history's, so the history starts again (consumers
                // reading it are behind, and cut; a resume from an old id is a gap).
                tracing::warn!(position = %first_id, "the event stream's ids went back; its history starts again");
                let dropped = history.events.len() as u64;
                history.first += dropped;
                history.events.clear();
                history.bytes = 0;
                history.floor = EventId::through(ms, seq.saturating_sub(1));
            }
            history.position = history.position.max((ms, seq));
            for (index, event) in events.iter().enumerate() {
                let id = EventId { ms, seq, index: u32::try_from(index).unwrap_or(u32::MAX) };
                let fed = Arc::new(FedEvent::new(id, event, history.offset));
                history.offset += fed.frame.len() as u64;
                history.bytes += fed.bytes();
                history.events.push_back(fed);
            }
            let (count, bytes) = self.limits;
            while history.events.len() > count || (history.bytes > bytes && history.events.len() > 1) {
                let Some(oldest) = history.events.pop_front() else { break };
                history.bytes -= oldest.bytes();
                history.first += 1;
                history.floor = history.floor.max(oldest.id);
            }
            history.first + history.events.len() as u64
        };
        self.head.send_modify(|(ordinal, _)| *ordinal = head);
    }

    /// Where a consumer starts: after `last_event_id` when the history still holds every event
    /// after it, else at the oldest event held, with the gap said; with no id, at the next event.
    pub(crate) fn resume(&self, last_event_id: Option<&str>) -> Resume {
        let history = self.history();
        let head = history.first + history.events.len() as u64;
        let at = |ordinal: u64| Resume { ordinal, offset: history.offset_of(ordinal), gap: None, skip_through: None };
        let Some(asked) = last_event_id else { return at(head) };
        match EventId::parse(asked).filter(|id| *id >= history.floor) {
            Some(id) => {
                let index = history.events.partition_point(|e| e.id.cmp(&id) != Ordering::Greater);
                let ahead = index == history.events.len() && history.events.back().is_none_or(|e| e.id < id);
                Resume { skip_through: ahead.then_some(id), ..at(history.first + index as u64) }
            }
            None => Resume {
                gap: Some(Gap {
                    last_event_id: asked.to_string(),
                    resumed_from: history.events.front().map(|e| e.id.to_string()),
                }),
                ..at(history.first)
            },
        }
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

impl History {
    /// The byte offset of the event at `ordinal` (the total fed, at the head).
    fn offset_of(&self, ordinal: u64) -> u64 {
        let index = ordinal.saturating_sub(self.first) as usize;
        self.events.get(index).map_or(self.offset, |e| e.offset)
    }
}

#[cfg(test)]
mod tests {
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
            Read::Events(events, _) => events.iter().map(|e| e.id.to_string()).collect(),
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
        feed.push_at(7, 1, &[event(1), event(2)]);
        let Read::Events(events, next) = feed.read(0, 10) else { panic!() };
        assert_eq!(next, 2);
        let text = std::str::from_utf8(&events[1].frame).unwrap();
        assert!(text.starts_with("id: 7-1.1\ndata: {"), "{text}");
        assert!(text.ends_with("}\n\n") && text.matches('\n').count() == 3, "{text}");
    }

    #[test]
    fn resumes_after_a_held_id_and_says_a_gap_past_the_history() {
        let feed = feed(3);
        feed.start_at(10, 0);
        for seq in 1..=5 {
            feed.push_at(10, seq, &[event(seq)]);
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
        // Ahead of everything: from the next event on (another node may be ahead of this one).
        let ahead = feed.resume(Some("11-0.0"));
        assert_eq!((ahead.ordinal, ahead.gap), (5, None));
        assert_eq!(ahead.skip_through, EventId::parse("11-0.0"));
        assert_eq!(feed.resume(Some("10-5.0")).skip_through, None);
        assert!(matches!(feed.read(0, 10), Read::Evicted));
    }

    #[test]
    fn lag_counts_events_and_bytes_behind() {
        let feed = feed(10);
        feed.push_at(1, 1, &[event(1), event(2)]);
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
}

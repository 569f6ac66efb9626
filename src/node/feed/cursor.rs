//! Positions in the event feed, and the stream's ids made from them: an event's place in its
//! shard of the bus (`EventId`), a frontier over every shard (`Frontier`: the `id:` the stream
//! sends and `Last-Event-ID` brings back), and a resumed consumer's own cursor (`Cursor`).
//!
//! The bus is N streams (shards); each shard's entries are in one order on every node, but
//! entries of different shards interleave differently on each node. So one event's position
//! does not say what a consumer has had: its id is its frontier instead, for each shard the last
//! event of that shard the node had fed at or before that event. Resuming from a frontier on
//! any node is then exact: per shard, every event after its slot. With one shard the frontier is
//! that shard's slot alone, the event's own id: `<ms>-<seq>.<index>`, as before shards.

use std::fmt;

use bytes::Bytes;

use super::FedEvent;

/// Where an event is in its shard: its entry's position (`ms-seq`) and its index in the entry.
/// `through(ms, seq)` (index `u32::MAX`) is after every event of that entry: where a node began
/// reading a shard, before it fed any event of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct EventId {
    pub(super) ms: u64,
    pub(super) seq: u64,
    pub(super) index: u32,
}

impl EventId {
    /// Reads `<ms>-<seq>.<index>`; `None` when it is not one.
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let (position, index) = id.split_once('.')?;
        let (ms, seq) = Self::position(position)?;
        digits(index).then_some(())?;
        let index = index.parse().ok().filter(|i| *i != u32::MAX)?;
        Some(Self { ms, seq, index })
    }

    /// Reads a slot of a frontier: an event's id, or `<ms>-<seq>` (everything through that entry).
    fn parse_slot(slot: &str) -> Option<Self> {
        if slot.contains('.') {
            Self::parse(slot)
        } else {
            Self::position(slot).map(|(ms, seq)| Self::through(ms, seq))
        }
    }

    fn position(position: &str) -> Option<(u64, u64)> {
        let (ms, seq) = position.split_once('-')?;
        (digits(ms) && digits(seq)).then_some(())?;
        Some((ms.parse().ok()?, seq.parse().ok()?))
    }

    /// After every event of the entry at `ms-seq`.
    pub(super) fn through(ms: u64, seq: u64) -> Self {
        Self { ms, seq, index: u32::MAX }
    }
}

fn digits(s: &str) -> bool {
    !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.index == u32::MAX {
            write!(f, "{}-{}", self.ms, self.seq)
        } else {
            write!(f, "{}-{}.{}", self.ms, self.seq, self.index)
        }
    }
}

/// For each shard, the last event of it had (or where the node began the shard). Written as
/// the slots joined by `,`, shard 0 first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frontier(pub(super) Vec<EventId>);

impl Frontier {
    /// Reads a frontier over `shards` shards. With one shard only an event's id is one (as
    /// before shards); with more, exactly `shards` slots, each an event's id or `<ms>-<seq>`.
    pub(crate) fn parse(id: &str, shards: usize) -> Option<Self> {
        if shards <= 1 {
            return EventId::parse(id).map(|id| Self(vec![id]));
        }
        let slots: Vec<_> = id.split(',').map(|slot| EventId::parse_slot(slot.trim())).collect::<Option<_>>()?;
        (slots.len() == shards).then_some(Self(slots))
    }
}

impl fmt::Display for Frontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, slot) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{slot}")?;
        }
        Ok(())
    }
}

/// A resumed consumer's place per shard, while it differs from the node's: the events of each
/// shard it already had (skipped when this node feeds them), and its own frontier, which is its
/// events' ids until it matches the node's (then the shared frames are right and this goes).
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// Per shard, the last event it had, while this node has not fed past it.
    skip: Vec<Option<EventId>>,
    /// What it has had, per shard: the larger of what it brought and what this node fed.
    frontier: Frontier,
}

/// What a consumer with a cursor does with one event.
pub(super) enum Admit {
    /// It had it already.
    Skip,
    /// It sends it with this frame (its own id, when that differs from the node's).
    Send(Bytes),
}

impl Cursor {
    /// `skip` per shard; `frontier`: what it has had just before the first event it reads.
    /// `None` when it has nothing to skip and the node's ids are its own.
    pub(super) fn new(skip: Vec<Option<EventId>>, frontier: Frontier) -> Option<Self> {
        skip.iter().any(Option::is_some).then_some(Self { skip, frontier })
    }

    /// The next event this node feeds, in its order. Once the cursor is done (the node fed past
    /// every slot it skips), [`Cursor::done`] says so and the event's own frame is right.
    pub(super) fn admit(&mut self, event: &FedEvent) -> Admit {
        let shard = event.shard;
        if let Some(slot) = self.frontier.0.get_mut(shard) {
            *slot = (*slot).max(event.id);
        }
        match self.skip.get_mut(shard) {
            Some(skip) if skip.is_some_and(|last| event.id <= last) => return Admit::Skip,
            Some(skip) => *skip = None,
            None => {}
        }
        if self.done() {
            return Admit::Send(event.frame.clone());
        }
        // `id: <node's frontier>\n` replaced by this consumer's.
        let data = event.frame.iter().position(|b| *b == b'\n').map_or(0, |end| end + 1);
        let mut frame = format!("id: {}\n", self.frontier).into_bytes();
        frame.extend_from_slice(&event.frame[data..]);
        Admit::Send(Bytes::from(frame))
    }

    /// What a consumer with `cursor` (`None`: its place is the node's) sends for the next event
    /// this node feeds: `None` when it had it; the cursor goes once it is done.
    pub(crate) fn frame(cursor: &mut Option<Self>, event: &FedEvent) -> Option<Bytes> {
        let Some(this) = cursor else { return Some(event.frame.clone()) };
        let frame = match this.admit(event) {
            Admit::Skip => return None,
            Admit::Send(frame) => frame,
        };
        if this.done() {
            *cursor = None;
        }
        Some(frame)
    }

    /// Nothing left to skip: the node's ids are this consumer's.
    pub(super) fn done(&self) -> bool {
        self.skip.iter().all(Option::is_none)
    }

    /// The id it sends for `event` if it is the next it sends, without taking it.
    pub(super) fn id_of(&self, event: &FedEvent) -> String {
        let mut frontier = self.frontier.clone();
        if let Some(slot) = frontier.0.get_mut(event.shard) {
            *slot = (*slot).max(event.id);
        }
        frontier.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontiers_parse_and_print() {
        let one = Frontier::parse("5-1.2", 1).unwrap();
        assert_eq!(one.to_string(), "5-1.2");
        // With one shard only an event's id is one, as before shards.
        assert_eq!(Frontier::parse("5-1", 1), None);
        assert_eq!(Frontier::parse("5-1.2,6-0.0", 1), None);
        let two = Frontier::parse("5-1.2,0-0", 2).unwrap();
        assert_eq!(two.0, [EventId { ms: 5, seq: 1, index: 2 }, EventId::through(0, 0)]);
        assert_eq!(two.to_string(), "5-1.2,0-0");
        for bad in ["5-1.2", "5-1.2,", ",5-1.2", "5-1.2,6-0.0,7-0.0", "5-1.2,x", "5-1.2,6", "5-1.4294967295,0-0"] {
            assert_eq!(Frontier::parse(bad, 2), None, "{bad}");
        }
        // A slot through an entry comes after each of its events, and before the next entry.
        assert!(EventId::through(5, 1) > EventId::parse("5-1.99").unwrap());
        assert!(EventId::through(5, 1) < EventId::parse("5-2.0").unwrap());
    }
}

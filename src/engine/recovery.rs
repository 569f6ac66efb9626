//! What a `join` reads from its room's history (a join with `since` or `replay`, see
//! `spec::JoinHistory`): the events after the client's last position, all or nothing, or else
//! the room's last few events (a late joiner), as far as the member's filters let them through.
//!
//! A front that handles an event whose joins read history locks the history first
//! ([`HistoryReads::new`]), runs the dispatch core with it (`SpecRuntime::dispatch_reading_history`),
//! answers the event, sends what was read ([`HistoryReads::events`], in order), notes for the
//! client the rooms it is ahead in ([`HistoryReads::ahead`]), and only then lets the lock go. The
//! delivery of a published event keeps it and sends it under the same lock, so a joiner gets each
//! event once: from the history, or live.
//!
//! In a cluster a room's positions are the cluster's (`history::Given`), so a `since` from another
//! node recovers here too; a client that got events there that this node has not applied yet is
//! recovered with nothing yet ([`Since::Ahead`]), and the front skips, for it, the room's events
//! up to the offset it has as they arrive.

use std::sync::Arc;

use serde_json::Value;

use super::{
    history::{Kept, Locked, Since},
    runtime::SpecRuntime,
};

/// Longest epoch accepted in `since` (the gateway's are 12 characters).
const MAX_EPOCH_LEN: usize = 64;

/// A client's last position, `{offset, epoch}` (other fields, such as the `room` an event's
/// position names, are ignored); `Err` says what is wrong with it.
pub(crate) fn parse_since(since: &Value) -> Result<(u64, String), String> {
    match (since.get("offset").and_then(Value::as_u64), since.get("epoch").and_then(Value::as_str)) {
        (Some(offset), Some(epoch)) if !epoch.is_empty() && epoch.len() <= MAX_EPOCH_LEN => {
            Ok((offset, epoch.to_string()))
        }
        _ => {
            Err("`since` must be {\"offset\": N, \"epoch\": \"...\"}, the `position` of the last event received".into())
        }
    }
}

/// What the joins of one client event read, under the history's lock (held as long as this is).
pub(crate) struct HistoryReads<'a> {
    locked: Locked<'a>,
    events: Vec<Kept>,
    ahead: Vec<Ahead>,
    recovered: Option<bool>,
}

/// A room the client is ahead in: it has the room's events of `epoch` up to `through`, which this
/// node has not applied yet (`Since::Ahead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Ahead {
    /// The room's internal name, without filter values.
    pub room: String,
    /// The room's epoch.
    pub epoch: Arc<str>,
    /// The last offset the client has.
    pub through: u64,
}

impl<'a> HistoryReads<'a> {
    /// Locks `rt`'s history for one event.
    pub(crate) fn new(rt: &'a SpecRuntime) -> Self {
        Self { locked: rt.history.lock(), events: Vec::new(), ahead: Vec::new(), recovered: None }
    }

    /// What to send after the event's answer, in order.
    pub(crate) fn events(&mut self) -> Vec<Kept> {
        std::mem::take(&mut self.events)
    }

    /// The rooms the client is ahead in: what the front skips for it as those events arrive
    /// (noted while the lock is held, so none slips through in between).
    pub(crate) fn ahead(&mut self) -> Vec<Ahead> {
        std::mem::take(&mut self.ahead)
    }

    /// Forgets what was read (the event failed: its answer is the error).
    pub(crate) fn discard(&mut self) {
        self.events.clear();
        self.ahead.clear();
    }
}

/// What the join action reads through (a trait object, so the lock's lifetime stays out of
/// `ActionCtx`'s type).
pub(crate) trait JoinReads {
    /// A join put the member in `room` (internal name, without filter values; `variants`: the
    /// filter suffixes it is in, empty for a room without filters). With `since`: every event
    /// after it, or none, and whether it recovered. Without: the last `replay` events.
    fn read(&mut self, room: &str, variants: &[String], since: Option<(u64, String)>, replay: usize);
    /// A join with `since` reached a room that keeps no history: nothing can be recovered.
    fn not_recovered(&mut self);
    /// Whether every join with `since` so far recovered (`None`: none had one).
    fn recovered(&self) -> Option<bool>;
}

impl JoinReads for HistoryReads<'_> {
    fn read(&mut self, room: &str, variants: &[String], since: Option<(u64, String)>, replay: usize) {
        let kept = match since {
            Some((offset, epoch)) => {
                let got = self.locked.since_at(room, offset, &epoch);
                self.recovered = Some(self.recovered.unwrap_or(true) && got.is_some());
                match got {
                    Some(Since::Events(kept)) => kept,
                    Some(Since::Ahead(through)) => {
                        self.ahead.push(Ahead { room: room.to_string(), epoch: Arc::from(epoch), through });
                        return;
                    }
                    None => return,
                }
            }
            None if replay > 0 => self.locked.last(room, replay),
            None => return,
        };
        self.events.extend(kept.into_iter().filter(|k| k.passes(variants)));
    }

    fn not_recovered(&mut self) {
        self.recovered = Some(false);
    }

    fn recovered(&self) -> Option<bool> {
        self.recovered
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn since_is_an_offset_and_an_epoch() {
        assert_eq!(super::parse_since(&json!({ "offset": 3, "epoch": "e1", "room": "x" })), Ok((3, "e1".into())));
        for bad in [
            json!(1),
            json!({ "offset": -1, "epoch": "e" }),
            json!({ "offset": 1 }),
            json!({ "offset": 1, "epoch": "" }),
            json!({ "offset": 1, "epoch": "e".repeat(65) }),
        ] {
            assert!(super::parse_since(&bad).is_err(), "{bad}");
        }
    }
}

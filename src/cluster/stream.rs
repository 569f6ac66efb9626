//! The bus's stream: what the bus needs of Redis (append a message, read on from a position,
//! find the newest position), as a trait, and its Redis implementation.
//!
//! The bus (`bus.rs`) decides everything exactly-once depends on: numbering, dedup, what to apply
//! here and what to keep for later. This file only moves bytes, so the bus can be tested against
//! a stream that misbehaves as Redis can (an append that went through but answered an error, a
//! hang, a trim, a stream recreated empty) without a Redis.

use std::{collections::HashMap, fmt, future::Future, sync::Arc, time::Duration};

use fred::{clients::Client, interfaces::StreamsInterface};

use super::Health;

/// Messages the stream keeps (about): how far behind a node that was cut off can catch up.
pub(super) const BUS_LENGTH: i64 = 10_000;
/// How long one read waits for news.
pub(super) const BUS_BLOCK: Duration = Duration::from_millis(500);

/// A position in the stream: a Redis stream entry id, `<ms>-<seq>`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamId {
    ms: u64,
    seq: u64,
}

impl StreamId {
    /// Before every entry.
    pub(super) const START: StreamId = StreamId { ms: 0, seq: 0 };

    /// The id `ms-seq`.
    #[cfg(test)]
    pub(super) const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }

    /// Its two numbers, `(ms, seq)`.
    pub(super) fn parts(self) -> (u64, u64) {
        (self.ms, self.seq)
    }

    /// Reads `<ms>-<seq>` (or `<ms>`); `None` when it is not an id.
    pub(super) fn parse(id: &str) -> Option<Self> {
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        Some(Self { ms: ms.parse().ok()?, seq: seq.parse().ok()? })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// One entry read from the stream.
#[derive(Debug, Clone)]
pub(super) struct Entry {
    /// Where it is.
    pub id: StreamId,
    /// The bus message; `None` for an entry that has none (not written by a gateway).
    pub message: Option<String>,
}

/// Why a stream operation failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StreamError {
    /// Redis is known to be away: nothing was sent.
    #[error("Redis is unreachable")]
    Unavailable,
    /// The command failed or got no answer in time. An append may still have gone through: a
    /// hung Redis runs it when it wakes.
    #[error("{0}")]
    Failed(String),
}

/// The stream under the bus.
pub(super) trait BusStream: Send + Sync + 'static {
    /// Appends one message at the end.
    fn append(&self, message: &str) -> impl Future<Output = Result<(), StreamError>> + Send;

    /// Up to `count` entries after `after`, in stream order; waits a little for news when there
    /// are none (then answers none).
    fn read_after(&self, after: StreamId, count: usize)
    -> impl Future<Output = Result<Vec<Entry>, StreamError>> + Send;

    /// The id of the newest entry; `None` when the stream is empty or does not exist.
    fn last_id(&self) -> impl Future<Output = Result<Option<StreamId>, StreamError>> + Send;
}

/// The bus stream on Redis: `<prefix>:bus`, capped at about [`BUS_LENGTH`] entries.
pub(super) struct RedisStream {
    key: String,
    /// Appends: the node's command connection.
    client: Client,
    /// Reads: a connection of its own, because a blocking read holds it.
    reader: Client,
    /// Appends fail fast while Redis is known to be away, and a failed one says so.
    health: Arc<Health>,
}

impl RedisStream {
    pub(super) fn new(key: String, client: Client, reader: Client, health: Arc<Health>) -> Self {
        Self { key, client, reader, health }
    }
}

impl BusStream for RedisStream {
    async fn append(&self, message: &str) -> Result<(), StreamError> {
        if !self.health.reachable() {
            return Err(StreamError::Unavailable);
        }
        let cap = ("MAXLEN", "~", BUS_LENGTH);
        match self.client.xadd::<String, _, _, _, _>(self.key.as_str(), false, cap, "*", ("m", message)).await {
            Ok(_) => Ok(()),
            Err(e) => {
                self.health.fail(format!("publishing on the bus failed: {e}"));
                Err(StreamError::Failed(e.to_string()))
            }
        }
    }

    async fn read_after(&self, after: StreamId, count: usize) -> Result<Vec<Entry>, StreamError> {
        let streams = self
            .reader
            .xread_map::<String, String, String, String, _, _>(
                Some(count as u64),
                Some(BUS_BLOCK.as_millis() as u64),
                self.key.as_str(),
                after.to_string(),
            )
            .await
            .map_err(|e| StreamError::Failed(e.to_string()))?;
        Ok(streams.into_values().flatten().filter_map(|(id, fields)| entry(&id, fields)).collect())
    }

    async fn last_id(&self) -> Result<Option<StreamId>, StreamError> {
        let newest: Vec<(String, HashMap<String, String>)> = self
            .reader
            .xrevrange(self.key.as_str(), "+", "-", Some(1))
            .await
            .map_err(|e| StreamError::Failed(e.to_string()))?;
        Ok(newest.first().and_then(|(id, _)| StreamId::parse(id)))
    }
}

fn entry(id: &str, mut fields: HashMap<String, String>) -> Option<Entry> {
    let Some(id) = StreamId::parse(id) else {
        tracing::warn!(id, "a bus entry id is not a stream id");
        return None;
    };
    Some(Entry { id, message: fields.remove("m") })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_order_by_time_then_sequence() {
        let id = |s| StreamId::parse(s).expect(s);
        assert!(id("5-9") < id("6-0"));
        assert!(id("6-0") < id("6-1"));
        assert_eq!(id("7"), StreamId::new(7, 0));
        assert_eq!(id("1733000000000-3").to_string(), "1733000000000-3");
        assert_eq!(StreamId::parse("x-1"), None);
        assert!(StreamId::START < id("0-1"));
    }
}

//! The bus's stream: what the bus needs of Redis (append a message, read on from a position,
//! find the newest position), as a trait, and its Redis implementation.
//!
//! The bus (`bus.rs`) decides everything exactly-once depends on: numbering, dedup, what to apply
//! here and what to keep for later. This file only moves bytes, so the bus can be tested against
//! a stream that misbehaves as Redis can (an append that went through but answered an error, a
//! hang, a trim, a stream recreated empty) without a Redis.

use std::{collections::HashMap, fmt, future::Future, sync::Arc, time::Duration};

use fred::{
    clients::Client,
    interfaces::{ClientLike, LuaInterface, StreamsInterface},
};

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
    /// The positions its rooms with history gave it, one line `<offset> <epoch>` per room the
    /// append named, in that order; `None` when it named none.
    pub positions: Option<String>,
}

/// A room with history whose events a message numbers as it is appended.
#[derive(Debug, Clone)]
pub(super) struct NumberedRoom {
    /// Its name, unique over every spec (`<length of the path>:<path><internal room name>`).
    pub name: String,
    /// How long its numbering is kept after its last event: longer than any node keeps the event.
    pub keep: Duration,
}

/// Appends a bus message and numbers its rooms with history, in one step, so that every room's
/// offsets follow the stream's order whichever node appends. Per room, a hash `{n, e}`: `n`
/// counts its events, `e` is its epoch, chosen (`ARGV[3]`, 12 random hex digits from the
/// appending node) when the hash is created: a room unused past its `keep`, or a Redis that lost
/// its data, starts again at 1 in a new epoch.
/// KEYS: the stream, then one hash per room numbered (a room twice for two events of the batch).
/// ARGV: the message, the stream's cap, an epoch, then each room's `keep` in ms.
const APPEND_NUMBERED: &str = r#"
local out = {}
for i = 2, #KEYS do
  local n = redis.call('HINCRBY', KEYS[i], 'n', 1)
  local e = false
  if n > 1 then e = redis.call('HGET', KEYS[i], 'e') end
  if not e then
    e = ARGV[3]
    redis.call('HSET', KEYS[i], 'e', e)
  end
  redis.call('PEXPIRE', KEYS[i], ARGV[2 + i])
  out[#out + 1] = n .. ' ' .. e
end
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1], 'p', table.concat(out, '\n'))
return #out
"#;

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
    /// Appends one message at the end, numbering `rooms` (their positions are read back with it,
    /// [`Entry::positions`]).
    fn append(&self, message: &str, rooms: &[NumberedRoom]) -> impl Future<Output = Result<(), StreamError>> + Send;

    /// Up to `count` entries after `after`, in stream order; waits a little for news when there
    /// are none (then answers none).
    fn read_after(&self, after: StreamId, count: usize)
    -> impl Future<Output = Result<Vec<Entry>, StreamError>> + Send;

    /// The id of the newest entry; `None` when the stream is empty or does not exist.
    fn last_id(&self) -> impl Future<Output = Result<Option<StreamId>, StreamError>> + Send;
}

/// One stream of the bus on Redis, `{<prefix>:bus:<shard>}`, capped at about [`BUS_LENGTH`]
/// entries; the numbering of its rooms with history in hashes `{<prefix>:bus:<shard>}:hist:<room>`
/// ([`APPEND_NUMBERED`]), in the stream's hash slot (`keys`).
pub(super) struct RedisStream {
    key: String,
    /// `<prefix>:hist:`, before a room's name.
    rooms_key: String,
    /// The SHA1 of [`APPEND_NUMBERED`] once loaded (again after a Redis that lost it).
    script: tokio::sync::Mutex<Option<String>>,
    /// Appends: the node's command connection.
    client: Client,
    /// Reads: a connection of its own, because a blocking read holds it.
    reader: Client,
    /// Appends fail fast while Redis is known to be away, and a failed one says so.
    health: Arc<Health>,
}

impl RedisStream {
    pub(super) fn new(prefix: &str, shard: usize, client: Client, reader: Client, health: Arc<Health>) -> Self {
        Self {
            key: super::keys::bus_stream(prefix, shard),
            rooms_key: super::keys::numbered_rooms(prefix, shard),
            script: tokio::sync::Mutex::new(None),
            client,
            reader,
            health,
        }
    }

    /// Runs [`APPEND_NUMBERED`] by its hash, loading it first when Redis does not have it: on a
    /// Redis Cluster into every master, since a script cache is a server's own (a replica
    /// promoted in a failover has none).
    async fn append_numbered(&self, message: &str, rooms: &[NumberedRoom]) -> Result<(), fred::error::Error> {
        let mut keys = Vec::with_capacity(rooms.len() + 1);
        keys.push(self.key.clone());
        keys.extend(rooms.iter().map(|r| format!("{}{}", self.rooms_key, r.name)));
        let epoch = format!("{:012x}", rand::random::<u64>() >> 16);
        let mut args = vec![message.to_string(), BUS_LENGTH.to_string(), epoch];
        args.extend(rooms.iter().map(|r| r.keep.as_millis().to_string()));
        let mut script = self.script.lock().await;
        for _ in 0..2 {
            let sha = match script.as_ref() {
                Some(sha) => sha.clone(),
                None if self.client.is_clustered() => {
                    script.insert(self.client.script_load_cluster::<String, _>(APPEND_NUMBERED).await?).clone()
                }
                None => script.insert(self.client.script_load::<String, _>(APPEND_NUMBERED).await?).clone(),
            };
            match self.client.evalsha::<i64, _, _, _>(sha, keys.clone(), args.clone()).await {
                Err(e) if e.details().starts_with("NOSCRIPT") => *script = None,
                other => return other.map(|_| ()),
            }
        }
        Err(fred::error::Error::new(fred::error::ErrorKind::Unknown, "the append script could not be loaded"))
    }
}

impl BusStream for RedisStream {
    async fn append(&self, message: &str, rooms: &[NumberedRoom]) -> Result<(), StreamError> {
        if !self.health.reachable() {
            return Err(StreamError::Unavailable);
        }
        let cap = ("MAXLEN", "~", BUS_LENGTH);
        let appended = match rooms {
            [] => self
                .client
                .xadd::<String, _, _, _, _>(self.key.as_str(), false, cap, "*", ("m", message))
                .await
                .map(|_| ()),
            rooms => self.append_numbered(message, rooms).await,
        };
        match appended {
            Ok(()) => Ok(()),
            Err(e) => {
                self.health.fail(format!("publishing on the bus failed: {e}"));
                Err(StreamError::Failed(e.to_string()))
            }
        }
    }

    async fn read_after(&self, after: StreamId, count: usize) -> Result<Vec<Entry>, StreamError> {
        let failed = |e: fred::error::Error| StreamError::Failed(e.to_string());
        let answer = self
            .reader
            .xread::<fred::types::Value, _, _>(
                Some(count as u64),
                Some(BUS_BLOCK.as_millis() as u64),
                self.key.as_str(),
                after.to_string(),
            )
            .await
            .map_err(failed)?;
        // A read that waited its time and found nothing answers nil, which is no map: that is
        // no news, not a failed read (taken as one, it made the node apply its own messages
        // before reading them back, out of the stream's order).
        if answer.is_null() {
            return Ok(Vec::new());
        }
        let streams = answer.into_xread_response::<String, String, String, String>().map_err(failed)?;
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
    Some(Entry { id, message: fields.remove("m"), positions: fields.remove("p") })
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

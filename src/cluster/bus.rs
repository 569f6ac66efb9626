//! The bus: how published events and raw emits reach every node exactly once, in one order.
//!
//! A node appends each message, numbered `(node, seq)`, to one stream (`stream.rs`: Redis) and
//! applies it when it reads it back, like every other node: a stream has one order for every
//! reader, so every node applies the same messages in the same order and builds the same
//! last-known state. A caller waits until its message is on the stream (or applied here), so a
//! backend's next publish, through whichever node, comes after it. A reader that could not read
//! for a while reads on from the last entry it read, so it misses nothing still in the stream.
//!
//! While Redis is away (an append fails, or a backlog is already waiting), the sender applies
//! its message at once, so its own sockets keep receiving, and keeps it, in order, to append
//! when Redis is back: the other nodes get it late rather than never.
//!
//! **One lock decides who applies what** ([`Ledger`]), and every apply on this node happens
//! under it, so the reader and the outbox cannot both apply a message, nor apply two out of
//! order:
//! - this node's own messages are applied in the order it sent them, each once: either when
//!   read back, or here at once when their append failed, when the reader is down, or when the
//!   reader lags too far (then every earlier one still waiting for its echo goes first). A
//!   single watermark (`own_applied`) then says which are applied, so any later copy (an append
//!   that answered an error but had gone through, a retried one, one dropped from a full
//!   backlog that a hung Redis still ran) is skipped;
//! - an append that answered an error is kept for a retry only if the reader has not already
//!   read it back: then it is on Redis and applied;
//! - other nodes' messages are applied in stream order, once per `(node, seq)`; a jump in a
//!   node's sequence is a **gap** (messages trimmed before this node read them, lost with
//!   Redis's data, or dropped from that node's full backlog): counted and logged, never silent.
//!
//! What is remembered per other node is pruned: a node not heard from (no message, no live
//! snapshot, see `note_alive`) for [`FORGET_AFTER`] is forgotten, once the reader has caught up.

use std::{
    collections::{HashMap, VecDeque},
    future::Future,
    sync::Arc,
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    sync::{Mutex, MutexGuard, mpsc, oneshot},
    time::Instant,
};

use super::stream::{BusStream, NumberedRoom, StreamError, StreamId};
use crate::{
    clock::now_millis,
    engine::{
        Outgoing,
        history::{Given, Position},
    },
    metrics::ClusterMetrics,
};

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

/// Messages kept for other nodes while Redis is away, and their bytes (JSON): beyond either the
/// oldest are dropped (counted, and a gap for the other nodes).
pub(super) const BACKLOG_LIMIT: usize = 10_000;
const BACKLOG_BYTES: usize = 64 * 1024 * 1024;
/// Own messages appended and waiting to be read back, and their bytes: beyond either the oldest
/// are applied here without waiting (the reader is that far behind).
const IN_FLIGHT_LIMIT: usize = 1_024;
const IN_FLIGHT_BYTES: usize = 16 * 1024 * 1024;
/// How long another node is remembered after its last sign of life. Longer than any outage
/// after which it could still append a copy of a message this node applied (its backlog).
pub(super) const FORGET_AFTER: Duration = Duration::from_secs(3_600);
/// How often a backlog is retried while Redis is away.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Most entries one read takes.
const READ_BATCH: usize = 256;
/// How long the reader waits before reading again after a failed read.
const READ_RETRY: Duration = Duration::from_millis(200);

/// This node's sockets, where the bus applies messages.
pub(super) trait Local: Send + Sync + 'static {
    /// Applies one message to this node's sockets.
    fn apply(&self, message: &Outgoing) -> impl Future<Output = ()> + Send;

    /// Feeds the published events of a message read at `at` to the node's event stream: every
    /// message read off the stream, once, in stream order, whoever sent it and whenever this node
    /// applied it, so that every node's stream has the same events, ids and order.
    fn feed(&self, _at: StreamId, _message: &Outgoing) {}

    /// Messages of another node were missed (a gap): what this node built from the bus alone,
    /// its room history, no longer holds every event it numbered.
    fn missed(&self) {}

    /// The rooms with history a message's events are kept in, which its append numbers.
    fn history_rooms(&self, _message: &Outgoing) -> Vec<HistoryRoomKey> {
        Vec::new()
    }
}

/// A room with history that event `event` of a message is kept in, on the spec at `path`.
#[derive(Debug, Clone)]
pub(super) struct HistoryRoomKey {
    /// The event's index in its batch.
    pub event: usize,
    /// The spec's path.
    pub path: String,
    /// The room's internal name, without filter values.
    pub room: String,
    /// How long the room keeps an event.
    pub ttl: Duration,
}

impl HistoryRoomKey {
    /// The room as the stream numbers it: unique over every spec, whatever the names hold.
    fn numbered(&self) -> NumberedRoom {
        // Twice the history's age: the numbering outlives every node's copy of the events.
        NumberedRoom { name: format!("{}:{}{}", self.path.len(), self.path, self.room), keep: self.ttl * 2 }
    }
}

/// The positions an entry's append gave its events: `h` in the message (`[[event, path, room],
/// ...]`) and the entry's `p` (one `<offset> <epoch>` line each, in the same order). Anything
/// that does not line up gives none: those events are then numbered by each node itself.
fn given_positions(message: &Value, positions: Option<&str>) -> Vec<(usize, Given)> {
    let (Some(rooms), Some(positions)) = (message["h"].as_array(), positions) else { return Vec::new() };
    let lines: Vec<&str> = positions.split('\n').collect();
    if lines.len() != rooms.len() {
        tracing::warn!(rooms = rooms.len(), positions = lines.len(), "a bus entry's positions do not match its rooms");
        return Vec::new();
    }
    let mut given = Vec::with_capacity(rooms.len());
    for (room, line) in rooms.iter().zip(lines) {
        let (Some(event), Some(path), Some(name)) = (room[0].as_u64(), room[1].as_str(), room[2].as_str()) else {
            return Vec::new();
        };
        let Some((offset, epoch)) = line.split_once(' ').and_then(|(n, e)| Some((n.parse().ok()?, e))) else {
            return Vec::new();
        };
        let position = Position { offset, epoch: epoch.into() };
        given.push((event as usize, Given { path: path.into(), room: name.into(), position }));
    }
    given
}

/// `message` with the positions `given` to its events.
fn with_given(message: Outgoing, given: &[(usize, Given)]) -> Outgoing {
    let Outgoing::Events(events) = message else { return message };
    let events = events
        .into_iter()
        .enumerate()
        .map(|(i, e)| e.with_given(given.iter().filter(|(at, _)| *at == i).map(|(_, g)| g.clone()).collect()))
        .collect();
    Outgoing::Events(events)
}

/// A message handed to the bus, and who to tell when it is sent (or applied here).
pub(super) struct Submitted {
    /// The work.
    pub message: Outgoing,
    /// Resolved once the message is on Redis or applied on this node.
    pub done: oneshot::Sender<()>,
}

/// One node's end of the bus.
pub(super) struct Bus<S, L> {
    node: String,
    stream: S,
    local: L,
    ledger: Mutex<Ledger>,
    /// Count and bytes of the backlog (constants, shared by the shards; smaller in tests).
    backlog_limits: (usize, usize),
    /// Count and bytes of ours in flight (constants, shared by the shards).
    in_flight_limits: (usize, usize),
    /// The bus's lag, backlog and gaps are measured here.
    metrics: ClusterMetrics,
}

/// What this node has applied and who applies what next; see the module's comment. Held
/// (a tokio lock) across applies, so applies happen in the order they are decided.
#[derive(Default)]
struct Ledger {
    /// Our highest sequence applied here. Ours are applied in order: every one up to it is.
    own_applied: u64,
    /// Our highest sequence read back from the stream.
    own_read: u64,
    /// Our highest sequence fed to the event stream (ours are applied before they are read back
    /// while Redis is away, and fed only when read back).
    own_fed: u64,
    /// Ours handed to the stream and not applied here yet, oldest first.
    in_flight: VecDeque<Pending>,
    in_flight_bytes: usize,
    /// From a failed read to the next good one.
    reader_down: bool,
    /// The reader's last read reached the end of the stream.
    caught_up: bool,
    /// Per other node: its highest sequence applied here, and its last sign of life.
    peers: HashMap<String, Peer>,
}

/// One of ours on its way.
struct Pending {
    seq: u64,
    message: Arc<Outgoing>,
    bytes: usize,
}

struct Peer {
    last: u64,
    heard: Instant,
}

/// Ours waiting for Redis, in order, bounded in count and bytes.
struct Backlog {
    entries: VecDeque<(u64, String, Vec<NumberedRoom>)>,
    bytes: usize,
    limits: (usize, usize),
    /// The length last added to the gauge, which every shard's backlog adds to.
    reported: i64,
}

impl Backlog {
    fn push(&mut self, seq: u64, wire: String, rooms: Vec<NumberedRoom>, metrics: &ClusterMetrics) {
        self.bytes += wire.len();
        self.entries.push_back((seq, wire, rooms));
        let (count, bytes) = self.limits;
        while self.entries.len() > count || self.bytes > bytes {
            let Some((lost, wire, _)) = self.entries.pop_front() else { break };
            self.bytes -= wire.len();
            metrics.bus_backlog_dropped.inc();
            // Applied here already; for the other nodes it is a gap.
            tracing::error!(
                seq = lost,
                count,
                bytes,
                "bus backlog full: its oldest message will not reach the other nodes"
            );
        }
        self.report(metrics);
    }

    /// Moves the gauge by this backlog's change since last reported.
    fn report(&mut self, metrics: &ClusterMetrics) {
        let now = self.entries.len() as i64;
        metrics.bus_backlog.inc_by(now - self.reported);
        self.reported = now;
    }

    fn pop_front(&mut self) {
        if let Some((_, wire, _)) = self.entries.pop_front() {
            self.bytes -= wire.len();
        }
    }
}

impl<S: BusStream, L: Local> Bus<S, L> {
    /// The bus of node `node` on `stream`, applying to `local`.
    pub(super) fn new(node: String, stream: S, local: L, metrics: ClusterMetrics) -> Self {
        Self {
            node,
            stream,
            local,
            ledger: Mutex::new(Ledger::default()),
            backlog_limits: (BACKLOG_LIMIT, BACKLOG_BYTES),
            in_flight_limits: (IN_FLIGHT_LIMIT, IN_FLIGHT_BYTES),
            metrics,
        }
    }

    /// The same bus as one of `shards`: its bounds are its share of the node's, so the node's
    /// whole bus holds no more than one stream's did.
    pub(super) fn one_of(mut self, shards: usize) -> Self {
        let share = |(count, bytes): (usize, usize)| ((count / shards).max(64), bytes / shards);
        self.backlog_limits = share(self.backlog_limits);
        self.in_flight_limits = share(self.in_flight_limits);
        self
    }

    /// The same bus with a backlog of at most `count` messages and `bytes` bytes.
    #[cfg(test)]
    fn with_backlog_limits(mut self, count: usize, bytes: usize) -> Self {
        self.backlog_limits = (count, bytes);
        self
    }

    /// The stream's newest position: a node that joins applies what comes after it.
    pub(super) async fn end(&self) -> Result<StreamId, StreamError> {
        Ok(self.stream.last_id().await?.unwrap_or(StreamId::START))
    }

    async fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().await
    }

    /// Reads the stream from `after` on, forever, applying each message once. After a failure it
    /// reads on from the last entry read, so nothing that is still in the stream is missed.
    pub(super) async fn run_reader(&self, mut after: StreamId) {
        let mut failing = false;
        loop {
            match self.stream.read_after(after, READ_BATCH).await {
                Ok(entries) => {
                    if failing {
                        failing = false;
                        self.ledger().await.reader_down = false;
                        // A Redis that restarted without its data starts a new stream, whose ids
                        // may be below ours: read it from the start (what was applied is skipped,
                        // what was lost shows as gaps).
                        if let Ok(end) = self.end().await
                            && end < after
                        {
                            tracing::info!("the bus stream was recreated; reading it from its start");
                            after = StreamId::START;
                            continue;
                        }
                    }
                    let caught_up = entries.len() < READ_BATCH;
                    for entry in entries {
                        after = entry.id;
                        if let Some(message) = entry.message {
                            self.receive(entry.id, message.as_bytes(), entry.positions.as_deref()).await;
                        }
                    }
                    self.ledger().await.caught_up = caught_up;
                }
                Err(e) => {
                    if !failing {
                        tracing::debug!(error = %e, "reading the bus failed; retrying");
                        // Our own sockets do not wait for echoes that will not come soon.
                        let mut ledger = self.ledger().await;
                        ledger.reader_down = true;
                        ledger.caught_up = false;
                        if let Some(last) = ledger.in_flight.back().map(|p| p.seq) {
                            self.apply_own_through(&mut ledger, last, None).await;
                        }
                    }
                    failing = true;
                    tokio::time::sleep(READ_RETRY).await;
                }
            }
        }
    }

    /// Applies a message read from the stream at `at`, unless it was applied already, and feeds
    /// it to the event stream unless it was fed already.
    async fn receive(&self, at: StreamId, payload: &[u8], positions: Option<&str>) {
        let mut value: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "a bus message is not JSON");
                return;
            }
        };
        let (Some(node), Some(seq)) = (value["node"].as_str(), value["seq"].as_u64()) else {
            tracing::warn!("a bus message has no node or seq");
            return;
        };
        // `at`: when its sender took it; a sender whose clock runs ahead gives no lag.
        let lag = value["at"].as_u64().map(|at| Duration::from_millis(now_millis().saturating_sub(at)));
        let given = given_positions(&value, positions);
        if node == self.node {
            let mut ledger = self.ledger().await;
            ledger.own_read = ledger.own_read.max(seq);
            if seq > ledger.own_applied {
                if let Some(lag) = lag {
                    self.metrics.bus_lag_local.observe(lag);
                }
                self.apply_own_through(&mut ledger, seq, Some(&given)).await;
            }
            if seq > ledger.own_fed {
                ledger.own_fed = seq;
                drop(ledger);
                // Only published and streamed events are fed: a raw emit's body is not read again.
                if value["body"].get("events").is_some() || value["body"].get("stream").is_some() {
                    match Outgoing::from_json(value["body"].take()) {
                        Ok(message) => self.local.feed(at, &message),
                        Err(e) => tracing::warn!(seq, error = %e, "a bus message of ours could not be read back"),
                    }
                }
            }
            return;
        }
        let node = node.to_string();
        let outgoing = match Outgoing::from_json(value["body"].take()) {
            Ok(outgoing) if !given.is_empty() => with_given(outgoing, &given),
            Ok(outgoing) => outgoing,
            Err(e) => {
                tracing::warn!(%node, seq, error = %e, "a bus message could not be read");
                return;
            }
        };
        let mut ledger = self.ledger().await;
        let heard = Instant::now();
        match ledger.peers.get_mut(&node) {
            Some(peer) if seq <= peer.last => return,
            Some(peer) => {
                if seq > peer.last + 1 {
                    let missed = seq - peer.last - 1;
                    self.metrics.bus_gaps.inc();
                    self.metrics.bus_missed.inc_by(missed);
                    self.local.missed();
                    tracing::warn!(
                        %node, missed, after = peer.last, seq,
                        "bus messages from another node were missed: trimmed from the stream before this node read them, lost with Redis's data, or dropped from that node's full backlog"
                    );
                }
                *peer = Peer { last: seq, heard };
            }
            None => {
                ledger.peers.insert(node, Peer { last: seq, heard });
            }
        }
        if let Some(lag) = lag {
            self.metrics.bus_lag_remote.observe(lag);
        }
        self.local.apply(&outgoing).await;
        self.local.feed(at, &outgoing);
    }

    /// Applies, in order, our messages waiting for their echo up to `seq`; `seq` itself with the
    /// positions `given` by its append when it was read back (the others are numbered here).
    async fn apply_own_through(&self, ledger: &mut Ledger, seq: u64, given: Option<&[(usize, Given)]>) {
        while ledger.in_flight.front().is_some_and(|p| p.seq <= seq) {
            let Some(pending) = ledger.in_flight.pop_front() else { break };
            ledger.in_flight_bytes -= pending.bytes;
            match given {
                Some(given) if pending.seq == seq && !given.is_empty() => {
                    self.local.apply(&with_given((*pending.message).clone(), given)).await
                }
                _ => self.local.apply(&pending.message).await,
            }
            ledger.own_applied = pending.seq;
        }
    }

    /// Sends submitted messages in order until the sender side closes.
    pub(super) async fn run_outbox(&self, mut submitted: mpsc::Receiver<Submitted>) {
        let mut backlog = Backlog { entries: VecDeque::new(), bytes: 0, limits: self.backlog_limits, reported: 0 };
        let mut seq = 0;
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = submitted.recv() => {
                    let Some(Submitted { message, done }) = next else { return };
                    seq += 1;
                    self.send(seq, message, &mut backlog).await;
                    let _ = done.send(());
                }
                _ = retry.tick(), if !backlog.entries.is_empty() => self.resend(&mut backlog).await,
            }
        }
    }

    /// Appends one message, or applies it here and keeps it for later.
    async fn send(&self, seq: u64, message: Outgoing, backlog: &mut Backlog) {
        // `at`: when it was sent, which the receivers' lag is measured from, kept through a
        // backlog (its wait is lag too).
        let keys = self.local.history_rooms(&message);
        let mut wire = json!({ "node": self.node, "seq": seq, "at": now_millis(), "body": message.to_json() });
        if !keys.is_empty() {
            wire["h"] = keys.iter().map(|k| json!([k.event, k.path, k.room])).collect();
        }
        let rooms: Vec<NumberedRoom> = keys.iter().map(HistoryRoomKey::numbered).collect();
        let wire = wire.to_string();
        {
            let mut ledger = self.ledger().await;
            ledger.in_flight.push_back(Pending { seq, message: Arc::new(message), bytes: wire.len() });
            ledger.in_flight_bytes += wire.len();
            // A reader that far behind: ours are applied without waiting for it.
            let (count, bytes) = self.in_flight_limits;
            while ledger.in_flight.len() > count || ledger.in_flight_bytes > bytes {
                let Some(oldest) = ledger.in_flight.front().map(|p| p.seq) else { break };
                self.apply_own_through(&mut ledger, oldest, None).await;
            }
        }
        // Behind a backlog, a message waits its turn: order is kept for everyone.
        let appended = if backlog.entries.is_empty() { Some(self.stream.append(&wire, &rooms).await) } else { None };
        let mut ledger = self.ledger().await;
        match appended {
            Some(Ok(())) => {
                if ledger.reader_down {
                    self.apply_own_through(&mut ledger, seq, None).await;
                }
            }
            Some(Err(e)) if ledger.own_read >= seq => {
                tracing::info!(seq, error = %e, "a bus append answered an error but had gone through: read back, applied once");
            }
            Some(Err(_)) | None => {
                self.apply_own_through(&mut ledger, seq, None).await;
                drop(ledger);
                backlog.push(seq, wire, rooms, &self.metrics);
            }
        }
    }

    /// Appends the backlog, oldest first, until an append fails.
    async fn resend(&self, backlog: &mut Backlog) {
        let before = backlog.entries.len();
        while let Some((seq, wire, rooms)) = backlog.entries.front() {
            // One the reader has read back is on Redis already (its append answered an error but
            // had gone through): no copy.
            let read_back = self.ledger().await.own_read >= *seq;
            if !read_back && self.stream.append(wire, rooms).await.is_err() {
                break;
            }
            backlog.pop_front();
        }
        backlog.report(&self.metrics);
        if backlog.entries.is_empty() {
            tracing::info!(messages = before, "sent the backlog kept while Redis was away");
        }
    }

    /// Other nodes that are alive (a fresh snapshot) count as heard from now; then nodes not
    /// heard from for [`FORGET_AFTER`] are forgotten, unless the reader has not caught up (their
    /// messages may still be ahead of it).
    pub(super) async fn note_alive<'a>(&self, alive: impl IntoIterator<Item = &'a str>) {
        let now = Instant::now();
        let mut ledger = self.ledger().await;
        for node in alive {
            if let Some(peer) = ledger.peers.get_mut(node) {
                peer.heard = now;
            }
        }
        if !ledger.caught_up {
            return;
        }
        let before = ledger.peers.len();
        ledger.peers.retain(|_, peer| now.duration_since(peer.heard) < FORGET_AFTER);
        let forgotten = before - ledger.peers.len();
        if forgotten > 0 {
            tracing::debug!(forgotten, "forgot bus nodes not heard from for an hour");
        }
    }
}

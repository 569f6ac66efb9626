//! The bus: how published events and raw emits reach every node exactly once, in one order.
//!
//! A node appends each message, numbered, to one Redis stream and applies it when it reads it
//! back, like every other node: a stream has one order for every reader, so every node applies
//! the same messages in the same order, and the last-known state they build is the same. A
//! caller waits until its message is on Redis, so a backend's next publish, through whichever
//! node, comes after it. A node that could not read for a while (its connection dropped, Redis
//! restarted) reads on from the last message it applied, so it misses nothing still in the stream.
//!
//! While Redis is away (or already has a backlog), the sender applies a message at once, so its
//! own sockets keep receiving, and keeps it, in order, to append when Redis is back; the other
//! nodes then get it late rather than never. Receivers drop what they have already applied: a
//! message per `(node, seq)` is applied once, whether it was appended twice (a retried append
//! that had in fact gone through) or it comes back to a sender that applied it itself.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    future::Future,
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use super::{
    BACKLOG_LIMIT, now_ms,
    stream::{BusStream, StreamId},
};
use crate::{engine::Outgoing, metrics::ClusterMetrics};

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

/// How often a backlog is retried while Redis is away.
const RETRY_EVERY: Duration = Duration::from_millis(250);
/// Most entries one read takes.
const READ_BATCH: usize = 256;
/// How long the reader waits before reading again after a failed read.
const READ_RETRY: Duration = Duration::from_millis(200);

/// This node's sockets, where the bus applies messages.
pub trait Local: Send + Sync + 'static {
    /// Applies one message to this node's sockets.
    fn apply(&self, message: &Outgoing) -> impl Future<Output = ()> + Send;
}

/// A message handed to the bus, and who to tell when it is sent (or applied here).
pub struct Submitted {
    /// The work.
    pub message: Outgoing,
    /// Resolved once the message is on Redis or applied on this node.
    pub done: oneshot::Sender<()>,
}

/// One node's end of the bus.
pub struct Bus<S, L> {
    node: String,
    stream: S,
    local: L,
    seq: AtomicU64,
    seen: Mutex<Seen>,
    /// The bus lag and the backlog are measured here.
    metrics: ClusterMetrics,
}

/// What a node has applied.
#[derive(Default)]
struct Seen {
    /// Highest sequence applied per other node.
    others: HashMap<String, u64>,
    /// Highest sequence of ours applied as it came back.
    own: u64,
    /// Ours applied directly (Redis was away), whose echo must be skipped.
    applied_here: HashSet<u64>,
}

impl<S: BusStream, L: Local> Bus<S, L> {
    /// The bus of node `node` on `stream`, applying to `local`.
    pub fn new(node: String, stream: S, local: L, metrics: ClusterMetrics) -> Self {
        Self { node, stream, local, seq: AtomicU64::new(0), seen: Mutex::new(Seen::default()), metrics }
    }

    /// The stream's newest position: a node that joins applies what comes after it.
    pub async fn end(&self) -> Result<StreamId, super::stream::StreamError> {
        Ok(self.stream.last_id().await?.unwrap_or(StreamId::START))
    }

    /// Reads the stream from `after` on, forever, applying each message once. After a failure it
    /// reads on from the last message applied, so nothing that is still in the stream is missed.
    pub async fn run_reader(&self, mut after: StreamId) {
        let mut failing = false;
        loop {
            match self.stream.read_after(after, READ_BATCH).await {
                Ok(entries) => {
                    if failing {
                        failing = false;
                        // A Redis that restarted without its data starts a new stream, whose ids
                        // may be below ours: read it from the start (applied messages are skipped).
                        if let Ok(end) = self.end().await
                            && end < after
                        {
                            tracing::info!("the bus stream was recreated; reading it from its start");
                            after = StreamId::START;
                            continue;
                        }
                    }
                    for entry in entries {
                        after = entry.id;
                        if let Some(outgoing) = entry.message.and_then(|m| self.receive(m.as_bytes())) {
                            self.local.apply(&outgoing).await;
                        }
                    }
                }
                Err(e) => {
                    if !failing {
                        tracing::debug!(error = %e, "reading the bus failed; retrying");
                    }
                    failing = true;
                    tokio::time::sleep(READ_RETRY).await;
                }
            }
        }
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads a bus message; `None` when it was applied already or cannot be read. A message to
    /// apply counts its lag: the time since its sender appended it (`at`, the sender's clock).
    pub fn receive(&self, payload: &[u8]) -> Option<Outgoing> {
        let mut value: Value = match serde_json::from_slice(payload) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "a bus message is not JSON");
                return None;
            }
        };
        let (Some(node), Some(seq)) = (value["node"].as_str(), value["seq"].as_u64()) else {
            tracing::warn!("a bus message has no node or seq");
            return None;
        };
        let own = node == self.node;
        {
            let mut seen = self.seen();
            if own {
                // Ours come back in the order they were appended. One applied here while Redis
                // was away may come back twice: an append that timed out can still have been
                // executed (Redis was hung, not gone), and the backlog appends it again. Both
                // copies are skipped because `own` moves past it with the first.
                let applied_here = seen.applied_here.remove(&seq);
                let duplicate = seq <= seen.own;
                seen.own = seen.own.max(seq);
                if applied_here || duplicate {
                    return None;
                }
            } else {
                let last = seen.others.entry(node.to_string()).or_default();
                if seq <= *last {
                    return None;
                }
                *last = seq;
            }
        }
        if let Some(at) = value["at"].as_u64() {
            // A sender whose clock runs ahead would give a negative lag: counted as none.
            let lag = std::time::Duration::from_millis(now_ms().saturating_sub(at));
            if own { &self.metrics.bus_lag_local } else { &self.metrics.bus_lag_remote }.observe(lag);
        }
        match Outgoing::from_json(value["body"].take()) {
            Ok(outgoing) => Some(outgoing),
            Err(e) => {
                tracing::warn!(error = %e, "a bus message could not be read");
                None
            }
        }
    }

    /// Sends submitted messages in order until the sender side closes.
    pub async fn run_outbox(&self, mut submitted: mpsc::Receiver<Submitted>) {
        let mut backlog: VecDeque<(u64, String)> = VecDeque::new();
        let mut retry = tokio::time::interval(RETRY_EVERY);
        retry.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                next = submitted.recv() => {
                    let Some(Submitted { message, done }) = next else { return };
                    let seq = self.seq.fetch_add(1, Ordering::SeqCst) + 1;
                    // `at`: when it was sent, which the receivers' lag is measured from, kept
                    // through a backlog (its wait is lag too).
                    let wire = json!({ "node": self.node, "seq": seq, "at": now_ms(), "body": message.to_json() })
                        .to_string();
                    // Behind a backlog, a message waits its turn: order is kept for everyone.
                    if !(backlog.is_empty() && self.stream.append(&wire).await.is_ok()) {
                        self.seen().applied_here.insert(seq);
                        self.local.apply(&message).await;
                        backlog.push_back((seq, wire));
                        if backlog.len() > BACKLOG_LIMIT
                            && let Some((lost, _)) = backlog.pop_front()
                        {
                            self.seen().applied_here.remove(&lost);
                            self.metrics.bus_backlog_dropped.inc();
                            tracing::error!(limit = BACKLOG_LIMIT, "bus backlog full: the oldest message will not reach the other nodes");
                        }
                        self.metrics.bus_backlog.set(backlog.len() as i64);
                    }
                    let _ = done.send(());
                }
                _ = retry.tick(), if !backlog.is_empty() => {
                    let before = backlog.len();
                    while let Some((_, wire)) = backlog.front() {
                        if self.stream.append(wire).await.is_err() {
                            break;
                        }
                        backlog.pop_front();
                    }
                    self.metrics.bus_backlog.set(backlog.len() as i64);
                    if backlog.is_empty() {
                        tracing::info!(messages = before, "sent the backlog kept while Redis was away");
                    }
                }
            }
        }
    }
}

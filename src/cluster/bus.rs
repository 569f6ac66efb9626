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

use super::{BACKLOG_LIMIT, now_ms};
use crate::{engine::Outgoing, metrics::ClusterMetrics};

/// How often a backlog is retried while Redis is away.
const RETRY_EVERY: Duration = Duration::from_millis(250);

/// A message handed to the bus, and who to tell when it is sent (or applied here).
pub struct Submitted {
    /// The work.
    pub message: Outgoing,
    /// Resolved once the message is on Redis or applied on this node.
    pub done: oneshot::Sender<()>,
}

/// One node's end of the bus.
pub struct Bus {
    node: String,
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

impl Bus {
    /// The bus of node `node`.
    pub fn new(node: String, metrics: ClusterMetrics) -> Self {
        Self { node, seq: AtomicU64::new(0), seen: Mutex::new(Seen::default()), metrics }
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

    /// Sends submitted messages in order until the sender side closes. `publish` appends one to
    /// the stream (false: Redis is away); `apply` applies one on this node.
    pub async fn run_outbox<P, PF, F, AF>(&self, mut submitted: mpsc::Receiver<Submitted>, publish: P, apply: F)
    where
        P: Fn(String) -> PF,
        PF: Future<Output = bool>,
        F: Fn(Outgoing) -> AF,
        AF: Future<Output = ()>,
    {
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
                    if !(backlog.is_empty() && publish(wire.clone()).await) {
                        self.seen().applied_here.insert(seq);
                        apply(message).await;
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
                        if !publish(wire.clone()).await {
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

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    };

    use super::*;
    use crate::{engine::EmitRequest, metrics::Metrics};

    fn bus(node: &str) -> Bus {
        Bus::new(node.into(), Metrics::new(true).cluster.expect("cluster metrics"))
    }

    fn emit(n: u64) -> Outgoing {
        Outgoing::Emit(EmitRequest {
            namespace: "/".into(),
            rooms: vec!["r".into()],
            event: format!("e{n}"),
            data: Value::Null,
            tenant: None,
        })
    }

    fn wire(node: &str, seq: u64, n: u64) -> Vec<u8> {
        json!({ "node": node, "seq": seq, "at": now_ms(), "body": emit(n).to_json() }).to_string().into_bytes()
    }

    fn event_name(o: &Outgoing) -> String {
        match o {
            Outgoing::Emit(e) => e.event.clone(),
            Outgoing::Events(_) => "events".into(),
        }
    }

    #[test]
    fn each_message_is_applied_once() {
        let bus = bus("me");
        assert_eq!(bus.receive(&wire("other", 1, 1)).map(|o| event_name(&o)), Some("e1".into()));
        assert!(bus.receive(&wire("other", 1, 1)).is_none(), "a duplicate from a retried send");
        assert!(bus.receive(&wire("other", 2, 2)).is_some());
        assert!(bus.receive(&wire("third", 1, 9)).is_some(), "sequences are per node");
        bus.seen().applied_here.insert(5);
        assert!(bus.receive(&wire("me", 4, 4)).is_some(), "ours, applied as it came back");
        assert!(bus.receive(&wire("me", 5, 5)).is_none(), "ours, applied here while Redis was away");
        assert!(bus.receive(&wire("me", 4, 4)).is_none());
        assert!(bus.receive(b"{}").is_none());
        assert_eq!(bus.metrics.bus_lag_remote.count(), 3, "the lag of each other node's message applied");
        assert_eq!(bus.metrics.bus_lag_local.count(), 1, "and of our own applied as it came back");
    }

    /// Redis hung (SIGSTOP): the append of 7 timed out, so 7 was applied here and kept; the hung
    /// Redis executed that append when it woke, and the backlog appended 7 again.
    #[test]
    fn an_append_that_timed_out_but_went_through_is_applied_once() {
        let bus = bus("me");
        assert!(bus.receive(&wire("me", 6, 6)).is_some(), "6 went through normally");
        bus.seen().applied_here.insert(7);
        assert!(bus.receive(&wire("me", 7, 7)).is_none(), "the timed-out append, applied here already");
        assert!(bus.receive(&wire("me", 7, 7)).is_none(), "the backlog's copy of it");
        assert!(bus.receive(&wire("me", 8, 8)).is_some());
        assert!(bus.receive(b"garbage").is_none());
    }

    #[tokio::test]
    async fn while_redis_is_away_messages_apply_here_and_are_sent_in_order_later() {
        let bus = Arc::new(bus("me"));
        let up = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(Mutex::new(Vec::<u64>::new()));
        let applied = Arc::new(Mutex::new(Vec::<String>::new()));
        let (tx, rx) = mpsc::channel(16);
        let runner = {
            let (bus, up, sent, applied) = (bus.clone(), up.clone(), sent.clone(), applied.clone());
            tokio::spawn(async move {
                bus.run_outbox(
                    rx,
                    |wire: String| {
                        let (up, sent) = (up.clone(), sent.clone());
                        async move {
                            let ok = up.load(Ordering::SeqCst);
                            if ok {
                                let v: Value = serde_json::from_str(&wire).unwrap();
                                sent.lock().unwrap().push(v["seq"].as_u64().unwrap());
                            }
                            ok
                        }
                    },
                    |o| {
                        let applied = applied.clone();
                        async move { applied.lock().unwrap().push(event_name(&o)) }
                    },
                )
                .await
            })
        };
        let submit = |n: u64| {
            let tx = tx.clone();
            async move {
                let (done, wait) = oneshot::channel();
                tx.send(Submitted { message: emit(n), done }).await.unwrap();
                wait.await.unwrap();
            }
        };
        submit(1).await;
        up.store(false, Ordering::SeqCst);
        submit(2).await;
        submit(3).await;
        assert_eq!(*applied.lock().unwrap(), ["e2", "e3"], "applied here while away; 1 waits for its echo");
        assert_eq!(bus.metrics.bus_backlog.get(), 2);
        up.store(true, Ordering::SeqCst);
        submit(4).await;
        assert_eq!(*applied.lock().unwrap(), ["e2", "e3", "e4"], "behind a backlog, applied here too");
        tokio::time::timeout(Duration::from_secs(2), async {
            while sent.lock().unwrap().len() < 4 || bus.metrics.bus_backlog.get() > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("the backlog is sent, and the gauge says so");
        assert_eq!(*sent.lock().unwrap(), [1, 2, 3, 4], "in order");
        // The stream holds them in the order they were appended: 1 (before the outage), then the
        // backlog.
        assert!(bus.receive(&wire("me", 1, 1)).is_some(), "1 is applied when it comes back");
        assert!(bus.receive(&wire("me", 2, 2)).is_none() && bus.receive(&wire("me", 4, 4)).is_none());
        runner.abort();
    }
}

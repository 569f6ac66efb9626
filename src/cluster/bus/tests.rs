//! The bus against a fake stream (`fake.rs`): one or two nodes, each with its reader and outbox
//! running, on tokio's paused clock.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use super::{fake::FakeRedis, *};
use crate::{engine::EmitRequest, metrics::Metrics};

/// What one node applied to its sockets, in order: each message's event name.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<Vec<String>>>);

impl Sockets {
    fn applied(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }
}

impl Local for Sockets {
    async fn apply(&self, message: &Outgoing) {
        let name = match message {
            Outgoing::Emit(e) => e.event.clone(),
            Outgoing::Events(_) => "events".into(),
        };
        self.0.lock().unwrap().push(name);
    }
}

/// A message named `name`.
fn emit(name: &str) -> Outgoing {
    Outgoing::Emit(EmitRequest {
        namespace: "/".into(),
        rooms: vec!["r".into()],
        event: name.into(),
        data: Value::Null,
        tenant: None,
    })
}

/// A bus message of `node` as it is on the wire.
fn wire(node: &str, seq: u64, name: &str) -> String {
    json!({ "node": node, "seq": seq, "at": now_ms(), "body": emit(name).to_json() }).to_string()
}

/// One node: its bus on `redis`, with the reader and the outbox running.
struct Node {
    bus: Arc<Bus<FakeRedis, Sockets>>,
    sockets: Sockets,
    outbox: mpsc::Sender<Submitted>,
    tasks: Vec<JoinHandle<()>>,
}

impl Node {
    async fn join(name: &str, redis: &FakeRedis) -> Node {
        let sockets = Sockets::default();
        let metrics = Metrics::new(true).cluster.expect("cluster metrics");
        let bus = Arc::new(Bus::new(name.into(), redis.clone(), sockets.clone(), metrics));
        let start = bus.end().await.expect("the stream's end");
        let (outbox, submitted) = mpsc::channel(16);
        let reader = tokio::spawn({
            let bus = bus.clone();
            async move { bus.run_reader(start).await }
        });
        let sender = tokio::spawn({
            let bus = bus.clone();
            async move { bus.run_outbox(submitted).await }
        });
        Node { bus, sockets, outbox, tasks: vec![reader, sender] }
    }

    /// Publishes `name` through this node and waits as a caller does: until it is on the
    /// stream, or applied here.
    async fn publish(&self, name: &str) {
        let (done, sent) = oneshot::channel();
        self.outbox.send(Submitted { message: emit(name), done }).await.expect("the outbox runs");
        sent.await.expect("the outbox answers");
    }

    fn applied(&self) -> Vec<String> {
        self.sockets.applied()
    }

    /// Waits (on the paused clock) until this node has applied `n` messages, and a while longer
    /// for anything applied twice to show.
    async fn settled(&self, n: usize) -> Vec<String> {
        until(|| self.applied().len() >= n, &format!("{n} messages applied")).await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        self.applied()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Waits until `done` holds, failing after a minute of (paused) time.
async fn until(done: impl Fn() -> bool, what: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "not reached: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test(start_paused = true)]
async fn every_node_applies_every_message_once_in_one_order() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    let b = Node::join("b", &redis).await;
    for i in 0..5 {
        a.publish(&format!("a{i}")).await;
        b.publish(&format!("b{i}")).await;
    }
    let order: Vec<String> = (0..5).flat_map(|i| [format!("a{i}"), format!("b{i}")]).collect();
    assert_eq!(a.settled(10).await, order);
    assert_eq!(b.settled(10).await, order);
    assert_eq!(a.bus.metrics.bus_lag_local.count(), 5, "the lag of each of its own, back from the stream");
    assert_eq!(a.bus.metrics.bus_lag_remote.count(), 5, "and of each of the other node's");
}

#[tokio::test(start_paused = true)]
async fn a_message_appended_twice_is_applied_once() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    redis.push(wire("b", 1, "b1"));
    redis.push(wire("b", 1, "b1"));
    redis.push(wire("b", 2, "b2"));
    redis.push(wire("c", 1, "c1"));
    redis.push("not json");
    redis.push(json!({ "node": "b" }).to_string());
    assert_eq!(a.settled(3).await, ["b1", "b2", "c1"], "sequences are per node; unreadable entries skipped");
}

/// Redis hangs while a node publishes: the append in flight times out (and runs when Redis
/// wakes), the ones after it are kept; the node's own sockets get every message at once, the
/// other node gets them after the hang, each once.
#[tokio::test(start_paused = true)]
async fn while_redis_hangs_the_sender_applies_at_once_and_the_others_get_each_once_later() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    let b = Node::join("b", &redis).await;
    a.publish("m0").await;
    redis.hang();
    for i in 1..4 {
        a.publish(&format!("m{i}")).await;
    }
    assert_eq!(a.applied(), names("m", 0..4), "applied here while Redis hangs");
    assert_eq!(a.bus.metrics.bus_backlog.get(), 3);
    redis.wake();
    assert_eq!(a.settled(4).await, names("m", 0..4));
    assert_eq!(b.settled(4).await, names("m", 0..4));
    assert_eq!(a.bus.metrics.bus_backlog.get(), 0, "the backlog went out");
    let appended: Vec<u64> =
        redis.messages().iter().map(|m| serde_json::from_str::<Value>(m).unwrap()["seq"].as_u64().unwrap()).collect();
    // The append that hung ran when Redis woke, and the backlog appended m1 again (each retry
    // that hung too ran as well).
    assert!(appended.iter().filter(|s| **s == 2).count() >= 2, "m1 is in the stream more than once: {appended:?}");
}

/// Redis restarted without its data: the new stream's ids start below the reader's position.
#[tokio::test(start_paused = true)]
async fn a_recreated_stream_is_read_from_its_start() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    for i in 0..3 {
        redis.push(wire("b", i + 1, &format!("b{i}")));
    }
    a.settled(3).await;
    redis.hang();
    tokio::time::sleep(Duration::from_secs(3)).await;
    redis.recreate();
    redis.push(wire("b", 3, "b2"));
    redis.push(wire("b", 4, "b3"));
    redis.wake();
    assert_eq!(a.settled(4).await, names("b", 0..4), "b3 is read, though its id is below the old position");
}

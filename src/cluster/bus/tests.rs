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

/// What one node applied to its sockets, in order: each message's event name; and how many
/// times it was told it missed messages.
#[derive(Clone, Default)]
struct Sockets(Arc<Mutex<Vec<String>>>, Arc<std::sync::atomic::AtomicU64>);

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
            Outgoing::Stream(_) => "stream".into(),
        };
        self.0.lock().unwrap().push(name);
    }

    fn missed(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
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
    json!({ "node": node, "seq": seq, "at": crate::clock::now_millis(), "body": emit(name).to_json() }).to_string()
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
        Self::join_with(name, redis, |bus| bus).await
    }

    /// [`Node::join`] with the bus as `configure` makes it.
    async fn join_with(
        name: &str,
        redis: &FakeRedis,
        configure: impl FnOnce(Bus<FakeRedis, Sockets>) -> Bus<FakeRedis, Sockets>,
    ) -> Node {
        let sockets = Sockets::default();
        let metrics = Metrics::new(true).cluster.expect("cluster metrics");
        let bus = Arc::new(configure(Bus::new(name.into(), redis.clone(), sockets.clone(), metrics)));
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

/// Asserts that `applied` is `sent`, saying briefly what was applied twice or is missing.
#[track_caller]
fn assert_once_in_order(applied: &[String], sent: &[String], who: &str) {
    if applied == sent {
        return;
    }
    let count = |name: &String| applied.iter().filter(|a| *a == name).count();
    let twice: Vec<&String> = sent.iter().filter(|n| count(n) > 1).collect();
    let missing: Vec<&String> = sent.iter().filter(|n| count(n) == 0).collect();
    let first_difference = applied.iter().zip(sent).position(|(a, s)| a != s);
    panic!(
        "{who}: {} applied for {} sent; applied more than once: {twice:?}; missing: {missing:?}; first out of order at {first_difference:?}; applied: {:?}",
        applied.len(),
        sent.len(),
        &applied[..applied.len().min(20)]
    );
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

/// Window (a) of issue 15: the append of m1 went through, the node's reader read it back and
/// applied it, and only then did the append answer an error (the client's timeout fired
/// first). The sender must not apply it a second time.
#[tokio::test(start_paused = true)]
async fn an_append_read_back_before_it_answers_an_error_is_applied_once() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    let b = Node::join("b", &redis).await;
    a.publish("m0").await;
    redis.append_but_time_out(1);
    a.publish("m1").await;
    a.publish("m2").await;
    assert_once_in_order(&a.settled(3).await, &names("m", 0..3), "the sender");
    assert_once_in_order(&b.settled(3).await, &names("m", 0..3), "the other node");
}

/// Window (b) of issue 15: Redis hangs with m0's append in flight; the backlog fills and drops
/// its oldest, m0, which the hung Redis still runs when it wakes. The sender applied m0 when
/// its append failed, and must not apply it again when it comes back; the other node applies
/// each message at most once, and counts the ones it never gets.
#[tokio::test(start_paused = true)]
async fn a_message_dropped_from_a_full_backlog_is_not_applied_again_when_a_hung_redis_runs_it() {
    let redis = FakeRedis::default();
    let a = Node::join_with("a", &redis, |bus| bus.with_backlog_limits(3, usize::MAX)).await;
    let b = Node::join("b", &redis).await;
    redis.hang();
    let sent = names("m", 0..6);
    for name in &sent {
        a.publish(name).await;
    }
    assert_eq!(a.bus.metrics.bus_backlog_dropped.get(), 3, "m0, m1 and m2 were dropped from the full backlog");
    redis.wake();
    assert_once_in_order(&a.settled(sent.len()).await, &sent, "the sender");
    until(|| b.applied().last().map(String::as_str) == Some("m5"), "m5 on the other node").await;
    let got = b.settled(0).await;
    let expected: Vec<String> = sent.iter().filter(|n| got.contains(n)).cloned().collect();
    assert_once_in_order(&got, &expected, "the other node");
    assert!(got.contains(&"m0".to_string()), "m0, from the append that hung: {got:?}");
    assert_eq!(
        b.bus.metrics.bus_missed.get(),
        (sent.len() - got.len()) as u64,
        "what the other node never got is counted: {got:?}"
    );
}

/// The sender's own order: m0 was appended but not yet read back when Redis hung; m1's append
/// fails, and m1 is applied here at once, but not before m0.
#[tokio::test(start_paused = true)]
async fn ours_are_applied_in_the_order_sent_when_redis_hangs_before_one_is_read_back() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    let b = Node::join("b", &redis).await;
    redis.stall_reads(true);
    a.publish("m0").await;
    redis.hang();
    a.publish("m1").await;
    a.publish("m2").await;
    assert_eq!(a.applied(), names("m", 0..3), "in the order sent, while Redis hangs");
    redis.stall_reads(false);
    redis.wake();
    assert_once_in_order(&a.settled(3).await, &names("m", 0..3), "the sender");
    assert_once_in_order(&b.settled(3).await, &names("m", 0..3), "the other node");
}

/// Only the reader's connection fails: appends work, so the sender's messages are on Redis,
/// but their echo does not come; they are applied here at once.
#[tokio::test(start_paused = true)]
async fn while_only_the_reader_fails_the_senders_own_messages_apply_at_once() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    let b = Node::join("b", &redis).await;
    redis.fail_reads(true);
    tokio::time::sleep(Duration::from_secs(1)).await;
    a.publish("m0").await;
    a.publish("m1").await;
    assert_eq!(a.applied(), names("m", 0..2), "applied without waiting for the reader");
    redis.fail_reads(false);
    a.publish("m2").await;
    assert_once_in_order(&a.settled(3).await, &names("m", 0..3), "the sender");
    assert_once_in_order(&b.settled(3).await, &names("m", 0..3), "the other node");
}

/// A reader that falls behind a trimmed stream misses messages: it says so (a metric, a log
/// line, and to the node, whose room history no longer holds every event) and applies the rest.
#[tokio::test(start_paused = true)]
async fn a_gap_in_another_nodes_messages_is_counted() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    redis.push(wire("b", 1, "b1"));
    a.settled(1).await;
    redis.stall_reads(true);
    for seq in 2..6 {
        redis.push(wire("b", seq, &format!("b{seq}")));
    }
    redis.trim(2);
    redis.stall_reads(false);
    assert_eq!(a.settled(3).await, ["b1", "b4", "b5"]);
    assert_eq!(a.bus.metrics.bus_gaps.get(), 1);
    assert_eq!(a.bus.metrics.bus_missed.get(), 2, "b2 and b3");
    let told = || a.sockets.1.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(told(), 1, "the node is told, and forgets its room history");
    redis.push(wire("b", 6, "b6"));
    a.settled(4).await;
    assert_eq!(a.bus.metrics.bus_gaps.get(), 1, "no gap after it");
    assert_eq!(told(), 1);
}

/// The backlog is bounded in bytes as well as in count.
#[tokio::test(start_paused = true)]
async fn the_backlog_is_bounded_in_bytes() {
    let redis = FakeRedis::default();
    let one = wire("a", 1, "m0").len();
    let a = Node::join_with("a", &redis, |bus| bus.with_backlog_limits(100, 3 * one)).await;
    redis.hang();
    for name in names("m", 0..6) {
        a.publish(&name).await;
    }
    assert_eq!(a.bus.metrics.bus_backlog.get(), 3);
    assert_eq!(a.bus.metrics.bus_backlog_dropped.get(), 3);
    assert_eq!(a.applied(), names("m", 0..6), "every one applied here");
}

/// What is remembered of other nodes does not grow with every node that ever ran: a node not
/// heard from for an hour (no message, no live snapshot) is forgotten, once the reader has
/// caught up; a live one is kept.
#[tokio::test(start_paused = true)]
async fn nodes_not_heard_from_for_an_hour_are_forgotten() {
    let redis = FakeRedis::default();
    let a = Node::join("a", &redis).await;
    for i in 0..100 {
        redis.push(wire(&format!("gone{i}"), 1, "x"));
    }
    redis.push(wire("live", 1, "x"));
    a.settled(101).await;
    assert_eq!(a.bus.ledger().await.peers.len(), 101);
    tokio::time::sleep(FORGET_AFTER / 2).await;
    a.bus.note_alive(["live"]).await;
    redis.fail_reads(true);
    tokio::time::sleep(FORGET_AFTER / 2 + Duration::from_secs(60)).await;
    a.bus.note_alive(["live"]).await;
    assert_eq!(a.bus.ledger().await.peers.len(), 101, "kept while the reader cannot read: messages may be ahead of it");
    redis.fail_reads(false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    a.bus.note_alive(["live"]).await;
    let ledger = a.bus.ledger().await;
    assert_eq!(ledger.peers.keys().collect::<Vec<_>>(), ["live"], "the others are forgotten");
}

#[test]
fn an_entrys_positions_go_to_the_events_they_name_and_none_when_they_do_not_line_up() {
    let event = |n: u64| {
        crate::engine::PublishedEvent::from_json(json!({ "type": "t", "tenantId": "t1", "data": { "n": n } }), "e")
            .expect("an event")
    };
    let message = json!({ "h": [[0, "/ws", "t1/a"], [1, "/ws", "t1/a"], [1, "/x", "t1/b"]] });
    let given = given_positions(&message, Some("7 e1\n8 e1\n1 f2"));
    assert_eq!(given.len(), 3);
    let Outgoing::Events(events) = with_given(Outgoing::Events(vec![event(0), event(1)]), &given) else {
        panic!("events stay events")
    };
    let at = |e: &crate::engine::PublishedEvent, path, room| e.given_position(path, room).cloned();
    assert_eq!(at(&events[0], "/ws", "t1/a"), Some(Position { offset: 7, epoch: "e1".into() }));
    assert_eq!(at(&events[1], "/ws", "t1/a"), Some(Position { offset: 8, epoch: "e1".into() }));
    assert_eq!(at(&events[1], "/x", "t1/b"), Some(Position { offset: 1, epoch: "f2".into() }));
    assert_eq!(at(&events[0], "/x", "t1/b"), None);
    // A count that differs, or a line that is not `<offset> <epoch>`: each node numbers them.
    assert!(given_positions(&message, Some("7 e1\n8 e1")).is_empty());
    assert!(given_positions(&message, Some("7 e1\nx e1\n1 f2")).is_empty());
    assert!(given_positions(&message, None).is_empty());
}

//! Presence questions across nodes: the asking node publishes the question on one sharded
//! pub/sub channel every node subscribes to (sharded, so that on a Redis Cluster too every
//! subscriber is on the one master that counts them), each other node answers with its own connections on the
//! asker's channel, and the asker waits for as many answers as Redis said received the question.
//!
//! Nothing is stored: a node that died is in no answer given after it stopped answering. Redis
//! forgets a killed process's subscription when its connection closes, so `SPUBLISH` stops counting
//! it at once and the answer is complete without it; a node cut off without its connection
//! closing is still counted until Redis notices, and the answer then comes after
//! [`ANSWER_TIMEOUT`], marked incomplete, still without it.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use fred::{clients::Client, interfaces::PubsubInterface};
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use tokio::sync::{Semaphore, mpsc};

use crate::{
    engine::presence::{LocalPresence, PresenceAnswers, PresenceQuestion},
    node::Node,
};

/// How long the asker waits for the other nodes' answers.
pub(crate) const ANSWER_TIMEOUT: Duration = Duration::from_secs(1);
/// Questions this node waits on at once; more wait for a slot (within the same timeout).
const IN_FLIGHT: usize = 64;
/// Most answers one question collects (nodes in a cluster).
const MAX_NODES: usize = 256;

/// This node's side of presence questions: what it asked and waits for.
pub(super) struct PresenceAsk {
    node: String,
    /// Every node's questions arrive here.
    pub(super) questions: String,
    /// This node's answers arrive here.
    pub(super) answers: String,
    /// The prefix of every node's answer channel.
    answers_prefix: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, mpsc::Sender<LocalPresence>>>,
    slots: Arc<Semaphore>,
}

impl PresenceAsk {
    pub(super) fn new(prefix: &str, node: &str) -> Self {
        let answers_prefix = format!("{prefix}:presence:answer:");
        Self {
            node: node.to_string(),
            questions: format!("{prefix}:presence:ask"),
            answers: format!("{answers_prefix}{node}"),
            answers_prefix,
            next: AtomicU64::new(1),
            waiting: Mutex::default(),
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
        }
    }

    /// Asks the other nodes through `client`; `subscribed` says whether this node receives its
    /// own question (it then does not count among those to wait for).
    pub(super) async fn ask(&self, client: &Client, question: PresenceQuestion, subscribed: bool) -> PresenceAnswers {
        tokio::time::timeout(ANSWER_TIMEOUT, self.collect(client, question, subscribed)).await.unwrap_or_default()
    }

    async fn collect(&self, client: &Client, question: PresenceQuestion, subscribed: bool) -> PresenceAnswers {
        let Ok(_slot) = self.slots.acquire().await else { return PresenceAnswers::default() };
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, mut rx) = mpsc::channel(MAX_NODES);
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        // Forgets the question however this ends (answered, timed out, dropped).
        let _forget = Forget(self, id);
        let message = json!({ "id": id, "from": self.node, "question": question.to_json() }).to_string();
        let received: i64 = match client.spublish(self.questions.as_str(), message).await {
            Ok(n) => n,
            Err(e) => {
                tracing::debug!(error = %e, "could not ask the other nodes about presence");
                return PresenceAnswers::default();
            }
        };
        let expected = usize::try_from(received).unwrap_or(0).saturating_sub(usize::from(subscribed));
        let mut answers = Vec::with_capacity(expected);
        while answers.len() < expected {
            match rx.recv().await {
                Some(answer) => answers.push(answer),
                None => break,
            }
        }
        let complete = answers.len() >= expected;
        PresenceAnswers { answers, complete }
    }

    /// A question from another node: answers it with this node's connections, on its own task
    /// (the receive loop does not wait for the publish).
    pub(super) fn answer<A: Adapter>(&self, client: &Client, engine: &Node<A>, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else { return };
        let (Some(id), Some(from)) = (message["id"].as_u64(), message["from"].as_str()) else { return };
        if from == self.node {
            return;
        }
        let Some(question) = PresenceQuestion::from_json(&message["question"]) else { return };
        let here = engine.presence_here(&question);
        let channel = format!("{}{from}", self.answers_prefix);
        let answer = json!({ "id": id, "answer": here.to_json() }).to_string();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(e) = client.spublish::<i64, _, _>(channel, answer).await {
                tracing::debug!(error = %e, "could not answer a presence question");
            }
        });
    }

    /// Another node's answer to one of this node's questions.
    pub(super) fn answered(&self, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else { return };
        let Some(id) = message["id"].as_u64() else { return };
        let waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = waiting.get(&id) {
            // Full only past MAX_NODES answers: those are not waited for anyway.
            let _ = tx.try_send(LocalPresence::from_json(&message["answer"]));
        }
    }
}

/// Removes a question from those waited for when dropped.
struct Forget<'a>(&'a PresenceAsk, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

//! Bridges in a cluster: each runs on one node, the one holding its lease in Redis; run-time
//! provider changes are stored in Redis for every node; sends reach the holder from any node.
//!
//! - **Leases.** `{prefix}:bridge:lease:{tenant}` holds `{node}:{token}`, taken with `SET NX PX`
//!   ([`LEASE`]) and renewed every [`TICK`] only while it still holds this node's value (a
//!   compare-and-expire script), so a node that lost it (expired while it stalled or was cut off,
//!   then taken) learns so and stops its bridge. The token comes from `INCR
//!   {prefix}:bridge:fence:{tenant}`, new for every holder; forwarded sends name it and a holder
//!   answers only those naming its own. A holder also stops acting on its own once [`LEASE`] has
//!   passed since its last renewal was sent, which is no later than Redis lets the key expire: an
//!   old holder never runs beside a new one. A killed holder's key expires within [`LEASE`] and
//!   another node takes it on its next tick: the bridge runs again within `LEASE + TICK` plus the
//!   time to connect.
//! - **Changes.** `{<prefix>:bridges}:config` is a hash of tenant to `{name, provider}` (the
//!   provider's JSON, credentials included: Redis must be protected as the bridges file is),
//!   written with `{<prefix>:bridges}:version` incremented in one script (one hash tag: one slot
//!   on a Redis Cluster). Every node reads the
//!   version every tick and, when it moved, the whole hash, which replaces its run-time changes
//!   (`Bridges::reload`). The file's entries are the defaults; a stored change overrides its
//!   tenant's.
//! - **Sends from any node.** A node that does not hold a bridge reads its lease and publishes
//!   the send on the holder's sharded channel `{prefix}:bridge:ask:{node}` (`SPUBLISH` counts its
//!   subscriber on a Redis Cluster too, which says whether the holder is there); the holder answers on the
//!   asker's `{prefix}:bridge:answer:{node}` with the peer's ack or the error's code, which the
//!   API answers as it would on the holder (502, 503, 504). Bounded: [`IN_FLIGHT`] sends waiting
//!   here and as many served here; beyond, 503. No answer within the ack's wait plus
//!   [`ANSWER_MARGIN`]: 504.
//! - **Stopping.** A node that stops gracefully closes its bridges and gives their leases up
//!   (compare-and-delete), so another node takes each at its next tick.
//! - **Status.** Every tick a holder writes its bridges' status to `{prefix}:bridges:status`
//!   (tenant to status with `node` and `at`); `GET /api/v1/bridges` on any node shows each
//!   bridge once, from there, and a status older than [`STATUS_STALE_MS`] as `waiting`.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use fred::{
    clients::Client,
    interfaces::{ClientLike, HashesInterface, KeysInterface, PubsubInterface},
    types::{ClusterHash, CustomCommand, Expiration, SetOptions},
};
use serde_json::{Value, json};
use tokio::sync::{Semaphore, oneshot};

use crate::{
    bridge::{BridgeLink, Bridges, Lease, LinkFuture, SendError},
    clock::now_millis,
    config::BridgeConfig,
};

/// How long a lease lasts without renewal.
pub(crate) const LEASE: Duration = Duration::from_secs(4);
/// How often leases are renewed or taken, changes read and statuses written.
pub(crate) const TICK: Duration = Duration::from_secs(1);
/// A holder's status older than this is not shown (the holder is gone).
const STATUS_STALE_MS: u64 = 5_000;
/// Sends this node waits on at once, and sends it serves for others at once.
const IN_FLIGHT: usize = 1024;
/// How much longer than the peer's wait the asking node waits for the holder's answer.
const ANSWER_MARGIN: Duration = Duration::from_secs(2);

/// Renews a lease only while it holds `ARGV[1]`.
const RENEW: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end";
/// Deletes a lease only while it holds `ARGV[1]`.
const GIVE_UP: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
/// Stores a change and moves the version, together.
const STORE: &str = "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return redis.call('INCR', KEYS[2])";

/// This node's side of the cluster's bridges.
pub(crate) struct BridgeNode {
    node: String,
    prefix: String,
    client: Client,
    /// Sends other nodes forward to this one arrive here.
    pub(super) asks: String,
    /// Answers to this node's forwarded sends arrive here.
    pub(super) answers: String,
    next: AtomicU64,
    waiting: Mutex<HashMap<u64, oneshot::Sender<Result<Value, SendError>>>>,
    forwarding: Arc<Semaphore>,
    serving: Arc<Semaphore>,
    /// This node's bridges, once the node has made them.
    bridges: OnceLock<Bridges>,
    /// Set when the node stops: the lease loop hands its bridges over and ends.
    stopping: tokio::sync::watch::Sender<bool>,
    /// Set once it has.
    handed_over: tokio::sync::watch::Sender<bool>,
}

impl BridgeNode {
    pub(super) fn new(prefix: &str, node: &str, client: Client) -> Self {
        Self {
            node: node.to_string(),
            prefix: prefix.to_string(),
            client,
            asks: format!("{prefix}:bridge:ask:{node}"),
            answers: format!("{prefix}:bridge:answer:{node}"),
            next: AtomicU64::new(1),
            waiting: Mutex::default(),
            forwarding: Arc::new(Semaphore::new(IN_FLIGHT)),
            serving: Arc::new(Semaphore::new(IN_FLIGHT)),
            bridges: OnceLock::new(),
            stopping: tokio::sync::watch::Sender::new(false),
            handed_over: tokio::sync::watch::Sender::new(false),
        }
    }

    fn lease_key(&self, tenant: &str) -> String {
        format!("{}:bridge:lease:{tenant}", self.prefix)
    }

    fn config_key(&self) -> String {
        super::keys::bridge_changes(&self.prefix).0
    }

    fn version_key(&self) -> String {
        super::keys::bridge_changes(&self.prefix).1
    }

    fn status_key(&self) -> String {
        format!("{}:bridges:status", self.prefix)
    }

    async fn eval(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<i64, fred::error::Error> {
        let mut all = vec![script.to_string(), keys.len().to_string()];
        all.extend(keys);
        all.extend(args);
        self.client.custom(CustomCommand::new_static("EVAL", ClusterHash::Offset(2), false), all).await
    }

    /// Runs the leases of `bridges` (and serves sends for them) until aborted.
    pub(super) async fn run(self: Arc<Self>, bridges: Bridges) {
        let _ = self.bridges.set(bridges.clone());
        let mut held: HashMap<String, Arc<Lease>> = HashMap::new();
        let mut version: Option<String> = None;
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stopping = set(self.stopping.subscribe());
        tokio::pin!(stopping);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = &mut stopping => {
                    self.hand_over(&bridges, held).await;
                    return;
                }
            }
            if let Err(e) = self.reload(&bridges, &mut version).await {
                tracing::debug!(error = %e, "could not read the stored provider changes; retrying");
            }
            let wanted: HashSet<String> =
                bridges.configs().into_iter().filter(BridgeConfig::runs_bridge).map(|c| c.tenant_id).collect();
            for (tenant, lease) in held.clone() {
                let value = format!("{}:{}", self.node, lease.token());
                if !wanted.contains(&tenant) {
                    held.remove(&tenant);
                    bridges.release(&tenant).await;
                    if let Err(e) = self.eval(GIVE_UP, vec![self.lease_key(&tenant)], vec![value]).await {
                        tracing::debug!(tenant, error = %e, "could not give a lease up; it expires on its own");
                    }
                    continue;
                }
                if !lease.valid() {
                    tracing::warn!(
                        tenant,
                        "the bridge's lease ran out before it was renewed: stopping the bridge here"
                    );
                    held.remove(&tenant);
                    bridges.release(&tenant).await;
                    continue;
                }
                let sent = Instant::now();
                let ttl = LEASE.as_millis().to_string();
                match self.eval(RENEW, vec![self.lease_key(&tenant)], vec![value, ttl]).await {
                    Ok(1) => {
                        lease.extend(sent + LEASE);
                        // Restarts it if it stopped when the lease seemed lost (a slow renewal).
                        bridges.hold(&tenant, lease).await;
                    }
                    Ok(_) => {
                        tracing::warn!(tenant, "another node holds the bridge's lease now: stopping the bridge here");
                        held.remove(&tenant);
                        bridges.release(&tenant).await;
                    }
                    Err(e) => {
                        tracing::debug!(tenant, error = %e, "could not renew a lease; retrying until it runs out")
                    }
                }
            }
            let free: Vec<String> = wanted.into_iter().filter(|t| !held.contains_key(t)).collect();
            for tenant in &free {
                let sent = Instant::now();
                match self.acquire(tenant).await {
                    Ok(Some(token)) => {
                        let lease = Arc::new(Lease::new(token, sent + LEASE));
                        bridges.hold(tenant, lease.clone()).await;
                        held.insert(tenant.clone(), lease);
                    }
                    Ok(None) => {}
                    Err(e) => tracing::debug!(tenant, error = %e, "could not try for a lease"),
                }
            }
            // A bridge running without a lease (none should): stopped.
            for tenant in bridges.running().into_iter().filter(|t| !held.contains_key(t)) {
                bridges.release(&tenant).await;
            }
            if let Err(e) = self.report(&bridges).await {
                tracing::debug!(error = %e, "could not write the bridges' status");
            }
        }
    }

    /// This node stops: its bridges are closed and their leases given up, so the other nodes
    /// take them at their next tick rather than once they expire.
    async fn hand_over(&self, bridges: &Bridges, held: HashMap<String, Arc<Lease>>) {
        for (tenant, lease) in held {
            bridges.release(&tenant).await;
            let value = format!("{}:{}", self.node, lease.token());
            match self.eval(GIVE_UP, vec![self.lease_key(&tenant)], vec![value]).await {
                Ok(_) => tracing::info!(tenant, "stopping: the bridge's lease is handed over"),
                Err(e) => {
                    tracing::warn!(tenant, error = %e, "stopping: could not give the lease up; it expires on its own")
                }
            }
        }
        self.handed_over.send_replace(true);
    }

    /// Takes `tenant`'s lease when no node holds it: its fencing token.
    async fn acquire(&self, tenant: &str) -> Result<Option<u64>, fred::error::Error> {
        let key = self.lease_key(tenant);
        let current: Option<String> = self.client.get(&key).await?;
        if current.is_some() {
            return Ok(None);
        }
        let token: u64 = self.client.incr(format!("{}:bridge:fence:{tenant}", self.prefix)).await?;
        let value = format!("{}:{token}", self.node);
        let expiry = Some(Expiration::PX(LEASE.as_millis() as i64));
        let set: Option<String> = self.client.set(&key, value, expiry, Some(SetOptions::NX), false).await?;
        Ok(set.map(|_| token))
    }

    /// Reads the stored changes when their version moved since `version`, and hands them over.
    async fn reload(&self, bridges: &Bridges, version: &mut Option<String>) -> Result<(), fred::error::Error> {
        let now: Option<String> = self.client.get(self.version_key()).await?;
        if now == *version {
            return Ok(());
        }
        let stored: HashMap<String, String> = self.client.hgetall(self.config_key()).await?;
        let after: Option<String> = self.client.get(self.version_key()).await?;
        if after != now {
            // Changed while read: read it whole on the next tick.
            return Ok(());
        }
        let mut changes = BTreeMap::new();
        for (tenant, text) in stored {
            let at = format!("the stored provider of tenant `{tenant}`");
            let parsed = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()).and_then(|entry| {
                let name = entry["name"].as_str().unwrap_or_default();
                BridgeConfig::from_provider_json(&tenant, name, &entry["provider"], &at)
            });
            match parsed {
                Ok(config) => {
                    changes.insert(tenant, config);
                }
                Err(e) => tracing::warn!(tenant, error = %e, "a stored provider change cannot be read: ignored"),
            }
        }
        bridges.reload(changes).await;
        *version = now;
        Ok(())
    }

    /// Writes the status of the bridges this node holds.
    async fn report(&self, bridges: &Bridges) -> Result<(), fred::error::Error> {
        let held = bridges.held_statuses();
        if held.is_empty() {
            return Ok(());
        }
        let at = now_millis();
        let fields: Vec<(String, String)> = held
            .into_iter()
            .map(|(tenant, mut status)| {
                status["at"] = json!(at);
                (tenant, status.to_string())
            })
            .collect();
        let key = self.status_key();
        self.client.hset::<i64, _, _>(&key, fields).await?;
        self.client.pexpire::<i64, _>(&key, 60_000, None).await?;
        Ok(())
    }

    /// Forwards a send to the node holding `tenant`'s bridge and waits for its answer.
    async fn forward(
        &self,
        tenant: &str,
        event: String,
        data: Value,
        ack: Option<Duration>,
    ) -> Result<Value, SendError> {
        let Ok(_slot) = self.forwarding.clone().try_acquire_owned() else { return Err(SendError::Busy) };
        let holder: Option<String> = self.client.get(self.lease_key(tenant)).await.map_err(|e| {
            tracing::debug!(tenant, error = %e, "could not read a bridge's lease");
            SendError::Unheld
        })?;
        let Some((node, token)) = holder.as_deref().and_then(|h| h.split_once(':')) else {
            return Err(SendError::Unheld);
        };
        let Ok(token) = token.parse::<u64>() else { return Err(SendError::Unheld) };
        if node == self.node {
            // Taken here a moment ago (the bridge starting), or lost a moment ago.
            return Err(SendError::Unheld);
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(id, tx);
        let _forget = Forget(self, id);
        let waits = ack.unwrap_or_default();
        let message = json!({
            "id": id, "from": self.node, "tenant": tenant, "token": token,
            "event": event, "data": data, "ack": ack.map(|a| a.as_millis() as u64),
        });
        let channel = format!("{}:bridge:ask:{node}", self.prefix);
        let received: i64 = self.client.spublish(channel, message.to_string()).await.map_err(|e| {
            tracing::debug!(tenant, error = %e, "could not forward a send to the bridge's holder");
            SendError::Unheld
        })?;
        if received == 0 {
            // The holder's subscription is gone: it died, and its lease has not expired yet.
            return Err(SendError::Unheld);
        }
        let limit = waits + ANSWER_MARGIN;
        match tokio::time::timeout(limit, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(SendError::Lost),
            Err(_) => Err(SendError::HolderTimeout(limit)),
        }
    }

    /// A send another node forwarded here: served on its own task (the receive loop does not
    /// wait), answered on the asker's channel.
    pub(super) fn ask(&self, payload: &[u8]) {
        let Ok(message) = serde_json::from_slice::<Value>(payload) else { return };
        let (Some(id), Some(from), Some(tenant), Some(token), Some(event)) = (
            message["id"].as_u64(),
            message["from"].as_str(),
            message["tenant"].as_str(),
            message["token"].as_u64(),
            message["event"].as_str(),
        ) else {
            return;
        };
        let channel = format!("{}:bridge:answer:{from}", self.prefix);
        let ack = message["ack"].as_u64().map(Duration::from_millis);
        let client = self.client.clone();
        let publish = move |answer: Value| async move {
            if let Err(e) = client.spublish::<i64, _, _>(channel, answer.to_string()).await {
                tracing::debug!(error = %e, "could not answer a forwarded bridge send");
            }
        };
        let (Some(bridges), Ok(slot)) = (self.bridges.get().cloned(), self.serving.clone().try_acquire_owned()) else {
            let code = if self.bridges.get().is_some() { SendError::Busy.code() } else { SendError::Unheld.code() };
            tokio::spawn(publish(json!({ "id": id, "error": code })));
            return;
        };
        let (tenant, event) = (tenant.to_string(), event.to_string());
        let data = message.get("data").cloned().unwrap_or(Value::Null);
        tokio::spawn(async move {
            let _slot = slot;
            let answer = match bridges.send_held(&tenant, token, event, data, ack).await {
                Ok(value) => json!({ "id": id, "ok": value }),
                Err(e) => json!({ "id": id, "error": e.code() }),
            };
            publish(answer).await;
        });
    }

    /// The holder's answer to one of this node's forwarded sends.
    pub(super) fn answered(&self, payload: &[u8]) {
        let Ok(mut message) = serde_json::from_slice::<Value>(payload) else { return };
        let Some(id) = message["id"].as_u64() else { return };
        let Some(waiter) = self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&id) else { return };
        let answer = match message["error"].as_str() {
            // The wait the holder applied is in the asker's error message; the code says which.
            Some(code) => Err(SendError::from_code(code, Duration::ZERO)),
            None => Ok(message.get_mut("ok").map(Value::take).unwrap_or(Value::Null)),
        };
        let _ = waiter.send(answer);
    }
}

/// Resolves once `flag` is true (never if its sender is gone first).
async fn set(mut flag: tokio::sync::watch::Receiver<bool>) {
    if flag.wait_for(|set| *set).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Removes a forwarded send from those waited for when dropped.
struct Forget<'a>(&'a BridgeNode, u64);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.0.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.1);
    }
}

/// [`BridgeNode`] as the bridges see it.
pub(crate) struct Link(pub(super) Arc<BridgeNode>);

impl BridgeLink for Link {
    fn node(&self) -> String {
        self.0.node.clone()
    }

    fn forward(
        &self,
        tenant: &str,
        event: String,
        data: Value,
        ack: Option<Duration>,
    ) -> LinkFuture<Result<Value, SendError>> {
        let (node, tenant) = (self.0.clone(), tenant.to_string());
        Box::pin(async move {
            let waits = ack.unwrap_or_default();
            node.forward(&tenant, event, data, ack).await.map_err(|e| match e {
                // The holder's own timeout: the wait this node asked for.
                SendError::AckTimeout(_) => SendError::AckTimeout(waits),
                e => e,
            })
        })
    }

    fn store(&self, tenant: &str, entry: Value) -> LinkFuture<Result<(), String>> {
        let (node, tenant) = (self.0.clone(), tenant.to_string());
        Box::pin(async move {
            node.eval(STORE, vec![node.config_key(), node.version_key()], vec![tenant, entry.to_string()])
                .await
                .map(|_| ())
                .map_err(|e| format!("Redis: {e}"))
        })
    }

    fn stop(&self, within: Duration) -> LinkFuture<()> {
        let node = self.0.clone();
        Box::pin(async move {
            let done = set(node.handed_over.subscribe());
            node.stopping.send_replace(true);
            if tokio::time::timeout(within, done).await.is_err() {
                tracing::warn!("stopping: the bridges were not handed over in time; their leases expire on their own");
            }
        })
    }

    fn statuses(&self) -> LinkFuture<HashMap<String, Value>> {
        let node = self.0.clone();
        Box::pin(async move {
            let stored: HashMap<String, String> = match node.client.hgetall(node.status_key()).await {
                Ok(stored) => stored,
                Err(e) => {
                    tracing::debug!(error = %e, "could not read the bridges' status");
                    return HashMap::new();
                }
            };
            let now = now_millis();
            stored
                .into_iter()
                .filter_map(|(tenant, text)| {
                    let status: Value = serde_json::from_str(&text).ok()?;
                    let age = now.saturating_sub(status["at"].as_u64().unwrap_or(0));
                    (age <= STATUS_STALE_MS).then_some((tenant, status))
                })
                .collect()
        })
    }
}

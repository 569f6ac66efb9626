//! Cluster membership over Redis: what lets several gateways behind a load balancer act as one.
//!
//! Three kinds of traffic cross nodes, each on its own Redis clients:
//! - **socket operations** (relays between clients, acks, room counts) go through
//!   socketioxide-redis, on its own sharded pub/sub channels under `REDIS_PREFIX`;
//! - **published events and raw emits** go through the *bus* (`bus`): Redis streams that every
//!   node, the publishing one included, reads and applies to its own sockets, so every node sees
//!   the same events in the same order and builds the same last-known state; a node that was cut
//!   off reads on from where it stopped; the append also numbers the rooms with history the
//!   events reach (`stream`), so every node keeps them at the same positions. The bus is split
//!   over `REDIS_BUS_SHARDS` streams by tenant (`keys::shard_of`), each a bus of its own with its
//!   own reader, so one tenant's messages keep one order while the streams spread over a Redis
//!   Cluster's masters;
//! - **inputs** backends already publish to (`inputs`): the Go hub's `ws:broadcast:all` and
//!   `@socket.io/redis-emitter` broadcasts, which every node receives and delivers locally.
//!
//! Each node also writes a snapshot of its sockets to a Redis hash every couple of seconds, so
//! statistics count the whole cluster; presence is asked of every node when wanted, on two
//! pub/sub channels (`presence`); and the API's idempotency entries are kept in Redis
//! (`idempotency`), so a call repeated through another node is answered the same. Outbound
//! bridges run once per cluster (`bridges`): a lease per bridge, run-time provider changes
//! stored for every node, and sends forwarded to the holder on two more pub/sub channels.
//!
//! Outages: the clients reconnect forever (with backoff), and after every reconnect this module
//! subscribes again (fred does not, and socketioxide-redis's channels must be restored too). The
//! node counts as connected again only once all of it is back.
//! While Redis is away the node keeps serving its own sockets: the bus applies messages locally
//! and keeps them, in order, to send when Redis is back; relays and acks fall back to local.
//! `/readyz` says why the node is degraded.

mod bridges;
mod bus;
mod health;
mod idempotency;
mod inputs;
mod keys;
mod presence;
mod stream;

use crate::clock::now_millis;
use health::Health;
use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use fred::{
    clients::{Client, SubscriberClient},
    interfaces::{ClientLike, EventInterface, HashesInterface, KeysInterface, PubsubInterface},
    prelude::{Builder, Config as FredConfig, ReconnectPolicy},
    types::{Expiration, RespVersion, SetOptions},
};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use socketioxide::adapter::Adapter;
use socketioxide_redis::{RedisAdapterConfig, RedisAdapterCtr, drivers::fred::FredDriver};
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    config::RedisConfig,
    engine::{ClusterLink, LinkStopped, Outgoing},
    metrics::ClusterMetrics,
    node::Node,
};
use bus::{BACKLOG_LIMIT, Bus, Local, Submitted};
use stream::{BUS_BLOCK, RedisStream};

/// How long one Redis command may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(1);
/// How often the node checks Redis and writes its snapshot.
const HEARTBEAT: Duration = Duration::from_millis(500);
const SNAPSHOT_EVERY: u32 = 2;
/// How long the bus's number of shards outlives the last node that wrote it.
const SHARDS_KEPT_MS: i64 = 60_000;
/// A peer whose snapshot is older than this is gone.
const PEER_STALE_MS: u64 = 6_000;

/// A node's membership: its Redis clients, its identity and what it knows of Redis's health.
pub(crate) struct Cluster {
    config: RedisConfig,
    /// This node, in the bus and in snapshots. New for every process.
    node: String,
    /// Commands: appending to the bus, snapshots, health checks.
    client: Client,
    /// Read the bus, one per shard: each its own connection, because a blocking read holds it.
    readers: Vec<Client>,
    /// Our plain pub/sub subscriptions: the Redis inputs.
    subscriber: SubscriberClient,
    /// socketioxide-redis's sharded subscriptions, restored after reconnects.
    adapter_subscriber: SubscriberClient,
    health: Arc<Health>,
    peers: Mutex<Vec<Value>>,
    /// Each bus shard's way in, by shard.
    outboxes: Vec<mpsc::Sender<Submitted>>,
    outbox_rx: Mutex<Option<Vec<mpsc::Receiver<Submitted>>>>,
    /// Redis's state and the bus's lag, in `/metrics`.
    metrics: ClusterMetrics,
    /// The presence questions this node asked and waits for; its channels are among the inputs.
    presence: Arc<presence::PresenceAsk>,
    /// Bridge leases, stored provider changes, and sends forwarded to a bridge's holder; its
    /// channels are among the inputs.
    bridges: Arc<bridges::BridgeNode>,
}

/// The node's two pub/sub connections.
#[derive(Debug, Clone, Copy)]
enum Subscriber {
    /// Ours: the Redis inputs.
    Inputs,
    /// socketioxide-redis's sharded channels.
    Adapter,
}

impl Cluster {
    /// Connects to Redis and builds the socketioxide-redis adapter constructor. Fails when Redis
    /// cannot be reached at start-up: a node that never joined its cluster should not serve.
    pub(crate) async fn connect(
        config: &RedisConfig,
        metrics: ClusterMetrics,
    ) -> anyhow::Result<(Arc<Self>, RedisAdapterCtr<FredDriver>)> {
        let mut fred_config = FredConfig::from_url(config.url.expose_secret())
            .with_context(|| format!("REDIS_URL ({}) is not a Redis URL", config.display))?;
        // socketioxide-redis's fred driver uses sharded pub/sub, which needs RESP3.
        fred_config.version = RespVersion::RESP3;
        let mut builder = Builder::from_config(fred_config);
        builder
            // Retry forever: 100 ms doubling to 2 s between attempts.
            .set_policy(ReconnectPolicy::new_exponential(0, 100, 2_000, 2))
            .with_performance_config(|p| {
                p.default_command_timeout = COMMAND_TIMEOUT;
                // The adapter reads its messages from this channel; the default (32) drops
                // messages under load.
                p.broadcast_channel_capacity = 8192;
            })
            .with_connection_config(|c| {
                c.connection_timeout = Duration::from_secs(3);
                c.internal_command_timeout = Duration::from_secs(3);
            });
        let unreachable = || format!("cannot reach Redis at {} (REDIS_URL / REDIS_HOST)", config.display);

        let client = builder.build().context("building the Redis client")?;
        client.init().await.with_context(unreachable)?;
        check_shards(&client, config).await?;
        let mut reader_builder = builder.clone();
        // A blocking read waits up to BUS_BLOCK for new messages; its timeout must outlast that.
        reader_builder.with_performance_config(|p| p.default_command_timeout = BUS_BLOCK + COMMAND_TIMEOUT);
        let mut readers = Vec::with_capacity(config.bus_shards);
        for _ in 0..config.bus_shards {
            let reader = reader_builder.build().context("building the bus reader")?;
            reader.init().await.with_context(unreachable)?;
            readers.push(reader);
        }
        let subscriber = builder.build_subscriber_client().context("building the Redis subscriber")?;
        subscriber.init().await.with_context(unreachable)?;
        let adapter_subscriber = builder.build_subscriber_client().context("building the adapter's subscriber")?;
        let adapter = RedisAdapterCtr::new_with_fred_config(
            adapter_subscriber.clone(),
            RedisAdapterConfig::new().with_prefix(config.prefix.clone()).with_request_timeout(Duration::from_secs(5)),
        )
        .await
        .with_context(unreachable)?;

        let (outboxes, outbox_rx): (Vec<_>, Vec<_>) =
            (0..config.bus_shards).map(|_| mpsc::channel((BACKLOG_LIMIT / config.bus_shards).max(64))).unzip();
        let health = Health::default();
        health.connected.store(true, Ordering::SeqCst);
        health.adapter_subscribed.store(true, Ordering::SeqCst);
        let node = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let cluster = Arc::new(Self {
            config: config.clone(),
            presence: Arc::new(presence::PresenceAsk::new(&config.prefix, &node)),
            bridges: Arc::new(bridges::BridgeNode::new(&config.prefix, &node, client.clone())),
            node,
            client,
            readers,
            subscriber,
            adapter_subscriber,
            health: Arc::new(health),
            peers: Mutex::new(Vec::new()),
            outboxes,
            outbox_rx: Mutex::new(Some(outbox_rx)),
            metrics,
        });
        cluster.metrics.redis_connected.set(1);
        tracing::info!(
            redis = %config.display,
            mode = ?config.mode,
            prefix = %config.prefix,
            bus_shards = config.bus_shards,
            node = %cluster.node,
            "joined the cluster"
        );
        Ok((cluster, adapter))
    }

    /// The API's idempotency entries, shared through this cluster's Redis; `local` keeps them
    /// while Redis is away.
    pub(crate) fn idempotency(
        &self,
        window: Duration,
        local: crate::idempotency::MemoryStore,
        metrics: crate::metrics::IdempotencyMetrics,
    ) -> Arc<dyn crate::idempotency::IdempotencyStore> {
        Arc::new(idempotency::RedisIdempotency::new(
            self.client.clone(),
            self.health.clone(),
            &self.config.prefix,
            window,
            local,
            metrics,
        ))
    }

    /// Makes `bridges` this cluster's: they run where their lease is held, and their sends and
    /// changes cross nodes. The task runs the leases until aborted.
    pub(crate) fn run_bridges(&self, bridges: &crate::bridge::Bridges) -> JoinHandle<()> {
        bridges.attach(Arc::new(bridges::Link(self.bridges.clone())));
        tokio::spawn(self.bridges.clone().run(bridges.clone()))
    }

    fn nodes_key(&self) -> String {
        format!("{}:nodes", self.config.prefix)
    }

    fn emitter_pattern(&self) -> Option<String> {
        (!self.config.emitter_key.is_empty()).then(|| format!("{}#*", self.config.emitter_key))
    }

    /// Subscribes to the inputs and the presence channels; called at start and after every
    /// reconnect.
    async fn subscribe(&self) -> Result<(), fred::error::Error> {
        // The nodes' own channels are sharded: `SPUBLISH` counts every subscriber of the channel,
        // which presence and bridge sends rely on, where a Redis Cluster's `PUBLISH` counts only
        // those on the node it reached. One at a time: each channel has its own slot.
        for channel in [&self.presence.questions, &self.presence.answers, &self.bridges.asks, &self.bridges.answers] {
            self.subscriber.ssubscribe(channel.as_str()).await?;
        }
        if !self.config.broadcast_channel.is_empty() {
            self.subscriber.subscribe(self.config.broadcast_channel.clone()).await?;
        }
        if let Some(pattern) = self.emitter_pattern() {
            self.subscriber.psubscribe(pattern).await?;
        }
        Ok(())
    }

    /// Starts the node's cluster work for `engine` (whose namespaces are already mounted on the
    /// adapter) and attaches the engine to it. The tasks run until aborted.
    pub(crate) async fn start<A: Adapter>(self: &Arc<Self>, engine: Node<A>) -> anyhow::Result<Vec<JoinHandle<()>>> {
        self.subscribe().await.context("subscribing to the Redis inputs")?;
        self.health.subscribed.store(true, Ordering::SeqCst);
        let Some(outbox_rx) = self.outbox_rx.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            anyhow::bail!("the cluster was already started");
        };
        let shards = self.config.bus_shards;
        if shards > 1 {
            let global = engine.global_history_families();
            if !global.is_empty() {
                anyhow::bail!(
                    "REDIS_BUS_SHARDS={shards}: rooms shared by every tenant cannot keep history on a bus split by \
                     tenant (their events would be numbered in several orders): {}. Remove their `history`, or set \
                     REDIS_BUS_SHARDS=1",
                    global.join(", ")
                );
            }
        }
        let mut buses = Vec::with_capacity(shards);
        for (shard, reader) in self.readers.iter().enumerate() {
            let stream =
                RedisStream::new(&self.config.prefix, shard, self.client.clone(), reader.clone(), self.health.clone());
            let applier = Applier { node: engine.clone(), shard };
            buses.push(Arc::new(Bus::new(self.node.clone(), stream, applier, self.metrics.clone()).one_of(shards)));
        }
        engine.attach_cluster(self.clone());

        engine.feed().set_shards(shards);
        let mut tasks = vec![
            tokio::spawn(self.clone().restore_after_reconnects(Subscriber::Inputs)),
            tokio::spawn(self.clone().restore_after_reconnects(Subscriber::Adapter)),
            tokio::spawn(self.clone().heartbeat(engine.clone(), buses.clone())),
            tokio::spawn(self.clone().receive(engine.clone())),
        ];
        for (shard, (bus, outbox_rx)) in buses.into_iter().zip(outbox_rx).enumerate() {
            let start = bus.end().await.context("reading the bus")?;
            // The event stream's ids are the bus's from here on: a consumer resuming from before
            // this node started is told of a gap.
            let (ms, seq) = start.parts();
            engine.feed().start_at(shard, ms, seq);
            tasks.push(tokio::spawn({
                let bus = bus.clone();
                async move { bus.run_reader(start).await }
            }));
            tasks.push(tokio::spawn(async move { bus.run_outbox(outbox_rx).await }));
        }
        let [commands, bus_reader, inputs, adapter] = ClusterMetrics::CONNECTIONS;
        let mut connections = vec![
            (commands, self.client.reconnect_rx()),
            (inputs, self.subscriber.reconnect_rx()),
            (adapter, self.adapter_subscriber.reconnect_rx()),
        ];
        connections.extend(self.readers.iter().map(|r| (bus_reader, r.reconnect_rx())));
        for (name, reconnects) in connections {
            tasks.push(tokio::spawn(count_reconnects(reconnects, self.metrics.reconnects(name))));
        }
        Ok(tasks)
    }

    /// The subscriber client of `which`, and the flag saying its subscriptions are in place.
    fn subscriber_of(&self, which: Subscriber) -> (&SubscriberClient, &AtomicBool) {
        match which {
            Subscriber::Inputs => (&self.subscriber, &self.health.subscribed),
            Subscriber::Adapter => (&self.adapter_subscriber, &self.health.adapter_subscribed),
        }
    }

    /// Puts `which`'s subscriptions in place again and sets its flag. The adapter's channels are
    /// those socketioxide-redis subscribed once, at start, which fred tracks.
    async fn resubscribe(&self, which: Subscriber) -> Result<(), fred::error::Error> {
        let (client, flag) = self.subscriber_of(which);
        flag.store(false, Ordering::SeqCst);
        match which {
            Subscriber::Inputs => self.subscribe().await?,
            Subscriber::Adapter => {
                // One at a time: on a Redis Cluster channels of different slots live on
                // different masters, and one SSUBSCRIBE naming several is refused (CROSSSLOT).
                let channels: Vec<String> = client.tracked_shard_channels().iter().map(|c| c.to_string()).collect();
                for channel in channels {
                    client.ssubscribe(channel).await?;
                }
            }
        }
        flag.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// After every reconnect of `which`'s subscriber: its subscriptions, again (fred does not
    /// restore them, nor does socketioxide-redis).
    async fn restore_after_reconnects(self: Arc<Self>, which: Subscriber) {
        let (client, flag) = self.subscriber_of(which);
        let mut reconnects = client.reconnect_rx();
        let mut errors = client.error_rx();
        loop {
            tokio::select! {
                event = reconnects.recv() => match event {
                    Ok(_) => match self.resubscribe(which).await {
                        Ok(()) => tracing::info!(subscriber = ?which, "subscriptions restored"),
                        Err(e) => tracing::warn!(subscriber = ?which, error = %e, "could not subscribe again; the heartbeat retries"),
                    },
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                },
                // A connection error means the subscriptions may be gone until the reconnect.
                Ok(_) = errors.recv() => flag.store(false, Ordering::SeqCst),
            }
        }
    }

    /// Checks Redis every `HEARTBEAT`, and every few beats writes this node's snapshot and
    /// reads the others' (which tells the bus who is alive).
    async fn heartbeat<A: Adapter>(self: Arc<Self>, engine: Node<A>, buses: Vec<Arc<NodeBus<A>>>) {
        let mut ticks = tokio::time::interval(HEARTBEAT);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut beat = 0u32;
        loop {
            ticks.tick().await;
            self.check_subscriptions().await;
            let pinged = self.client.ping::<String>(None).await;
            match &pinged {
                Ok(_) if self.subscriber.is_connected() && self.adapter_subscriber.is_connected() => {
                    self.health.recover()
                }
                Ok(_) => self.health.fail("a subscriber connection is down".into()),
                Err(e) => self.health.fail(e.to_string()),
            }
            self.metrics.redis_connected.set(i64::from(self.health.reachable()));
            if pinged.is_err() {
                continue;
            }
            beat = beat.wrapping_add(1);
            if beat % SNAPSHOT_EVERY == 1 {
                match self.exchange_snapshots(&engine).await {
                    Ok(alive) => {
                        for bus in &buses {
                            bus.note_alive(alive.iter().map(String::as_str)).await;
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "could not exchange node snapshots"),
                }
            }
        }
    }

    /// A subscriber that is down has lost its subscriptions; one that is up but lost them (a
    /// reconnect whose resubscribe failed) gets them again here, so the node heals by itself.
    async fn check_subscriptions(&self) {
        for which in [Subscriber::Inputs, Subscriber::Adapter] {
            let (client, flag) = self.subscriber_of(which);
            if !client.is_connected() {
                flag.store(false, Ordering::SeqCst);
            } else if !flag.load(Ordering::SeqCst) {
                let _ = self.resubscribe(which).await;
            }
        }
    }

    /// Writes this node's snapshot and reads the others'; answers the nodes alive.
    async fn exchange_snapshots<A: Adapter>(&self, engine: &Node<A>) -> Result<Vec<String>, fred::error::Error> {
        let mut snapshot = engine.node_snapshot();
        snapshot["node"] = json!(self.node);
        snapshot["at"] = json!(now_millis());
        let key = self.nodes_key();
        self.client.hset::<i64, _, _>(&key, (self.node.as_str(), snapshot.to_string())).await?;
        // The hash goes away when every node is gone.
        self.client.pexpire::<i64, _>(&key, 60_000, None).await?;
        // So does the bus's number of shards: the nodes of a cluster started again may choose another.
        let shards = keys::bus_shards(&self.config.prefix);
        self.client
            .set::<(), _, _>(&shards, self.config.bus_shards, Some(Expiration::PX(SHARDS_KEPT_MS)), None, false)
            .await?;
        let all: HashMap<String, String> = self.client.hgetall(&key).await?;
        let now = now_millis();
        let mut peers = Vec::new();
        let mut alive = Vec::new();
        let mut gone = Vec::new();
        for (node, text) in all {
            if node == self.node {
                continue;
            }
            let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
            let age = now.saturating_sub(value["at"].as_u64().unwrap_or(0));
            if age <= PEER_STALE_MS {
                peers.push(value);
                alive.push(node);
            } else if age > 10 * PEER_STALE_MS {
                gone.push(node);
            }
        }
        if !gone.is_empty() {
            self.client.hdel::<i64, _, _>(&key, gone).await?;
        }
        *self.peers.lock().unwrap_or_else(|e| e.into_inner()) = peers;
        Ok(alive)
    }

    /// Delivers what arrives on the input subscriptions, in arrival order.
    async fn receive<A: Adapter>(self: Arc<Self>, engine: Node<A>) {
        let mut messages = self.subscriber.message_rx();
        let emitter_prefix = format!("{}#", self.config.emitter_key);
        loop {
            let message = match messages.recv().await {
                Ok(m) => m,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(missed = n, "fell behind on Redis input messages; some were lost");
                    continue;
                }
                Err(_) => return,
            };
            let channel: &str = &message.channel;
            let Some(payload) = message.value.as_bytes() else { continue };
            if channel == self.presence.questions {
                self.presence.answer(&self.client, &engine, payload);
            } else if channel == self.presence.answers {
                self.presence.answered(payload);
            } else if channel == self.bridges.asks {
                self.bridges.ask(payload);
            } else if channel == self.bridges.answers {
                self.bridges.answered(payload);
            } else if channel == self.config.broadcast_channel {
                match inputs::go_hub_event(payload) {
                    Ok(event) => {
                        if let Err(e) = engine.deliver_checked(std::slice::from_ref(&event)).await {
                            tracing::debug!(channel, error = %e, "a broadcast message was not delivered");
                        }
                    }
                    Err(e) => tracing::warn!(channel, error = %e, "a broadcast message could not be read"),
                }
            } else if !self.config.emitter_key.is_empty() && channel.starts_with(&emitter_prefix) {
                self.deliver_emitter(&engine, channel, payload).await;
            }
        }
    }

    async fn deliver_emitter<A: Adapter>(&self, engine: &Node<A>, channel: &str, payload: &[u8]) {
        let message = match inputs::emitter_message(payload) {
            Ok(Some(m)) => m,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(channel, error = %e, "an emitter message could not be read");
                return;
            }
        };
        let names = |rooms: &[String]| -> Vec<(Option<String>, String)> {
            rooms
                .iter()
                .map(|r| {
                    let (tenant, room) = inputs::split_emitter_room(r);
                    (tenant.map(str::to_string), room.to_string())
                })
                .collect()
        };
        let (rooms, except) = (names(&message.rooms), names(&message.except));
        if let Err(e) = engine.emit_received(&message.namespace, &message.event, &message.args, &rooms, &except).await {
            tracing::warn!(channel, event = %message.event, error = %e, "an emitter message was not delivered");
        }
    }
}

/// A node's bus: on Redis, applying to the engine.
type NodeBus<A> = Bus<RedisStream, Applier<A>>;

/// The engine, as one shard's bus applies messages to it.
struct Applier<A: Adapter> {
    node: Node<A>,
    shard: usize,
}

impl<A: Adapter> Local for Applier<A> {
    fn apply(&self, message: &Outgoing) -> impl Future<Output = ()> + Send {
        self.node.apply(message)
    }

    fn feed(&self, at: stream::StreamId, message: &Outgoing) {
        if let Outgoing::Events(events) | Outgoing::Stream(events) = message {
            let (ms, seq) = at.parts();
            self.node.feed().push_at(self.shard, ms, seq, events);
        }
    }

    fn missed(&self) {
        self.node.history_lost();
    }

    fn history_rooms(&self, message: &Outgoing) -> Vec<bus::HistoryRoomKey> {
        let Outgoing::Events(events) = message else { return Vec::new() };
        self.node
            .history_rooms(events)
            .into_iter()
            .map(|(event, path, room, spec)| bus::HistoryRoomKey { event, path, room, ttl: spec.ttl })
            .collect()
    }
}

/// `message` as the parts each bus shard carries: a batch split by its events' tenants (each
/// tenant's in their order), anything else whole, on its tenant's shard.
fn split_by_shard(message: Outgoing, shards: usize) -> Vec<(usize, Outgoing)> {
    if shards == 1 {
        return vec![(0, message)];
    }
    let split = |events: Vec<crate::engine::PublishedEvent>,
                 make: fn(Vec<crate::engine::PublishedEvent>) -> Outgoing| {
        let mut parts: Vec<(usize, Vec<_>)> = Vec::new();
        for event in events {
            let shard = keys::shard_of(event.tenant_id(), shards);
            match parts.iter_mut().find(|(s, _)| *s == shard) {
                Some((_, part)) => part.push(event),
                None => parts.push((shard, vec![event])),
            }
        }
        parts.into_iter().map(|(shard, events)| (shard, make(events))).collect()
    };
    match message {
        Outgoing::Events(events) => split(events, Outgoing::Events),
        Outgoing::Stream(events) => split(events, Outgoing::Stream),
        Outgoing::Emit(emit) => vec![(keys::shard_of(emit.tenant.as_deref(), shards), Outgoing::Emit(emit))],
    }
}

/// Refuses to join a cluster whose nodes split the bus over another number of streams: their
/// tenants' messages would go through other streams than this node's, in other orders.
async fn check_shards(client: &Client, config: &RedisConfig) -> anyhow::Result<()> {
    let key = keys::bus_shards(&config.prefix);
    let shards = config.bus_shards;
    let _: Option<String> = client
        .set(&key, shards, Some(Expiration::PX(SHARDS_KEPT_MS)), Some(SetOptions::NX), false)
        .await
        .context("recording the bus's number of shards")?;
    let agreed: Option<usize> = client.get(&key).await.context("reading the bus's number of shards")?;
    match agreed {
        Some(theirs) if theirs != shards => anyhow::bail!(
            "REDIS_BUS_SHARDS is {shards} here, but the running nodes of prefix `{}` split the bus over {theirs} \
             streams: every node of a cluster needs the same value (stop them all to change it)",
            config.prefix
        ),
        _ => Ok(()),
    }
}

/// Counts the reconnections of one Redis connection, until the client is dropped.
async fn count_reconnects(
    mut reconnects: tokio::sync::broadcast::Receiver<fred::types::config::Server>,
    counter: prometheus_client::metrics::counter::Counter,
) {
    loop {
        match reconnects.recv().await {
            Ok(_) => {
                counter.inc();
            }
            // Missed notifications were reconnects too.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                counter.inc_by(n);
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

impl ClusterLink for Cluster {
    fn submit(&self, message: Outgoing) -> Pin<Box<dyn Future<Output = Result<(), LinkStopped>> + Send>> {
        let parts: Vec<_> = split_by_shard(message, self.outboxes.len())
            .into_iter()
            .map(|(shard, message)| (self.outboxes[shard].clone(), message))
            .collect();
        Box::pin(async move {
            // Every part on its way before waiting for any, so the shards append side by side.
            let mut waiting = Vec::with_capacity(parts.len());
            let mut stopped = false;
            for (outbox, message) in parts {
                let (done, sent) = tokio::sync::oneshot::channel();
                stopped |= outbox.send(Submitted { message, done }).await.is_err();
                waiting.push(sent);
            }
            for sent in waiting {
                stopped |= sent.await.is_err();
            }
            // Either way the caller is told: a publish the bus never took is not "accepted".
            if stopped {
                tracing::warn!("the bus has stopped: a message submitted while the node stops was refused");
                return Err(LinkStopped);
            }
            Ok(())
        })
    }

    fn reachable(&self) -> bool {
        self.health.reachable()
    }

    fn degraded(&self) -> Option<String> {
        if self.health.reachable() {
            return None;
        }
        let problem = self.health.problem.lock().unwrap_or_else(|e| e.into_inner());
        let (why, since) = problem
            .as_ref()
            .map(|(why, since)| (why.clone(), since.elapsed().unwrap_or_default().as_secs()))
            .unwrap_or_else(|| ("subscriptions are being restored".to_string(), 0));
        Some(format!(
            "Redis at {} is unreachable ({why}) for {since}s: serving this node's sockets only; \
             cross-node delivery resumes when it is back",
            self.config.display
        ))
    }

    fn ask_presence(
        &self,
        question: crate::engine::presence::PresenceQuestion,
    ) -> Pin<Box<dyn Future<Output = crate::engine::presence::PresenceAnswers> + Send>> {
        // The answer must not borrow self: the trait object's future is 'static.
        let (client, subscribed) = (self.client.clone(), self.health.subscribed.load(Ordering::SeqCst));
        let ask = self.presence.clone();
        Box::pin(async move { ask.ask(&client, question, subscribed).await })
    }

    fn peers(&self) -> Vec<Value> {
        let now = now_millis();
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|p| now.saturating_sub(p["at"].as_u64().unwrap_or(0)) <= PEER_STALE_MS)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PublishedEvent;

    fn event(tenant: &str, n: u64) -> PublishedEvent {
        PublishedEvent::from_json(json!({ "type": "x.y", "tenantId": tenant, "data": { "n": n } }), "e").unwrap()
    }

    fn seen(message: &Outgoing) -> Vec<(String, u64)> {
        let Outgoing::Events(events) = message else { panic!("not events") };
        events
            .iter()
            .map(|e| (e.tenant_id().unwrap().to_string(), e.to_json()["data"]["n"].as_u64().unwrap()))
            .collect()
    }

    #[test]
    fn a_batch_is_split_by_tenant_keeping_each_tenants_order() {
        // Two tenants on different shards of 8 (keys::tests pins 6 and 3).
        let (t1, t2) = ("t1", "tenant-a");
        assert_ne!(keys::shard_of(Some(t1), 8), keys::shard_of(Some(t2), 8));
        let batch = Outgoing::Events(vec![event(t1, 1), event(t2, 2), event(t1, 3), event(t2, 4), event(t1, 5)]);
        let parts = split_by_shard(batch, 8);
        assert_eq!(parts.len(), 2);
        for (shard, part) in &parts {
            let events = seen(part);
            let tenant = &events[0].0;
            assert_eq!(*shard, keys::shard_of(Some(tenant), 8));
            assert!(events.iter().all(|(t, _)| t == tenant), "one tenant per part: {events:?}");
            assert!(events.windows(2).all(|w| w[0].1 < w[1].1), "in their order: {events:?}");
        }
        let total: usize = parts.iter().map(|(_, p)| seen(p).len()).sum();
        assert_eq!(total, 5);
        // One shard: the message as it came.
        let one = split_by_shard(Outgoing::Events(vec![event(t1, 1), event(t2, 2)]), 1);
        assert_eq!(one.len(), 1);
        assert_eq!(seen(&one[0].1).len(), 2);
    }
}

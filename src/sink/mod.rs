//! Where the messages a bridge receives go (seed 003's `messageHandling`): the sinks its strategy
//! names, each with its own bounded queue and delivery task, so a slow or absent destination
//! holds up none of the others. `webhook` POSTs to `callbackUrl` (`callback`), `database` writes
//! rows to PostgreSQL (`database`), `kafka` produces records (`kafka`); `all` hands each message
//! to every part its fields name, at once. `queue` is the bound, the counts and the drop log
//! they share.
//!
//! A sink knows nothing of bridges beyond the [`Incoming`] message it is handed.
//!
//! `backends` are the destinations of specs' `forward` actions (client events to HTTP backends,
//! the backend event stream, and the same `database` and `kafka` writers as bridges use, with
//! their own tables, queues and counts), behind the engine's `forward::Backends` trait.

pub(crate) mod backends;
mod database;
mod kafka;
mod queue;
mod webhook;

use bytes::Bytes;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{
    config::{MessageHandling, SinksConfig},
    metrics::{BridgeMetrics, SinkKind},
    net::{outbound::AllowedHosts, tls::OutboundTls},
};
pub(crate) use database::Database;
pub(crate) use kafka::Kafka;
use queue::Queue;
pub(crate) use webhook::Webhook;

/// One message received from a peer, as the sinks take it.
#[derive(Debug, Clone)]
pub(crate) struct Incoming {
    /// The peer's event name.
    pub event: String,
    /// Its payload.
    pub data: Value,
    /// The tenant and bridge it came through (the seed's `metadata`).
    pub metadata: Value,
    /// The seed's `source`: `{provider, url, protocol}`.
    pub source: Value,
}

impl Incoming {
    /// The seed's webhook payload: `{event, data, timestamp, metadata, source}`.
    pub(crate) fn payload(&self, timestamp: &str) -> Value {
        json!({
            "event": self.event,
            "data": self.data,
            "timestamp": timestamp,
            "metadata": self.metadata,
            "source": self.source,
        })
    }
}

/// The sinks of one bridge's strategy.
pub(crate) struct Sinks {
    webhook: Option<Webhook>,
    database: Option<Database>,
    kafka: Option<Kafka>,
    /// Named in rows.
    bridge: String,
    /// Kafka's record key: the bridge's tenant.
    key: Bytes,
}

impl Sinks {
    /// The sinks `handling` names for bridge `bridge` of tenant `tenant`. A part whose
    /// destination `destinations` lacks is left out (the configuration refuses such a bridge
    /// before this is reached).
    pub(crate) fn new(
        bridge: &str,
        tenant: &str,
        handling: &MessageHandling,
        destinations: &SinksConfig,
        allowed: AllowedHosts,
        tls: OutboundTls,
        metrics: BridgeMetrics,
    ) -> Self {
        let webhook = handling
            .callback_url
            .as_deref()
            .filter(|_| handling.calls_back())
            .map(|url| Webhook::new(bridge, url, allowed, tls, metrics.clone()));
        let database = destinations.database_url().filter(|_| handling.stores_in_database()).map(|url| {
            let queue = Queue::for_bridge(SinkKind::Database, bridge, metrics.clone());
            Database::new(url, &database::BRIDGE_MESSAGES, queue)
        });
        let kafka = handling
            .kafka_topic
            .as_deref()
            .filter(|_| handling.publishes_to_kafka() && !destinations.kafka_brokers.is_empty())
            .map(|topic| {
                let queue = Queue::for_bridge(SinkKind::Kafka, bridge, metrics.clone());
                Kafka::new(&destinations.kafka_brokers, topic, queue)
            });
        let key = Bytes::copy_from_slice(tenant.as_bytes());
        Self { webhook, database, kafka, bridge: bridge.to_string(), key }
    }

    /// The background work: each sink's delivery loop.
    pub(crate) fn spawn(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        tasks.extend(self.webhook.as_ref().map(Webhook::spawn));
        tasks.extend(self.database.as_ref().map(Database::spawn));
        tasks.extend(self.kafka.as_ref().map(Kafka::spawn));
        tasks
    }

    /// Hands a message to every sink (never waits: each sink queues, bounded, or drops and
    /// counts). The payload is serialized once for the webhook and Kafka.
    pub(crate) fn hand(&self, message: &Incoming) {
        let timestamp = crate::clock::iso_now();
        if self.webhook.is_some() || self.kafka.is_some() {
            let payload = Bytes::from(serde_json::to_vec(&message.payload(&timestamp)).unwrap_or_default());
            if let Some(webhook) = &self.webhook {
                webhook.offer(payload.clone());
            }
            if let Some(kafka) = &self.kafka {
                kafka.offer(kafka::Message { key: Some(self.key.clone()), value: payload });
            }
        }
        if let Some(database) = &self.database {
            let tenant = match message.metadata.get("tenantId") {
                Some(Value::String(t)) => t.clone(),
                Some(other) => other.to_string(),
                None => String::new(),
            };
            // The columns of `database::BRIDGE_MESSAGES`, in order.
            database.offer(database::Row(vec![
                Some(tenant),
                Some(self.bridge.clone()),
                Some(message.event.clone()),
                Some(message.data.to_string()),
                Some(timestamp),
                Some(message.metadata.to_string()),
                Some(message.source.to_string()),
            ]));
        }
    }
}

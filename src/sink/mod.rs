//! Where the messages a bridge receives go (seed 003's `messageHandling`): the sinks a strategy
//! names, each bounded and counted. Built here: the webhook (`callback`). The PostgreSQL
//! (`database`) and Kafka (`kafka`) sinks are not built yet: a message for them is dropped,
//! counted (`bridge_sink_dropped{reason="unavailable"}`) and logged.
//!
//! A sink knows nothing of bridges beyond the [`Incoming`] message it is handed.
//!
//! `backends` are the destinations of specs' `forward` actions (client events to HTTP backends
//! and the backend event stream), behind the engine's `forward::Backends` trait.

pub(crate) mod backends;
mod webhook;

use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::{
    config::{HandlingStrategy, MessageHandling},
    metrics::{BridgeMetrics, SinkDrop},
    net::{outbound::AllowedHosts, tls::OutboundTls},
};
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
    pub(crate) fn payload(&self) -> Value {
        json!({
            "event": self.event,
            "data": self.data,
            "timestamp": crate::clock::iso_now(),
            "metadata": self.metadata,
            "source": self.source,
        })
    }
}

/// The sinks of one bridge's strategy.
pub(crate) struct Sinks {
    webhook: Option<Webhook>,
    /// The strategy's parts this release lacks (`database`, `kafka`), named in the drop log.
    missing: Vec<&'static str>,
    metrics: BridgeMetrics,
    /// Named in logs.
    bridge: String,
}

impl Sinks {
    /// The sinks `handling` names for bridge `bridge`.
    pub(crate) fn new(
        bridge: &str,
        handling: &MessageHandling,
        allowed: AllowedHosts,
        tls: OutboundTls,
        metrics: BridgeMetrics,
    ) -> Self {
        let all = handling.strategy == HandlingStrategy::All;
        let webhook = match (&handling.callback_url, handling.strategy) {
            (Some(url), HandlingStrategy::Callback | HandlingStrategy::All) => {
                Some(Webhook::new(bridge, url, allowed, tls, metrics.clone()))
            }
            _ => None,
        };
        let mut missing = Vec::new();
        if handling.strategy == HandlingStrategy::Database || (all && handling.store_in_database) {
            missing.push("database");
        }
        if handling.strategy == HandlingStrategy::Kafka || (all && handling.publish_to_kafka) {
            missing.push("kafka");
        }
        if !missing.is_empty() {
            tracing::warn!(bridge, sinks = ?missing, "this release has no database or kafka sink yet: messages for them will be dropped and counted");
        }
        Self { webhook, missing, metrics, bridge: bridge.to_string() }
    }

    /// The background work: each sink's delivery loop.
    pub(crate) fn spawn(&self) -> Vec<JoinHandle<()>> {
        self.webhook.iter().map(Webhook::spawn).collect()
    }

    /// Hands a message to every sink (never waits: each sink queues, bounded, or drops and counts).
    pub(crate) fn hand(&self, message: &Incoming) {
        if let Some(webhook) = &self.webhook {
            webhook.offer(&message.payload());
        }
        for sink in &self.missing {
            self.metrics.sink_drop(SinkDrop::Unavailable);
            tracing::warn!(bridge = %self.bridge, sink, event = %message.event, "incoming message dropped: this sink is not built yet");
        }
    }
}

//! Outbound bridges (seed 003's external mode): for each tenant whose provider is `external`, a
//! connection to another server (`ws` or Socket.IO) that the tenant's notifications go through,
//! and whose subscribed events go to the tenant's sinks (`crate::sink`).
//!
//! Here: [`Bridges`], every bridge of this node by tenant, and [`Bridge`], one of them: what it
//! is configured with, its status, and the queue of sends its task serves. `connect` opens a
//! connection (URL, credentials, allowlist, TLS, handshake), `link` is the open transport the
//! task uses (a WebSocket, or `polling`: Engine.IO long-polling), `socketio` is the Socket.IO
//! client's packets, `run` the task (reconnection, channels, sends, acks, receiving), `status`
//! what the API shows. A bridge never reaches into a front: what it sends comes from the API's
//! notification call, what it receives goes to sinks.

mod connect;
mod link;
mod polling;
mod run;
mod socketio;
mod status;

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::{Value, json};
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    config::{BridgeConfig, BridgesConfig, ProviderMode},
    metrics::BridgeMetrics,
    net::{outbound::AllowedHosts, tls::OutboundTls},
    sink::Sinks,
};
use status::{State, Status};

/// Sends waiting for one bridge's task, and their bytes (JSON); beyond either, a send is refused
/// as busy.
const QUEUED_SENDS: usize = 256;
const QUEUED_SEND_BYTES: usize = 8 * 1024 * 1024;

/// A queued send's share of [`QUEUED_SEND_BYTES`], given back when the send leaves the queue
/// (taken by the bridge's task, or dropped).
struct QueuedBytes {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl QueuedBytes {
    /// Takes `bytes` of the budget, or `None` when the queue already holds too many.
    fn take(total: &Arc<AtomicUsize>, bytes: usize) -> Option<Self> {
        total
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |queued| {
                (queued + bytes <= QUEUED_SEND_BYTES).then_some(queued + bytes)
            })
            .ok()
            .map(|_| Self { total: total.clone(), bytes })
    }
}

impl Drop for QueuedBytes {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Why a send through a bridge failed, as the API tells it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SendError {
    /// 503: the bridge is not connected (connecting, backing off, failed or disabled).
    #[error("the tenant's bridge is not connected to its peer")]
    NotConnected,
    /// 503: too many sends or acknowledgments waiting.
    #[error("the tenant's bridge has too many sends waiting: retry shortly")]
    Busy,
    /// 502: the connection was lost before the send was written or acknowledged.
    #[error("the bridge's connection was lost before the peer acknowledged")]
    Lost,
    /// 504: the peer did not acknowledge in time.
    #[error("the peer did not acknowledge within {} ms", .0.as_millis())]
    AckTimeout(Duration),
    /// 400: a channel notification for a provider without `supportChannelBroadcast`.
    #[error("this tenant's provider does not broadcast to channels (supportChannelBroadcast is off)")]
    NoChannels,
}

/// One send for a bridge's task.
pub(super) struct Command {
    event: String,
    data: Value,
    want_ack: bool,
    reply: oneshot::Sender<Result<Value, SendError>>,
    /// Its bytes in the queue's budget, until the task takes it.
    _queued: QueuedBytes,
}

impl Command {
    fn answer(self, result: Result<Value, SendError>) {
        let _ = self.reply.send(result);
    }
}

/// Who a notification goes to on the peer.
#[derive(Debug, Clone)]
pub(crate) enum Recipient {
    /// One user: the provider's `customEvents.notification` event.
    User,
    /// A channel: `customEvents.channelBroadcast`.
    Channel,
}

/// One bridge.
pub(crate) struct Bridge {
    config: BridgeConfig,
    /// The URL without its query (which may carry credentials), for the API and the sinks.
    public_url: String,
    allowed: AllowedHosts,
    /// TLS for `wss://`/`https://` peers.
    tls: OutboundTls,
    metrics: BridgeMetrics,
    sinks: Option<Sinks>,
    status: Status,
    sends: mpsc::Sender<Command>,
    /// Bytes of the sends in `sends`.
    queued_bytes: Arc<AtomicUsize>,
    /// Taken by `spawn`.
    receiver: std::sync::Mutex<Option<mpsc::Receiver<Command>>>,
}

impl Bridge {
    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Sends a notification (`data`, the API's `{id, subject, body, data, userId|channel}`) to
    /// `recipient` on the peer; with `ack`, waits up to that long for the peer's answer, which it
    /// returns (else `null` once written).
    pub(crate) async fn notify(
        &self,
        recipient: &Recipient,
        data: Value,
        ack: Option<Duration>,
    ) -> Result<Value, SendError> {
        let events = &self.config.provider.custom_events;
        let event = match recipient {
            Recipient::User => events.notification.clone(),
            Recipient::Channel if !self.config.provider.support_channel_broadcast => return Err(SendError::NoChannels),
            Recipient::Channel => events.channel_broadcast.clone(),
        };
        self.send(event, data, ack).await
    }

    async fn send(&self, event: String, data: Value, ack: Option<Duration>) -> Result<Value, SendError> {
        if self.status.state() != State::Connected {
            return Err(SendError::NotConnected);
        }
        let bytes = event.len() + serde_json::to_vec(&data).map_or(0, |json| json.len());
        let queued = QueuedBytes::take(&self.queued_bytes, bytes).ok_or(SendError::Busy)?;
        let (reply, answer) = oneshot::channel();
        let command = Command { event, data, want_ack: ack.is_some(), reply, _queued: queued };
        self.sends.try_send(command).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Busy,
            mpsc::error::TrySendError::Closed(_) => SendError::NotConnected,
        })?;
        let answer = async { answer.await.unwrap_or(Err(SendError::Lost)) };
        match ack {
            Some(limit) => tokio::time::timeout(limit, answer).await.unwrap_or(Err(SendError::AckTimeout(limit))),
            None => answer.await,
        }
    }

    /// Whether the provider asks for acknowledgments (`enableAcknowledgments`).
    pub(crate) fn acknowledged(&self) -> bool {
        self.config.provider.enable_acknowledgments
    }

    /// The API's view of it (no credentials: the URL without its query, no auth fields).
    pub(crate) fn describe(&self) -> Value {
        let provider = &self.config.provider;
        let mut view = json!({
            "name": self.config.name,
            "tenantId": self.config.tenant_id,
            "protocol": provider.protocol.as_str(),
            "url": self.public_url,
            "defaultChannels": provider.default_channels,
            "subscribeToEvents": provider.subscribe_to_events,
            "strategy": provider.message_handling.as_ref().map(|h| h.strategy.as_str()),
        });
        if let (Some(view), Value::Object(status)) = (view.as_object_mut(), self.status.describe()) {
            view.extend(status);
        }
        view
    }
}

/// Every bridge of this node, by tenant. Clones share them.
#[derive(Clone, Default)]
pub(crate) struct Bridges {
    by_tenant: Arc<HashMap<String, Arc<Bridge>>>,
    /// In the configuration's order, for the API.
    ordered: Arc<Vec<Arc<Bridge>>>,
}

impl Bridges {
    /// The bridges of `config`'s external-mode providers (not started: see [`Bridges::spawn`]).
    pub(crate) fn new(config: &BridgesConfig, metrics: &BridgeMetrics) -> Self {
        let ordered: Vec<Arc<Bridge>> = config
            .bridges
            .iter()
            .filter(|b| b.provider.mode == ProviderMode::External)
            .map(|b| {
                let (sends, receiver) = mpsc::channel(QUEUED_SENDS);
                let (provider, tls) = (&b.provider, &config.tls);
                let sinks = provider.message_handling.as_ref().filter(|_| provider.enable_receiving).map(|h| {
                    let allowed = config.allowed_hosts.clone();
                    Sinks::new(&b.name, &b.tenant_id, h, &config.sinks, allowed, tls.clone(), metrics.clone())
                });
                let url = provider.url.clone().unwrap_or_default();
                let public_url = url.split(['?', '#']).next().unwrap_or_default().to_string();
                let state = if provider.enabled { State::Connecting } else { State::Disabled };
                Arc::new(Bridge {
                    config: b.clone(),
                    public_url,
                    allowed: config.allowed_hosts.clone(),
                    tls: tls.clone(),
                    metrics: metrics.clone(),
                    sinks,
                    status: Status::new(state),
                    sends,
                    queued_bytes: Arc::default(),
                    receiver: std::sync::Mutex::new(Some(receiver)),
                })
            })
            .collect();
        let by_tenant = ordered.iter().map(|b| (b.config.tenant_id.clone(), b.clone())).collect();
        Self { by_tenant: Arc::new(by_tenant), ordered: Arc::new(ordered) }
    }

    /// Starts every enabled bridge and its sinks (once; later calls start nothing).
    pub(crate) fn spawn(&self) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        for bridge in self.ordered.iter().filter(|b| b.config.provider.enabled) {
            let Some(receiver) = bridge.receiver.lock().unwrap_or_else(|e| e.into_inner()).take() else { continue };
            tasks.extend(bridge.sinks.iter().flat_map(Sinks::spawn));
            tasks.push(tokio::spawn(run::run(bridge.clone(), receiver)));
        }
        tasks
    }

    /// The bridge of `tenant`, when its provider is external.
    pub(crate) fn for_tenant(&self, tenant: &str) -> Option<&Arc<Bridge>> {
        self.by_tenant.get(tenant)
    }

    /// Every bridge, as the API shows them.
    pub(crate) fn describe(&self) -> Value {
        Value::Array(self.ordered.iter().map(|b| b.describe()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_send_queue_is_bounded_in_bytes_and_gives_them_back() {
        let total = Arc::new(AtomicUsize::new(0));
        let half = QueuedBytes::take(&total, QUEUED_SEND_BYTES / 2).expect("room for half");
        let rest = QueuedBytes::take(&total, QUEUED_SEND_BYTES / 2).expect("room for the other half");
        assert!(QueuedBytes::take(&total, 1).is_none(), "a full queue refuses a byte more");
        drop(half);
        assert_eq!(total.load(Ordering::Relaxed), QUEUED_SEND_BYTES / 2);
        assert!(QueuedBytes::take(&total, QUEUED_SEND_BYTES / 2).is_some(), "what leaves is room again");
        drop(rest);
        assert_eq!(total.load(Ordering::Relaxed), 0, "every share given back");
        assert!(QueuedBytes::take(&total, QUEUED_SEND_BYTES + 1).is_none(), "one send over the whole budget");
    }
}

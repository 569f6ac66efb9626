//! Outbound bridges (seed 003's external mode): for each tenant whose provider is `external`, a
//! connection to another server (`ws` or Socket.IO) that the tenant's notifications go through,
//! and whose subscribed events go to the tenant's sinks (`crate::sink`).
//!
//! Here: [`Bridge`], one bridge: what it is configured with, its status, and the queue of sends
//! its task serves. `registry` is [`Bridges`], every provider this node knows (the file's, and
//! run-time changes) and the bridges it runs, replaced atomically when a provider changes;
//! `link` is what a cluster adds ([`BridgeLink`]: sends forwarded to the node holding a bridge,
//! changes stored for every node) and the [`Lease`] a held bridge runs under. `connect` opens a
//! connection (URL, credentials, allowlist, TLS, handshake), `transport` is the open transport
//! the task uses (a WebSocket, or `polling`: Engine.IO long-polling), `socketio` is the
//! Socket.IO client's packets, `run` the task (reconnection, channels, sends, acks, receiving),
//! `status` what the API shows. A bridge never reaches into a front: what it sends comes from the
//! API's notification and query calls, what it receives goes to sinks.

mod connect;
mod link;
mod polling;
mod registry;
mod run;
mod socketio;
mod status;
mod transport;

pub(crate) use link::{BridgeLink, Lease, LinkFuture};
pub(crate) use registry::{Bridges, Target};

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tokio::{
    sync::{mpsc, oneshot},
    task::JoinHandle,
};

use crate::{
    config::{BridgeConfig, SinksConfig},
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
    /// 503: in a cluster, no live node holds the bridge right now (one takes it over within the
    /// lease's bound).
    #[error("no node holds the tenant's bridge right now (it is being taken over): retry shortly")]
    Unheld,
    /// 504: in a cluster, the node holding the bridge did not answer in time.
    #[error("the node holding the tenant's bridge did not answer within {} ms", .0.as_millis())]
    HolderTimeout(Duration),
}

impl SendError {
    /// The word a node answers another with (`cluster`'s request path), and back.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            SendError::NotConnected => "not_connected",
            SendError::Busy => "busy",
            SendError::Lost => "lost",
            SendError::AckTimeout(_) => "ack_timeout",
            SendError::NoChannels => "no_channels",
            SendError::Unheld => "unheld",
            SendError::HolderTimeout(_) => "holder_timeout",
        }
    }

    /// The error another node answered with `code`; `limit` the wait the request asked for.
    pub(crate) fn from_code(code: &str, limit: Duration) -> Self {
        match code {
            "busy" => SendError::Busy,
            "lost" => SendError::Lost,
            "ack_timeout" => SendError::AckTimeout(limit),
            "no_channels" => SendError::NoChannels,
            "unheld" => SendError::Unheld,
            "holder_timeout" => SendError::HolderTimeout(limit),
            _ => SendError::NotConnected,
        }
    }
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

/// What every bridge of a node connects out with: where it may connect, TLS, where its sinks
/// deliver, and its counts.
#[derive(Clone)]
pub(crate) struct Outbound {
    pub(crate) allowed: AllowedHosts,
    pub(crate) tls: OutboundTls,
    pub(crate) sinks: SinksConfig,
    pub(crate) metrics: BridgeMetrics,
}

impl Outbound {
    /// Those of `config`.
    pub(crate) fn new(config: &crate::config::BridgesConfig, metrics: &BridgeMetrics) -> Self {
        Self {
            allowed: config.allowed_hosts.clone(),
            tls: config.tls.clone(),
            sinks: config.sinks.clone(),
            metrics: metrics.clone(),
        }
    }
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
}

/// A started bridge: stopping it (dropping the `stop` sender) closes its connection and answers
/// what waits in its queue; `done` ends once it has.
pub(crate) struct Started {
    stop: oneshot::Sender<()>,
    done: JoinHandle<()>,
    /// Its sinks' delivery loops, which run until aborted.
    sinks: Vec<JoinHandle<()>>,
}

impl Started {
    /// Stops the bridge and waits (at most `within`) for its connection to be closed. Messages
    /// its sinks still held are dropped with them (a replaced bridge's new sinks start empty).
    pub(crate) async fn stop(self, within: Duration) {
        drop(self.stop);
        let abort = self.done.abort_handle();
        if tokio::time::timeout(within, self.done).await.is_err() {
            abort.abort();
        }
        self.sinks.iter().for_each(JoinHandle::abort);
    }

    /// Whether its task has ended (its lease ran out).
    pub(crate) fn finished(&self) -> bool {
        self.done.is_finished()
    }

    /// Stops it at once, without waiting (the node is stopping).
    pub(crate) fn abort(self) {
        self.done.abort();
        self.sinks.iter().for_each(JoinHandle::abort);
    }
}

impl Bridge {
    /// A bridge of `config` (external mode), not started.
    pub(crate) fn new(config: &BridgeConfig, outbound: &Outbound) -> (Arc<Self>, mpsc::Receiver<Command>) {
        let (sends, receiver) = mpsc::channel(QUEUED_SENDS);
        let provider = &config.provider;
        let Outbound { allowed, tls, sinks: destinations, metrics } = outbound;
        let sinks = provider.message_handling.as_ref().filter(|_| provider.enable_receiving).map(|h| {
            Sinks::new(&config.name, &config.tenant_id, h, destinations, allowed.clone(), tls.clone(), metrics.clone())
        });
        let url = provider.url.clone().unwrap_or_default();
        let public_url = url.split(['?', '#']).next().unwrap_or_default().to_string();
        let state = if provider.enabled { State::Connecting } else { State::Disabled };
        let bridge = Arc::new(Bridge {
            config: config.clone(),
            public_url,
            allowed: allowed.clone(),
            tls: tls.clone(),
            metrics: metrics.clone(),
            sinks,
            status: Status::new(state),
            sends,
            queued_bytes: Arc::default(),
        });
        (bridge, receiver)
    }

    /// Starts its task and its sinks'. Under a `lease`, the task stops when the lease runs out.
    pub(crate) fn start(self: &Arc<Self>, mut commands: mpsc::Receiver<Command>, lease: Option<Arc<Lease>>) -> Started {
        let sinks = self.sinks.iter().flat_map(Sinks::spawn).collect();
        let (stop, stopped) = oneshot::channel::<()>();
        let bridge = self.clone();
        let done = tokio::spawn(async move {
            tokio::select! {
                () = run::run(bridge.clone(), &mut commands) => {}
                _ = stopped => tracing::info!(bridge = %bridge.name(), "bridge stopped: its connection is closed"),
                () = async {
                    match &lease {
                        Some(lease) => lease.lapsed().await,
                        None => std::future::pending().await,
                    }
                } => tracing::warn!(bridge = %bridge.name(), "the bridge's lease ran out before it was renewed: its connection is closed"),
            }
            // Sends still queued were not written: the caller may retry (503), never a silent loss.
            commands.close();
            while let Ok(command) = commands.try_recv() {
                command.answer(Err(SendError::NotConnected));
            }
        });
        Started { stop, done, sinks }
    }

    /// Its name.
    pub(crate) fn name(&self) -> &str {
        &self.config.name
    }

    /// Sends `event` with `data` to the peer; with `ack`, waits up to that long for the peer's
    /// answer, which it returns (else `null` once written).
    pub(crate) async fn send(&self, event: String, data: Value, ack: Option<Duration>) -> Result<Value, SendError> {
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

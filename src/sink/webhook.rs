//! The webhook sink (`callback`): each message POSTed as JSON to the bridge's `callbackUrl`, in
//! the order received, retried with backoff.
//!
//! The queue is bounded in messages and bytes ([`MAX_QUEUED`], [`MAX_QUEUED_BYTES`]); a message
//! that does not fit is dropped, counted and logged, as is one whose every attempt failed. The
//! destination is checked against `BRIDGE_ALLOWED_HOSTS` at every attempt (after DNS, and the
//! request goes to the address checked); redirects are not followed, so none can lead elsewhere.
//! `https://` callbacks are verified with the bridges' TLS roots (`net::tls`: `BRIDGE_CA_FILE`).

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use serde_json::Value;
use tokio::{sync::Notify, task::JoinHandle};

use crate::{
    metrics::{BridgeMetrics, SinkDrop},
    net::{
        outbound::{AllowedHosts, describe_request_error},
        tls::OutboundTls,
    },
};

/// Most messages waiting for one webhook.
pub(crate) const MAX_QUEUED: usize = 1000;
/// Most bytes waiting for one webhook.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// Attempts per message, the first included.
const ATTEMPTS: u32 = 5;
/// The first retry's wait, doubled each time up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// One attempt's limit, connect to answer.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook sink. Clones share the queue.
#[derive(Clone)]
pub(crate) struct Webhook {
    inner: Arc<Inner>,
}

struct Inner {
    bridge: String,
    url: String,
    allowed: AllowedHosts,
    tls: OutboundTls,
    metrics: BridgeMetrics,
    queue: Mutex<Queue>,
    ready: Notify,
}

#[derive(Default)]
struct Queue {
    messages: VecDeque<Bytes>,
    bytes: usize,
}

impl Webhook {
    /// A sink POSTing to `url` for bridge `bridge`.
    pub(crate) fn new(
        bridge: &str,
        url: &str,
        allowed: AllowedHosts,
        tls: OutboundTls,
        metrics: BridgeMetrics,
    ) -> Self {
        let inner = Inner {
            bridge: bridge.to_string(),
            url: url.to_string(),
            allowed,
            tls,
            metrics,
            queue: Mutex::default(),
            ready: Notify::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Queues `payload`, or drops it (counted, logged) when the queue is full.
    pub(crate) fn offer(&self, payload: &Value) {
        let body = Bytes::from(serde_json::to_vec(payload).unwrap_or_default());
        let accepted = {
            let mut queue = self.inner.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.messages.len() >= MAX_QUEUED || queue.bytes + body.len() > MAX_QUEUED_BYTES {
                false
            } else {
                queue.bytes += body.len();
                queue.messages.push_back(body);
                true
            }
        };
        if accepted {
            self.inner.ready.notify_one();
        } else {
            self.inner.metrics.sink_drop(SinkDrop::QueueFull);
            tracing::warn!(bridge = %self.inner.bridge, "callback queue full ({MAX_QUEUED} messages or {MAX_QUEUED_BYTES} bytes): incoming message dropped");
        }
    }

    /// The delivery loop: one message at a time, in order.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                let next = {
                    let mut queue = inner.queue.lock().unwrap_or_else(|e| e.into_inner());
                    let next = queue.messages.pop_front();
                    if let Some(body) = &next {
                        queue.bytes -= body.len();
                    }
                    next
                };
                match next {
                    Some(body) => inner.deliver(body).await,
                    None => inner.ready.notified().await,
                }
            }
        })
    }
}

impl Inner {
    /// Delivers one message, retrying with backoff; what fails every attempt is dropped and counted.
    async fn deliver(&self, body: Bytes) {
        let mut backoff = FIRST_BACKOFF;
        let mut last_error = String::new();
        for attempt in 1..=ATTEMPTS {
            match self.attempt(body.clone()).await {
                Ok(()) => {
                    self.metrics.sink_delivered.inc();
                    return;
                }
                Err(Failure::Final(e)) => {
                    last_error = e;
                    break;
                }
                Err(Failure::Retry(e)) => last_error = e,
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
        self.metrics.sink_drop(SinkDrop::Failed);
        tracing::warn!(bridge = %self.bridge, error = %last_error, "callback delivery failed: incoming message dropped");
    }

    async fn attempt(&self, body: Bytes) -> Result<(), Failure> {
        let url: reqwest::Url = self.url.parse().map_err(|_| Failure::Final("callbackUrl is not a URL".into()))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let address = self.allowed.resolve(&host, port).await.map_err(Failure::Final)?;
        // The request goes to the address just checked, not to a second lookup of the name.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(ATTEMPT_TIMEOUT)
            .resolve(&host, address)
            .use_preconfigured_tls(self.tls.client_config())
            .build()
            .map_err(|e| Failure::Final(format!("cannot build the HTTP client: {e}")))?;
        let answer = client
            .post(url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("callback unreachable: {}", describe_request_error(&e))))?;
        let status = answer.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(Failure::Retry(format!("callback answered {status}")))
        } else {
            Err(Failure::Final(format!("callback answered {status}")))
        }
    }
}

/// Why an attempt failed: worth retrying or not.
enum Failure {
    Retry(String),
    Final(String),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_by_count_and_by_bytes() {
        let metrics = crate::metrics::Metrics::new(false).bridges;
        let hook =
            Webhook::new("b", "http://127.0.0.1:9/x", AllowedHosts::default(), OutboundTls::default(), metrics.clone());
        for _ in 0..MAX_QUEUED + 3 {
            hook.offer(&json!({ "a": 1 }));
        }
        assert_eq!(metrics.sink_dropped(SinkDrop::QueueFull), 3);

        let metrics = crate::metrics::Metrics::new(false).bridges;
        let hook =
            Webhook::new("b", "http://127.0.0.1:9/x", AllowedHosts::default(), OutboundTls::default(), metrics.clone());
        let big = json!({ "data": "x".repeat(MAX_QUEUED_BYTES / 4) });
        for _ in 0..5 {
            hook.offer(&big);
        }
        // Each is a little over a quarter of the bytes: three fit.
        assert_eq!(metrics.sink_dropped(SinkDrop::QueueFull), 2);
        assert!(hook.inner.queue.lock().unwrap().bytes <= MAX_QUEUED_BYTES);
    }
}

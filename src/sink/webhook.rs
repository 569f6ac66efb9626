//! The webhook sink (`callback`): each message POSTed as JSON to the bridge's `callbackUrl`, in
//! the order received, retried with backoff.
//!
//! Its queue is bounded ([`Queue`]); a message whose every attempt failed is dropped, counted and
//! logged. The destination is checked against `BRIDGE_ALLOWED_HOSTS` at every attempt (after
//! DNS, and the request goes to the address checked); redirects are not followed, so none can
//! lead elsewhere. `https://` callbacks are verified with the bridges' TLS roots (`net::tls`:
//! `BRIDGE_CA_FILE`).

use std::{sync::Arc, time::Duration};

use bytes::Bytes;
use tokio::task::JoinHandle;

use super::queue::Queue;
use crate::{
    metrics::{BridgeMetrics, SinkDrop, SinkKind},
    net::{
        outbound::{AllowedHosts, describe_request_error},
        tls::OutboundTls,
    },
};

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
    url: String,
    allowed: AllowedHosts,
    tls: OutboundTls,
    queue: Queue<Bytes>,
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
        let queue = Queue::for_bridge(SinkKind::Callback, bridge, metrics);
        Self { inner: Arc::new(Inner { url: url.to_string(), allowed, tls, queue }) }
    }

    /// Queues `payload` (the seed's JSON), or drops it (counted, logged) when the queue is full.
    pub(crate) fn offer(&self, payload: Bytes) {
        let bytes = payload.len();
        self.inner.queue.offer(payload, bytes);
    }

    /// The delivery loop: one message at a time, in order.
    pub(crate) fn spawn(&self) -> JoinHandle<()> {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                for body in inner.queue.take(1).await {
                    inner.deliver(body).await;
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
                    self.queue.delivered(1);
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
        self.queue.dropped(SinkDrop::Failed, 1, &format!("callback delivery failed: {last_error}"));
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

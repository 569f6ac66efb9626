//! The destinations of specs' `forward` actions: the engine's [`Backends`] trait, implemented
//! over HTTP backends (`BACKENDS_FILE`) and the backend event stream.
//!
//! **A backend** gets each call as `POST url` with the JSON body the engine built (`{event, data,
//! namespace, socket, timestamp}`), signed when it has a `secret` (`X-Gateway-Timestamp`, and
//! `X-Gateway-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`), with its configured
//! `headers`. Calls wait in one queue per backend, bounded in count and bytes (`queue`,
//! `queue_bytes`); a call that does not fit is refused at once (`backend_busy`). `concurrency`
//! workers take them in order, so at most that many are in flight. Each call has a deadline,
//! set when it is queued (the spec's `timeout`, at most the backend's): time in the queue counts,
//! and a call past its deadline is answered `backend_timeout` without being made. The
//! destination is checked by `net::outbound` at every call (after DNS; the request goes to the
//! address checked) and redirects are not followed. An answer is read up to
//! [`MAX_ANSWER_BYTES`].
//!
//! **The event stream** gets the event as a published event of type `client.<event>` in the
//! socket's tenant, through a hook the application gives (the node's feed, or the cluster's bus).
//!
//! **A database or Kafka destination** (`kind: database`, `kind: kafka`) is the bridges' own
//! writer (`sink::database`, `sink::kafka`) fed from here: the call's body becomes a row of
//! `client_events` (`migrations/002_client_events.sql`) in the PostgreSQL of `DATABASE_URL`, or
//! a record of the destination's `topic` on `KAFKA_BROKERS`, its value the body's JSON and its
//! key the socket's tenant. They never answer (specs forward to them with `reply: false`). Each
//! has one queue, bounded by its `queue` and `queue_bytes`: a call that does not fit is refused
//! at once (`backend_busy`, counted `busy`); what is written is counted `written`, a row or
//! record refused for good `write_failed`. While the destination is away, calls wait in the
//! queue and the writer retries.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use tokio::{
    sync::{Notify, oneshot},
    task::JoinHandle,
    time::Instant,
};

use super::{
    Database, Kafka,
    database::{CLIENT_EVENTS, Row},
    kafka::Message,
    queue::{self, Tally},
};
use crate::{
    config::{BackendConfig, BackendKind, BackendsConfig, SinksConfig},
    engine::{
        PublishedEvent,
        errors::{ClientError, ErrorKind},
        forward::{Backends, ForwardCall},
    },
    metrics::{ForwardMetrics, ForwardOutcome},
    net::{outbound::AllowedHosts, tls::OutboundTls},
    spec::STREAM_DESTINATION,
};

/// Largest answer read from a backend; a larger one is a failure (`backend_unavailable`).
pub(crate) const MAX_ANSWER_BYTES: usize = 1024 * 1024;
/// Longest error message taken from a backend's refusal.
const MAX_MESSAGE_CHARS: usize = 500;

/// Hands a client event to the backend event stream; false when it could not take it (counted
/// as `stream_dropped` here).
pub(crate) type StreamHook = Arc<dyn Fn(PublishedEvent) -> bool + Send + Sync>;

/// Every destination `forward` actions may name.
pub(crate) struct BackendCalls {
    backends: HashMap<String, Arc<Backend>>,
    /// The database and Kafka destinations.
    writers: HashMap<String, Writer>,
    stream: StreamHook,
    metrics: ForwardMetrics,
}

impl BackendCalls {
    /// The backends of `config` (connecting out under `allowed`, `https://` verified with
    /// `tls`; database and Kafka destinations at `sinks`), and the event stream through
    /// `stream`. A database or Kafka destination `sinks` lacks is left out (the configuration
    /// refuses it before this is reached: `BackendsConfig::check_sinks`).
    pub(crate) fn new(
        config: &BackendsConfig,
        allowed: &AllowedHosts,
        tls: &OutboundTls,
        sinks: &SinksConfig,
        stream: StreamHook,
        metrics: ForwardMetrics,
    ) -> Self {
        let writers = config
            .backends
            .iter()
            .filter_map(|b| {
                let tally = Tally::Forward { destination: b.name.clone(), metrics: metrics.clone() };
                let writer = match &b.kind {
                    BackendKind::Http => return None,
                    BackendKind::Database => {
                        let queue = queue::Queue::new(tally, b.queue, b.queue_bytes);
                        Writer::Database(Database::new(sinks.database_url()?, &CLIENT_EVENTS, queue))
                    }
                    BackendKind::Kafka { topic } if !sinks.kafka_brokers.is_empty() => {
                        let queue = queue::Queue::new(tally, b.queue, b.queue_bytes);
                        Writer::Kafka(Kafka::new(&sinks.kafka_brokers, topic, queue))
                    }
                    BackendKind::Kafka { .. } => return None,
                };
                Some((b.name.clone(), writer))
            })
            .collect();
        let backends = config
            .backends
            .iter()
            .filter(|b| b.kind == BackendKind::Http)
            .map(|b| {
                let backend = Backend {
                    config: b.clone(),
                    allowed: allowed.clone(),
                    tls: tls.clone(),
                    metrics: metrics.clone(),
                    queue: Mutex::default(),
                    ready: Notify::new(),
                };
                (b.name.clone(), Arc::new(backend))
            })
            .collect();
        Self { backends, writers, stream, metrics }
    }

    /// The workers: `concurrency` per backend, each making one call at a time; one writer per
    /// database or Kafka destination.
    pub(crate) fn spawn(&self) -> Vec<JoinHandle<()>> {
        let mut tasks: Vec<JoinHandle<()>> = self
            .writers
            .values()
            .map(|w| match w {
                Writer::Database(database) => database.spawn(),
                Writer::Kafka(kafka) => kafka.spawn(),
            })
            .collect();
        for backend in self.backends.values() {
            for _ in 0..backend.config.concurrency {
                tasks.push(tokio::spawn(backend.clone().work()));
            }
        }
        tasks
    }

    fn stream(&self, call: ForwardCall) -> Result<Duration, ClientError> {
        let ForwardCall { event, tenant, mut body, .. } = call;
        let timestamp = body.as_object_mut().and_then(|b| b.remove("timestamp"));
        let published = json!({
            "type": format!("client.{event}"),
            "tenantId": tenant,
            "data": body,
            "timestamp": timestamp,
        });
        let taken = match PublishedEvent::from_json(published, "a client event") {
            Ok(event) => (self.stream)(event),
            Err(e) => {
                tracing::warn!(error = %e, "a client event could not be streamed");
                false
            }
        };
        if taken {
            self.metrics.ended(ForwardOutcome::Streamed);
            Ok(Duration::ZERO)
        } else {
            self.metrics.ended(ForwardOutcome::StreamDropped);
            Err(ClientError::backend_busy("the event stream has too many events on their way: retry shortly"))
        }
    }
}

impl Backends for BackendCalls {
    fn forward(&self, call: ForwardCall) -> Result<Duration, ClientError> {
        if call.to == STREAM_DESTINATION {
            return self.stream(call);
        }
        if let Some(writer) = self.writers.get(&call.to) {
            return writer.offer(call);
        }
        let Some(backend) = self.backends.get(&call.to) else {
            // Refused at start-up (`spec::check_destinations`); kept as a clear answer anyway.
            return Err(ClientError::backend_unavailable(format!("no backend is called `{}`", call.to)));
        };
        backend.offer(call)
    }
}

/// A database or Kafka destination: the sink it feeds.
enum Writer {
    Database(Database),
    Kafka(Kafka),
}

impl Writer {
    /// Queues the call's body as a row or a record, or refuses it at once when the queue is
    /// full (counted `busy` and logged by the queue).
    fn offer(&self, call: ForwardCall) -> Result<Duration, ClientError> {
        if call.answer.is_some() {
            // Refused at start-up (`spec::check_destinations`); kept as a clear answer anyway.
            return Err(ClientError::backend_unavailable(format!(
                "`{}` is a database or Kafka destination and does not answer: forward to it with `reply: false`",
                call.to
            )));
        }
        let queued = match self {
            Writer::Database(database) => database.offer(client_event_row(&call)),
            Writer::Kafka(kafka) => kafka.offer(Message {
                key: call.tenant.as_ref().map(|t| Bytes::copy_from_slice(t.as_bytes())),
                value: Bytes::from(serde_json::to_vec(&call.body).unwrap_or_default()),
            }),
        };
        if queued {
            Ok(Duration::ZERO)
        } else {
            Err(ClientError::backend_busy("the destination has too many events waiting: retry shortly"))
        }
    }
}

/// The call as a row of `client_events`: the columns of [`CLIENT_EVENTS`], in order.
fn client_event_row(call: &ForwardCall) -> Row {
    let body = &call.body;
    let text = |v: &Value| v.as_str().map(str::to_string);
    Row(vec![
        Some(call.to.clone()),
        call.tenant.clone(),
        Some(text(&body["namespace"]).unwrap_or_default()),
        Some(call.event.clone()),
        Some(text(&body["socket"]["id"]).unwrap_or_default()),
        text(&body["socket"]["userId"]),
        Some(body["data"].to_string()),
        Some(body["socket"].to_string()),
        Some(text(&body["timestamp"]).unwrap_or_else(crate::clock::iso_now)),
    ])
}

/// One backend: its settings and its queue of calls.
struct Backend {
    config: BackendConfig,
    allowed: AllowedHosts,
    /// The bridges' TLS roots (Mozilla's and `BRIDGE_CA_FILE`'s), for `https://` backends.
    tls: OutboundTls,
    metrics: ForwardMetrics,
    queue: Mutex<Queue>,
    /// Wakes a worker when a call is queued.
    ready: Notify,
}

#[derive(Default)]
struct Queue {
    calls: VecDeque<Queued>,
    bytes: usize,
}

/// A call waiting for a worker.
struct Queued {
    body: Bytes,
    event: String,
    deadline: Instant,
    /// The call's timeout, for its message.
    timeout: Duration,
    answer: Option<oneshot::Sender<Result<Value, ClientError>>>,
}

impl Backend {
    /// Queues a call, or refuses it at once when the queue is full (count or bytes); returns
    /// its timeout.
    fn offer(&self, call: ForwardCall) -> Result<Duration, ClientError> {
        let body = Bytes::from(serde_json::to_vec(&call.body).unwrap_or_default());
        let timeout = call.timeout.map_or(self.config.timeout, |t| t.min(self.config.timeout));
        let queued =
            Queued { deadline: Instant::now() + timeout, timeout, event: call.event, answer: call.answer, body };
        {
            let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
            if queue.calls.len() >= self.config.queue || queue.bytes + queued.body.len() > self.config.queue_bytes {
                drop(queue);
                self.metrics.ended(ForwardOutcome::Busy);
                tracing::warn!(backend = %self.config.name, event = %queued.event, queued = self.config.queue, "backend queue full: a forwarded event was refused as busy");
                return Err(ClientError::backend_busy("the backend has too many calls waiting: retry shortly"));
            }
            queue.bytes += queued.body.len();
            queue.calls.push_back(queued);
        }
        self.ready.notify_one();
        Ok(timeout)
    }

    /// One worker: takes the next call, makes it, answers it; forever.
    async fn work(self: Arc<Self>) {
        loop {
            let next = {
                let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
                let next = queue.calls.pop_front();
                if let Some(call) = &next {
                    queue.bytes -= call.body.len();
                }
                next
            };
            match next {
                Some(call) => self.serve(call).await,
                None => self.ready.notified().await,
            }
        }
    }

    async fn serve(&self, call: Queued) {
        let Queued { body, event, deadline, timeout, answer } = call;
        let outcome = match deadline.checked_duration_since(Instant::now()).filter(|d| !d.is_zero()) {
            None => Err(self.timed_out(timeout)),
            // Whoever waits for the answer has stopped waiting (its socket's task gave up at
            // the same deadline): nothing is sent.
            Some(_) if answer.as_ref().is_some_and(oneshot::Sender::is_closed) => Err(self.timed_out(timeout)),
            Some(left) => match tokio::time::timeout(left, self.call(body)).await {
                Ok(result) => result,
                Err(_) => Err(self.timed_out(timeout)),
            },
        };
        let counted = match &outcome {
            Ok(_) => ForwardOutcome::Answered,
            Err(e) if e.kind == ErrorKind::BackendTimeout => ForwardOutcome::Timeout,
            Err(e) if e.kind == ErrorKind::BackendUnavailable => ForwardOutcome::Unavailable,
            Err(_) => ForwardOutcome::Refused,
        };
        self.metrics.ended(counted);
        if let Err(e) = &outcome
            && counted != ForwardOutcome::Refused
        {
            tracing::warn!(backend = %self.config.name, event = %event, error = %e.message, "a forwarded event failed");
        }
        if let Some(answer) = answer {
            let _ = answer.send(outcome);
        }
    }

    fn timed_out(&self, within: Duration) -> ClientError {
        ClientError::backend_timeout(format!("the backend did not answer within {} ms", within.as_millis()))
    }

    /// One call: the destination checked, the request signed and sent, the answer read.
    async fn call(&self, body: Bytes) -> Result<Value, ClientError> {
        let unavailable = |why: &str| ClientError::backend_unavailable(format!("the backend is unavailable: {why}"));
        let url: reqwest::Url = self.config.url.parse().map_err(|_| unavailable("its URL is not valid"))?;
        let host = url.host_str().unwrap_or_default().to_string();
        let port = url.port_or_known_default().unwrap_or(80);
        let address = self.allowed.resolve(&host, port).await.map_err(|reason| {
            tracing::warn!(backend = %self.config.name, %reason, "a backend's address is not allowed");
            unavailable("its address is not allowed")
        })?;
        // The request goes to the address just checked, not to a second lookup of the name.
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&host, address)
            .use_preconfigured_tls(self.tls.client_config())
            .build()
            .map_err(|_| unavailable("no HTTP client"))?;
        let mut request = client.post(url).header(http::header::CONTENT_TYPE, "application/json");
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.expose_secret());
        }
        if let Some(secret) = &self.config.secret {
            let timestamp = crate::clock::now_millis().to_string();
            request = request
                .header("X-Gateway-Timestamp", &timestamp)
                .header("X-Gateway-Signature", signature(secret.expose_secret().as_bytes(), &timestamp, &body));
        }
        let mut answer = request
            .body(body)
            .send()
            .await
            .map_err(|e| unavailable(if e.is_connect() { "it cannot be reached" } else { "the request failed" }))?;
        let status = answer.status();
        let mut text = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(|_| unavailable("its answer broke off"))? {
            if text.len() + chunk.len() > MAX_ANSWER_BYTES {
                return Err(unavailable(&format!("its answer is over {MAX_ANSWER_BYTES} bytes")));
            }
            text.extend_from_slice(&chunk);
        }
        if status.is_success() {
            if text.iter().all(u8::is_ascii_whitespace) {
                return Ok(json!({ "ok": true }));
            }
            return serde_json::from_slice(&text).map_err(|_| unavailable("its answer is not JSON"));
        }
        if status.is_client_error() {
            return Err(refusal(status.as_u16(), &text));
        }
        Err(unavailable(&format!("it answered {}", status.as_u16())))
    }
}

/// A backend's 4xx answer as the client's error: `{error: "text"}` or `{error: {message, type}}`
/// give the message (and a type a client already knows); anything else a plain sentence.
fn refusal(status: u16, text: &[u8]) -> ClientError {
    let answer: Value = serde_json::from_slice(text).unwrap_or(Value::Null);
    let (message, kind) = match &answer["error"] {
        Value::String(message) => (Some(message.as_str()), None),
        Value::Object(error) => {
            (error.get("message").and_then(Value::as_str), error.get("type").and_then(Value::as_str))
        }
        _ => (None, None),
    };
    let message = match message {
        Some(m) if m.chars().count() > MAX_MESSAGE_CHARS => m.chars().take(MAX_MESSAGE_CHARS).collect(),
        Some(m) if !m.is_empty() => m.to_string(),
        _ => format!("the backend refused the event ({status})"),
    };
    ClientError::from_backend(kind, message)
}

/// `sha256=<hex>` of HMAC-SHA256 over `<timestamp>.<body>` with `secret`.
fn signature(secret: &[u8], timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("HMAC takes a key of any length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + digest.len() * 2);
    hex.push_str("sha256=");
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_backends_file;

    fn calls(file: &str) -> (BackendCalls, ForwardMetrics) {
        let metrics = crate::metrics::Metrics::new(false).forward;
        let config = parse_backends_file(file).unwrap();
        let hook: StreamHook = Arc::new(|_| true);
        let sinks = SinksConfig {
            database_url: Some("postgres://gw@127.0.0.1:9/none".to_string().into()),
            kafka_brokers: vec!["127.0.0.1:9".into()],
        };
        let calls = BackendCalls::new(
            &config,
            &AllowedHosts::default(),
            &OutboundTls::default(),
            &sinks,
            hook,
            metrics.clone(),
        );
        (calls, metrics)
    }

    fn call(to: &str, data: Value) -> ForwardCall {
        ForwardCall {
            to: to.into(),
            event: "user:info".into(),
            tenant: Some("t1".into()),
            body: json!({ "event": "user:info", "data": data, "timestamp": "2026-01-01T00:00:00.000Z" }),
            timeout: None,
            answer: None,
        }
    }

    #[test]
    fn a_full_queue_refuses_at_once_by_count_and_by_bytes() {
        let (calls, metrics) = calls("users: { url: 'http://127.0.0.1:9/x', queue: 2, queue_bytes: 1000 }");
        assert!(calls.forward(call("users", json!(1))).is_ok());
        assert!(calls.forward(call("users", json!(2))).is_ok());
        let refused = calls.forward(call("users", json!(3))).unwrap_err();
        assert_eq!(refused.kind.as_str(), "backend_busy");
        let (calls, _) = calls_with_bytes();
        let refused = calls.forward(call("users", json!("x".repeat(2000)))).unwrap_err();
        assert_eq!(refused.kind.as_str(), "backend_busy");
        assert_eq!(metrics.count(ForwardOutcome::Busy), 1);
    }

    #[test]
    fn database_and_kafka_destinations_queue_without_answering_and_refuse_when_full() {
        let (calls, metrics) =
            calls("db: { kind: database, queue: 2 }\nk: { kind: kafka, topic: t, queue_bytes: 200 }");
        // Not spawned: nothing leaves the queues.
        assert_eq!(calls.forward(call("db", json!(1))).unwrap(), Duration::ZERO);
        assert!(calls.forward(call("db", json!(2))).is_ok());
        assert_eq!(calls.forward(call("db", json!(3))).unwrap_err().kind.as_str(), "backend_busy");
        assert!(calls.forward(call("k", json!(1))).is_ok());
        assert_eq!(calls.forward(call("k", json!("x".repeat(200)))).unwrap_err().kind.as_str(), "backend_busy");
        assert_eq!(metrics.count(ForwardOutcome::Busy), 2);
        let (sender, _receiver) = oneshot::channel();
        let waits = ForwardCall { answer: Some(sender), ..call("k", json!(1)) };
        assert_eq!(calls.forward(waits).unwrap_err().kind.as_str(), "backend_unavailable");
    }

    #[test]
    fn a_client_event_row_has_the_columns_of_client_events() {
        let mut call = call("audit-db", json!({ "a": 1 }));
        call.body["namespace"] = json!("/chat");
        call.body["socket"] = json!({ "id": "s1", "userId": null, "tenantId": "t1" });
        let Row(columns) = client_event_row(&call);
        let shown: Vec<Option<&str>> = columns.iter().map(Option::as_deref).collect();
        assert_eq!(
            shown,
            [
                Some("audit-db"),
                Some("t1"),
                Some("/chat"),
                Some("user:info"),
                Some("s1"),
                None,
                Some(r#"{"a":1}"#),
                Some(r#"{"id":"s1","userId":null,"tenantId":"t1"}"#),
                Some("2026-01-01T00:00:00.000Z"),
            ]
        );
    }

    fn calls_with_bytes() -> (BackendCalls, ForwardMetrics) {
        calls("users: { url: 'http://127.0.0.1:9/x', queue_bytes: 1000 }")
    }

    #[test]
    fn the_stream_gets_a_client_event_typed_after_the_event() {
        let metrics = crate::metrics::Metrics::new(false).forward;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let hook: StreamHook = Arc::new(move |e: PublishedEvent| {
            into.lock().unwrap().push(e.to_json());
            true
        });
        let calls = BackendCalls::new(
            &BackendsConfig::default(),
            &AllowedHosts::default(),
            &OutboundTls::default(),
            &SinksConfig::default(),
            hook,
            metrics.clone(),
        );
        calls.forward(call("stream", json!({ "a": 1 }))).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0]["type"], "client.user:info");
        assert_eq!(seen[0]["tenantId"], "t1");
        assert_eq!(seen[0]["data"]["data"], json!({ "a": 1 }));
        assert_eq!(seen[0]["timestamp"], "2026-01-01T00:00:00.000Z");
        assert_eq!(metrics.count(ForwardOutcome::Streamed), 1);
    }

    #[tokio::test]
    async fn queued_calls_are_answered_within_their_timeout_while_the_backend_hangs() {
        // A backend that accepts connections and never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hanging = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((connection, _)) = listener.accept().await {
                held.push(connection);
            }
        });
        let metrics = crate::metrics::Metrics::new(false).forward;
        let file = format!("hang: {{ url: 'http://127.0.0.1:{port}/x', concurrency: 1, timeout: 300ms }}");
        let allowed = AllowedHosts::parse(&["127.0.0.1".to_string()]).unwrap();
        let hook: StreamHook = Arc::new(|_| true);
        let calls = BackendCalls::new(
            &parse_backends_file(&file).unwrap(),
            &allowed,
            &OutboundTls::default(),
            &SinksConfig::default(),
            hook,
            metrics.clone(),
        );
        let workers = calls.spawn();
        let started = std::time::Instant::now();
        let mut pending = Vec::new();
        for n in 0..3 {
            let (sender, answer) = oneshot::channel();
            let within = calls.forward(ForwardCall { answer: Some(sender), ..call("hang", json!(n)) }).unwrap();
            assert_eq!(within, Duration::from_millis(300));
            pending.push(crate::engine::forward::PendingAnswer { answer, event: None, within });
        }
        // One worker, stuck on the first call: the two queued behind it are answered in time too.
        for answer in pending {
            assert_eq!(answer.outcome().await.unwrap_err().kind.as_str(), "backend_timeout");
        }
        assert!(started.elapsed() < Duration::from_millis(900), "{:?}", started.elapsed());
        for _ in 0..100 {
            if metrics.count(ForwardOutcome::Timeout) == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(metrics.count(ForwardOutcome::Timeout), 3);
        workers.iter().for_each(JoinHandle::abort);
        hanging.abort();
    }

    #[test]
    fn refusals_take_the_backends_message_and_known_types_only() {
        let e = refusal(404, br#"{"error": {"message": "no such user", "type": "validation"}}"#);
        assert_eq!((e.kind.as_str(), e.message.as_str()), ("validation", "no such user"));
        let e = refusal(403, br#"{"error": {"message": "nope", "type": "sql_injection"}}"#);
        assert_eq!(e.kind.as_str(), "backend_error");
        let e = refusal(400, br#"{"error": "bad id"}"#);
        assert_eq!(e.message, "bad id");
        assert_eq!(refusal(409, b"<html>").message, "the backend refused the event (409)");
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_timestamp_and_body() {
        // Computed independently: printf '1700000000000.{}' | openssl dgst -sha256 -hmac key
        assert_eq!(
            signature(b"key", "1700000000000", b"{}"),
            "sha256=36a72f4525d3323bd0f238fe82098164fb77b1e42288ff8e07b074c686178ad3"
        );
    }
}

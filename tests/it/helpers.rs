//! Test fixtures: an in-process gateway on port 0 (`spawn_app`), token minting, the publish API,
//! and a raw Socket.IO client over a real WebSocket that can also send what no well-behaved
//! client would. Every wait has a timeout, so a missing event fails the test quickly.

use std::{collections::VecDeque, net::SocketAddr, time::Duration};

use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use realtime_gateway::{app::App, config::Config};
use serde_json::{Value, json};
use tokio::{net::TcpStream, sync::oneshot, task::JoinHandle};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message};

pub const SECRET: &str = "integration-test-secret";
pub const API_KEY: &str = "integration-test-key";
/// How long any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(5);

/// A gateway running in this test's runtime.
pub struct TestApp {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
    pub http: reqwest::Client,
}

/// Starts a gateway with the test config, changed by `tweak`.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        // The first app installs it; the guard is kept for the whole test binary.
        if let Ok(logs) = realtime_gateway::telemetry::init("debug", realtime_gateway::config::LogFormat::Pretty) {
            std::mem::forget(logs);
        }
    }
    let mut config = Config::for_tests(SECRET, API_KEY);
    tweak(&mut config);
    let app = App::build(&config).await.expect("the app builds");
    let addr = app.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(app.run(async move {
        let _ = stopped.await;
    }));
    TestApp { addr, stop: Some(stop), task: Some(task), http: reqwest::Client::new() }
}

/// Starts a gateway with the test config.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Publishes `body` with the test API key; returns the status and JSON body.
    pub async fn publish(&self, body: Value) -> (u16, Value) {
        let res = self
            .http
            .post(self.url("/api/v1/events"))
            .header("x-api-key", API_KEY)
            .json(&body)
            .send()
            .await
            .expect("publish request");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Publishes and asserts it was accepted.
    pub async fn publish_ok(&self, body: Value) {
        let (status, reply) = self.publish(body).await;
        assert_eq!(status, 202, "publish refused: {reply}");
    }

    /// A `/workflow` client for `sub` in `tenant`, past its `connected` event (kept in `welcome`).
    pub async fn workflow_client(&self, sub: &str, tenant: &str) -> SioClient {
        let mut client =
            SioClient::connect(self.addr, "/workflow", json!({ "token": token(sub, Some(tenant), 3600) })).await;
        client.welcome = client.expect("connected").await;
        client
    }

    /// Triggers the graceful shutdown and waits for `run` to return.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        let _ = self.stop.take().expect("not stopped yet").send(());
        tokio::time::timeout(Duration::from_secs(10), self.task.take().expect("running"))
            .await
            .expect("shutdown is bounded")
            .expect("the app task")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
        }
    }
}

/// An HS256 token signed with the test secret, valid for `ttl_secs` (negative: expired).
pub fn token(sub: &str, tenant: Option<&str>, ttl_secs: i64) -> String {
    token_with(json!({ "sub": sub, "tenantId": tenant, "roles": ["user"] }), ttl_secs)
}

/// A token with arbitrary claims plus `exp`.
pub fn token_with(mut claims: Value, ttl_secs: i64) -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    claims["exp"] = json!(now + ttl_secs);
    if claims.get("tenantId") == Some(&Value::Null) {
        claims.as_object_mut().unwrap().remove("tenantId");
    }
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(SECRET.as_bytes())).unwrap()
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A Socket.IO client speaking the protocol by hand over one WebSocket.
pub struct SioClient {
    ws: Ws,
    ns: String,
    next_ack: u64,
    /// Events received while waiting for something else.
    pending: VecDeque<(String, Value)>,
    pub sid: String,
    /// The `connected` payload, for clients made by [`TestApp::workflow_client`].
    pub welcome: Value,
}

/// What arrived on the namespace.
#[derive(Debug)]
enum Incoming {
    Event(String, Value),
    Ack(u64, Value),
    Disconnect,
    Closed,
}

impl SioClient {
    /// Opens the WebSocket and connects to `ns` with `auth`; panics unless the namespace connects.
    pub async fn connect(addr: SocketAddr, ns: &str, auth: Value) -> Self {
        let mut ws = Self::open(addr, "").await;
        ws.send(Message::text(format!("40{ns},{auth}"))).await.unwrap();
        let reply = next_text(&mut ws).await.expect("a reply to the namespace connect");
        let prefix = format!("40{ns},");
        let body = reply.strip_prefix(&prefix).unwrap_or_else(|| panic!("expected a CONNECT, got {reply}"));
        let sid = serde_json::from_str::<Value>(body).unwrap()["sid"].as_str().unwrap().to_string();
        Self { ws, ns: ns.to_string(), next_ack: 0, pending: VecDeque::new(), sid, welcome: Value::Null }
    }

    /// Opens an Engine.IO WebSocket session (`query` is appended to the URL) and reads its
    /// OPEN packet.
    pub async fn open(addr: SocketAddr, query: &str) -> Ws {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket{query}");
        let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("ws connect in time")
            .expect("ws connect");
        let open = next_text(&mut ws).await.expect("an OPEN packet");
        assert!(open.starts_with('0'), "expected OPEN, got {open}");
        ws
    }

    /// Wraps an already-open session (after a namespace connect sent by hand).
    pub fn from_ws(ws: Ws, ns: &str, sid: &str) -> Self {
        Self {
            ws,
            ns: ns.to_string(),
            next_ack: 0,
            pending: VecDeque::new(),
            sid: sid.to_string(),
            welcome: Value::Null,
        }
    }

    /// Emits `event` with `data`.
    pub async fn emit(&mut self, event: &str, data: Value) {
        let packet = format!("42{},{}", self.ns, json!([event, data]));
        self.send_raw(&packet).await;
    }

    /// Emits with an ack callback and waits for the ack; events received meanwhile are kept.
    pub async fn emit_with_ack(&mut self, event: &str, data: Value) -> Value {
        let id = self.next_ack;
        self.next_ack += 1;
        self.send_raw(&format!("42{},{id}{}", self.ns, json!([event, data]))).await;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.receive())
                .await
                .unwrap_or_else(|_| panic!("no ack for {event} within {WAIT:?}"))
            {
                Incoming::Ack(got, data) if got == id => return data,
                Incoming::Event(name, data) => self.pending.push_back((name, data)),
                other => panic!("waiting for the ack of {event}, got {other:?}"),
            }
        }
    }

    /// Sends a text frame as is.
    pub async fn send_raw(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_string())).await.expect("send");
    }

    /// The next event, whatever it is.
    pub async fn next_event(&mut self) -> (String, Value) {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        match tokio::time::timeout(WAIT, self.receive()).await.unwrap_or_else(|_| panic!("no event within {WAIT:?}")) {
            Incoming::Event(name, data) => (name, data),
            other => panic!("expected an event, got {other:?}"),
        }
    }

    /// Waits for `event`, failing on any other event first (events are ordered per socket).
    pub async fn expect(&mut self, event: &str) -> Value {
        let (name, data) = self.next_event().await;
        assert_eq!(name, event, "expected `{event}`, got `{name}` with {data}");
        data
    }

    /// Waits for `event`, skipping others.
    pub async fn wait_for(&mut self, event: &str) -> Value {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (name, data) = tokio::time::timeout_at(deadline, self.next_event())
                .await
                .unwrap_or_else(|_| panic!("no `{event}` within {WAIT:?}"));
            if name == event {
                return data;
            }
        }
    }

    /// Waits until the server disconnects the namespace or closes the connection.
    pub async fn expect_disconnect(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.receive()).await.expect("a disconnect in time") {
                Incoming::Disconnect | Incoming::Closed => return,
                Incoming::Event(..) | Incoming::Ack(..) => {}
            }
        }
    }

    /// Keeps the connection alive (answering pings) for `d`, keeping any events that arrive.
    pub async fn idle(&mut self, d: Duration) {
        let deadline = tokio::time::Instant::now() + d;
        while let Ok(incoming) = tokio::time::timeout_at(deadline, self.receive()).await {
            match incoming {
                Incoming::Event(name, data) => self.pending.push_back((name, data)),
                other => panic!("while idle, got {other:?}"),
            }
        }
    }

    /// Whether the connection is still served: a `ping` event is answered by `pong`.
    pub async fn assert_alive(&mut self) {
        let reply = self.emit_with_ack("ping", json!({})).await;
        assert!(reply.get("timestamp").is_some(), "ping answered with {reply}");
        self.pending.retain(|(name, _)| name != "pong");
    }

    async fn receive(&mut self) -> Incoming {
        loop {
            let Some(text) = next_text(&mut self.ws).await else { return Incoming::Closed };
            if text == "1" {
                return Incoming::Closed;
            }
            let Some(rest) = text.strip_prefix('4') else { continue };
            let (kind, rest) = rest.split_at(1);
            let rest = rest.strip_prefix(self.ns.as_str()).and_then(|r| r.strip_prefix(',')).unwrap_or(rest);
            let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
            let (id, body) = rest.split_at(digits);
            match kind {
                "1" => return Incoming::Disconnect,
                "2" => {
                    let Ok(Value::Array(mut items)) = serde_json::from_str::<Value>(body) else {
                        panic!("bad event packet {text}")
                    };
                    let name = items.remove(0).as_str().unwrap().to_string();
                    return Incoming::Event(name, items.into_iter().next().unwrap_or(Value::Null));
                }
                "3" => {
                    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(body) else {
                        panic!("bad ack packet {text}")
                    };
                    return Incoming::Ack(id.parse().unwrap(), items.into_iter().next().unwrap_or(Value::Null));
                }
                _ => continue,
            }
        }
    }
}

/// The next text frame that is not an Engine.IO ping (pings are answered, as a client must, or
/// the server drops the connection); `None` when the connection ends.
pub async fn next_text(ws: &mut Ws) -> Option<String> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("a frame in time") {
            Some(Ok(Message::Text(t))) if t.as_str() == "2" => {
                let _ = ws.send(Message::text("3")).await;
            }
            Some(Ok(Message::Text(t))) => return Some(t.to_string()),
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
            Some(Ok(_)) => continue,
        }
    }
}

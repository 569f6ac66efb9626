//! The benchmarks' load generator: holds many lean WebSocket clients to a server, each speaking
//! either Engine.IO v4 / Socket.IO (`--mode eio`: CONNECT with a token, subscribe with an ack,
//! answer pings) or the Go hub's envelopes (`--mode hub`), and counts what they receive.
//!
//! Written in Rust so the clients cost far less CPU than the server they load: a Node client
//! parsing every packet would be the bottleneck long before the gateway. One process runs on one
//! thread; the orchestrator (`bench/run.mjs`) starts several, each under the file limit and from
//! its own 127.x.y.z source addresses.
//!
//! Deliveries are recognised by a `"sentAt":<µs since the epoch>` field the publisher puts in each
//! event's data; their latency goes into a log histogram (64 buckets per octave of µs). Control is
//! one JSON line per command on stdin (`stats`, `reset`), answered by one JSON line on stdout;
//! `{"ready": ...}` is printed once every client has connected (and subscribed).

use std::{
    cell::RefCell,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    rc::Rc,
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use futures_util::{SinkExt, StreamExt};
use tokio::{
    io::{AsyncBufReadExt, BufReader},
    net::TcpSocket,
    sync::Semaphore,
};
use tokio_tungstenite::{
    client_async_with_config,
    tungstenite::{Message, client::IntoClientRequest, protocol::WebSocketConfig},
};

/// Histogram resolution: buckets per doubling of the latency in µs (about 1.1% each).
const PER_OCTAVE: f64 = 64.0;
const BUCKETS: usize = 64 * 34;

#[derive(Clone)]
struct Options {
    host: String,
    port: u16,
    mode: Mode,
    path: String,
    namespace: String,
    token: String,
    connections: usize,
    subscribe: String,
    rooms: usize,
    source: Option<(u8, u8)>,
    per_ip: usize,
    concurrency: usize,
    ack_clients: usize,
    ack_interval: Duration,
    browser_headers: bool,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Eio,
    Hub,
}

fn options() -> Options {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |name: &str| args.iter().position(|a| a == &format!("--{name}")).and_then(|i| args.get(i + 1)).cloned();
    let num = |name: &str, default: usize| get(name).map_or(default, |v| v.parse().expect(name));
    let url = get("url").expect("--url http://HOST:PORT");
    let authority = url.trim_start_matches("http://").trim_start_matches("ws://").trim_end_matches('/');
    let (host, port) = authority.rsplit_once(':').expect("--url with a port");
    let mode = match get("mode").as_deref() {
        Some("hub") => Mode::Hub,
        _ => Mode::Eio,
    };
    Options {
        host: host.to_string(),
        port: port.parse().expect("port"),
        mode,
        path: get("path").unwrap_or_else(|| if mode == Mode::Hub { "/ws".into() } else { "/socket.io/".into() }),
        namespace: get("namespace").unwrap_or_else(|| "/workflow".into()),
        token: get("token").expect("--token"),
        connections: num("connections", 1000),
        subscribe: get("subscribe").unwrap_or_default(),
        rooms: num("rooms", 1).max(1),
        source: get("source").map(|s| {
            let (a, b) = s.split_once('.').expect("--source A.B (127.A.B.x)");
            (a.parse().expect("source"), b.parse().expect("source"))
        }),
        per_ip: num("per-ip", 100).max(1),
        concurrency: num("concurrency", 64).max(1),
        ack_clients: num("ack-clients", 0),
        ack_interval: Duration::from_millis(num("ack-interval-ms", 2500) as u64),
        browser_headers: args.iter().any(|a| a == "--browser-headers"),
    }
}

/// Counters of this process; one thread, so plain cells.
struct Stats {
    ready: usize,
    failed: usize,
    closed: usize,
    received: u64,
    latency: Vec<u64>,
    acks: Vec<u64>,
    first_error: Option<String>,
}

impl Stats {
    fn new() -> Self {
        Self {
            ready: 0,
            failed: 0,
            closed: 0,
            received: 0,
            latency: vec![0; BUCKETS],
            acks: vec![0; BUCKETS],
            first_error: None,
        }
    }
    fn reset(&mut self) {
        self.received = 0;
        self.latency.iter_mut().for_each(|b| *b = 0);
        self.acks.iter_mut().for_each(|b| *b = 0);
    }
    fn json(&self) -> String {
        let buckets = |h: &[u64]| {
            let cells: Vec<String> =
                h.iter().enumerate().filter(|(_, c)| **c > 0).map(|(i, c)| format!("[{i},{c}]")).collect();
            format!("[{}]", cells.join(","))
        };
        format!(
            r#"{{"ready":{},"failed":{},"closed":{},"received":{},"latency":{},"acks":{},"error":{}}}"#,
            self.ready,
            self.failed,
            self.closed,
            self.received,
            buckets(&self.latency),
            buckets(&self.acks),
            self.first_error.as_ref().map_or("null".to_string(), |e| format!("{:?}", e)),
        )
    }
}

fn bucket(micros: u64) -> usize {
    ((((micros + 1) as f64).log2() * PER_OCTAVE) as usize).min(BUCKETS - 1)
}

fn now_micros() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// The value of `"sentAt":` in a frame, if it has one.
fn sent_at(text: &str) -> Option<u64> {
    let at = text.find("\"sentAt\":")? + "\"sentAt\":".len();
    let digits: &str = &text[at..];
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

/// What a browser sends with a WebSocket handshake besides the handshake itself: a page on the
/// gateway's default allowed origin, with a typical analytics and preferences cookie.
const BROWSER_HEADERS: &[(&str, &str)] = &[
    ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
    ("origin", "http://localhost:3000"),
    ("accept-language", "en-GB,en-US;q=0.9,en;q=0.8,fr;q=0.7"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("cache-control", "no-cache"),
    ("pragma", "no-cache"),
    ("sec-websocket-extensions", "permessage-deflate; client_max_window_bits"),
    (
        "cookie",
        "_ga=GA1.1.1234567890.1732600000; _ga_ABCDEF1234=GS1.1.1732600000.3.1.1732600500.0.0.0; \
         _gid=GA1.2.987654321.1732600000; _fbp=fb.1.1732600000000.1234567890123456789; \
         intercom-id-abcd1234=01234567-89ab-cdef-0123-456789abcdef; intercom-device-id-abcd1234=fedcba98-7654-3210-fedc-ba9876543210; \
         theme=dark; locale=en-GB; sidebar_collapsed=false; consent=analytics%2Cmarketing%2Cfunctional; \
         ajs_anonymous_id=%2201234567-89ab-cdef-0123-456789abcdef%22; csrftoken=Zx9yW8vU7tS6rQ5pO4nM3lK2jI1hG0fE",
    ),
];

type Ws = tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>;

async fn open(o: &Options, index: usize) -> Result<Ws, String> {
    let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
    if let Some((a, b)) = o.source {
        let n = index / o.per_ip;
        let ip = Ipv4Addr::new(127, a, b.wrapping_add((n / 250) as u8), (n % 250 + 1) as u8);
        socket.bind(SocketAddr::new(IpAddr::V4(ip), 0)).map_err(|e| format!("bind {ip}: {e}"))?;
    }
    let addr: SocketAddr = format!("{}:{}", o.host, o.port).parse().map_err(|e| format!("{e}"))?;
    let stream = socket.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).ok();
    let uri = match o.mode {
        Mode::Eio => format!("ws://{}:{}{}?EIO=4&transport=websocket", o.host, o.port, o.path),
        Mode::Hub => format!("ws://{}:{}{}?token={}", o.host, o.port, o.path, o.token),
    };
    let mut request = uri.into_client_request().map_err(|e| e.to_string())?;
    if o.browser_headers {
        for (name, value) in BROWSER_HEADERS {
            request.headers_mut().insert(*name, value.parse().map_err(|e| format!("{e}"))?);
        }
    }
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (ws, _) = client_async_with_config(request, stream, Some(config)).await.map_err(|e| format!("handshake: {e}"))?;
    Ok(ws)
}

async fn next_text(ws: &mut Ws) -> Result<String, String> {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return Ok(t.to_string()),
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed".into()),
        }
    }
}

/// Connects, authenticates and subscribes one client; returns it ready to receive.
async fn setup(o: &Options, index: usize) -> Result<Ws, String> {
    let mut ws = open(o, index).await?;
    let room = (index % o.rooms).to_string();
    let subscribe = o.subscribe.replace("{room}", &room);
    match o.mode {
        Mode::Eio => {
            let open_packet = next_text(&mut ws).await?;
            if !open_packet.starts_with('0') {
                return Err(format!("expected the open packet, got {open_packet}"));
            }
            let ns = if o.namespace == "/" { String::new() } else { format!("{},", o.namespace) };
            ws.send(Message::text(format!("40{ns}{{\"token\":\"{}\"}}", o.token))).await.map_err(|e| e.to_string())?;
            loop {
                let t = next_text(&mut ws).await?;
                if t.starts_with(&format!("40{ns}")) {
                    break;
                }
                if t.starts_with(&format!("44{ns}")) {
                    return Err(format!("connect refused: {t}"));
                }
                if t.contains("\"type\":\"auth\"") {
                    return Err(format!("auth refused: {t}"));
                }
            }
            if !subscribe.is_empty() {
                ws.send(Message::text(format!("42{ns}1[\"subscribe\",{subscribe}]"))).await.map_err(|e| e.to_string())?;
                let ack = format!("43{ns}1");
                loop {
                    let t = next_text(&mut ws).await?;
                    if t == "2" {
                        ws.send(Message::text("3")).await.map_err(|e| e.to_string())?;
                    } else if t.starts_with(&ack) {
                        if t.contains("\"error\"") {
                            return Err(format!("subscribe refused: {t}"));
                        }
                        break;
                    }
                }
            }
        }
        Mode::Hub => {
            if !subscribe.is_empty() {
                ws.send(Message::text(format!("{{\"type\":\"subscribe\",\"data\":{subscribe}}}")))
                    .await
                    .map_err(|e| e.to_string())?;
                loop {
                    let t = next_text(&mut ws).await?;
                    if t.contains("\"type\":\"subscribed\"") {
                        break;
                    }
                    if t.contains("\"type\":\"error\"") {
                        return Err(format!("subscribe refused: {t}"));
                    }
                }
            }
        }
    }
    Ok(ws)
}

/// Receives until the server closes: counts deliveries, answers Engine.IO pings, and (for the
/// first `ack_clients`) sends a `ping` with an ack every `ack_interval`, timing the answer.
async fn serve(o: Rc<Options>, index: usize, mut ws: Ws, stats: Rc<RefCell<Stats>>) {
    let ns = if o.namespace == "/" { String::new() } else { format!("{},", o.namespace) };
    let acking = o.mode == Mode::Eio && index < o.ack_clients;
    let mut ticker = tokio::time::interval(o.ack_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ack_id: u64 = 1;
    let mut pending: Option<(String, Instant)> = None;
    loop {
        tokio::select! {
            message = ws.next() => {
                let text = match message {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                    Some(Ok(_)) => continue,
                };
                if text.as_str() == "2" {
                    if ws.send(Message::text("3")).await.is_err() {
                        break;
                    }
                    continue;
                }
                if let Some(sent) = sent_at(text.as_str()) {
                    let mut s = stats.borrow_mut();
                    s.received += 1;
                    let b = bucket(now_micros().saturating_sub(sent));
                    s.latency[b] += 1;
                } else if let Some((prefix, at)) = &pending
                    && text.as_str().starts_with(prefix.as_str())
                {
                    let mut s = stats.borrow_mut();
                    let b = bucket(at.elapsed().as_micros() as u64);
                    s.acks[b] += 1;
                    pending = None;
                }
            }
            _ = ticker.tick(), if acking => {
                if pending.is_none() {
                    ack_id += 1;
                    pending = Some((format!("43{ns}{ack_id}["), Instant::now()));
                    if ws.send(Message::text(format!("42{ns}{ack_id}[\"ping\",{{}}]"))).await.is_err() {
                        break;
                    }
                }
            }
        }
    }
    stats.borrow_mut().closed += 1;
}

fn main() {
    let o = Rc::new(options());
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let stats = Rc::new(RefCell::new(Stats::new()));
        let gate = Rc::new(Semaphore::new(o.concurrency));
        let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        for index in 0..o.connections {
            let (o, stats, gate, done) = (o.clone(), stats.clone(), gate.clone(), done_tx.clone());
            tokio::task::spawn_local(async move {
                let permit = gate.acquire().await;
                let result = tokio::time::timeout(Duration::from_secs(30), setup(&o, index)).await;
                drop(permit);
                match result.unwrap_or_else(|_| Err("timed out".to_string())) {
                    Ok(ws) => {
                        stats.borrow_mut().ready += 1;
                        let _ = done.send(());
                        serve(o, index, ws, stats).await;
                    }
                    Err(e) => {
                        let mut s = stats.borrow_mut();
                        s.failed += 1;
                        s.first_error.get_or_insert(e);
                        let _ = done.send(());
                    }
                }
            });
        }
        drop(done_tx);
        for _ in 0..o.connections {
            done_rx.recv().await;
        }
        {
            let s = stats.borrow();
            println!(r#"{{"ready":{},"failed":{},"error":{}}}"#, s.ready, s.failed, s.first_error.as_ref().map_or("null".to_string(), |e| format!("{e:?}")));
        }
        let mut lines = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            match line.trim() {
                "stats" => println!("{}", stats.borrow().json()),
                "reset" => {
                    stats.borrow_mut().reset();
                    println!("{{\"reset\":true}}");
                }
                "quit" => break,
                _ => {}
            }
        }
    });
}

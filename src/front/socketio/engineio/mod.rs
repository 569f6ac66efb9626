//! The Engine.IO front: what every request to the Socket.IO path passes before socketioxide sees
//! it, and the one place that ends a session's transport.
//!
//! - A new session (a handshake, no `sid`) is refused while the node drains (503) and past
//!   `WS_HANDSHAKE_RATE_LIMIT` for its client address (429): a session costs memory before any
//!   token is checked, so an address cannot open thousands of them.
//! - A request naming a session (`sid=`) must come from the client address that opened it, which
//!   the front records when it answers the session's handshake (a long-polling one) or when a
//!   namespace admits it (WebSocket first), whatever namespaces it joins, the admin view's
//!   included. From anywhere else it is answered like an unknown session (400), so an id seen by
//!   another client (or in a log, a screenshot, a URL) cannot be used to poll, post into or
//!   upgrade someone else's long-polling session. socketioxide uses the Engine.IO id as the socket
//!   id, which socket.io-client shows as `socket.id`; the gateway itself never shows it to other
//!   clients (see `engine::session::PublicId`).
//! - New sessions are charged to their address's handshake budget (`budget`); a session that
//!   authenticates gives its charge back, so only handshakes that never do are limited.
//! - Each session has a [`Backlog`]: what the engine queued for it and its transport has not
//!   written yet. Its WebSocket connection drains it as it writes; the answers to its polls drain
//!   it here.
//! - A handshake keeps only the headers the session's admission and transport read (the token's
//!   `Authorization` and auth cookie, `Origin`, `X-Forwarded-For`, the WebSocket upgrade's own):
//!   socketioxide keeps the handshake request for the session's life, and a browser's other
//!   headers and cookies are often a kilobyte or more per connection.
//! - A WebSocket upgrade of a polling session is remembered with its connection's guard, so the
//!   session's connection can be cut later ([`Sessions::close`]); a WebSocket-first session
//!   carries its guard in its handshake request already.
//!
//! [`Sessions::close`] ends a session's transport from the server side, which socketioxide has
//! no public call for: a WebSocket connection is cut; a polling session is sent the Engine.IO
//! close packet through the router, as its client would post it.

use std::{
    collections::HashMap,
    convert::Infallible,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex, OnceLock, Weak},
    task::{Context, Poll},
};

use axum::{body::Body, extract::ConnectInfo};
use futures_util::{
    FutureExt,
    future::{Either, Map},
};
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use socketioxide::{ProtocolVersion, TransportType, socket::Sid};
use tower::{Layer, Service, ServiceExt};

use crate::{
    auth::query_param,
    lifecycle::Readiness,
    metrics::{CutReason, Metrics},
    net::{backlog::Backlog, client_ip::TrustedProxies, connection::ConnectionGuard},
    spec::RateLimit,
};
use budget::HandshakeBudget;
pub(crate) use layer::SessionsLayer;
use layer::close_request;
use records::Records;

mod budget;
mod layer;
mod records;

/// What the front needs to know about the sessions the engine serves.
pub(crate) trait SessionDirectory: Send + Sync {
    /// Whether session `sid` has a socket in any namespace of this node.
    fn is_open(&self, sid: Sid) -> bool;
    /// Session `sid` asked to upgrade from long-polling to WebSocket.
    fn upgrading(&self, _sid: Sid) {}
}

/// Marks the gateway's own requests (a close packet it posts), which the front lets through.
#[derive(Debug, Clone, Copy)]
struct FromGateway;

/// The front's state, shared by its service and the engine.
pub(crate) struct Sessions {
    /// `SOCKETIO_PATH` with a trailing `/`, as request paths start.
    path_prefix: String,
    trusted_proxies: TrustedProxies,
    handshakes: Option<HandshakeBudget>,
    /// The sessions of this node: who opened each, and their backlogs.
    records: Records,
    /// How long a record outlives its session (a session with no namespace yet is not "open").
    record_grace: std::time::Duration,
    bind_to_ip: bool,
    allow_eio3: bool,
    max_payload: usize,
    auth_cookie: String,
    readiness: Arc<Readiness>,
    directory: OnceLock<Arc<dyn SessionDirectory>>,
    /// Polling sessions that upgraded to WebSocket: the upgraded connection. Entries whose
    /// connection is gone are pruned by [`Sessions::prune`].
    upgraded: Mutex<HashMap<Sid, Weak<ConnectionGuard>>>,
    /// The whole router, through which a close packet reaches the Socket.IO service. (Each route
    /// wraps its own Engine.IO engine; only the one behind the router's fallback, where the
    /// Socket.IO path lands, holds the sessions.)
    router: OnceLock<axum::Router>,
    metrics: Arc<Metrics>,
}

/// How the front is configured.
pub(crate) struct SessionsOptions {
    /// `SOCKETIO_PATH`.
    pub path: String,
    /// Whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// New sessions per client address.
    pub handshake_limit: Option<RateLimit>,
    /// Whether `sid` requests must come from the opening address.
    pub bind_to_ip: bool,
    /// Whether Engine.IO protocol 3 (socket.io-client 2.x) is served.
    pub allow_eio3: bool,
    /// The largest polling body (`WS_MAX_HTTP_BUFFER_SIZE`).
    pub max_payload: usize,
    /// `AUTH_COOKIE_NAME`: the one cookie a handshake keeps.
    pub auth_cookie: String,
    /// How long a session may stay in no namespace before socketioxide closes it.
    pub connect_timeout: std::time::Duration,
}

impl SessionsOptions {
    /// The session front's settings, as `config` gives them.
    pub(crate) fn from_config(config: &crate::config::Config) -> Self {
        Self {
            path: config.transport.path.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            handshake_limit: config.transport.handshake_limit,
            bind_to_ip: config.transport.bind_sessions_to_ip,
            allow_eio3: config.transport.allow_eio3,
            max_payload: usize::try_from(config.transport.max_http_buffer_size).unwrap_or(usize::MAX),
            auth_cookie: config.auth_cookie_name.clone(),
            connect_timeout: config.transport.connect_timeout,
        }
    }
}

impl Sessions {
    /// The front's state; [`Sessions::attach`] gives it the engine's sessions.
    pub(crate) fn new(options: SessionsOptions, readiness: Arc<Readiness>, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            path_prefix: format!("{}/", options.path),
            trusted_proxies: options.trusted_proxies,
            handshakes: options.handshake_limit.map(HandshakeBudget::new),
            records: Records::default(),
            record_grace: options.connect_timeout * 2,
            bind_to_ip: options.bind_to_ip,
            allow_eio3: options.allow_eio3,
            max_payload: options.max_payload,
            auth_cookie: options.auth_cookie,
            readiness,
            directory: OnceLock::new(),
            upgraded: Mutex::new(HashMap::new()),
            router: OnceLock::new(),
            metrics,
        })
    }

    /// Gives the front the engine's sessions (once, at start-up).
    pub(crate) fn attach(&self, directory: Arc<dyn SessionDirectory>) {
        if self.directory.set(directory).is_err() {
            tracing::warn!("the session front is already attached");
        }
    }

    /// Gives the front the finished router, which it posts close packets through (once).
    pub(crate) fn serve_through(&self, router: axum::Router) {
        let _ = self.router.set(router);
    }

    /// The layer to put in front of the Socket.IO service.
    pub(crate) fn layer(self: &Arc<Self>) -> SessionsLayer {
        SessionsLayer { sessions: self.clone() }
    }

    /// A namespace admitted a socket of session `sid` (`authenticated`: with a valid token, or as
    /// the namespace's anonymous client), over `transport`, opened by `handshake`. The first
    /// authentication gives the handshake's charge back. Returns the session's backlog, which a
    /// WebSocket connection now drains.
    pub(crate) fn admitted(
        &self,
        sid: Sid,
        transport: TransportType,
        handshake: &http::request::Parts,
        authenticated: bool,
    ) -> Arc<Backlog> {
        let ip = client_ip_of(&self.trusted_proxies, handshake.extensions.get(), &handshake.headers);
        let Some(ip) = ip else { return Arc::default() };
        let admitted = self.records.admitted(sid, ip, authenticated);
        if let (Some(ip), Some(budget)) = (admitted.give_back_to, &self.handshakes) {
            budget.give_back(ip);
        }
        if transport == TransportType::Websocket
            && let Some(guard) = self.connection_of(sid, handshake)
        {
            guard.carry(admitted.backlog.clone());
        }
        admitted.backlog
    }

    /// Ends the transport of session `sid`, whose handshake request was `handshake`: cuts its
    /// WebSocket connection, or sends a polling session the close packet. socketioxide then
    /// closes the session and its sockets in every namespace.
    pub(crate) fn close(
        &self,
        sid: Sid,
        transport: TransportType,
        protocol: ProtocolVersion,
        handshake: &http::request::Parts,
        reason: CutReason,
    ) {
        match transport {
            TransportType::Websocket => {
                if let Some(guard) = self.connection_of(sid, handshake)
                    && guard.cut()
                {
                    self.metrics.connections_cut(reason);
                }
            }
            TransportType::Polling => {
                let Some(router) = self.router.get().cloned() else { return };
                self.metrics.connections_cut(reason);
                let request = close_request(&self.path_prefix, sid, protocol);
                tokio::spawn(async move {
                    if let Ok(response) = router.oneshot(request).await
                        && !response.status().is_success()
                    {
                        tracing::debug!(status = %response.status(), "a polling session to close had ended already");
                    }
                });
            }
        }
    }

    /// The connection a WebSocket session runs on: the upgrade's, or (WebSocket from the start)
    /// the handshake's own.
    fn connection_of(&self, sid: Sid, handshake: &http::request::Parts) -> Option<Arc<ConnectionGuard>> {
        let upgraded = self.upgraded.lock().unwrap_or_else(|e| e.into_inner()).get(&sid).cloned();
        match upgraded {
            Some(weak) => weak.upgrade(),
            None => handshake.extensions.get::<Arc<ConnectionGuard>>().cloned(),
        }
    }

    /// Forgets upgrades whose connection has ended.
    pub(crate) fn prune(&self) {
        self.upgraded.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, weak| weak.strong_count() > 0);
    }

    /// The client address of a request.
    fn client_ip<B>(&self, request: &Request<B>) -> Option<IpAddr> {
        client_ip_of(&self.trusted_proxies, request.extensions().get(), request.headers())
    }

    /// What to answer instead of passing `request` on, if anything; also remembers upgrades.
    fn screen(&self, request: &Request<Body>) -> Option<Response<Body>> {
        if request.extensions().get::<FromGateway>().is_some() {
            return None;
        }
        let path = request.uri().path();
        if !path.starts_with(&self.path_prefix) && path != self.path_prefix.trim_end_matches('/') {
            return None;
        }
        let query = request.uri().query().unwrap_or_default();
        let eio3 = query_param(query, "EIO").as_deref() == Some("3");
        if !self.allow_eio3 && eio3 {
            return Some(engine_error(StatusCode::BAD_REQUEST, 5, "Unsupported protocol version"));
        }
        // socket.io-client 2.x's CONNECT packets carry its query; over long-polling the posts are
        // rewritten here, over a WebSocket its frames as the connection reads them.
        if eio3
            && query_param(query, "transport").as_deref() == Some("websocket")
            && let Some(guard) = request.extensions().get::<Arc<ConnectionGuard>>()
        {
            guard.carries_v3_websocket();
        }
        let Some(sid) = query_param(query, "sid") else {
            return self.screen_handshake(request);
        };
        // An id that does not parse is socketioxide's to refuse.
        let sid: Sid = sid.parse().ok()?;
        if self.bind_to_ip
            && let Some(opened_by) = self.records.opener(sid)
            && self.client_ip(request) != Some(opened_by)
        {
            self.metrics.session_address_mismatch.inc();
            tracing::info!(client = ?self.client_ip(request), "refused a request naming a session opened from another address");
            return Some(engine_error(StatusCode::BAD_REQUEST, 1, "Session ID unknown"));
        }
        if query_param(query, "transport").as_deref() == Some("websocket")
            && let Some(guard) = request.extensions().get::<Arc<ConnectionGuard>>()
        {
            self.upgraded.lock().unwrap_or_else(|e| e.into_inner()).insert(sid, Arc::downgrade(guard));
            if let Some(backlog) = self.records.backlog(sid) {
                guard.carry(backlog);
            }
            if let Some(directory) = self.directory.get() {
                directory.upgrading(sid);
            }
        }
        None
    }

    fn screen_handshake(&self, request: &Request<Body>) -> Option<Response<Body>> {
        if self.readiness.is_draining() {
            return Some(engine_error(
                StatusCode::SERVICE_UNAVAILABLE,
                4,
                "This node is shutting down: reconnect to another one",
            ));
        }
        let budget = self.handshakes.as_ref()?;
        let ip = self.client_ip(request)?;
        let wait = budget.take(ip).err()?;
        self.metrics.handshakes_throttled.inc();
        tracing::debug!(%ip, "handshake refused: too many new sessions from this address");
        let mut response = engine_error(StatusCode::TOO_MANY_REQUESTS, 4, "Too many connections from this address");
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(value) = HeaderValue::from_str(&secs) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        Some(response)
    }

    /// Forgets quiet addresses of the handshake budget, ended sessions and ended upgrades.
    pub(crate) fn cleanup(&self) {
        if let Some(budget) = &self.handshakes {
            budget.cleanup();
        }
        if let Some(directory) = self.directory.get() {
            self.records.prune(|sid| directory.is_open(sid), self.record_grace);
        }
        self.prune();
    }

    /// Records who opened the long-polling session whose handshake `answer` names it.
    fn opened(&self, ip: Option<IpAddr>, answer: &[u8]) {
        if let (Some(ip), Some(sid)) = (ip, session_id_in(answer)) {
            self.records.opened(sid, ip);
        }
    }

    /// Session `sid`'s poll was answered with `bytes` of its packets.
    fn polled(&self, sid: Sid, bytes: u64) {
        if let Some(backlog) = self.records.backlog(sid) {
            backlog.wrote(usize::try_from(bytes).unwrap_or(usize::MAX));
        }
    }
}

/// The client address of a request with these extensions and headers.
fn client_ip_of(
    proxies: &TrustedProxies,
    connect_info: Option<&ConnectInfo<SocketAddr>>,
    headers: &http::HeaderMap,
) -> Option<IpAddr> {
    connect_info.map(|ConnectInfo(peer)| proxies.client_ip(peer.ip(), headers))
}

/// The session id in an Engine.IO open packet (`0{"sid":"…",…}`, possibly length-prefixed).
fn session_id_in(answer: &[u8]) -> Option<Sid> {
    let text = std::str::from_utf8(answer).ok()?;
    let start = text.find("\"sid\":\"")? + "\"sid\":\"".len();
    let len = text[start..].find('"')?;
    text[start..start + len].parse().ok()
}

/// An Engine.IO error answer: `{"code", "message"}`, as socketioxide and Node's engine.io send.
fn engine_error(status: StatusCode, code: u8, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "code": code, "message": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Headers a session's handshake needs for its whole life: the WebSocket upgrade's (read by
/// engineioxide), a polling body's framing, and what admission reads when each namespace is
/// joined (`engine::namespace`: the token, the origin, the client address).
const HANDSHAKE_HEADERS: [header::HeaderName; 9] = [
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::CONTENT_TYPE,
    header::CONTENT_LENGTH,
    header::ORIGIN,
    header::AUTHORIZATION,
    header::HeaderName::from_static("x-forwarded-for"),
];

/// The headers of a handshake worth keeping: [`HANDSHAKE_HEADERS`], and of its cookies only
/// `auth_cookie`, in a map no larger than they need.
fn handshake_headers(headers: &http::HeaderMap, auth_cookie: &str) -> http::HeaderMap {
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .find(|c| c.split_once('=').is_some_and(|(name, _)| name.trim() == auth_cookie))
        .and_then(|c| HeaderValue::from_str(c).ok());
    let count = HANDSHAKE_HEADERS.iter().map(|name| headers.get_all(name).iter().count()).sum::<usize>();
    let mut kept = http::HeaderMap::with_capacity(count + usize::from(cookie.is_some()));
    for name in &HANDSHAKE_HEADERS {
        for value in headers.get_all(name) {
            kept.append(name.clone(), value.clone());
        }
    }
    if let Some(cookie) = cookie {
        kept.insert(header::COOKIE, cookie);
    }
    kept
}

/// In a protocol 3 string payload (`<utf-16 length>:<packet>`...), the CONNECT packets
/// `40/ns?query,…` rewritten as `40/ns,…`; `None` when there is nothing to change (or the payload
/// does not parse, which is socketioxide's to refuse).
pub(crate) fn strip_connect_queries_v3(payload: &str) -> Option<String> {
    let mut out = String::with_capacity(payload.len());
    let mut rest = payload;
    let mut changed = false;
    while !rest.is_empty() {
        let (len, after) = rest.split_once(':')?;
        let len: usize = len.parse().ok()?;
        // The length counts UTF-16 code units: find the byte where that many end.
        let mut units = 0;
        let end = after
            .char_indices()
            .find_map(|(i, c)| {
                let at = (units == len).then_some(i);
                units += c.len_utf16();
                at
            })
            .or((units == len).then_some(after.len()))?;
        let (packet, next) = after.split_at(end);
        let packet = match packet.strip_prefix("40/").and_then(|p| p.split_once(',').or(Some((p, "")))) {
            Some((ns, data)) if ns.contains('?') => {
                changed = true;
                let ns = &ns[..ns.find('?').unwrap_or(ns.len())];
                format!("40/{ns},{data}")
            }
            _ => packet.to_string(),
        };
        out.push_str(&packet.encode_utf16().count().to_string());
        out.push(':');
        out.push_str(&packet);
        rest = next;
    }
    changed.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_handshake_keeps_the_headers_admission_reads_and_only_the_auth_cookie() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"),
            ("accept-language", "en-GB,en;q=0.9"),
            ("origin", "https://app.example.com"),
            ("authorization", "Bearer a.b.c"),
            ("x-forwarded-for", "203.0.113.7"),
            ("cookie", "_ga=GA1.2.3; access_token=x.y.z; theme=dark"),
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ] {
            headers.append(name, HeaderValue::from_static(value));
        }
        let kept = handshake_headers(&headers, "access_token");
        assert_eq!(kept.get(header::COOKIE).unwrap(), "access_token=x.y.z");
        assert!(kept.get(header::USER_AGENT).is_none() && kept.get(header::ACCEPT_LANGUAGE).is_none());
        for name in ["origin", "authorization", "x-forwarded-for", "upgrade", "sec-websocket-key"] {
            assert_eq!(kept.get(name), headers.get(name), "{name}");
        }
        assert!(handshake_headers(&headers, "session").get(header::COOKIE).is_none());
    }

    #[test]
    fn connect_queries_of_protocol_3_are_dropped_and_lengths_recounted() {
        let payload = "40:40/workflow?token=a.b.c&x=%C3%A9,{\"k\":1}2:40";
        assert_eq!(strip_connect_queries_v3(payload).as_deref(), Some("19:40/workflow,{\"k\":1}2:40"));
        assert_eq!(strip_connect_queries_v3("11:40/workflow"), None, "nothing to change");
        assert_eq!(
            strip_connect_queries_v3("16:40/w?t=1,[\"é😀\"]1:2").as_deref(),
            Some("12:40/w,[\"é😀\"]1:2"),
            "lengths in UTF-16 units"
        );
        assert_eq!(strip_connect_queries_v3("9:garbage"), None);
        assert_eq!(strip_connect_queries_v3("x:40/a?b"), None);
    }
}

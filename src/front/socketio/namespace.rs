//! One namespace spec served on socketioxide: admission (token, tenant), the connect actions, and
//! the per-socket handlers.
//!
//! socketioxide's handler traits are implemented here directly rather than through closures:
//! - admission runs in the connect *middleware*, which finishes before the namespace CONNECT
//!   packet is sent, so the event handler exists before the client can send anything;
//! - a refused token still connects and is then told `error {type: "auth"}` and disconnected,
//!   which is what the seed gateways did (their `handleConnection` ran after the connect);
//! - the event handler runs synchronously on the socket's receive path, so one client's events
//!   are handled in the order it sent them, and no task is spawned per message.

use std::{
    fmt,
    future::Future,
    net::SocketAddr,
    ops::Deref,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, Waker},
};

use axum::extract::ConnectInfo;

use serde_json::Value as Json;
use socketioxide::{
    BroadcastError, SocketIo, TransportType,
    adapter::Adapter,
    extract::{AckSender, SocketRef},
    handler::{ConnectHandler, DisconnectHandler, FromMessageParts, MessageHandler, Value},
    socket::{DisconnectReason, Socket},
};

use crate::engine::{
    actions::ActionCtx,
    errors::{ClientError, ErrorKind},
    member::{Member, MemberKey},
    member_state::{MemberState, Refusal},
    runtime::SpecRuntime,
};
use crate::{
    auth::{Identity, TokenError, TokenSource, handshake_token},
    metrics::{CloseReason, CutReason, DropReason, Rejection},
};

/// How long a refused socket's client has to read the `error` before its session is closed.
const REFUSED_SESSION_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// A spec served as a Socket.IO namespace: the runtime, and socketioxide's handle.
pub(crate) struct NamespaceRuntime<A: Adapter> {
    rt: SpecRuntime,
    pub(crate) io: SocketIo<A>,
    /// What the front's namespaces share.
    pub(crate) sio: Arc<super::SocketIoShared>,
    /// Whether a room family of its spec keeps history: its events are then routed and kept
    /// whether or not this node has sockets.
    pub(crate) keeps_history: bool,
    /// Its sockets that have some rooms' next events already (a recovery from another node).
    pub(crate) skips: super::skips::Skips,
}

/// The spec, state and limiters are the runtime's; this front adds the sockets.
impl<A: Adapter> Deref for NamespaceRuntime<A> {
    type Target = SpecRuntime;

    fn deref(&self) -> &SpecRuntime {
        &self.rt
    }
}

impl<A: Adapter> fmt::Debug for NamespaceRuntime<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NamespaceRuntime").field("path", &self.spec.path).finish()
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    pub(crate) fn new(rt: SpecRuntime, io: SocketIo<A>, sio: Arc<super::SocketIoShared>) -> Self {
        let keeps_history = rt.spec.rooms.iter().any(|f| f.history.is_some());
        Self { keeps_history, skips: Default::default(), rt, io, sio }
    }

    /// The socketioxide connect handler for this namespace.
    pub(crate) fn connect_handler(self: &Arc<Self>) -> ConnectFlow<A> {
        ConnectFlow { ns: self.clone() }
    }

    /// Runs a broadcast started on a socket's receive path so that one socket's broadcasts keep
    /// its order. Alone, it is polled right away and finishes at once (the in-memory adapter does
    /// not wait). In a cluster it waits on the network: it runs in a task that first waits for
    /// the socket's previous broadcast, so a chat's messages reach other nodes in the order sent;
    /// refused when too many are still on their way.
    pub(crate) fn broadcast_in_order(
        &self,
        session: &Arc<MemberState>,
        broadcast: impl Future<Output = Result<(), BroadcastError>> + Send + 'static,
    ) -> Result<(), ClientError> {
        let mut broadcast = Box::pin(broadcast);
        if self.shared.cluster.get().is_none() {
            match broadcast.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                Poll::Ready(Ok(())) => return Ok(()),
                Poll::Ready(Err(e)) => {
                    self.note_broadcast_failure(&e);
                    return Ok(());
                }
                Poll::Pending => {}
            }
        }
        let (shared, sio, path, io, index) =
            (self.shared.clone(), self.sio.clone(), self.spec.path.clone(), self.io.clone(), self.index);
        let metrics = self.shared.metrics.clone();
        let sent = async move {
            if let Err(e) = broadcast.await
                && super::slow::note_broadcast_failure(&shared, &path, &e)
            {
                super::slow::sweep(&io, &path, index, &sio);
            }
        };
        session.chain(sent, move || metrics.dropped(DropReason::Closed, 1)).map_err(|_| {
            ClientError::rate_limit("too many messages still on their way to other nodes: slow down", Some(1000))
        })
    }

    /// Whether any socket of this namespace is connected to this node. Only admitted sockets
    /// join rooms, and the connections gauge counts them from before their first join to their
    /// disconnect, so when it reads zero no room of the namespace has a member here.
    pub(crate) fn has_sockets_here(&self) -> bool {
        self.metrics.connections.get() > 0
    }

    /// Whether a new connection from this client address is over the spec's per-IP limit.
    fn over_connection_limit(&self, parts: &http::request::Parts) -> bool {
        let Some(limiter) = &self.connect_limiter else { return false };
        let Some(ConnectInfo(peer)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else { return false };
        let ip = self.sio.trusted_proxies.client_ip(peer.ip(), &parts.headers);
        limiter.check(ip).is_err()
    }

    /// The handshake's token, if any, and whether a cookie token came from an allowed origin.
    fn find_token(&self, auth: Option<&Json>, parts: &http::request::Parts) -> Result<Option<String>, TokenError> {
        let cookie = self.spec.auth.cookie.then_some(self.shared.auth_cookie_name.as_str());
        match handshake_token(auth, parts, cookie) {
            None => Ok(None),
            Some((token, TokenSource::Explicit)) => Ok(Some(token)),
            Some((token, TokenSource::Cookie)) => {
                // A browser sends cookies with any page's request to this host: a cookie counts
                // only from our own origins (or from clients that send no Origin, which are not
                // browsers).
                let origin = parts.headers.get(http::header::ORIGIN).and_then(|o| o.to_str().ok());
                match origin {
                    Some(o) if !self.shared.allowed_origins.iter().any(|allowed| allowed == o) => {
                        Err(TokenError::ForeignOrigin)
                    }
                    _ => Ok(Some(token)),
                }
            }
        }
    }

    /// Decides who the connecting socket is, before CONNECT is sent; its time is the namespace's
    /// handshake time.
    fn admit(self: &Arc<Self>, s: &Arc<Socket<A>>, auth: &Option<Value>) {
        let started = std::time::Instant::now();
        self.decide(s, auth);
        self.metrics.handshake.observe(started.elapsed());
    }

    fn decide(self: &Arc<Self>, s: &Arc<Socket<A>>, auth: &Option<Value>) {
        let auth_json: Option<Json> =
            auth.as_ref().and_then(|v| v.as_str()).and_then(|s| serde_json::from_str(s.as_str()).ok());
        let policy = &self.spec.auth;
        if self.over_connection_limit(s.req_parts()) {
            self.sio.sessions.admitted(s.id, s.transport_type(), s.req_parts(), false);
            self.shared.metrics.connections_throttled.inc();
            self.metrics.rejected(Rejection::Throttle);
            tracing::info!(ns = %self.spec.path, "connection refused: too many from this address");
            s.extensions.insert(Refusal { message: "Too many connections".into(), kind: ErrorKind::RateLimit });
            return;
        }
        let outcome = match self.find_token(auth_json.as_ref(), s.req_parts()) {
            Err(e) => Err(e),
            Ok(None) if !policy.required => Ok(Identity::anonymous()),
            Ok(None) => Err(TokenError::Missing),
            Ok(Some(token)) => self.shared.verifier.verify(&token),
        };
        let outcome = outcome.and_then(|id| {
            if policy.require_tenant && id.is_authenticated() && id.tenant_id.is_none() {
                Err(TokenError::MissingTenant)
            } else {
                Ok(id)
            }
        });
        match outcome {
            Err(e) => {
                self.sio.sessions.admitted(s.id, s.transport_type(), s.req_parts(), false);
                self.shared.metrics.auth_refused.inc();
                self.metrics.rejected(Rejection::Auth);
                tracing::info!(ns = %self.spec.path, reason = %e, "connection refused");
                s.extensions.insert(Refusal { message: e.to_string(), kind: ErrorKind::Auth });
            }
            Ok(identity) => {
                let expires_at = identity.expires_at;
                let backlog = self.sio.sessions.admitted(s.id, s.transport_type(), s.req_parts(), true);
                let session = MemberState::new(identity);
                s.extensions.insert(session.clone());
                s.extensions.insert(backlog);
                s.on_fallback(EventHandler { ns: self.clone(), session });
                s.on_disconnect(DisconnectFlow { ns: self.clone() });
                if let Some(exp) = expires_at {
                    self.shared.expiry.schedule(exp, self.index, MemberKey::Socket(s.id));
                }
            }
        }
    }

    /// Runs after CONNECT was sent: turns a refused socket away, or runs `on_connect`.
    fn on_connected(&self, s: SocketRef<A>) {
        if let Some(refusal) = s.extensions.get::<Refusal>() {
            let payload =
                ClientError { kind: refusal.kind, message: refusal.message, retry_after_ms: None }.payload(None);
            if let Err(e) = s.emit("error", &payload) {
                tracing::debug!(error = %e, "could not send the auth error");
            }
            if let Err(e) = s.clone().disconnect() {
                tracing::debug!(error = %e, "could not disconnect a refused socket");
            }
            self.close_refused_session(s);
            return;
        }
        let Some(session) = s.extensions.get::<Arc<MemberState>>() else { return };
        self.shared.metrics.connections.inc();
        self.metrics.connected();
        let identity = session.identity();
        tracing::debug!(ns = %self.spec.path, socket = %session.public_id, user = ?identity.user_id, tenant = ?identity.tenant_id, "connected");
        // Before `on_connect`, so the observer hears of the socket before of its rooms.
        if let Some(observer) = self.shared.observer() {
            observer.connected(&self.view(&s, &session));
        }
        let member = SioMember { ns: self, socket: &s };
        let mut ctx = ActionCtx::new(self, &member, &session, &identity, None);
        if let Err(e) = ctx.run(&self.spec.on_connect) {
            tracing::warn!(ns = %self.spec.path, socket = %session.public_id, error = %e.message, "an on_connect action failed");
        }
    }

    /// Ends a refused socket's session once its client had time to read why, unless another
    /// namespace uses the session (socket.io-client 2.x always connects `/` too, for one). A
    /// session left open would keep its handshake request, and a client that answers pings
    /// could hold it for ever.
    fn close_refused_session(&self, s: SocketRef<A>) {
        let io = self.io.clone();
        let sessions = self.sio.sessions.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REFUSED_SESSION_GRACE).await;
            if io.nsps().iter().any(|op| op.get_socket(s.id).is_some()) {
                return;
            }
            sessions.close(s.id, s.transport_type(), s.protocol(), s.req_parts(), CutReason::Refused);
        });
    }

    /// Disconnects a socket whose token expired, unless it was refreshed meanwhile.
    pub(crate) fn expire(&self, sid: socketioxide::socket::Sid, exp: u64) {
        let Some(socket) = self.io.of(self.spec.path.as_str()).and_then(|op| op.get_socket(sid)) else { return };
        let Some(session) = socket.extensions.get::<Arc<MemberState>>() else { return };
        if session.identity().expires_at != Some(exp) {
            return;
        }
        self.end_expired(&socket, &session);
    }

    /// Tells the client its token expired and disconnects it.
    pub(crate) fn end_expired(&self, socket: &SocketRef<A>, session: &MemberState) {
        tracing::info!(ns = %self.spec.path, socket = %session.public_id, "token expired, disconnecting");
        let payload = ClientError::auth(TokenError::Expired.to_string()).payload(None);
        self.send_to(socket, "error", Some(&payload));
        if let Err(e) = socket.clone().disconnect() {
            tracing::debug!(error = %e, "could not disconnect an expired socket");
        }
    }
}

/// A Socket.IO socket of this namespace, as the actions see it.
pub(crate) struct SioMember<'a, A: Adapter> {
    pub ns: &'a NamespaceRuntime<A>,
    pub socket: &'a SocketRef<A>,
}

impl<A: Adapter> Member for SioMember<'_, A> {
    fn key(&self) -> MemberKey {
        MemberKey::Socket(self.socket.id)
    }

    fn rooms(&self) -> Vec<String> {
        self.socket.rooms().into_iter().map(|r| r.into_owned()).collect()
    }

    fn join(&self, room: String) {
        // The actions only join rooms the socket is not in, and leave rooms it is in. The
        // observer hears after the change, so a list it takes meanwhile cannot miss it.
        self.socket.join(room.clone());
        if let Some(observer) = self.ns.shared.watcher()
            && let Some(session) = self.socket.extensions.get::<Arc<MemberState>>()
        {
            observer.joined(&self.ns.spec.path, session.public_id, crate::rooms::display_name(&room));
        }
    }

    fn leave(&self, room: &str) {
        self.socket.leave(room.to_string());
        if let Some(observer) = self.ns.shared.watcher()
            && let Some(session) = self.socket.extensions.get::<Arc<MemberState>>()
        {
            observer.left(&self.ns.spec.path, session.public_id, crate::rooms::display_name(room));
        }
    }

    fn send(&self, event: &str, data: Option<&Json>) {
        self.ns.send_to(self.socket, event, data);
    }

    fn transport(&self) -> &'static str {
        match self.socket.transport_type() {
            TransportType::Websocket => "websocket",
            TransportType::Polling => "polling",
        }
    }

    fn relay(&self, _: &MemberState, rooms: Vec<String>, event: String, data: Json) -> Result<(), ClientError> {
        // Through the adapter, so members on other nodes get it too; while the cluster is
        // unreachable (or the send to it fails), to this node's members only.
        let op = self.socket.to(rooms);
        let clustered = self.ns.shared.cluster.get().is_some();
        let reachable = self.ns.shared.cluster_reachable();
        let Some(session) = self.socket.extensions.get::<Arc<MemberState>>() else { return Ok(()) };
        self.ns.broadcast_in_order(&session, async move {
            if clustered && !reachable {
                return op.local().emit(&event, &data).await;
            }
            match op.clone().emit(&event, &data).await {
                Err(BroadcastError::Adapter(e)) => {
                    tracing::warn!(error = %e, "relay to other nodes failed; delivering on this node");
                    op.local().emit(&event, &data).await
                }
                other => other,
            }
        })
    }
}

/// Marker type naming our handler implementations to socketioxide.
#[doc(hidden)]
pub(crate) struct SpecHandler;

/// The connect middleware and handler of a namespace.
pub(crate) struct ConnectFlow<A: Adapter> {
    ns: Arc<NamespaceRuntime<A>>,
}

impl<A: Adapter> Clone for ConnectFlow<A> {
    fn clone(&self) -> Self {
        Self { ns: self.ns.clone() }
    }
}

type MiddlewareFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Box<dyn fmt::Display + Send>>> + Send + 'a>>;

impl<A: Adapter> ConnectHandler<A, SpecHandler> for ConnectFlow<A> {
    fn call(&self, s: Arc<Socket<A>>, _auth: Option<Value>) {
        self.ns.on_connected(SocketRef::from(s));
    }

    fn call_middleware<'a>(&'a self, s: Arc<Socket<A>>, auth: &'a Option<Value>) -> MiddlewareFuture<'a> {
        // Admission never refuses at the protocol level: a refused socket is told why after it
        // connects, as the seeds' gateways did.
        self.ns.admit(&s, auth);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The per-socket client event handler: every event goes through [`NamespaceRuntime::handle_event`].
pub(crate) struct EventHandler<A: Adapter> {
    ns: Arc<NamespaceRuntime<A>>,
    session: Arc<MemberState>,
}

impl<A: Adapter> MessageHandler<A, SpecHandler> for EventHandler<A> {
    fn call(&self, s: Arc<Socket<A>>, mut v: Value, ack_id: Option<i64>) {
        let ack = match AckSender::from_message_parts(&s, &mut v, &ack_id) {
            Ok(ack) => ack,
            Err(never) => match never {},
        };
        self.ns.handle_event(&SocketRef::from(s), &self.session, v, ack, ack_id.is_some());
    }
}

/// Cleans up after a socket leaves the namespace.
pub(crate) struct DisconnectFlow<A: Adapter> {
    ns: Arc<NamespaceRuntime<A>>,
}

impl<A: Adapter> DisconnectHandler<A, SpecHandler> for DisconnectFlow<A> {
    fn call_with_defer(&self, s: Arc<Socket<A>>, reason: DisconnectReason, defer: fn(Arc<Socket<A>>)) {
        let session = s.extensions.get::<Arc<MemberState>>();
        // Its rooms, while it still has them, for an observer that watches.
        let rooms = match self.ns.shared.watcher() {
            Some(_) if session.is_some() => s.rooms().iter().map(|r| crate::rooms::display_name(r)).collect(),
            _ => Vec::new(),
        };
        if let Some(session) = &session {
            self.ns.shared.metrics.connections.dec();
            self.ns.metrics.disconnected(session.ended_as().unwrap_or_else(|| close_reason(reason)));
            if let Some(exp) = session.identity().expires_at {
                self.ns.shared.expiry.cancel(exp, self.ns.index, MemberKey::Socket(s.id));
            }
            tracing::debug!(ns = %self.ns.spec.path, socket = %session.public_id, %reason, "disconnected");
            if self.ns.presence.is_some() {
                let rooms = s.rooms();
                self.ns.presence_gone(rooms.iter().map(|r| r.as_ref()), session.identity().user_id.as_deref());
            }
        }
        self.ns.skips.forget(s.id);
        // socketioxide removes the socket from the namespace in `defer`; it must always run.
        defer(s);
        // After it is gone, so an admin listing sockets meanwhile has it and then hears it left.
        if let (Some(session), Some(observer)) = (session, self.ns.shared.observer()) {
            observer.disconnected(&self.ns.spec.path, session.public_id, reason_text(reason), rooms);
        }
    }
}

/// The `reason` a socketioxide disconnect is counted under.
fn close_reason(reason: DisconnectReason) -> CloseReason {
    match reason {
        DisconnectReason::TransportClose | DisconnectReason::ClientNSDisconnect => CloseReason::Client,
        DisconnectReason::TransportError => CloseReason::TransportError,
        DisconnectReason::HeartbeatTimeout => CloseReason::HeartbeatTimeout,
        DisconnectReason::PacketParsingError | DisconnectReason::MultipleHttpPollingError => CloseReason::ProtocolError,
        // The engine disconnects an admitted socket for one thing: its token expired.
        DisconnectReason::ServerNSDisconnect => CloseReason::ServerDisconnect,
        DisconnectReason::ClosingServer => CloseReason::Shutdown,
    }
}

/// Node.js socket.io's words for why a socket left, which the admin UI's users know.
fn reason_text(reason: DisconnectReason) -> &'static str {
    match reason {
        DisconnectReason::TransportClose => "transport close",
        DisconnectReason::MultipleHttpPollingError | DisconnectReason::PacketParsingError => "parse error",
        DisconnectReason::TransportError => "transport error",
        DisconnectReason::HeartbeatTimeout => "ping timeout",
        DisconnectReason::ClientNSDisconnect => "client namespace disconnect",
        DisconnectReason::ServerNSDisconnect => "server namespace disconnect",
        DisconnectReason::ClosingServer => "server shutting down",
    }
}

//! The plain WebSocket front: specs with `transport: websocket`, served as RFC 6455 endpoints at
//! their HTTP path with the Go hub's `{type, timestamp, data}` envelope both ways (seed 001).
//!
//! - `upgrade`: who may connect (a token, or an API key as a tenant's service, from an allowed
//!   origin), checked before the upgrade; then the 101 and the connection's task;
//! - `conn`: one connection: its bounded send buffer, its task, the `Member` actions act on;
//! - `wire`: a connection's socket, shared by the WebSocket layer (its pongs and close handshake)
//!   and the connection's writers (events, each encoded as a frame once and written as it is);
//! - `envelope`: the message format;
//! - `index`: the room index (room → members), in constant time per join and leave;
//! - this module: an endpoint's connections and rooms, through which published events are
//!   delivered (the members of the event's rooms, each once, one shared frame), the heartbeat,
//!   token expiry, and statistics (per tenant: a tenant's token sees its own);
//! - `presence`: who of a room or tenant is connected here, counted when asked;
//! - recovery (here too): an event of a room with history (`crate::engine::history`) is kept
//!   there and sent with its `channel` and `position`; a client message with `data.since` (a
//!   position) has its replies answered with `recovered`, then what the history holds after it,
//!   under the history's lock so nothing is sent twice or missed between the two; a message whose
//!   joins `replay` (a late joiner) gets its rooms' last events after its replies, the same way.
//!   In a cluster the positions are the ones the bus brought with the event (the same on every
//!   node); a client ahead of this node (it got the room's latest events on the node it left) is
//!   recovered with nothing yet, and the room's events up to its position are skipped for it as
//!   they come.
//!
//! The endpoint runs on the same `SpecRuntime` as a Socket.IO namespace: the same auth, rooms
//! (channels, with their access rules and tenant scope), filters, client events, last-known state
//! and publish routes. Its room index is this node's only; in a cluster every node delivers each
//! published event to its own connections, as for Socket.IO.

mod conn;
pub(crate) mod envelope;
mod index;
mod presence;
mod stats;
mod upgrade;
mod wire;

use std::{
    collections::HashMap,
    ops::Deref,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde_json::Value;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

pub(crate) use stats::{EndpointStats, StatsScope};
pub(crate) use upgrade::upgrade;

use crate::{
    auth::TokenError,
    config::NativeConfig,
    engine::SocketView,
    metrics::{CloseReason, DropReason, Rejection},
    net::client_ip::TrustedProxies,
    rooms,
};
use crate::{
    clock::{iso_now, now_millis},
    engine::{
        actions::ActionCtx,
        dispatch::Handled,
        errors::ClientError,
        history::{KeptHead, Position, Since},
        member::MemberKey,
        member_state::MemberState,
        publish::PublishedEvent,
        recovery::HistoryReads,
        runtime::SpecRuntime,
    },
};
use conn::{BufferLimits, Closing, Conn, Frame, NativeMember, Queued, Recovering, Writing};
use index::{IdHash, Indexed, RoomIndex};

/// How many connections a published event's sender writes to itself, at most: the rest of a
/// large room's fan-out is written by the connections' own tasks, which run on every worker
/// (about what tokio's budget let one task write in a turn before writes were left out of it).
const DIRECT_WRITES_PER_EVENT: usize = 128;

/// The room index holds the connections themselves: a delivery reaches them without looking each
/// up again. A connection leaves every room before it leaves `conns`.
impl Indexed for Arc<Conn> {
    fn id(&self) -> u64 {
        self.id
    }
}

/// A spec served as a plain WebSocket endpoint.
pub(crate) struct Endpoint {
    rt: SpecRuntime,
    settings: NativeConfig,
    /// Where connections come from, for the per-IP upgrade limit and the admin view.
    pub(crate) trusted_proxies: TrustedProxies,
    next_id: AtomicU64,
    /// Connections by id.
    conns: RwLock<HashMap<u64, Arc<Conn>, IdHash>>,
    /// Room (internal name) to the connections in it.
    rooms: RwLock<RoomIndex<Arc<Conn>>>,
    /// Upgrades accepted whose connection is not registered yet (the hub's `register` queue), per
    /// tenant (`None`: connections without one).
    registering: Mutex<HashMap<Option<Arc<str>>, usize>>,
    /// Whether a room family of its spec keeps history: its events are then routed and kept
    /// whether or not this node has connections.
    keeps_history: bool,
}

/// The spec, state and limiters are the runtime's; this front adds the connections.
impl Deref for Endpoint {
    type Target = SpecRuntime;

    fn deref(&self) -> &SpecRuntime {
        &self.rt
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("path", &self.spec.path).finish()
    }
}

impl Endpoint {
    pub(crate) fn new(rt: SpecRuntime, settings: NativeConfig, trusted_proxies: TrustedProxies) -> Self {
        Self {
            keeps_history: rt.spec.rooms.iter().any(|f| f.history.is_some()),
            rt,
            settings,
            trusted_proxies,
            next_id: AtomicU64::new(1),
            conns: RwLock::new(HashMap::default()),
            rooms: RwLock::new(RoomIndex::default()),
            registering: Mutex::new(HashMap::new()),
        }
    }

    fn limits(&self) -> BufferLimits {
        BufferLimits { frames: self.settings.send_buffer, bytes: self.settings.send_buffer_bytes }
    }

    /// Registers a new connection for `session` and runs the spec's `on_connect`.
    fn register(self: &Arc<Self>, session: Arc<MemberState>, address: Option<std::net::IpAddr>) -> Arc<Conn> {
        let conn = Arc::new(Conn::new(self.next_id.fetch_add(1, Ordering::Relaxed), session, address));
        self.conns.write().unwrap_or_else(|e| e.into_inner()).insert(conn.id, conn.clone());
        self.shared.metrics.native_connections.inc();
        self.metrics.connected();
        let identity = conn.session.identity();
        if let Some(exp) = identity.expires_at {
            self.shared.expiry.schedule(exp, self.index, MemberKey::Conn(conn.id));
        }
        tracing::debug!(endpoint = %self.spec.path, socket = %conn.session.public_id, user = ?identity.user_id, tenant = ?identity.tenant_id, "connected");
        if let Some(observer) = self.shared.observer() {
            let name = crate::engine::endpoint_name(&self.spec.path);
            observer.connected(&self.view(&name, &ConnView::of(&conn, &[])));
        }
        let member = NativeMember { ep: self, conn: &conn };
        let mut ctx = ActionCtx::new(self, &member, &conn.session, &identity, None);
        if let Err(e) = ctx.run(&self.spec.on_connect) {
            tracing::warn!(endpoint = %self.spec.path, error = %e.message, "an on_connect action failed");
        }
        conn
    }

    /// Counts an upgrade of `tenant` accepted (`true`) or registered, or failed (`false`).
    fn registering_changed(&self, tenant: &Option<Arc<str>>, started: bool) {
        let mut registering = self.registering.lock().unwrap_or_else(|e| e.into_inner());
        if started {
            *registering.entry(tenant.clone()).or_default() += 1;
        } else if let Some(n) = registering.get_mut(tenant) {
            *n -= 1;
            if *n == 0 {
                registering.remove(tenant);
            }
        }
    }

    /// Forgets a connection whose task has ended (for `reason`): its rooms, its expiry, its place.
    fn forget(&self, conn: &Arc<Conn>, reason: CloseReason) {
        let rooms = std::mem::take(&mut *conn.rooms.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut index = self.rooms.write().unwrap_or_else(|e| e.into_inner());
            for room in &rooms {
                index.leave(room, conn.id);
            }
        }
        if self.conns.write().unwrap_or_else(|e| e.into_inner()).remove(&conn.id).is_some() {
            self.shared.metrics.native_connections.dec();
            self.metrics.disconnected(reason);
        }
        if let Some(exp) = conn.session.identity().expires_at {
            self.shared.expiry.cancel(exp, self.index, MemberKey::Conn(conn.id));
        }
        tracing::debug!(endpoint = %self.spec.path, socket = %conn.session.public_id, "disconnected");
        // Once it is gone, so an admin listing connections meanwhile has it and then hears it left.
        if let Some(observer) = self.shared.observer() {
            let rooms = match observer.watching() {
                true => rooms.iter().map(|r| crate::rooms::display_name(r)).collect(),
                false => Vec::new(),
            };
            let reason = conn.closing_reason().unwrap_or("transport close");
            observer.disconnected(
                &crate::engine::endpoint_name(&self.spec.path),
                conn.session.public_id,
                reason,
                rooms,
            );
        }
    }

    fn join(&self, conn: &Arc<Conn>, room: String) {
        let mut index = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        let Some(key) = index.join(room, conn.clone()) else { return };
        conn.rooms.lock().unwrap_or_else(|e| e.into_inner()).push(key.clone());
        drop(index);
        if let Some(observer) = self.shared.watcher() {
            let name = crate::engine::endpoint_name(&self.spec.path);
            observer.joined(&name, conn.session.public_id, crate::rooms::display_name(&key));
        }
    }

    fn leave(&self, conn: &Arc<Conn>, room: &str) {
        self.rooms.write().unwrap_or_else(|e| e.into_inner()).leave(room, conn.id);
        let was_in = {
            let mut rooms = conn.rooms.lock().unwrap_or_else(|e| e.into_inner());
            let before = rooms.len();
            rooms.retain(|r| &**r != room);
            rooms.len() != before
        };
        if was_in && let Some(observer) = self.shared.watcher() {
            let name = crate::engine::endpoint_name(&self.spec.path);
            observer.left(&name, conn.session.public_id, crate::rooms::display_name(room));
        }
    }

    /// Open connections on this node.
    pub(crate) fn connection_count(&self) -> usize {
        self.conns.read().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Calls `visit` with every connection.
    pub(crate) fn each_conn(&self, visit: &mut dyn FnMut(&ConnView<'_>)) {
        let conns: Vec<Arc<Conn>> = self.conns.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for conn in conns {
            let rooms = conn.rooms.lock().unwrap_or_else(|e| e.into_inner()).clone();
            visit(&ConnView::of(&conn, &rooms));
        }
    }

    /// Closes the connection with public id `id` (an operator's request); whether it was here.
    pub(crate) fn close_by_public_id(&self, id: &str) -> bool {
        let conn = self
            .conns
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .find(|c| c.session.public_id.to_string() == id)
            .cloned();
        let Some(conn) = conn else { return false };
        tracing::info!(endpoint = %self.spec.path, socket = %conn.session.public_id, "closed by an administrator");
        conn.close(Closing {
            code: CloseCode::Normal,
            reason: "disconnected by an administrator",
            counted_as: CloseReason::ServerDisconnect,
        });
        true
    }

    /// Queues a frame for one connection; an overflow closes it and is counted.
    fn queue(&self, conn: &Conn, frame: Frame) {
        self.queue_as(conn, frame, Writing::Now)
    }

    /// Queues the frame of a delivery for its `nth` connection: written by the publisher for the
    /// first [`DIRECT_WRITES_PER_EVENT`], by the connections' tasks past them.
    fn queue_nth(&self, conn: &Conn, frame: Frame, nth: usize) {
        let writing = if nth < DIRECT_WRITES_PER_EVENT { Writing::Now } else { Writing::ByTask };
        self.queue_as(conn, frame, writing)
    }

    fn queue_as(&self, conn: &Conn, frame: Frame, writing: Writing) {
        match conn.queue(frame, self.limits(), writing) {
            Queued::Yes => {}
            Queued::Closing => self.shared.metrics.dropped(DropReason::Closed, 1),
            Queued::Overflowed(dropped) => {
                self.shared.metrics.dropped(DropReason::QueueFull, dropped as u64);
                self.shared.metrics.connections_cut(crate::net::connection::CutReason::SlowConsumer);
                tracing::info!(endpoint = %self.spec.path, socket = %conn.session.public_id, dropped, "send buffer full: closing a slow consumer");
            }
        }
    }

    /// Handles one message from a client.
    fn on_message(self: &Arc<Self>, conn: &Arc<Conn>, text: &str) {
        let started = std::time::Instant::now();
        self.shared.metrics.events_received.inc();
        let member = NativeMember { ep: self, conn };
        let (name, handled) = match self.flood_check(&member, &conn.session) {
            Some(refused) => (None, refused),
            None => match envelope::parse(text) {
                Ok((name, mut data)) => {
                    let handled = match envelope::take_since(&mut data) {
                        Ok(None) if self.spec.events.get(&name).is_some_and(|e| e.reads_history()) => {
                            self.dispatch_replaying(&member, &name, data, text.len())
                        }
                        Ok(None) => self.dispatch(&member, &conn.session, &name, data, text.len()),
                        Ok(Some(since)) => self.dispatch_recovering(&member, &name, data, text.len(), since),
                        Err(message) => Handled::Failed(ClientError::validation(message)),
                    };
                    (Some(name), handled)
                }
                Err(message) => (None, Handled::Failed(ClientError::validation(message))),
            },
        };
        self.count_refusal(&handled);
        self.answer(conn, name.as_deref(), handled);
        self.record_handling(name.as_deref(), started);
    }

    /// Refuses a binary frame: this protocol is text envelopes.
    fn on_binary(&self, conn: &Conn) {
        self.metrics.rejected(Rejection::Validation);
        let error = ClientError::validation(
            "binary frames are not supported: send the {type, timestamp, data} envelope as text",
        );
        self.reply_error(conn, None, error);
    }

    /// Counts a control frame (a ping or a pong) from the client toward its flood limit, with its
    /// messages; true when it is over: the connection is then closed, as nothing can answer a
    /// control frame with an error, and answering each ping costs a flushed pong.
    fn control_frame_over_limit(&self, conn: &Conn) -> bool {
        let over = self.flood_limiter.check(MemberKey::Conn(conn.id)).is_err();
        if over {
            self.metrics.rejected(Rejection::RateLimit);
            tracing::debug!(endpoint = %self.spec.path, socket = %conn.session.public_id, "control frames past the flood limit: closing");
        }
        over
    }

    /// Turns an outcome into envelopes: replies were sent by the actions; failures are `error`
    /// envelopes (this protocol has no acks).
    fn answer(self: &Arc<Self>, conn: &Arc<Conn>, event: Option<&str>, handled: Handled) {
        match handled {
            Handled::Replied(_) | Handled::Limited { notify: false, .. } => {}
            // A backend's answer: its event (the spec's `forward.event`) when it comes, or an
            // `error`; the connection's next messages are handled meanwhile.
            Handled::Pending(pending) => {
                let (ep, conn, event) = (self.clone(), conn.clone(), event.map(str::to_string));
                tokio::spawn(async move {
                    let reply_event = pending.event.clone();
                    match pending.outcome().await {
                        Ok(answer) => {
                            if let Some(name) = &reply_event {
                                ep.queue(&conn, envelope::render(name, &iso_now(), &answer));
                            }
                        }
                        Err(error) => {
                            ep.metrics.rejected(error.kind.into());
                            ep.reply_error(&conn, event.as_deref(), error);
                        }
                    }
                });
            }
            Handled::Failed(error) | Handled::Unknown(error) | Handled::Limited { error, notify: true } => {
                self.reply_error(conn, event, error)
            }
            Handled::Expired => self.end_expired(conn),
            Handled::Refreshed(reply) => self.queue(conn, envelope::render("auth:refreshed", &iso_now(), &reply)),
        }
    }

    /// Sends an `error` envelope `{message, type, timestamp, event?}`.
    fn reply_error(&self, conn: &Conn, event: Option<&str>, error: ClientError) {
        self.shared.metrics.events_rejected.inc();
        tracing::debug!(endpoint = %self.spec.path, event, kind = error.kind.as_str(), message = %error.message, "client message refused");
        self.queue(conn, envelope::render("error", &iso_now(), &error.payload(event)));
    }

    /// Tells the client its token expired, and closes.
    fn end_expired(&self, conn: &Conn) {
        tracing::info!(endpoint = %self.spec.path, socket = %conn.session.public_id, "token expired, disconnecting");
        self.reply_error(conn, None, ClientError::auth(TokenError::Expired.to_string()));
        conn.close(Closing {
            code: CloseCode::Policy,
            reason: "token expired",
            counted_as: CloseReason::ServerDisconnect,
        });
    }

    /// Ends connection `id` if its token still expires at `exp` (a refresh moved it otherwise).
    pub(crate) fn expire(&self, id: u64, exp: u64) {
        let Some(conn) = self.conns.read().unwrap_or_else(|e| e.into_inner()).get(&id).cloned() else { return };
        if conn.session.identity().expires_at == Some(exp) {
            self.end_expired(&conn);
        }
    }

    /// Updates state and queues the event for the members of its rooms on this node; an event
    /// of rooms with history is kept there first, and its members get it with its position.
    pub(crate) fn deliver(&self, event: &PublishedEvent) {
        self.record(event);
        if !self.routes(event) {
            return;
        }
        self.shared.metrics.published.inc();
        // The history's lock first, as a join that recovers takes it: the members found for
        // delivery below (under it) are then those a recovering member is one of unless it
        // recovers the event from the history.
        let history = self.keeps_history.then(|| self.history.lock());
        // No connection here and nothing to keep, no room to look for.
        let routed = if self.keeps_history || !self.conns.read().unwrap_or_else(|e| e.into_inner()).is_empty() {
            self.route_reached(event)
        } else {
            None
        };
        let Some(routed) = routed else {
            self.metrics.publish_delivery.observe(event.since_received());
            return;
        };
        if let Some(history) = history
            && !routed.history.is_empty()
        {
            self.deliver_kept(event, routed.render(), history);
            self.metrics.publish_delivery.observe(event.since_received());
            return;
        }
        let members = self.rooms.read().unwrap_or_else(|e| e.into_inner()).members_reached(
            routed.rooms.iter().map(String::as_str),
            routed.filtered.iter().map(|(room, reach)| (room.as_str(), reach)),
        );
        if members.is_empty() {
            self.metrics.publish_delivery.observe(event.since_received());
            return;
        }
        let delivery = routed.render();
        let frame =
            envelope::render(&delivery.event, &timestamp_of(event), delivery.data().as_deref().unwrap_or(&Value::Null));
        // Queueing may cut a slow consumer, which is logged: not under the index's lock.
        for (nth, conn) in members.iter().enumerate() {
            self.queue_nth(conn, frame.clone(), nth);
        }
        self.metrics.publish_delivery.observe(event.since_received());
    }

    /// Delivers an event that reaches rooms with history: kept in each (which gives it its
    /// position there), then queued to each member once, positioned in the first of those rooms
    /// it is in, in the route's order (plain, when it is in none of them). All under the
    /// history's lock, which a recovery holds too: a member joining meanwhile gets the event from
    /// the history or live, never both.
    fn deliver_kept(
        &self,
        event: &PublishedEvent,
        delivery: crate::engine::publish::Delivery,
        mut history: crate::engine::history::Locked<'_>,
    ) {
        let timestamp = timestamp_of(event);
        let data = delivery.data();
        let data = data.as_deref().unwrap_or(&Value::Null);
        // Per send: its members, its frame, and its room and position (a member that has it
        // already, from another node, is skipped).
        type Send<'a> = (Vec<Arc<Conn>>, Frame, Option<(&'a str, Position)>);
        let mut sends: Vec<Send<'_>> = Vec::with_capacity(delivery.history.len() + 1);
        // The members of earlier sends, made only when a second send has members (most events
        // reach members through one room).
        let mut reached: Option<std::collections::HashSet<u64, IdHash>> = None;
        let mut not_reached_yet = |sends: &[Send<'_>], members: Vec<Arc<Conn>>| -> Vec<Arc<Conn>> {
            if sends.is_empty() || members.is_empty() {
                return members;
            }
            let reached = reached
                .get_or_insert_with(|| sends.iter().flat_map(|(members, ..)| members.iter().map(|m| m.id)).collect());
            members.into_iter().filter(|m| reached.insert(m.id)).collect()
        };
        {
            let index = self.rooms.read().unwrap_or_else(|e| e.into_inner());
            // The event serialized once, shared by every room it is kept in; each room adds its
            // channel and position.
            let head =
                KeptHead::new(envelope::positioned_head(&delivery.event, &timestamp, data), 0, delivery.history.len());
            for kept in &delivery.history {
                let given = event.given_position(&self.spec.path, &kept.room);
                let appended =
                    history.append_at(&kept.room, &kept.visible, kept.spec, kept.reach.clone(), given, head.clone());
                // The room itself (a family without filters), or the variants the event reaches.
                let room = delivery.rooms.iter().map(String::as_str).filter(|r| *r == kept.room);
                let members = not_reached_yet(
                    &sends,
                    index.members_reached(room, std::iter::once((kept.room.as_str(), &kept.reach))),
                );
                // The whole message is put together only for a room with members here.
                if !members.is_empty() {
                    let position = history.position(&kept.room, &appended);
                    let frame = envelope::positioned(&head.bytes, &kept.visible, &position);
                    sends.push((members, frame, Some((kept.room.as_str(), position))));
                }
            }
            let kept = |room: &str| delivery.history.iter().any(|k| k.room == room);
            let plain = delivery.rooms.iter().map(String::as_str).filter(|r| !kept(r));
            let filtered =
                delivery.filtered.iter().filter(|(room, _)| !kept(room)).map(|(room, reach)| (room.as_str(), reach));
            let members: Vec<Arc<Conn>> = not_reached_yet(&sends, index.members_reached(plain, filtered));
            if !members.is_empty() {
                sends.push((members, envelope::render(&delivery.event, &timestamp, data), None));
            }
        }
        let mut nth = 0;
        for (members, frame, at) in sends {
            for conn in members {
                if let Some((room, position)) = &at
                    && conn.has_already(room, position)
                {
                    continue;
                }
                self.queue_nth(&conn, frame.clone(), nth);
                nth += 1;
            }
        }
        drop(history);
    }

    /// Handles a message that carries `since` (`{offset, epoch}`, taken out of its data): its
    /// actions run as usual, under the history's lock; the rooms with history it joins are then
    /// read from `since` on. Its replies are sent with `recovered` added to their data (`true`:
    /// every event after `since` follows, in order, then live ones; `false`: the history does not
    /// hold them all, or the message joined no room with history, and none follow), then the
    /// events the member's filters let through.
    fn dispatch_recovering(
        &self,
        member: &NativeMember<'_>,
        name: &str,
        data: Value,
        bytes: usize,
        (offset, epoch): (u64, String),
    ) -> Handled {
        let conn = member.conn;
        let mut history = self.history.lock();
        *conn.recovering.lock().unwrap_or_else(|e| e.into_inner()) = Some(Recovering::default());
        let handled = self.dispatch(member, &conn.session, name, data, bytes);
        let recovering = conn.recovering.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
        let mut missed: Vec<Frame> = Vec::new();
        let mut ahead: Vec<(&str, u64)> = Vec::new();
        let mut recovered = !recovering.rooms.is_empty();
        for room in &recovering.rooms {
            let kept = match history.since_at(room, offset, &epoch) {
                Some(Since::Events(kept)) => kept,
                Some(Since::Ahead(through)) => {
                    ahead.push((room, through));
                    continue;
                }
                None => {
                    recovered = false;
                    break;
                }
            };
            let theirs: Vec<String> = conn
                .rooms
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .filter(|r| rooms::is_variant_of(r, room))
                .map(|r| r[room.len()..].to_string())
                .collect();
            for kept in kept {
                if kept.passes(&theirs) && !kept.head.is_empty() {
                    missed.push(envelope::kept(&kept));
                }
            }
        }
        if !recovering.rooms.is_empty() || !recovering.replies.is_empty() {
            match recovered {
                true => self.shared.metrics.history.recovered.inc(),
                false => self.shared.metrics.history.not_recovered.inc(),
            };
        }
        for (event, mut data) in recovering.replies {
            if let Value::Object(fields) = &mut data {
                fields.insert("recovered".into(), Value::Bool(recovered));
            }
            self.queue(conn, envelope::render(&event, &iso_now(), &data));
        }
        if recovered {
            for frame in missed {
                self.queue(conn, frame);
            }
            let epoch: Arc<str> = Arc::from(epoch);
            for (room, through) in ahead {
                conn.skip_through(room, epoch.clone(), through);
            }
        }
        drop(history);
        handled
    }

    /// Handles a message whose joins send a late joiner its rooms' last events (`replay`): its
    /// actions run under the history's lock, which a delivery takes too, and what they read is
    /// queued after their replies, before any live event of those rooms.
    fn dispatch_replaying(&self, member: &NativeMember<'_>, name: &str, data: Value, bytes: usize) -> Handled {
        let mut reads = HistoryReads::new(self);
        let handled = self.dispatch_reading_history(member, &member.conn.session, name, data, bytes, &mut reads);
        for kept in reads.events() {
            if !kept.head.is_empty() {
                self.queue(member.conn, envelope::kept(&kept));
            }
        }
        drop(reads);
        handled
    }

    /// Notes a room with history that a message with `since` joins (`room`: its internal name
    /// without filter values), for its recovery.
    pub(crate) fn note_recovering(&self, conn: &Conn, room: &str) {
        let mut recovering = conn.recovering.lock().unwrap_or_else(|e| e.into_inner());
        let Some(recovering) = recovering.as_mut() else { return };
        let Some((_, visible)) = rooms::split_internal(room) else { return };
        if self.spec.family_of(visible).is_none_or(|(id, _)| self.spec.rooms[id].history.is_none()) {
            return;
        }
        if !recovering.rooms.iter().any(|r| r == room) {
            recovering.rooms.push(room.to_string());
        }
    }

    /// One heartbeat: connections silent for longer than the pong wait are closed; the others are
    /// pinged.
    fn heartbeat(&self) {
        let now = now_millis();
        let wait = self.settings.pong_wait.as_millis() as u64;
        let conns: Vec<Arc<Conn>> = self.conns.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for conn in conns {
            if conn.silent_for_ms(now) > wait {
                tracing::debug!(endpoint = %self.spec.path, socket = %conn.session.public_id, "no pong within WS_NATIVE_PONG_WAIT: closing");
                conn.close(Closing {
                    code: CloseCode::Away,
                    reason: "no pong within the pong wait",
                    counted_as: CloseReason::HeartbeatTimeout,
                });
            } else {
                self.queue(&conn, Frame::ping());
            }
        }
    }

    /// Pings every connection every `WS_NATIVE_PING_INTERVAL`, until aborted.
    pub(crate) async fn run_heartbeat(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.settings.ping_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            self.heartbeat();
        }
    }

    /// Closes every connection (shutdown): they reconnect, to another node behind a balancer.
    pub(crate) async fn close_all(&self, within: Duration) {
        let conns: Vec<Arc<Conn>> = self.conns.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        for conn in &conns {
            conn.close(Closing {
                code: CloseCode::Away,
                reason: "the gateway is shutting down",
                counted_as: CloseReason::Shutdown,
            });
        }
        let deadline = tokio::time::Instant::now() + within;
        while !self.conns.read().unwrap_or_else(|e| e.into_inner()).is_empty() && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An event's timestamp as published, or now.
fn timestamp_of(event: &PublishedEvent) -> String {
    match event.timestamp() {
        "" => iso_now(),
        t => t.to_string(),
    }
}

/// A connection as the roster reads it.
pub(crate) struct ConnView<'a> {
    pub id: u64,
    pub session: &'a MemberState,
    pub address: Option<std::net::IpAddr>,
    pub rooms: &'a [Arc<str>],
}

impl<'a> ConnView<'a> {
    fn of(conn: &'a Conn, rooms: &'a [Arc<str>]) -> Self {
        Self { id: conn.id, session: &conn.session, address: conn.address, rooms }
    }
}

impl Endpoint {
    /// How the observer sees connection `conn`.
    pub(crate) fn view<'a>(&self, name: &'a str, conn: &ConnView<'_>) -> SocketView<'a> {
        SocketView {
            namespace: name,
            id: conn.session.public_id,
            client: self.shared.client_ids.of_conn(self.index, conn.id),
            transport: "websocket",
            address: conn.address,
            connected_at_ms: conn.session.connected_at_ms,
            identity: conn.session.identity(),
            rooms: conn.rooms.iter().map(|r| rooms::display_name(r)).collect(),
            request: None,
        }
    }
}

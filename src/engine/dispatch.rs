//! A client event, from packet to answer: size, token expiry, flood and per-event limits, payload
//! schema, then the spec's actions. Whatever fails, the client gets an `error` event with the
//! seed's shape (and an `{error}` ack if it asked for one); the socket stays connected.

use std::sync::Arc;

use serde_json::{Value as Json, json};
use socketioxide::{
    adapter::Adapter,
    extract::{AckSender, SocketRef},
    handler::Value,
};

use super::{
    actions::ActionCtx,
    clock::{iso_from_secs, iso_now, now_millis},
    errors::ClientError,
    namespace::NamespaceRuntime,
    session::Session,
};

/// Rate-limit notices to one socket are at most this often; refused events beyond are dropped
/// quietly (their acks are still answered).
const LIMIT_NOTICE_GAP_MS: u64 = 1000;

impl<A: Adapter> NamespaceRuntime<A> {
    /// Handles one client event. Runs on the socket's receive path: no awaiting.
    pub(super) fn handle_event(
        &self,
        socket: &SocketRef<A>,
        session: &Arc<Session>,
        packet: Value,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        let started = std::time::Instant::now();
        self.shared.metrics.events_received.inc();
        self.handle(socket, session, packet, ack, wants_ack);
        self.shared.metrics.event_handling.record(started.elapsed());
    }

    fn handle(&self, socket: &SocketRef<A>, session: &Arc<Session>, packet: Value, ack: AckSender<A>, wants_ack: bool) {
        // Before any parsing, so a flood costs as little as possible.
        if let Err(wait) = self.flood_limiter.check(socket.id) {
            return self.refuse_limited(socket, session, None, ack, wants_ack, wait, "too many events: slow down");
        }
        let (raw, size) = match &packet {
            // A relay or a reply would forward only the JSON part, with `{"_placeholder": true}`
            // where the bytes were: refuse rather than mangle silently.
            Value::Str(_, Some(attachments)) if !attachments.is_empty() => {
                return self.fail(
                    socket,
                    None,
                    ack,
                    wants_ack,
                    ClientError::validation(
                        "binary attachments are not supported: send JSON (bytes as base64 strings, for example)",
                    ),
                );
            }
            Value::Str(text, _) => (text.as_str(), text.len()),
            Value::Bytes(_) => {
                return self.fail(
                    socket,
                    None,
                    ack,
                    wants_ack,
                    ClientError::validation("binary packets are not supported"),
                );
            }
        };
        let (name, payload) = match parse_event(raw) {
            Some(parsed) => parsed,
            None => {
                return self.fail(
                    socket,
                    None,
                    ack,
                    wants_ack,
                    ClientError::validation("the event is not a JSON array starting with its name"),
                );
            }
        };
        let name = name.as_str();

        let identity = session.identity();
        if self.shared.verifier.is_expired(&identity, now_millis()) {
            // The expiry task ends it at that very moment; an event racing it is not served.
            self.end_expired(socket, session);
            return;
        }

        if name == self.spec.auth.refresh_event {
            return self.refresh_token(socket, session, name, payload, ack, wants_ack);
        }

        let Some(event) = self.spec.events.get(name) else {
            // The seeds' gateways ignored events they did not handle; do the same, but do not
            // leave an ack callback waiting.
            tracing::debug!(ns = %self.spec.path, socket = %session.public_id, event = name, "unknown event ignored");
            if wants_ack {
                let error = ClientError::validation(format!("unknown event `{name}`"));
                send_ack(ack, &json!({ "error": error.payload(Some(name)) }));
            }
            return;
        };

        let max = event.max_bytes.unwrap_or(self.shared.limits.max_event_bytes);
        if size > max {
            return self.fail(
                socket,
                Some(name),
                ack,
                wants_ack,
                ClientError::validation(format!("payload too large: {size} bytes, the limit is {max}")),
            );
        }

        if let Some(limiter) = self.event_limiters.get(name)
            && let Err(wait) = limiter.check(socket.id)
        {
            return self.refuse_limited(
                socket,
                session,
                Some(name),
                ack,
                wants_ack,
                wait,
                &format!("rate limit exceeded for `{name}`"),
            );
        }

        if let Some(schema) = &event.schema
            && let Err(message) = schema.check(&payload)
        {
            return self.fail(socket, Some(name), ack, wants_ack, ClientError::validation(message));
        }

        let mut ctx = ActionCtx::new(self, socket, session, &identity, Some(&payload));
        ctx.from_client = true;
        match ctx.run(&event.actions) {
            Ok(reply) => {
                if wants_ack {
                    send_ack(ack, &reply.unwrap_or_else(|| json!({ "ok": true })));
                }
            }
            Err(error) => self.fail(socket, Some(name), ack, wants_ack, error),
        }
    }

    /// Sends `error` to the client and answers its ack with the same payload under `error`.
    pub(super) fn fail(
        &self,
        socket: &SocketRef<A>,
        event: Option<&str>,
        ack: AckSender<A>,
        wants_ack: bool,
        error: ClientError,
    ) {
        self.shared.metrics.events_rejected.inc();
        tracing::debug!(ns = %self.spec.path, event, kind = error.kind.as_str(), message = %error.message, "client event refused");
        let payload = error.payload(event);
        if let Err(e) = socket.emit("error", &payload) {
            self.note_emit_failure(socket, &e);
        }
        if wants_ack {
            send_ack(ack, &json!({ "error": payload }));
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn refuse_limited(
        &self,
        socket: &SocketRef<A>,
        session: &Session,
        event: Option<&str>,
        ack: AckSender<A>,
        wants_ack: bool,
        wait: std::time::Duration,
        message: &str,
    ) {
        self.shared.metrics.rate_limited.inc();
        let error = ClientError::rate_limit(message, Some(wait.as_millis().max(1) as u64));
        if session.may_notify_limit(now_millis(), LIMIT_NOTICE_GAP_MS) {
            self.fail(socket, event, ack, wants_ack, error);
        } else if wants_ack {
            self.shared.metrics.events_rejected.inc();
            send_ack(ack, &json!({ "error": error.payload(event) }));
        }
    }

    /// The refresh event: `{token}` (or the token as a string) replaces the socket's token, for
    /// the same user and tenant. Answered with `auth:refreshed` `{expiresAt, timestamp}`.
    fn refresh_token(
        &self,
        socket: &SocketRef<A>,
        session: &Session,
        name: &str,
        payload: Json,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        if let Err(wait) = self.refresh_limiter.check(socket.id) {
            return self.refuse_limited(socket, session, Some(name), ack, wants_ack, wait, "too many token refreshes");
        }
        match self.replace_token(socket, session, &payload) {
            Ok(reply) => {
                if let Err(e) = socket.emit("auth:refreshed", &reply) {
                    self.note_emit_failure(socket, &e);
                }
                if wants_ack {
                    send_ack(ack, &reply);
                }
            }
            Err(error) => self.fail(socket, Some(name), ack, wants_ack, error),
        }
    }

    fn replace_token(&self, socket: &SocketRef<A>, session: &Session, payload: &Json) -> Result<Json, ClientError> {
        let token = match payload {
            Json::String(t) => Some(t.as_str()),
            other => other.get("token").and_then(Json::as_str),
        };
        let token = token
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ClientError::validation("send the new token as {\"token\": \"...\"}"))?;
        let current = session.identity();
        let fresh = self.shared.verifier.verify(token).map_err(|e| ClientError::auth(e.to_string()))?;
        if fresh.user_id != current.user_id || fresh.tenant_id != current.tenant_id {
            return Err(ClientError::auth("the new token must be for the same user and tenant"));
        }
        if let Some(old) = current.expires_at {
            self.shared.expiry.cancel(old, self.index, socket.id);
        }
        if let Some(exp) = fresh.expires_at {
            self.shared.expiry.schedule(exp, self.index, socket.id);
        }
        let expires_at = fresh.expires_at;
        session.set_identity(fresh);
        // Rooms are kept only while their access rules still hold for the new token's roles.
        let identity = session.identity();
        let left = ActionCtx::new(self, socket, session, &identity, None).leave_rooms_no_longer_allowed();
        if !left.is_empty() {
            tracing::info!(ns = %self.spec.path, socket = %session.public_id, rooms = ?left, "token refreshed with fewer rights: left rooms");
        }
        Ok(json!({ "expiresAt": expires_at.map(iso_from_secs), "roomsLeft": left, "timestamp": iso_now() }))
    }
}

/// Splits a Socket.IO event array into its name and first argument (`null` when absent).
fn parse_event(raw: &str) -> Option<(String, Json)> {
    let Json::Array(items) = serde_json::from_str::<Json>(raw).ok()? else { return None };
    let mut items = items.into_iter();
    let Json::String(name) = items.next()? else { return None };
    Some((name, items.next().unwrap_or(Json::Null)))
}

/// Answers the client's ack callback (a no-op when it did not pass one).
fn send_ack<A: Adapter>(ack: AckSender<A>, data: &Json) {
    if let Err(e) = ack.send(data) {
        tracing::debug!(error = %e, "could not send an ack");
    }
}

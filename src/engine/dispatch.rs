//! A client event, from message to answer: flood and per-event limits, size, token expiry,
//! payload schema, the refresh event, then the spec's actions. The core ([`SpecRuntime::dispatch`])
//! is the same for both fronts and says what to answer ([`Handled`]); each front turns that into
//! its own frames. For Socket.IO (here): an `error` event with the seed's shape and an `{error}`
//! ack when one was asked, or the reply as the ack; the socket stays connected.

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

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
    member::Member,
    namespace::{NamespaceRuntime, SioMember},
    runtime::SpecRuntime,
    session::Session,
};
use crate::metrics::Rejection;

/// Rate-limit notices to one member are at most this often; refused events beyond are dropped
/// quietly (their acks are still answered).
const LIMIT_NOTICE_GAP_MS: u64 = 1000;

/// What a client event comes to.
#[derive(Debug)]
pub(super) enum Handled {
    /// Done; the reply (or `{ok: true}`) answers the ack.
    Replied(Json),
    /// Refused: tell the client (an `error`), and answer the ack with it.
    Failed(ClientError),
    /// Refused by a rate limit; `notify` is false when the client was told moments ago, and only
    /// the ack is answered.
    Limited { error: ClientError, notify: bool },
    /// No such event: the seeds' gateways ignored these; only an ack is answered, with the error.
    Unknown(ClientError),
    /// The member's token has expired: end it.
    Expired,
    /// The token was replaced: send `auth:refreshed` with this, which is also the ack.
    Refreshed(Json),
}

impl SpecRuntime {
    /// Checks the all-events flood limit before anything else is done with a message; `Some`
    /// when it refuses.
    pub(super) fn flood_check<M: Member>(&self, member: &M, session: &Session) -> Option<Handled> {
        let wait = self.flood_limiter.check(member.key()).err()?;
        Some(self.limited(session, wait, "too many events: slow down"))
    }

    /// Handles event `name` with `payload` (`size` bytes as received) for `member`. Runs on the
    /// member's receive path: no awaiting.
    pub(super) fn dispatch<M: Member>(
        &self,
        member: &M,
        session: &Session,
        name: &str,
        payload: Json,
        size: usize,
    ) -> Handled {
        let identity = session.identity();
        if self.shared.verifier.is_expired(&identity, now_millis()) {
            // The expiry task ends it at that very moment; an event racing it is not served.
            return Handled::Expired;
        }
        if name == self.spec.auth.refresh_event {
            return self.refresh_token(member, session, &payload);
        }
        let Some(event) = self.spec.events.get(name) else {
            tracing::debug!(ns = %self.spec.path, socket = %session.public_id, event = name, "unknown event ignored");
            return Handled::Unknown(ClientError::validation(format!("unknown event `{name}`")));
        };
        let max = event.max_bytes.unwrap_or(self.shared.limits.max_event_bytes);
        if let Some(refused) = too_large(size, max) {
            return refused;
        }
        if let Some(limiter) = self.event_limiters.get(name)
            && let Err(wait) = limiter.check(member.key())
        {
            return self.limited(session, wait, &format!("rate limit exceeded for `{name}`"));
        }
        if let Some(schema) = &event.schema
            && let Err(message) = schema.check(&payload)
        {
            return Handled::Failed(ClientError::validation(message));
        }
        let mut ctx = ActionCtx::new(self, member, session, &identity, Some(&payload));
        ctx.from_client = true;
        match ctx.run(&event.actions) {
            Ok(reply) => Handled::Replied(reply.unwrap_or_else(|| json!({ "ok": true }))),
            Err(error) => Handled::Failed(error),
        }
    }

    /// Refuses a message larger than any event of this spec takes, before it is parsed.
    pub(super) fn size_check(&self, size: usize) -> Option<Handled> {
        too_large(size, self.largest_payload)
    }

    /// Counts a refusal in `rejections_total`. Unknown events are not refusals: they are ignored,
    /// as the seeds' gateways did (their handling time is counted under the `_other` event).
    pub(super) fn count_refusal(&self, handled: &Handled) {
        match handled {
            Handled::Failed(error) => self.metrics.rejected(error.kind.into()),
            Handled::Limited { .. } => self.metrics.rejected(Rejection::RateLimit),
            Handled::Replied(_) | Handled::Unknown(_) | Handled::Expired | Handled::Refreshed(_) => {}
        }
    }

    /// Records how long event `name` (`None`: unreadable) took, from `started`.
    pub(super) fn record_handling(&self, name: Option<&str>, started: Instant) {
        let took = started.elapsed();
        self.shared.metrics.event_handling.record(took);
        self.metrics.event(name).observe(took);
    }

    fn limited(&self, session: &Session, wait: Duration, message: &str) -> Handled {
        self.shared.metrics.rate_limited.inc();
        Handled::Limited {
            error: ClientError::rate_limit(message, Some(wait.as_millis().max(1) as u64)),
            notify: session.may_notify_limit(now_millis(), LIMIT_NOTICE_GAP_MS),
        }
    }

    /// The refresh event: `{token}` (or the token as a string) replaces the member's token, for
    /// the same user and tenant. Answered with `auth:refreshed` `{expiresAt, roomsLeft, timestamp}`.
    fn refresh_token<M: Member>(&self, member: &M, session: &Session, payload: &Json) -> Handled {
        if let Err(wait) = self.refresh_limiter.check(member.key()) {
            return self.limited(session, wait, "too many token refreshes");
        }
        match self.replace_token(member, session, payload) {
            Ok(reply) => Handled::Refreshed(reply),
            Err(error) => Handled::Failed(error),
        }
    }

    fn replace_token<M: Member>(&self, member: &M, session: &Session, payload: &Json) -> Result<Json, ClientError> {
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
            self.shared.expiry.cancel(old, self.index, member.key());
        }
        if let Some(exp) = fresh.expires_at {
            self.shared.expiry.schedule(exp, self.index, member.key());
        }
        let expires_at = fresh.expires_at;
        session.set_identity(fresh);
        // Rooms are kept only while their access rules still hold for the new token's roles.
        let identity = session.identity();
        let left = ActionCtx::new(self, member, session, &identity, None).leave_rooms_no_longer_allowed();
        if !left.is_empty() {
            tracing::info!(ns = %self.spec.path, socket = %session.public_id, rooms = ?left, "token refreshed with fewer rights: left rooms");
        }
        Ok(json!({ "expiresAt": expires_at.map(iso_from_secs), "roomsLeft": left, "timestamp": iso_now() }))
    }
}

impl<A: Adapter> NamespaceRuntime<A> {
    /// Handles one Socket.IO event. Runs on the socket's receive path: no awaiting.
    pub(super) fn handle_event(
        &self,
        socket: &SocketRef<A>,
        session: &Arc<Session>,
        packet: Value,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        let started = Instant::now();
        self.shared.metrics.events_received.inc();
        let member = SioMember { ns: self, socket };
        let (event, handled) = self.handle(&member, session, packet);
        self.count_refusal(&handled);
        self.answer(socket, session, event.as_deref(), handled, ack, wants_ack);
        self.record_handling(event.as_deref(), started);
    }

    /// Reads the packet and dispatches it; returns the event's name (when it has one) and the outcome.
    fn handle(&self, member: &SioMember<'_, A>, session: &Session, packet: Value) -> (Option<String>, Handled) {
        // Before any parsing, so a flood costs as little as possible.
        if let Some(refused) = self.flood_check(member, session) {
            return (None, refused);
        }
        let (raw, size) = match &packet {
            // A relay or a reply would forward only the JSON part, with `{"_placeholder": true}`
            // where the bytes were: refuse rather than mangle silently.
            Value::Str(_, Some(attachments)) if !attachments.is_empty() => {
                let message = "binary attachments are not supported: send JSON (bytes as base64 strings, for example)";
                return (None, Handled::Failed(ClientError::validation(message)));
            }
            Value::Str(text, _) => (text.as_str(), text.len()),
            Value::Bytes(_) => {
                return (None, Handled::Failed(ClientError::validation("binary packets are not supported")));
            }
        };
        if let Some(refused) = self.size_check(size) {
            return (event_name(raw), refused);
        }
        match parse_event(raw) {
            Some((name, payload)) => {
                let handled = self.dispatch(member, session, &name, payload, size);
                (Some(name), handled)
            }
            None => {
                (None, Handled::Failed(ClientError::validation("the event is not a JSON array starting with its name")))
            }
        }
    }

    /// Turns an outcome into Socket.IO: `error` events, acks, `auth:refreshed`, the expiry.
    fn answer(
        &self,
        socket: &SocketRef<A>,
        session: &Session,
        event: Option<&str>,
        handled: Handled,
        ack: AckSender<A>,
        wants_ack: bool,
    ) {
        match handled {
            Handled::Replied(reply) => {
                if wants_ack {
                    send_ack(ack, &reply);
                }
            }
            Handled::Failed(error) => self.fail(socket, event, ack, wants_ack, error),
            Handled::Limited { error, notify: true } => self.fail(socket, event, ack, wants_ack, error),
            Handled::Limited { error, notify: false } => {
                if wants_ack {
                    self.shared.metrics.events_rejected.inc();
                    send_ack(ack, &json!({ "error": error.payload(event) }));
                }
            }
            Handled::Unknown(error) => {
                if wants_ack {
                    send_ack(ack, &json!({ "error": error.payload(event) }));
                }
            }
            Handled::Expired => self.end_expired(socket, session),
            Handled::Refreshed(reply) => {
                self.send_to(socket, "auth:refreshed", Some(&reply));
                if wants_ack {
                    send_ack(ack, &reply);
                }
            }
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
        self.send_to(socket, "error", Some(&payload));
        if wants_ack {
            send_ack(ack, &json!({ "error": payload }));
        }
    }
}

/// The refusal of a `size`-byte payload over `max`.
fn too_large(size: usize, max: usize) -> Option<Handled> {
    (size > max).then(|| {
        Handled::Failed(ClientError::validation(format!("payload too large: {size} bytes, the limit is {max}")))
    })
}

/// The name at the head of a Socket.IO event array (`["name", ...`), read without parsing the rest.
fn event_name(raw: &str) -> Option<String> {
    let rest = raw.trim_start().strip_prefix('[')?.trim_start();
    let bytes = rest.as_bytes();
    if bytes.first() != Some(&b'"') {
        return None;
    }
    let mut end = 1;
    while end < bytes.len() {
        match bytes[end] {
            b'\\' => end += 2,
            b'"' => return serde_json::from_str(rest.get(..=end)?).ok(),
            _ => end += 1,
        }
    }
    None
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

#[cfg(test)]
mod tests {
    #[test]
    fn the_event_name_is_read_from_the_head_alone() {
        assert_eq!(super::event_name(r#"["subscribe",{"a":"#).as_deref(), Some("subscribe"));
        assert_eq!(super::event_name(r#" [ "a\"b\\",1]"#).as_deref(), Some("a\"b\\"));
        assert_eq!(super::event_name(r#"[1,2]"#), None);
        assert_eq!(super::event_name(r#"["unterminated"#), None);
        assert_eq!(super::event_name(r#"["\"#), None);
    }
}

//! A client event, from message to answer: flood and per-event limits, size, token expiry,
//! payload schema, the refresh event, then the spec's actions. The core ([`SpecRuntime::dispatch`])
//! is the same for both fronts and says what to answer ([`Handled`]); each front turns that into
//! its own frames. For Socket.IO (here): an `error` event with the seed's shape and an `{error}`
//! ack when one was asked, or the reply as the ack; the socket stays connected.

use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use super::{
    actions::{ActionCtx, Answer},
    errors::ClientError,
    forward::PendingAnswer,
    member::Member,
    member_state::MemberState,
    recovery::{HistoryReads, JoinReads},
    runtime::SpecRuntime,
};
use crate::clock::{iso_from_secs, iso_now, now_millis};
use crate::metrics::Rejection;

/// Rate-limit notices to one member are at most this often; refused events beyond are dropped
/// quietly (their acks are still answered).
const LIMIT_NOTICE_GAP_MS: u64 = 1000;

/// What a client event comes to.
#[derive(Debug)]
pub(crate) enum Handled {
    /// Done; the reply (or `{ok: true}`) answers the ack.
    Replied(Json),
    /// Done, and a backend's answer will answer the ack (and send its event), or its failure
    /// the `error` and the ack: the front waits for it off the receive path.
    Pending(PendingAnswer),
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
    pub(crate) fn flood_check<M: Member>(&self, member: &M, session: &MemberState) -> Option<Handled> {
        let wait = self.flood_limiter.check(member.key()).err()?;
        Some(self.limited(session, wait, "too many events: slow down"))
    }

    /// Handles event `name` with `payload` (`size` bytes as received) for `member`. Runs on the
    /// member's receive path: no awaiting.
    pub(crate) fn dispatch<M: Member>(
        &self,
        member: &M,
        session: &MemberState,
        name: &str,
        payload: Json,
        size: usize,
    ) -> Handled {
        self.dispatch_with(member, session, name, payload, size, None)
    }

    /// [`Self::dispatch`] for an event whose joins read history (`EventSpec::reads_history`),
    /// their reads gathered in `reads` (which holds the history's lock); a join with `since` adds
    /// `recovered` to the reply. When the event fails, nothing read is sent (its answer is the
    /// error).
    pub(crate) fn dispatch_reading_history<M: Member>(
        &self,
        member: &M,
        session: &MemberState,
        name: &str,
        payload: Json,
        size: usize,
        reads: &mut HistoryReads<'_>,
    ) -> Handled {
        let handled = self.dispatch_with(member, session, name, payload, size, Some(reads));
        if !matches!(handled, Handled::Replied(_)) {
            reads.discard();
            return handled;
        }
        match reads.recovered() {
            Some(true) => self.shared.metrics.history.recovered.inc(),
            Some(false) => self.shared.metrics.history.not_recovered.inc(),
            None => 0,
        };
        handled
    }

    /// [`Self::dispatch`], with the history reads of its joins when the front holds the lock.
    fn dispatch_with<M: Member>(
        &self,
        member: &M,
        session: &MemberState,
        name: &str,
        payload: Json,
        size: usize,
        reads: Option<&mut (dyn JoinReads + '_)>,
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
        ctx.event = Some(name);
        if let Some(reads) = reads {
            ctx.history = Some(&mut *reads);
        }
        match ctx.run(&event.actions) {
            Ok(Some(Answer::Now(reply))) => Handled::Replied(reply),
            Ok(Some(Answer::Later(pending))) => Handled::Pending(pending),
            Ok(None) => Handled::Replied(json!({ "ok": true })),
            Err(error) => Handled::Failed(error),
        }
    }

    /// Refuses a message larger than any event of this spec takes, before it is parsed.
    pub(crate) fn size_check(&self, size: usize) -> Option<Handled> {
        too_large(size, self.largest_payload)
    }

    /// Counts a refusal in `rejections_total`. Unknown events are not refusals: they are ignored,
    /// as the seeds' gateways did (their handling time is counted under the `_other` event).
    pub(crate) fn count_refusal(&self, handled: &Handled) {
        match handled {
            Handled::Failed(error) => self.metrics.rejected(error.kind.into()),
            Handled::Limited { .. } => self.metrics.rejected(Rejection::RateLimit),
            Handled::Replied(_)
            | Handled::Pending(_)
            | Handled::Unknown(_)
            | Handled::Expired
            | Handled::Refreshed(_) => {}
        }
    }

    /// Records how long event `name` (`None`: unreadable) took, from `started`.
    pub(crate) fn record_handling(&self, name: Option<&str>, started: Instant) {
        let took = started.elapsed();
        self.shared.metrics.event_handling.record(took);
        self.metrics.event(name).observe(took);
    }

    fn limited(&self, session: &MemberState, wait: Duration, message: &str) -> Handled {
        self.shared.metrics.rate_limited.inc();
        Handled::Limited {
            error: ClientError::rate_limit(message, Some(wait.as_millis().max(1) as u64)),
            notify: session.may_notify_limit(now_millis(), LIMIT_NOTICE_GAP_MS),
        }
    }

    /// The refresh event: `{token}` (or the token as a string) replaces the member's token, for
    /// the same user and tenant. Answered with `auth:refreshed` `{expiresAt, roomsLeft, timestamp}`.
    fn refresh_token<M: Member>(&self, member: &M, session: &MemberState, payload: &Json) -> Handled {
        if let Err(wait) = self.refresh_limiter.check(member.key()) {
            return self.limited(session, wait, "too many token refreshes");
        }
        match self.replace_token(member, session, payload) {
            Ok(reply) => Handled::Refreshed(reply),
            Err(error) => Handled::Failed(error),
        }
    }

    fn replace_token<M: Member>(&self, member: &M, session: &MemberState, payload: &Json) -> Result<Json, ClientError> {
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

/// The refusal of a `size`-byte payload over `max`.
fn too_large(size: usize, max: usize) -> Option<Handled> {
    (size > max).then(|| {
        Handled::Failed(ClientError::validation(format!("payload too large: {size} bytes, the limit is {max}")))
    })
}

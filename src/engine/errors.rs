//! The errors a client is told about: the seeds' `error` event, `{message, type, timestamp}`.
//!
//! Each failure of a client event becomes one of these; the dispatcher sends it as an `error`
//! event and, when the client asked for an ack, as `{ error: <same payload> }` in the ack. The
//! connection always stays up, except for token expiry, which ends it.

use serde_json::{Value, json};

use crate::clock::iso_now;

/// The `type` field of an `error` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// Missing, invalid or expired token.
    Auth,
    /// The payload does not fit the event's schema, or names something that does not exist.
    Validation,
    /// Too many requests, or too many rooms.
    RateLimit,
    /// The room's access rules refuse this user.
    Permission,
    /// A backend the event is forwarded to cannot be reached, failed (5xx), or answered
    /// something unreadable.
    BackendUnavailable,
    /// A backend did not answer within the timeout.
    BackendTimeout,
    /// A backend has too many calls waiting: refused at once.
    BackendBusy,
    /// A backend refused the event (a 4xx answer) without saying one of the types above.
    BackendError,
    /// A failure of the gateway itself; details are logged, not sent. Part of the seeds' error
    /// vocabulary (and of the rejection label set), though no path of the gateway's fails so.
    #[expect(dead_code, reason = "the seeds' error type, kept so the label set and the wire types match them")]
    Internal,
}

impl ErrorKind {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Auth => "auth",
            ErrorKind::Validation => "validation",
            ErrorKind::RateLimit => "rate_limit",
            ErrorKind::Permission => "permission",
            ErrorKind::BackendUnavailable => "backend_unavailable",
            ErrorKind::BackendTimeout => "backend_timeout",
            ErrorKind::BackendBusy => "backend_busy",
            ErrorKind::BackendError => "backend_error",
            ErrorKind::Internal => "internal",
        }
    }
}

/// The `reason` a refusal of this kind is counted under.
impl From<ErrorKind> for crate::metrics::Rejection {
    fn from(kind: ErrorKind) -> Self {
        use crate::metrics::Rejection;
        match kind {
            ErrorKind::Auth => Rejection::Auth,
            ErrorKind::Validation => Rejection::Validation,
            ErrorKind::RateLimit => Rejection::RateLimit,
            ErrorKind::Permission => Rejection::Permission,
            ErrorKind::BackendUnavailable
            | ErrorKind::BackendTimeout
            | ErrorKind::BackendBusy
            | ErrorKind::BackendError => Rejection::Backend,
            ErrorKind::Internal => Rejection::Internal,
        }
    }
}

/// A failure to report to one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ClientError {
    /// Its category.
    pub kind: ErrorKind,
    /// A sentence for a developer reading the client's console.
    pub message: String,
    /// For rate limits: when the next attempt can succeed.
    pub retry_after_ms: Option<u64>,
}

impl ClientError {
    /// A validation error.
    pub(crate) fn validation(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Validation, message: message.into(), retry_after_ms: None }
    }

    /// A permission error.
    pub(crate) fn permission(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Permission, message: message.into(), retry_after_ms: None }
    }

    /// An auth error.
    pub(crate) fn auth(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::Auth, message: message.into(), retry_after_ms: None }
    }

    /// A rate-limit error, optionally with the wait before a retry can succeed.
    pub(crate) fn rate_limit(message: impl Into<String>, retry_after_ms: Option<u64>) -> Self {
        Self { kind: ErrorKind::RateLimit, message: message.into(), retry_after_ms }
    }

    /// A backend cannot be reached or failed.
    pub(crate) fn backend_unavailable(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::BackendUnavailable, message: message.into(), retry_after_ms: None }
    }

    /// A backend did not answer in time.
    pub(crate) fn backend_timeout(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::BackendTimeout, message: message.into(), retry_after_ms: None }
    }

    /// A backend has too many calls waiting.
    pub(crate) fn backend_busy(message: impl Into<String>) -> Self {
        Self { kind: ErrorKind::BackendBusy, message: message.into(), retry_after_ms: None }
    }

    /// A backend's refusal (a 4xx answer): its `error.type` when it is one a client already
    /// knows (`validation`, `permission`, `auth`, `rate_limit`), else `backend_error`.
    pub(crate) fn from_backend(kind: Option<&str>, message: impl Into<String>) -> Self {
        let kind = match kind {
            Some("validation") => ErrorKind::Validation,
            Some("permission") => ErrorKind::Permission,
            Some("auth") => ErrorKind::Auth,
            Some("rate_limit") => ErrorKind::RateLimit,
            _ => ErrorKind::BackendError,
        };
        Self { kind, message: message.into(), retry_after_ms: None }
    }

    /// The `error` event payload; `event` names the client event that failed, when there was one.
    pub(crate) fn payload(&self, event: Option<&str>) -> Value {
        let mut payload = json!({
            "message": self.message,
            "type": self.kind.as_str(),
            "timestamp": iso_now(),
        });
        if let Some(event) = event {
            payload["event"] = json!(event);
        }
        if let Some(ms) = self.retry_after_ms {
            payload["retryAfterMs"] = json!(ms);
        }
        payload
    }
}

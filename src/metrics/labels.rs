//! The fixed label values of the gateway's metrics: why a connection closed or was cut, why a
//! client was refused, why a delivery was dropped, how an admin login ended. Each is an enum, so a
//! label can only take one of a few values known at build time, whatever clients send. Also the
//! label sets the families are keyed by.

use prometheus_client::encoding::EncodeLabelSet;

/// Implements `ALL` (every value, in declaration order, which is also each value's index) and
/// `as_str` (the label value) for a fieldless enum.
macro_rules! label_enum {
    ($name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        impl $name {
            /// Every value; a value's position here is `self as usize`.
            pub(crate) const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub(crate) fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }
    };
}

/// Why a connection (a Socket.IO socket or a plain WebSocket) left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// The client closed it or left the namespace.
    Client,
    /// The connection broke (network loss, a reset, a write that failed).
    TransportError,
    /// The client stopped answering pings.
    HeartbeatTimeout,
    /// The client broke the protocol: an unparseable packet, concurrent polls, a message over
    /// the size limit.
    ProtocolError,
    /// The gateway disconnected it: its token expired, or an administrator did (admin view).
    ServerDisconnect,
    /// Its send queue overflowed: the gateway ended it (a slow consumer).
    SlowConsumer,
    /// The gateway is shutting down.
    Shutdown,
    /// It sent frames past the flood limit where no error can answer them (control frames on a
    /// plain WebSocket).
    Flood,
}

label_enum!(CloseReason {
    Client => "client",
    TransportError => "transport_error",
    HeartbeatTimeout => "heartbeat_timeout",
    ProtocolError => "protocol_error",
    ServerDisconnect => "server_disconnect",
    SlowConsumer => "slow_consumer",
    Shutdown => "shutdown",
    Flood => "flood",
});

/// Why a client was refused: the `type` of the `error` it was sent (the seeds' error types), or
/// `throttle` for a connection over its per-address limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// A missing, invalid or expired token, at connect or on refresh.
    Auth,
    /// A connection over the namespace's per-address connection limit.
    Throttle,
    /// A client event over a rate limit (or too many rooms).
    RateLimit,
    /// A payload that does not fit, or names nothing that exists.
    Validation,
    /// A room its access rules refuse.
    Permission,
    /// A backend an event is forwarded to was busy, down, slow, or refused the event.
    Backend,
    /// A failure of the gateway itself.
    Internal,
}

label_enum!(Rejection {
    Auth => "auth",
    Throttle => "throttle",
    RateLimit => "rate_limit",
    Validation => "validation",
    Permission => "permission",
    Backend => "backend",
    Internal => "internal",
});

/// Why a message to a connection was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// Its send queue was full (a slow consumer, whose session is then ended).
    QueueFull,
    /// It was closing or closed already.
    Closed,
    /// The message could not be serialized.
    Unserializable,
}

label_enum!(DropReason {
    QueueFull => "queue_full",
    Closed => "closed",
    Unserializable => "unserializable",
});

/// Why a connection was cut; also the `reason` label of the metric that counts cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CutReason {
    /// A write made no complete progress within the write timeout.
    WriteTimeout,
    /// The session's queue was full: its client reads slower than it is sent to.
    SlowConsumer,
    /// The engine turned the session away (refused token, throttled) and no other namespace
    /// uses it.
    Refused,
    /// An operator disconnected the client from the admin view.
    Admin,
}

label_enum!(CutReason {
    WriteTimeout => "write_timeout",
    SlowConsumer => "slow_consumer",
    Refused => "refused",
    Admin => "admin",
});

/// Why an event stream consumer was cut; the `reason` label of `event_stream_consumers_cut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamCut {
    /// Further behind the newest event than a consumer may be, or behind the history.
    Behind,
    /// Took nothing for the stall time while events waited (or its writes timed out).
    Stalled,
}

label_enum!(StreamCut {
    Behind => "behind",
    Stalled => "stalled",
});

/// How an admin login ended, as `admin_logins_total` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LoginOutcome {
    /// In with a login session: no password check.
    Session,
    /// In with the password.
    Password,
    /// Wrong or missing credentials.
    Invalid,
    /// Over its address's attempts.
    Throttled,
    /// Refused at once: the node's attempts, its queue of checks or its admin sockets were full.
    Busy,
}

label_enum!(LoginOutcome {
    Session => "session",
    Password => "password",
    Invalid => "invalid",
    Throttled => "throttled",
    Busy => "busy",
});

// The label sets the families are keyed by: which labels a series has, each value one of the
// enums above, a spec's namespace or declared event, or a fixed word.

/// `{namespace, protocol}`: a spec's path, and how its clients connect (`socketio`,
/// `websocket`): Socket.IO namespace `/ws` and the plain WebSocket endpoint `/ws` are two.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct NsLabels {
    pub(super) namespace: String,
    pub(super) protocol: &'static str,
}

/// `{namespace, protocol, reason}`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct NsReasonLabels {
    pub(super) namespace: String,
    pub(super) protocol: &'static str,
    pub(super) reason: &'static str,
}

/// `{namespace, protocol, event}`; `event` is declared by the spec, or [`OTHER_EVENT`](super::OTHER_EVENT).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct EventLabels {
    pub(super) namespace: String,
    pub(super) protocol: &'static str,
    pub(super) event: String,
}

/// `{reason}`, `{origin}`, `{connection}`, `{version}`: one fixed value.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ReasonLabel {
    pub(super) reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OriginLabel {
    pub(super) origin: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct ConnectionLabel {
    pub(super) connection: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct VersionLabel {
    pub(super) version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct OutcomeLabel {
    pub(super) outcome: &'static str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_sits_at_its_own_index() {
        assert!(CloseReason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(Rejection::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(DropReason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(CutReason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(LoginOutcome::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(StreamCut::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
    }
}

//! The fixed label values of the gateway's metrics: why a connection closed, why a client was
//! refused, why a delivery was dropped. Each is an enum, so a label can only take one of a few
//! values known at build time, whatever clients send.

/// Implements `ALL` (every value, in declaration order, which is also each value's index) and
/// `as_str` (the label value) for a fieldless enum.
macro_rules! label_enum {
    ($name:ident { $($variant:ident => $label:literal),+ $(,)? }) => {
        impl $name {
            /// Every value; a value's position here is `self as usize`.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The label value.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $label),+
                }
            }
        }
    };
}

/// Why a connection (a Socket.IO socket or a plain WebSocket) left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
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
pub enum Rejection {
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
    /// A failure of the gateway itself.
    Internal,
}

label_enum!(Rejection {
    Auth => "auth",
    Throttle => "throttle",
    RateLimit => "rate_limit",
    Validation => "validation",
    Permission => "permission",
    Internal => "internal",
});

/// Why a message to a connection was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_sits_at_its_own_index() {
        assert!(CloseReason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(Rejection::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
        assert!(DropReason::ALL.iter().enumerate().all(|(i, r)| *r as usize == i));
    }
}
/// Why a connection was cut; also the `reason` label of the metric that counts cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutReason {
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

impl CutReason {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            CutReason::WriteTimeout => "write_timeout",
            CutReason::SlowConsumer => "slow_consumer",
            CutReason::Refused => "refused",
            CutReason::Admin => "admin",
        }
    }
}

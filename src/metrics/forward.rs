//! Forwarded client events' series (`backend_calls`): each call to a backend or the event
//! stream, by how it ended. Totals over all backends: backend names come from configuration,
//! but a total per outcome is what an alert needs, and the logs name the backend.

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::registered;

/// How a forwarded client event ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForwardOutcome {
    /// The backend answered 2xx.
    Answered,
    /// The backend refused the event (4xx).
    Refused,
    /// The backend could not be reached, failed (5xx) or answered something unreadable; or its
    /// address is not allowed.
    Unavailable,
    /// The backend did not answer within the timeout (in the queue or in the call).
    Timeout,
    /// Refused at once: the backend's queue was full (count or bytes).
    Busy,
    /// Handed to the backend event stream.
    Streamed,
    /// Not handed to the event stream: its queue to the cluster's bus was full (count or bytes).
    StreamDropped,
    /// Stored by a database or Kafka destination.
    Written,
    /// Refused for good by a database or Kafka destination (a row or record it would not take).
    WriteFailed,
}

impl ForwardOutcome {
    const ALL: [ForwardOutcome; 9] = [
        ForwardOutcome::Answered,
        ForwardOutcome::Refused,
        ForwardOutcome::Unavailable,
        ForwardOutcome::Timeout,
        ForwardOutcome::Busy,
        ForwardOutcome::Streamed,
        ForwardOutcome::StreamDropped,
        ForwardOutcome::Written,
        ForwardOutcome::WriteFailed,
    ];

    fn as_str(self) -> &'static str {
        match self {
            ForwardOutcome::Answered => "answered",
            ForwardOutcome::Refused => "refused",
            ForwardOutcome::Unavailable => "unavailable",
            ForwardOutcome::Timeout => "timeout",
            ForwardOutcome::Busy => "busy",
            ForwardOutcome::Streamed => "streamed",
            ForwardOutcome::StreamDropped => "stream_dropped",
            ForwardOutcome::Written => "written",
            ForwardOutcome::WriteFailed => "write_failed",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

/// The forwarded events' series. Clones share their series.
#[derive(Debug, Clone)]
pub(crate) struct ForwardMetrics {
    /// By [`ForwardOutcome`] (its index).
    calls: Vec<Counter>,
}

impl ForwardMetrics {
    /// Counts one forwarded event that ended as `outcome`.
    pub(crate) fn ended(&self, outcome: ForwardOutcome) {
        self.calls[outcome as usize].inc();
    }

    /// Counts `n` forwarded events that ended as `outcome`.
    pub(crate) fn ended_many(&self, outcome: ForwardOutcome, n: u64) {
        self.calls[outcome as usize].inc_by(n);
    }

    /// How many ended as `outcome`.
    #[cfg(test)]
    pub(crate) fn count(&self, outcome: ForwardOutcome) -> u64 {
        self.calls[outcome as usize].get()
    }

    /// Registers the series, every outcome at zero.
    pub(super) fn register(r: &mut Registry) -> Self {
        let family = registered(
            r,
            "backend_calls",
            "Client events forwarded by specs (`forward`), by outcome: answered (2xx), refused (4xx), unavailable (unreachable, 5xx, unreadable answer, address not allowed), timeout, busy (queue full: refused at once), streamed (to the backend event stream), stream_dropped, written (stored by a database or Kafka destination), write_failed (a row or record it refused for good).",
            Family::<OutcomeLabel, Counter>::default(),
        );
        let calls = ForwardOutcome::ALL
            .iter()
            .map(|o| family.get_or_create_owned(&OutcomeLabel { outcome: o.as_str() }))
            .collect();
        Self { calls }
    }
}

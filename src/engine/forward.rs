//! Client events forwarded to backends (the spec's `forward` action): what the engine hands to
//! a backend, and the trait it hands it through. The engine never waits for a backend: the
//! action builds a [`ForwardCall`] and gives it to [`Backends::forward`], which queues it (bounded)
//! or refuses it at once; when the call asks for an answer, the action's event is answered later,
//! by the front, from the [`PendingAnswer`] the dispatch core returns.
//!
//! [`Backends`] is implemented outside the engine (`crate::sink::backends`: webhooks over HTTP,
//! and the backend event stream), as `ClusterLink` is by `crate::cluster`: the engine names no
//! transport. Another destination (a database, Kafka) is another implementation behind the same
//! trait, or another destination inside it.

use std::time::Duration;

use serde_json::Value;
use tokio::sync::oneshot;

use super::errors::ClientError;

/// Where forwarded client events go.
pub(crate) trait Backends: Send + Sync {
    /// Takes `call` without waiting: queues it (bounded in count and bytes), or refuses it at
    /// once (busy, or no such destination). Returns the bound on its answer (its timeout, from
    /// now): when the call asks for an answer, the answer or the failure is sent on
    /// `call.answer` within it, and whoever waits stops waiting then.
    fn forward(&self, call: ForwardCall) -> Result<Duration, ClientError>;
}

/// One client event on its way to a destination.
#[derive(Debug)]
pub(crate) struct ForwardCall {
    /// The destination: a backend's name, or `stream` (the backend event stream).
    pub to: String,
    /// The client event's name.
    pub event: String,
    /// The socket's tenant (the event stream's `tenantId`).
    pub tenant: Option<String>,
    /// What is sent: `{event, data, namespace, socket, timestamp}`.
    pub body: Value,
    /// The spec's bound on the answer (the backend's own applies when shorter, or unset).
    pub timeout: Option<Duration>,
    /// Where the answer goes; `None`: fire-and-forget.
    pub answer: Option<oneshot::Sender<Result<Value, ClientError>>>,
}

/// An answer that comes later: the backend's (the ack, and `event` when the spec names one),
/// or a failure (an `error`, and the ack with it).
#[derive(Debug)]
pub(crate) struct PendingAnswer {
    /// Resolves with the answer or the failure; closed when the call went nowhere.
    pub answer: oneshot::Receiver<Result<Value, ClientError>>,
    /// Also emitted with the answer.
    pub event: Option<String>,
    /// How long it may take (the call's timeout, from when it was handed over).
    pub within: Duration,
}

impl PendingAnswer {
    /// The answer, or the failure to tell the client, within the call's bound whatever the
    /// backend's queue is doing (a call dropped unanswered is the backend's unavailability: it
    /// never went out).
    pub(crate) async fn outcome(self) -> Result<Value, ClientError> {
        match tokio::time::timeout(self.within, self.answer).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(_)) => Err(ClientError::backend_unavailable("the backend call was dropped")),
            Err(_) => Err(ClientError::backend_timeout(format!(
                "the backend did not answer within {} ms",
                self.within.as_millis()
            ))),
        }
    }
}

//! What the engine needs from a cluster, and the work that crosses it: a [`ClusterLink`] carries
//! [`Outgoing`] work (published events, raw emits) to every node in one order. Implemented by
//! `crate::cluster` over Redis; the engine only knows this trait. It also carries presence
//! questions to the other nodes (`presence`).

use serde_json::{Value, json};

use super::{
    PublishedEvent,
    presence::{PresenceAnswers, PresenceQuestion},
};

/// What the engine needs from a cluster. Implemented by `crate::cluster` over Redis; the engine
/// only knows this trait.
pub(crate) trait ClusterLink: Send + Sync {
    /// Sends `message` to every node, this one included, in one order for all. While the cluster
    /// is unreachable the link applies it on this node at once and sends it to the others later.
    /// Resolves once it is sent (or applied here), so a caller's next message comes after it.
    /// Fails when the link has stopped (the node is shutting down) and the message went nowhere.
    fn submit(
        &self,
        message: Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), LinkStopped>> + Send>>;
    /// Why the cluster is degraded, if it is (for `/readyz`).
    fn degraded(&self) -> Option<String>;
    /// Whether the cluster can be reached now (connected, its subscriptions in place): cross-node
    /// operations (relays, acks, room counts) are attempted only then. `/readyz`, the admin view and
    /// `Shared::cluster_reachable` all read this.
    fn reachable(&self) -> bool;
    /// The latest [`Node::node_snapshot`](crate::node::Node::node_snapshot)s of the other live nodes.
    fn peers(&self) -> Vec<Value>;
    /// Asks every other live node who of `question` it holds; resolves within a bound with the
    /// answers that came (and whether every node asked answered).
    fn ask_presence(
        &self,
        question: PresenceQuestion,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = PresenceAnswers> + Send>>;
}

/// The cluster link has stopped: a message submitted went nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinkStopped;

/// Why published work (events, a raw emit) was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PublishError {
    /// The work is wrong; the message says what (the API answers 400).
    #[error("{0}")]
    Invalid(String),
    /// The node is stopping and could not send it on: nothing was delivered anywhere; it may be
    /// sent again, to another node (the API answers 503).
    #[error("this node is shutting down and took nothing: send it again, to another node")]
    Unavailable,
}

impl From<String> for PublishError {
    fn from(message: String) -> Self {
        PublishError::Invalid(message)
    }
}

impl From<LinkStopped> for PublishError {
    fn from(_: LinkStopped) -> Self {
        PublishError::Unavailable
    }
}

/// Work every node of a cluster applies to its own sockets.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// Published events (a checked batch).
    Events(Vec<PublishedEvent>),
    /// A raw emit (checked).
    Emit(EmitRequest),
    /// Client events a spec forwards to the backend event stream (`forward: { to: stream }`):
    /// fed to every node's event stream, never delivered to sockets.
    Stream(Vec<PublishedEvent>),
}

impl Outgoing {
    /// The wire form between nodes.
    pub(crate) fn to_json(&self) -> Value {
        match self {
            Outgoing::Events(events) => {
                json!({ "events": events.iter().map(PublishedEvent::to_json).collect::<Vec<_>>() })
            }
            Outgoing::Stream(events) => {
                json!({ "stream": events.iter().map(PublishedEvent::to_json).collect::<Vec<_>>() })
            }
            Outgoing::Emit(e) => json!({ "emit": {
                "namespace": e.namespace, "rooms": e.rooms, "event": e.event, "data": e.data, "tenantId": e.tenant,
            } }),
        }
    }

    /// Reads the wire form back.
    pub(crate) fn from_json(mut value: Value) -> Result<Self, String> {
        if let Some(Value::Array(events)) = value.get_mut("events").map(Value::take) {
            return events
                .into_iter()
                .enumerate()
                .map(|(i, e)| PublishedEvent::from_json(e, &format!("events[{i}]")))
                .collect::<Result<_, _>>()
                .map(Outgoing::Events);
        }
        if let Some(Value::Array(events)) = value.get_mut("stream").map(Value::take) {
            return events
                .into_iter()
                .enumerate()
                .map(|(i, e)| PublishedEvent::from_json(e, &format!("stream[{i}]")))
                .collect::<Result<_, _>>()
                .map(Outgoing::Stream);
        }
        let emit = value.get("emit").ok_or("neither `events`, `stream` nor `emit`")?;
        let text = |field: &str| emit.get(field).and_then(Value::as_str).map(str::to_string);
        Ok(Outgoing::Emit(EmitRequest {
            namespace: text("namespace").ok_or("emit.namespace")?,
            rooms: emit
                .get("rooms")
                .and_then(Value::as_array)
                .ok_or("emit.rooms")?
                .iter()
                .filter_map(|r| r.as_str().map(str::to_string))
                .collect(),
            event: text("event").ok_or("emit.event")?,
            data: emit.get("data").cloned().unwrap_or(Value::Null),
            tenant: text("tenantId"),
        }))
    }
}

/// `POST /api/v1/emit`: an event sent as is to rooms of one namespace.
#[derive(Debug, Clone)]
pub(crate) struct EmitRequest {
    /// The namespace, such as `/ws`.
    pub namespace: String,
    /// Visible room names.
    pub rooms: Vec<String>,
    /// The event name clients receive.
    pub event: String,
    /// Its payload.
    pub data: Value,
    /// The tenant whose rooms are meant (required when a room is a tenant room).
    pub tenant: Option<String>,
}

/// `GET /api/v1/stats?namespace=..&room=..&tenantId=..`: the size of one room.
#[derive(Debug, Clone)]
pub(crate) struct RoomQuery {
    /// The namespace.
    pub namespace: String,
    /// The visible room name.
    pub room: String,
    /// The tenant whose room is meant.
    pub tenant: Option<String>,
}

//! The entry points of the parsers the gateway owns, gathered for the fuzz targets (`fuzz/`) and
//! for the test that replays their corpora (`tests/it/fuzz_corpus.rs`). Not an API.
//!
//! The fuzz crate links this library from outside and sees only `pub` items, while most of these
//! parsers are internal to their module. This module is the one place that reaches them, so the
//! targets name no internal path: when a parser moves, this file stops compiling in the normal
//! build (it is always compiled, not only when fuzzing) and is the only one to change. The
//! wrappers only forward; what the targets check of the results lives in `fuzz/harness.rs`.

use std::sync::Arc;

use serde_json::Value;

pub use crate::spec::{
    NamespaceSpec, SpecErrors,
    describe::describe,
    template::{Root, Scope, StrTemplate, ValueTemplate},
};
use crate::{
    engine::{PublicId, SocketView, roster::ClientId},
    front::socketio::engineio::{Sessions, SessionsOptions},
    lifecycle::Readiness,
    node::{Node, NodeSettings},
};

/// Loads one namespace spec file's text, as `NAMESPACES_DIR` files are loaded.
pub fn load_spec(text: &str) -> Result<Vec<NamespaceSpec>, SpecErrors> {
    crate::spec::load_sources(vec![("fuzz.yaml".to_string(), text.to_string())])
}

/// A plain WebSocket client message (a text frame) read as its `{type, data}` envelope.
pub fn parse_envelope(text: &str) -> Result<(String, Value), String> {
    crate::front::websocket::envelope::parse(text)
}

/// A message to a plain WebSocket client, as the gateway writes it.
pub fn render_envelope(kind: &str, timestamp: &str, data: &Value) -> String {
    String::from_utf8_lossy(crate::front::websocket::envelope::render(kind, timestamp, data).payload()).into_owned()
}

/// A published event, as the API reads one.
#[derive(Debug, Clone)]
pub struct PublishedEvent(crate::engine::PublishedEvent);

impl PublishedEvent {
    /// Reads an event's JSON (`at` names it in errors).
    pub fn from_json(value: Value, at: &str) -> Result<Self, String> {
        crate::engine::PublishedEvent::from_json(value, at).map(Self)
    }

    /// The event as JSON, as it crosses the cluster.
    pub fn to_json(&self) -> Value {
        self.0.to_json()
    }
}

/// A `POST /api/v1/events` body read into events, as the API reads it (before the specs check
/// them), with the default batch limit.
pub fn publish_body(body: &[u8]) -> Result<Vec<PublishedEvent>, String> {
    let max_batch = crate::config::Config::for_tests("fuzz", "fuzz").limits.api_max_batch;
    crate::http::publish_body(body, max_batch).map(|events| events.into_iter().map(PublishedEvent).collect())
}

/// A node serving specs as a single gateway does, without sockets or a listener: what a publish
/// body is checked against and delivered to.
pub struct Engine(Node);

impl Engine {
    /// Checks a batch against every spec, as the API does before publishing.
    pub fn check(&self, events: &[PublishedEvent]) -> Result<(), String> {
        let events: Vec<_> = events.iter().map(|e| e.0.clone()).collect();
        self.0.check(&events)
    }

    /// Publishes a batch (checked again), as the API does; how many events were taken.
    pub async fn publish(&self, events: Vec<PublishedEvent>) -> Result<usize, String> {
        self.0.publish(events.into_iter().map(|e| e.0).collect()).await.map_err(|e| e.to_string())
    }
}

/// A node serving `specs`, built from the same settings as `App::build` builds it with.
pub fn engine(specs: Vec<NamespaceSpec>) -> Engine {
    let config = crate::config::Config::for_tests("fuzz", "fuzz");
    let metrics = Arc::new(crate::metrics::Metrics::new(false));
    let sessions =
        Sessions::new(SessionsOptions::from_config(&config), Arc::new(Readiness::default()), metrics.clone());
    let settings = NodeSettings::from_config(&config);
    let verifier = crate::auth::TokenVerifier::new(&config.jwt).expect("the test config's key is valid");
    let (_layer, io) = socketioxide::SocketIo::builder().build_layer();
    let node = Node::new(specs, io.clone(), verifier, settings, metrics, sessions);
    node.mount(&io);
    Engine(node)
}

/// The specs built into the binary (`namespaces/*.yaml`).
pub fn embedded_specs() -> Vec<NamespaceSpec> {
    crate::spec::load_embedded().expect("the embedded specs load")
}

/// What a socket.io-client 2.x WebSocket connection hands on of what it reads (its CONNECT
/// queries dropped), fed the bytes as they arrive.
#[derive(Debug, Default)]
pub struct ConnectFilter(crate::net::v3_connect::ConnectFilter);

impl ConnectFilter {
    /// Reads `input`, appending what passes to `output`.
    pub fn feed(&mut self, input: &[u8], output: &mut Vec<u8>) {
        self.0.feed(input, output);
    }
}

/// A socket.io-client 2.x long-polling payload with its CONNECT queries dropped, as the session
/// front rewrites it; `None` when there is nothing to change.
pub fn strip_connect_queries_v3(payload: &str) -> Option<String> {
    crate::front::socketio::engineio::strip_connect_queries_v3(payload)
}

/// One socket as the admin UI is sent it (`all_sockets`, `socket_connected`): its handshake's
/// headers, query and URL redacted.
pub fn admin_socket(request: &http::request::Parts) -> Value {
    let identity = Arc::new(crate::auth::Identity::anonymous());
    let view = SocketView {
        namespace: "/fuzz",
        id: PublicId::random(),
        client: ClientId::for_tests(1),
        transport: "websocket",
        address: None,
        connected_at_ms: 0,
        identity,
        rooms: Vec::new(),
        request: Some(request),
    };
    crate::admin::wire::socket(&view)
}

/// What a redacted value reads as in the admin UI.
pub const REDACTED: &str = crate::admin::handshake::REDACTED;

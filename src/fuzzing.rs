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

pub use crate::{
    engine::{ClientId, Engine, PublicId, PublishedEvent, SocketView},
    spec::{
        NamespaceSpec, SpecErrors,
        describe::describe,
        template::{Root, Scope, StrTemplate, ValueTemplate},
    },
    v3_connect::ConnectFilter,
};

/// Loads one namespace spec file's text, as `NAMESPACES_DIR` files are loaded.
pub fn load_spec(text: &str) -> Result<Vec<NamespaceSpec>, SpecErrors> {
    crate::spec::load_sources(vec![("fuzz.yaml".to_string(), text.to_string())])
}

/// A plain WebSocket client message (a text frame) read as its `{type, data}` envelope.
pub fn parse_envelope(text: &str) -> Result<(String, Value), String> {
    crate::engine::native::envelope::parse(text)
}

/// A message to a plain WebSocket client, as the gateway writes it.
pub fn render_envelope(kind: &str, timestamp: &str, data: &Value) -> String {
    crate::engine::native::envelope::render(kind, timestamp, data).as_str().to_string()
}

/// A `POST /api/v1/events` body read into events, as the API reads it (before the specs check
/// them), with the default batch limit.
pub fn publish_body(body: &[u8]) -> Result<Vec<PublishedEvent>, String> {
    crate::http::publish_body(body, crate::config::Config::for_tests("fuzz", "fuzz").limits.api_max_batch)
}

/// An engine serving `specs` as a single node does, without sockets or a listener: what a
/// publish body is checked against and delivered to. Built as `App::build` builds it.
pub fn engine(specs: Vec<NamespaceSpec>) -> Engine {
    let config = crate::config::Config::for_tests("fuzz", "fuzz");
    let metrics = Arc::new(crate::metrics::Metrics::new(false));
    let sessions = crate::sessions::Sessions::new(
        crate::sessions::SessionsOptions {
            path: config.transport.path.clone(),
            trusted_proxies: config.trusted_proxies.clone(),
            handshake_limit: config.transport.handshake_limit,
            bind_to_ip: config.transport.bind_sessions_to_ip,
            allow_eio3: config.transport.allow_eio3,
            max_payload: 1 << 20,
            auth_cookie: config.auth_cookie_name.clone(),
            connect_timeout: config.transport.connect_timeout,
        },
        Arc::new(crate::http::Readiness::default()),
        metrics.clone(),
    );
    let settings = crate::engine::EngineSettings {
        limits: config.limits.clone(),
        metrics_interval: config.metrics_interval,
        cleanup_interval: config.cleanup_interval,
        trusted_proxies: config.trusted_proxies.clone(),
        auth_cookie_name: config.auth_cookie_name.clone(),
        allowed_origins: config.cors_origins.clone(),
        native: config.native.clone(),
        backlog: crate::backlog::BacklogLimits { bytes: config.transport.max_buffer_bytes, stall_ms: 60_000 },
    };
    let verifier = crate::auth::TokenVerifier::new(&config.jwt).expect("the test config's key is valid");
    let (_layer, io) = socketioxide::SocketIo::builder().build_layer();
    let engine = Engine::new(specs, io.clone(), verifier, settings, metrics, sessions);
    engine.mount(&io);
    engine
}

/// The specs built into the binary (`namespaces/*.yaml`).
pub fn embedded_specs() -> Vec<NamespaceSpec> {
    crate::spec::load_embedded().expect("the embedded specs load")
}

/// A socket.io-client 2.x long-polling payload with its CONNECT queries dropped, as the session
/// front rewrites it; `None` when there is nothing to change.
pub fn strip_connect_queries_v3(payload: &str) -> Option<String> {
    crate::sessions::strip_connect_queries_v3(payload)
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

//! What each fuzz target does with one input: feeds it to the gateway's parser through
//! `realtime_gateway::fuzzing` and checks what comes back. Shared by the targets
//! (`fuzz/fuzz_targets/*.rs`) and by the test that replays the committed corpora on stable
//! (`tests/it/fuzz_corpus.rs`), so both run exactly the same checks.
//!
//! A panic is a finding: the parsers' own, or one of the checks below failing.

use std::sync::OnceLock;

use realtime_gateway::fuzzing::{self as gw, Root, Scope, StrTemplate, ValueTemplate};
use serde_json::{Value, json};

/// What a target does with one input.
pub type Target = fn(&[u8]);

/// The targets by name, as `cargo fuzz` and `scripts/fuzz` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("spec_loader", spec_loader),
    ("template", template),
    ("ws_envelope", ws_envelope),
    ("publish_body", publish_body),
    ("v3_connect", v3_connect),
    ("admin_handshake", admin_handshake),
];

/// A namespace spec file: loaded and compiled; a spec that loads is also described (what
/// `/namespaces` serves) and its rooms matched; errors are rendered as the operator sees them.
pub fn spec_loader(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match gw::load_spec(text) {
        Ok(specs) => {
            for spec in &specs {
                let view = serde_json::to_string(&gw::describe(spec)).expect("a description serializes");
                assert!(!view.is_empty());
                let _ = spec.client_room_patterns();
                for name in ["", "executions:e1", "user:u1", "a:b:c", "é:😀"] {
                    let _ = spec.family_of(name);
                }
            }
        }
        Err(errors) => {
            assert!(!errors.0.is_empty(), "a refused spec says why");
            let _ = errors.to_string();
        }
    }
}

/// The scope templates are rendered against in [`template`]: every root is the input's JSON
/// value (or a fixed object), `state.<store>[key]` looks the store and key up in it.
struct FuzzScope(Value);

impl Scope for FuzzScope {
    fn root(&self, root: Root) -> Option<std::borrow::Cow<'_, Value>> {
        match root {
            Root::Now => Some(std::borrow::Cow::Owned(json!("2024-01-15T10:30:00.000Z"))),
            _ => Some(std::borrow::Cow::Borrowed(&self.0)),
        }
    }

    fn state(&self, store: &str, key: Option<&str>) -> Option<Value> {
        let store = self.0.get(store)?;
        match key {
            Some(key) => store.get(key).cloned(),
            None => Some(store.clone()),
        }
    }
}

/// The template language: the input's first line as a template string, the rest as a JSON value
/// that is both parsed as a value template and used as the scope. Everything that parses is
/// rendered every way the engine renders it.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (line, rest) = text.split_once('\n').unwrap_or((text, ""));
    let value: Option<Value> = serde_json::from_str(rest).ok();
    let scope =
        FuzzScope(value.clone().unwrap_or_else(
            || json!({ "id": "u1", "executions": { "e1": { "status": "running" } }, "list": [1, 2, 3] }),
        ));
    if let Ok(t) = StrTemplate::parse(line) {
        let text = t.render_text(&scope);
        if let Some(literal) = t.as_literal() {
            assert_eq!(text, literal, "a template without placeholders renders as itself");
        }
        let _ = t.render_value(&scope);
        let _ = t.render_key(&scope);
        let mut paths = 0;
        t.for_each_path(&mut |_| paths += 1);
        if t.as_single_expr().is_some() {
            assert!(t.as_literal().is_none());
        }
    }
    if let Some(value) = value
        && let Ok(t) = ValueTemplate::parse(&value)
    {
        let rendered = t.render(&scope);
        if let ValueTemplate::Const(c) = &t {
            assert_eq!(rendered.as_ref(), Some(c), "a constant renders as itself");
        }
        t.for_each_path(&mut |_| {});
    }
}

/// Whether two JSON values are the same, numbers compared as numbers (serde_json reads a float
/// back to within a unit in the last place of what it wrote).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) if x.is_finite() && y.is_finite() => {
                x == y || (x - y).abs() <= f64::EPSILON * 4.0 * x.abs().max(y.abs())
            }
            _ => x == y,
        },
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|((kx, vx), (ky, vy))| kx == ky && same(vx, vy))
        }
        _ => a == b,
    }
}

/// A plain WebSocket text frame read as the `{type, timestamp, data}` envelope; an accepted one
/// written back as the gateway writes envelopes must read back the same.
pub fn ws_envelope(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match gw::parse_envelope(text) {
        Ok((kind, payload)) => {
            assert!(!kind.is_empty() && !kind.chars().any(char::is_control));
            let written = gw::render_envelope(&kind, "2024-01-15T10:30:00.000Z", &payload);
            let (kind2, payload2) = gw::parse_envelope(&written).expect("what the gateway writes reads back");
            assert_eq!(kind, kind2);
            assert!(same(&payload, &payload2), "{payload} read back as {payload2}");
        }
        Err(message) => assert!(!message.is_empty(), "a refusal says why"),
    }
}

/// One engine serving the embedded specs, and a runtime to deliver on, for every input.
fn publishing() -> &'static (tokio::runtime::Runtime, gw::Engine) {
    static ENGINE: OnceLock<(tokio::runtime::Runtime, gw::Engine)> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
        let engine = runtime.block_on(async { gw::engine(gw::embedded_specs()) });
        (runtime, engine)
    })
}

/// A `POST /api/v1/events` body: read into events as the API reads it; each event written back
/// as JSON reads back the same; a batch the embedded specs accept is published (state rules
/// applied, routed, delivered to no socket).
pub fn publish_body(data: &[u8]) {
    let events = match gw::publish_body(data) {
        Ok(events) => events,
        Err(message) => {
            assert!(!message.is_empty(), "a refusal says why");
            return;
        }
    };
    for event in &events {
        let json = event.to_json();
        let again = gw::PublishedEvent::from_json(json.clone(), "again").expect("an event's JSON reads back");
        assert_eq!(again.to_json(), json);
    }
    let (runtime, engine) = publishing();
    if engine.check(&events).is_ok() {
        runtime.block_on(engine.publish(events)).expect("a checked batch is published");
    }
}

/// The connection's filter over the bytes `input` (read `step` bytes at a time).
fn filtered(input: &[u8], step: usize) -> Vec<u8> {
    let mut filter = gw::ConnectFilter::default();
    let mut out = Vec::new();
    for chunk in input.chunks(step.max(1)) {
        filter.feed(chunk, &mut out);
    }
    out
}

/// socket.io-client 2.x's CONNECT queries dropped: the input's first byte says how many bytes
/// each read holds, the rest is what a client sends after the WebSocket handshake. Whatever the
/// reads, the filter hands on the same bytes, never more than it got, and filtering its output
/// again changes nothing. The same bytes as a long-polling payload: a rewritten one has nothing
/// left to rewrite.
pub fn v3_connect(data: &[u8]) {
    let Some((&step, stream)) = data.split_first() else { return };
    let whole = filtered(stream, stream.len());
    assert_eq!(filtered(stream, usize::from(step % 64) + 1), whole, "the reads' sizes change nothing");
    assert!(whole.len() <= stream.len(), "the filter only drops bytes");
    assert_eq!(filtered(&whole, whole.len()), whole, "filtering twice is filtering once");
    if let Ok(payload) = std::str::from_utf8(stream)
        && let Some(rewritten) = gw::strip_connect_queries_v3(payload)
    {
        assert_ne!(rewritten, payload);
        assert_eq!(gw::strip_connect_queries_v3(&rewritten), None, "{payload:?} left something: {rewritten:?}");
    }
}

/// Whether `text` holds a JWT: a run of base64url characters and dots that reads
/// `eyJ<header>.<claims>.<signature>`.
fn holds_jwt(text: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')).any(|word| {
        let parts: Vec<&str> = word.split('.').collect();
        word.starts_with("eyJ") && parts.len() == 3 && parts.iter().all(|p| !p.is_empty())
    })
}

/// The request that opened a socket, as the admin UI is shown it: the input's first line is the
/// URI, each other line a `name: value` header. Credentials never show: the parameters and
/// headers the gateway reads credentials from are redacted, and nothing shown holds a JWT.
pub fn admin_handshake(data: &[u8]) {
    let mut lines = data.split(|&b| b == b'\n');
    let Ok(uri) = http::Uri::try_from(lines.next().unwrap_or_default()) else { return };
    let mut request = http::Request::builder().uri(uri);
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].strip_prefix(b" ").unwrap_or(&line[colon + 1..]);
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(&line[..colon]), http::HeaderValue::from_bytes(value))
        {
            request = request.header(name, value);
        }
    }
    let Ok(request) = request.body(()) else { return };
    let (parts, ()) = request.into_parts();
    let shown = gw::admin_socket(&parts);
    let handshake = &shown["handshake"];
    let url = handshake["url"].as_str().expect("a URL");
    let shown_query = url.split_once('?').map_or("", |(_, q)| q);
    assert!(!holds_jwt(shown_query), "a JWT shows in the URL: {url}");
    for (field, secret_names) in [
        ("query", &["token", "sid", "access_token", "api_key"][..]),
        ("headers", &["authorization", "cookie", "x-api-key"][..]),
    ] {
        for (name, value) in handshake[field].as_object().expect("an object") {
            assert!(!holds_jwt(name), "a JWT shows as a name in {field}: {name}");
            let value = value.as_str().expect("text");
            assert!(!holds_jwt(value), "a JWT shows in {field}.{name}: {value}");
            if secret_names.contains(&name.to_ascii_lowercase().as_str()) {
                assert_eq!(value, gw::REDACTED, "{field}.{name} shows");
            }
        }
    }
}

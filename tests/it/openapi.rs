//! The API's OpenAPI document, as a client gets it from `GET /api/v1/openapi.json`: OpenAPI 3.1
//! with every route, each documented operation answered by the router with a status it
//! documents, each example body accepted with an answer matching its schema, and no route of
//! the API registered where the document cannot see it. (`scripts/api-conformance` then runs
//! schemathesis against the binary with the same document.)

use std::{collections::BTreeSet, path::Path};

use serde_json::{Value, json};

use crate::helpers::{API_KEY, spawn_app};

/// What the embedded specs and the gateway's own routes make.
const PATHS: &[&str] = &[
    "/ws",
    "/ws/stats",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/events",
    "/api/v1/emit",
    "/api/v1/notifications",
    "/api/v1/stats",
    "/api/v1/presence",
    "/api/v1/events/stream",
    "/api/v1/bridges",
    "/api/v1/bridges/{name}/query",
    "/api/v1/tenants/{tenantId}/providers/websocket",
    "/api/v1/namespaces",
    "/api/v1/dev",
    "/api/v1/openapi.json",
];

async fn document(app: &crate::helpers::TestApp) -> Value {
    let res = app.http.get(app.url("/api/v1/openapi.json")).send().await.expect("the document");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    res.json().await.expect("the document is JSON")
}

/// Every (method, path, operation) of the document.
fn operations(document: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("a path item") {
            out.push((method.to_uppercase(), path.clone(), operation.clone()));
        }
    }
    out
}

/// Whether `body` matches `schema`, resolved inside `document` (OpenAPI 3.1 schemas are JSON
/// Schema 2020-12).
fn matches(document: &Value, schema: &Value, body: &Value) -> Result<(), String> {
    let mut root = document.clone();
    let Value::Object(fields) = schema else { return Err(format!("not a schema: {schema}")) };
    for (key, value) in fields {
        root[key] = value.clone();
    }
    let validator = jsonschema::draft202012::new(&root).map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() { Ok(()) } else { Err(errors.join("; ")) }
}

#[tokio::test]
async fn the_served_document_is_openapi_3_1_with_every_route() {
    let app = spawn_app().await;
    let document = document(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert!(document["info"]["title"].is_string() && document["info"]["version"].is_string());
    let paths: BTreeSet<&str> = document["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(paths, PATHS.iter().copied().collect());
    let schemes = &document["components"]["securitySchemes"];
    assert_eq!(
        schemes["apiKey"],
        json!({ "type": "apiKey", "in": "header", "name": "X-API-Key", "description": "One of `API_KEYS`." })
    );
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let mut ids = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        assert!(ids.insert(operation["operationId"].to_string()), "{method} {path}: its operationId is taken");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{method} {path} documents no answer");
        for alternative in operation["security"].as_array().expect("security, even if empty") {
            for scheme in alternative.as_object().unwrap().keys() {
                assert!(schemes[scheme].is_object(), "{method} {path}: no security scheme `{scheme}`");
            }
        }
    }
    let publish = &document["paths"]["/api/v1/events"]["post"];
    assert_eq!(publish["security"], json!([{ "apiKey": [] }, { "bearer": [] }]));
    for status in ["202", "400", "401", "413", "503"] {
        assert!(publish["responses"][status].is_object(), "POST /api/v1/events does not document {status}");
    }
    assert!(publish["responses"]["503"]["headers"]["Retry-After"]["required"].as_bool().unwrap());
    app.shutdown().await.unwrap();
}

/// `path` with each of its parameters (`{name}`) replaced by the parameter's first example, or
/// `x`.
fn concrete(path: &str, operation: &Value) -> String {
    let mut path = path.to_string();
    for parameter in operation["parameters"].as_array().into_iter().flatten().filter(|p| p["in"] == "path") {
        let name = parameter["name"].as_str().unwrap_or_default();
        let example = parameter["schema"]["examples"][0].as_str().unwrap_or("x");
        path = path.replace(&format!("{{{name}}}"), example);
    }
    path
}

/// Asked without credentials and with an empty object, every operation is answered by its
/// handler (not the router's 404 or 405) with a status it documents, and a JSON error body
/// that matches the document.
#[tokio::test]
async fn every_documented_operation_is_routed_and_answers_a_documented_status() {
    let app = spawn_app().await;
    let document = document(&app).await;
    for (method, path, operation) in operations(&document) {
        let url = app.url(&concrete(&path, &operation));
        let request = match method.as_str() {
            "GET" => app.http.get(url),
            "POST" => app.http.post(url).json(&json!({})),
            "PUT" => app.http.put(url).json(&json!({})),
            other => panic!("{other} {path}: a method this test does not send"),
        };
        let res = request.send().await.unwrap();
        let status = res.status().as_u16().to_string();
        let documented = &operation["responses"][&status];
        assert!(documented.is_object(), "{method} {path} answered {status}, which it does not document");
        if let Some(schema) = documented["content"]["application/json"]["schema"].as_object() {
            let body: Value = res.json().await.expect("a JSON body, as documented");
            matches(&document, &Value::Object(schema.clone()), &body)
                .unwrap_or_else(|e| panic!("{method} {path} {status}: {body} does not match: {e}"));
        }
    }
    app.shutdown().await.unwrap();
}

/// The event stream is left out of schemathesis's run (its answer never ends): its answers are
/// held to the document here.
#[tokio::test]
async fn the_event_stream_answers_as_documented() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let operation = &document["paths"]["/api/v1/events/stream"]["get"];
    let ask = |query: &str| {
        app.http.get(app.url(&format!("/api/v1/events/stream{query}"))).header("x-api-key", API_KEY).send()
    };
    let res = ask("?types=execution.*").await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
    assert!(operation["responses"]["200"]["content"]["text/event-stream"].is_object());
    drop(res);
    for query in ["", "?types=", "?types=a&types=b", "?types=a&nope=1"] {
        let res = ask(query).await.unwrap();
        assert_eq!(res.status(), 400, "{query}");
        let body: Value = res.json().await.unwrap();
        matches(&document, &operation["responses"]["400"]["content"]["application/json"]["schema"], &body)
            .unwrap_or_else(|e| panic!("{query}: {body}: {e}"));
    }
    app.shutdown().await.unwrap();
}

/// The examples are what a reader copies: each is accepted, and answered as documented.
#[tokio::test]
async fn every_example_body_is_accepted_and_answered_as_documented() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let mut tried = 0;
    for (method, path, operation) in operations(&document) {
        let examples = &operation["requestBody"]["content"]["application/json"]["examples"];
        for (name, example) in examples.as_object().into_iter().flatten() {
            let url = app.url(&concrete(&path, &operation));
            let request = match method.as_str() {
                "PUT" => app.http.put(url),
                _ => app.http.post(url),
            };
            let res = request.header("x-api-key", API_KEY).json(&example["value"]).send().await.unwrap();
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap();
            assert!((200..300).contains(&status), "{method} {path} example `{name}`: {status} {body}");
            let schema = &operation["responses"][status.to_string()]["content"]["application/json"]["schema"];
            matches(&document, schema, &body).unwrap_or_else(|e| panic!("{method} {path} `{name}`: {body}: {e}"));
            tried += 1;
        }
    }
    assert!(tried >= 6, "only {tried} examples: the document lost them");
    app.shutdown().await.unwrap();
}

/// A route registered straight on axum's router would be served and missing from the document:
/// the API's routes go through `http::openapi::Routes`, which files each with its operation.
/// Only the admin UI (under `/admin/`, not API) builds a router of its own.
#[test]
fn no_route_is_registered_where_the_document_cannot_see_it() {
    const REGISTERS: &[&str] = &[".route(", ".route_service(", ".nest(", ".nest_service(", ".fallback("];
    const ALLOWED: &[&str] = &["http/openapi/mod.rs", "admin/ui.rs"];
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut files = vec![src.clone()];
    let mut seen = 0;
    while let Some(dir) = files.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.push(path);
                continue;
            }
            let relative = path.strip_prefix(&src).unwrap().to_string_lossy().replace('\\', "/");
            if !relative.ends_with(".rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // Only files that build a router: elsewhere `.route(` is the specs' routing.
            if !text.contains("Router") {
                continue;
            }
            for (n, line) in text.lines().enumerate() {
                if REGISTERS.iter().any(|r| line.contains(r)) {
                    if ALLOWED.contains(&relative.as_str()) {
                        seen += 1;
                    } else {
                        found.push(format!("src/{relative}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "routes registered outside http::openapi::Routes, so missing from the API's document \
         (register them with Routes::get/post and their operation; see ARCHITECTURE.md):\n{}",
        found.join("\n")
    );
    assert!(seen >= 4, "the scan did not see the registrations it allows: it is broken");
}

/// A plain WebSocket endpoint may itself end in `/stats`: its statistics, at `{path}/stats`, are
/// its own, not those of the path without the suffix (which used to be stripped as often as it
/// appeared, answering an undocumented 400).
#[tokio::test]
async fn an_endpoint_whose_path_ends_in_stats_answers_its_own_statistics() {
    let dir = tempfile::tempdir().unwrap();
    let spec = "namespace: /feed/stats\ntransport: websocket\nauth: { required: false }\n\
                events:\n  ping: { do: [{ reply: { event: pong } }] }\n";
    std::fs::write(dir.path().join("feed.yaml"), spec).unwrap();
    let app = crate::helpers::spawn_app_with(|config| {
        config.namespaces = realtime_gateway::config::NamespaceSource::Dir(dir.path().to_path_buf());
    })
    .await;
    let document = document(&app).await;
    assert!(document["paths"]["/feed/stats/stats"]["get"].is_object());
    let res = app.http.get(app.url("/feed/stats/stats")).header("x-api-key", API_KEY).send().await.unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({ "total_clients": 0, "total_users": 0, "channels": { "register": 0, "unregister": 0, "broadcast": 0 } })
    );
    app.shutdown().await.unwrap();
}

/// Presence's answers, for one tenant and for every tenant (each user then with its tenant),
/// match the document.
#[tokio::test]
async fn presence_answers_as_documented() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let _client = app.workflow_client("u1", "t1").await;
    let schema =
        &document["paths"]["/api/v1/presence"]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
    for (query, user) in [
        ("?namespace=/workflow&tenantId=t1", json!({ "userId": "u1", "connections": 1 })),
        ("?namespace=/workflow", json!({ "userId": "u1", "tenantId": "t1", "connections": 1 })),
    ] {
        let res = app.http.get(app.url(&format!("/api/v1/presence{query}"))).header("x-api-key", API_KEY).send().await;
        let body: Value = res.unwrap().json().await.unwrap();
        assert_eq!(body["users"], json!([user]), "{query}: {body}");
        matches(&document, schema, &body).unwrap_or_else(|e| panic!("{query}: {body} does not match: {e}"));
    }
    app.shutdown().await.unwrap();
}

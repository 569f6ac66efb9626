//! The HTTP API: keys, body validation, batch atomicity; health, readiness, metrics.

use serde_json::{Value, json};

use crate::helpers::*;

async fn post(app: &TestApp, headers: &[(&str, &str)], body: &str) -> (u16, Value) {
    let mut req =
        app.http.post(app.url("/api/v1/events")).header("content-type", "application/json").body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn missing_or_wrong_keys_get_401() {
    let app = spawn_app().await;
    let body = r#"{"type":"metrics.updated","tenantId":"t1","data":{}}"#;
    for headers in [
        vec![],
        vec![("x-api-key", "wrong")],
        vec![("authorization", "Bearer wrong")],
        vec![("authorization", API_KEY)],
    ] {
        let (status, reply) = post(&app, &headers, body).await;
        assert_eq!(status, 401, "{headers:?}");
        assert_eq!(reply["error"]["type"], "auth");
    }
    let (status, _) = post(&app, &[("authorization", &format!("Bearer {API_KEY}"))], body).await;
    assert_eq!(status, 202, "a bearer key works too");
}

#[tokio::test]
async fn bad_bodies_get_400_saying_what_is_wrong() {
    let app = spawn_app().await;
    let key = [("x-api-key", API_KEY)];
    let cases = [
        ("not json", "the body is not valid JSON"),
        ("42", "the body must be an event object or an array"),
        (r#"{"tenantId":"t1"}"#, "events[0].type must be a non-empty string"),
        (r#"{"type":"","tenantId":"t1"}"#, "events[0].type must be a non-empty string"),
        (r#"{"type":"metrics.updated","tenantId":"t1","data":[1]}"#, "events[0].data must be an object"),
        (r#"{"type":"metrics.updated","tenantId":"t1","dat":{}}"#, "unknown field `dat`"),
        (r#"{"type":"foo.bar","tenantId":"t1"}"#, "events[0].type `foo.bar` is not routed by any namespace spec"),
        (
            r#"{"type":"execution.started","tenantId":"t1","data":{}}"#,
            "events[0].data.executionId is required for `execution.started` events",
        ),
        (r#"{"type":"workflow.created","tenantId":"t1","data":{"workflowId":null}}"#, "data.workflowId is required"),
        (r#"{"type":"metrics.updated","data":{}}"#, "events[0].tenantId is required"),
        (r#"{"type":"metrics.updated","tenantId":["t1"]}"#, "events[0].tenantId must be a non-empty string"),
    ];
    for (body, expected) in cases {
        let (status, reply) = post(&app, &key, body).await;
        assert_eq!(status, 400, "{body}: {reply}");
        assert_eq!(reply["error"]["type"], "validation");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{body}: {message}");
    }
}

#[tokio::test]
async fn a_batch_with_one_bad_event_publishes_nothing() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    c.emit_with_ack("subscribe", json!({ "type": "tenant_activity" })).await;
    let (status, reply) = app
        .publish(json!([
            { "type": "metrics.updated", "tenantId": "t1", "data": { "n": 1 } },
            { "type": "execution.started", "tenantId": "t1", "data": {} },
        ]))
        .await;
    assert_eq!(status, 400);
    assert!(reply["error"]["message"].as_str().unwrap().starts_with("events[1]"), "{reply}");
    app.publish_ok(json!({ "type": "metrics.updated", "tenantId": "t1", "data": { "n": 2 } })).await;
    assert_eq!(c.wait_for("update").await["payload"]["n"], 2, "the first event of the refused batch never went out");
}

#[tokio::test]
async fn oversized_bodies_and_batches_are_refused() {
    let app = spawn_app_with(|c| {
        c.limits.api_max_body_bytes = 1000;
        c.limits.api_max_batch = 2;
    })
    .await;
    let big = json!({ "type": "metrics.updated", "tenantId": "t1", "data": { "x": "y".repeat(2000) } }).to_string();
    let (status, reply) = post(&app, &[("x-api-key", API_KEY)], &big).await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["type"], "validation");
    let three = json!([{ "type": "metrics.updated", "tenantId": "t1" }, { "type": "metrics.updated", "tenantId": "t1" }, { "type": "metrics.updated", "tenantId": "t1" }]);
    let (status, reply) = app.publish(three).await;
    assert_eq!(status, 400);
    assert!(reply["error"]["message"].as_str().unwrap().contains("the limit is 2"), "{reply}");
}

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    let health: Value = app.http.get(app.url("/healthz")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let _connected = app.workflow_client("u1", "t1").await;
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("realtime_gateway_connections 1"), "{metrics}");
}

#[tokio::test]
async fn cors_allows_the_configured_origin_with_credentials_only() {
    let app = spawn_app_with(|c| c.cors_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        app.http
            .request(reqwest::Method::OPTIONS, app.url("/socket.io/?EIO=4&transport=polling"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example");
    assert_eq!(ok.headers()["access-control-allow-credentials"], "true");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_graceful_shutdown_closes_every_socket_and_returns() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    let addr = app.addr;
    app.shutdown().await.expect("a clean shutdown");
    c.expect_disconnect().await;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
}

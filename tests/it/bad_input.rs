//! Bad input from clients: each gets the seed's error, the socket stays usable, other clients are
//! unaffected and the process keeps serving.

use serde_json::json;

use crate::helpers::*;

/// A connected bystander subscribed to `execution:e1`, to prove others are unaffected.
async fn bystander(app: &TestApp) -> SioClient {
    let mut c = app.workflow_client("bystander", "t1").await;
    c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": "e1" })).await;
    c
}

async fn bystander_still_receives(app: &TestApp, c: &mut SioClient) {
    app.publish_ok(json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1" } })).await;
    assert_eq!(c.wait_for("update").await["type"], "execution.started");
}

#[tokio::test]
async fn invalid_payloads_get_a_validation_error_naming_the_field_and_the_socket_stays() {
    let app = spawn_app().await;
    let mut others = bystander(&app).await;
    let mut c = app.workflow_client("u1", "t1").await;
    let cases = [
        (json!({}), "\"type\" is a required property"),
        (json!({ "type": "nope" }), "type: must be one of"),
        (json!({ "type": 42 }), "type: must be one of"),
        (json!({ "type": "execution", "resourceId": 7 }), "resourceId: 7 is not of type \"string\""),
        (json!({ "type": "execution", "resourceId": "x".repeat(201) }), "resourceId: "),
        (json!({ "type": "logs", "filters": { "logLevel": "loud" } }), "filters.logLevel: must be one of"),
        (json!("execution"), "payload: "),
        (json!(null), "payload: "),
    ];
    for (payload, expected) in cases {
        let ack = c.emit_with_ack("subscribe", payload.clone()).await;
        let error = c.expect("error").await;
        assert_eq!(ack["error"], error, "the ack carries the same error");
        assert_eq!(error["type"], "validation", "{payload}: {error}");
        assert_eq!(error["event"], "subscribe");
        assert!(error["message"].as_str().unwrap().contains(expected), "{payload}: {error}");
        assert!(error["timestamp"].is_string());
    }
    let err = c.emit_with_ack("get_status", json!({})).await;
    assert_eq!(err["error"]["message"], "get_status needs an executionId or a workflowId");
    c.assert_alive().await;
    bystander_still_receives(&app, &mut others).await;
}

#[tokio::test]
async fn malformed_packets_do_not_crash_anything() {
    let app = spawn_app().await;
    let mut others = bystander(&app).await;
    let mut c = app.workflow_client("u1", "t1").await;
    // Valid Socket.IO packets with payloads the handler must survive.
    for raw in [
        "42/workflow,[\"subscribe\"]",
        "42/workflow,[\"subscribe\",{\"type\":\"logs\",\"filters\":[1,2]}]",
        "42/workflow,[\"subscribe\",{\"type\":\"logs\",\"filters\":{\"stepId\":{\"$gt\":\"\"}}}]",
        "42/workflow,[\"unsubscribe\",{\"subscriptionKey\":\"%%%\"}]",
        "42/workflow,[\"unsubscribe\",{\"subscriptionKey\":\"logs:%ZZ:*:*\"}]",
        "42/workflow,[\"get_status\",{\"executionId\":\"\\u0000\"}]",
        "42/workflow,[\"no_such_event\",{}]",
    ] {
        c.send_raw(raw).await;
    }
    c.assert_alive().await;
    bystander_still_receives(&app, &mut others).await;

    // Packets the protocol parser rejects close that one connection, as socket.io does.
    let mut broken = app.workflow_client("u2", "t1").await;
    broken.send_raw("42/workflow,[\"subscribe\",{\"type\":").await;
    broken.expect_disconnect().await;
    bystander_still_receives(&app, &mut others).await;
    // And the process still admits new connections.
    app.workflow_client("u3", "t1").await;
}

#[tokio::test]
async fn an_oversized_event_gets_an_error_and_the_connection_stays() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    let big = "x".repeat(70 * 1024);
    let ack = c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": big })).await;
    let message = ack["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("payload too large"), "{message}");
    assert_eq!(c.expect("error").await["type"], "validation");
    c.assert_alive().await;
}

#[tokio::test]
async fn an_oversized_event_is_refused_before_it_is_parsed() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    // Nested far deeper than the JSON parser goes: only a refusal before parsing names its size.
    let nested = format!("{}{}", "[".repeat(40_000), "]".repeat(40_000));
    c.send_raw(&format!("42/workflow,[\"subscribe\",{nested}]")).await;
    let message = c.expect("error").await["message"].as_str().unwrap().to_string();
    assert!(message.starts_with("payload too large"), "{message}");
    c.assert_alive().await;
}

#[tokio::test]
async fn a_message_over_the_transport_limit_closes_only_that_connection() {
    let app = spawn_app_with(|c| c.transport.max_http_buffer_size = 100_000).await;
    let mut others = bystander(&app).await;
    let mut c = app.workflow_client("u1", "t1").await;
    c.emit("subscribe", json!({ "type": "execution", "resourceId": "x".repeat(200_000) })).await;
    c.expect_disconnect().await;
    bystander_still_receives(&app, &mut others).await;
}

#[tokio::test]
async fn rate_limits_answer_with_rate_limit_errors_per_socket() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    let mut other = app.workflow_client("u2", "t1").await;
    for _ in 0..10 {
        let ack = c.emit_with_ack("get_status", json!({ "executionId": "e1" })).await;
        assert!(ack.get("error").is_none(), "{ack}");
    }
    let ack = c.emit_with_ack("get_status", json!({ "executionId": "e1" })).await;
    assert_eq!(ack["error"]["type"], "rate_limit");
    let wait = ack["error"]["retryAfterMs"].as_u64().unwrap();
    assert!(wait > 1000 && wait <= 6000, "about one request per 6s is refilled: {wait}");
    // Another socket has its own budget.
    let ack = other.emit_with_ack("get_status", json!({ "executionId": "e1" })).await;
    assert!(ack.get("error").is_none(), "{ack}");
}

#[tokio::test]
async fn a_flood_is_cut_down_without_a_flood_of_errors() {
    let app = spawn_app_with(|c| c.limits.events_per_second = 5).await;
    let mut c = app.workflow_client("u1", "t1").await;
    for _ in 0..200 {
        c.send_raw("42/workflow,[\"no_such_event\",{}]").await;
    }
    // One rate-limit notice, not two hundred: the next error event is the only one.
    let notice = c.wait_for("error").await;
    assert_eq!(notice["type"], "rate_limit");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.send_raw("42/workflow,[\"ping\",{}]").await;
    assert_eq!(c.next_event().await.0, "pong", "no backlog of error events, and the socket still works");
}

#[tokio::test]
async fn too_many_rooms_are_refused() {
    let app = spawn_app_with(|c| c.limits.max_rooms_per_socket = 3).await;
    let mut c = app.workflow_client("u1", "t1").await;
    // The tenant room is one; two subscriptions fill the budget.
    for id in ["e1", "e2"] {
        let ack = c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": id })).await;
        assert!(ack.get("error").is_none(), "{ack}");
    }
    let ack = c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": "e3" })).await;
    assert_eq!(ack["error"]["type"], "rate_limit", "{ack}");
    let again = c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": "e1" })).await;
    assert!(again.get("error").is_none(), "re-subscribing to a room already joined is fine: {again}");
}

#[tokio::test]
async fn an_unknown_namespace_is_refused_with_connect_error() {
    let app = spawn_app().await;
    let mut ws = SioClient::open(app.addr, "").await;
    use futures_util::SinkExt;
    ws.send(tokio_tungstenite::tungstenite::Message::text("40/nope,")).await.unwrap();
    let reply = next_text(&mut ws).await.unwrap();
    assert!(reply.starts_with("44/nope,"), "{reply}");
}

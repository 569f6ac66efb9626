//! Admission and token lifetime at the protocol level.

use futures_util::SinkExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

/// Connects to /workflow with `auth` and returns what the server said, packet by packet, until
/// it disconnected the namespace.
async fn refused_sequence(app: &TestApp, query: &str, auth: serde_json::Value) -> Vec<String> {
    let mut ws = SioClient::open(app.addr, query).await;
    ws.send(Message::text(format!("40/workflow,{auth}"))).await.unwrap();
    let mut packets = Vec::new();
    while let Some(text) = next_text(&mut ws).await {
        let done = text.starts_with("41/workflow");
        packets.push(text);
        if done {
            break;
        }
    }
    packets
}

fn error_message(packets: &[String]) -> String {
    let event = packets.iter().find(|p| p.starts_with("42/workflow,")).expect("an error event");
    let value: serde_json::Value = serde_json::from_str(event.trim_start_matches("42/workflow,")).unwrap();
    assert_eq!(value[0], "error");
    assert_eq!(value[1]["type"], "auth");
    value[1]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_refused_socket_connects_then_gets_an_auth_error_then_a_disconnect() {
    let app = spawn_app().await;
    let packets = refused_sequence(&app, "", json!({})).await;
    assert_eq!(packets.len(), 3, "{packets:?}");
    assert!(packets[0].starts_with("40/workflow,"), "{packets:?}");
    assert_eq!(error_message(&packets), "Authentication token required");
    assert_eq!(packets[2], "41/workflow,");
}

#[tokio::test]
async fn bad_tokens_are_refused_with_the_reason() {
    let app = spawn_app().await;
    let cases = [
        (json!({ "token": token("u1", Some("t1"), -60) }), "Authentication token expired"),
        (json!({ "token": "garbage" }), "Invalid authentication token"),
        (json!({ "token": token_with(json!({ "tenantId": "t1" }), 60) }), "Invalid authentication token"),
        (json!({ "token": token("u1", None, 60) }), "Authentication token has no tenantId"),
    ];
    for (auth, message) in cases {
        assert_eq!(error_message(&refused_sequence(&app, "", auth).await), message);
    }
    let other_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({ "sub": "u1", "tenantId": "t1", "exp": 4_000_000_000u64 }),
        &jsonwebtoken::EncodingKey::from_secret(b"another secret"),
    )
    .unwrap();
    assert_eq!(
        error_message(&refused_sequence(&app, "", json!({ "token": other_secret })).await),
        "Invalid authentication token"
    );
}

#[tokio::test]
async fn the_query_token_is_used_when_the_auth_payload_has_none() {
    let app = spawn_app().await;
    let query = format!("&token={}", token("u1", Some("t1"), 60));
    let mut ws = SioClient::open(app.addr, &query).await;
    ws.send(Message::text("40/workflow,")).await.unwrap();
    let reply = next_text(&mut ws).await.unwrap();
    assert!(reply.starts_with("40/workflow,"), "{reply}");
    let sid = serde_json::from_str::<serde_json::Value>(reply.trim_start_matches("40/workflow,")).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut c = SioClient::from_ws(ws, "/workflow", &sid);
    assert_eq!(c.expect("connected").await["userId"], "u1");
}

#[tokio::test]
async fn an_expiring_token_ends_the_connection_unless_refreshed() {
    let app = spawn_app().await;
    let mut expiring = SioClient::connect(app.addr, "/workflow", json!({ "token": token("u1", Some("t1"), 2) })).await;
    let mut refreshed = SioClient::connect(app.addr, "/workflow", json!({ "token": token("u2", Some("t1"), 2) })).await;
    expiring.expect("connected").await;
    refreshed.expect("connected").await;

    let reply = refreshed.emit_with_ack("auth:refresh", json!({ "token": token("u2", Some("t1"), 3600) })).await;
    assert!(reply["expiresAt"].is_string(), "{reply}");
    assert_eq!(refreshed.expect("auth:refreshed").await, reply);
    let refused =
        refreshed.emit_with_ack("auth:refresh", json!({ "token": token("someone-else", Some("t1"), 3600) })).await;
    assert_eq!(refused["error"]["type"], "auth");
    assert_eq!(refused["error"]["message"], "the new token must be for the same user and tenant");
    refreshed.expect("error").await;

    // Both clients must keep reading (answering heartbeats) while the first token runs out.
    let (error, ()) = tokio::join!(expiring.wait_for("error"), refreshed.idle(std::time::Duration::from_millis(3500)));
    assert_eq!(
        error,
        json!({ "message": "Authentication token expired", "type": "auth", "timestamp": error["timestamp"] })
    );
    expiring.expect_disconnect().await;
    refreshed.assert_alive().await;
}

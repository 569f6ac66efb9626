//! Presence: `GET /api/v1/presence` counts users and connections of a room or a tenant (a
//! tenant key its own tenant only), of a Socket.IO namespace or of the plain WebSocket endpoint
//! that shares its name (`transport=websocket`), and a room family with `presence:` announces a
//! user's first connection and its last one leaving, once, with nothing for a reconnect inside
//! the window.

use std::time::Duration;

use realtime_gateway::config::{NamespaceSource, TenantApiKey};
use secrecy::SecretString;
use serde_json::{Value, json};

use crate::helpers::*;

const TENANT_KEY: &str = "presence-tenant-key";
/// Longer than the presence window and a flush: what would be announced is by then.
const QUIET: Duration = Duration::from_millis(1_600);

/// A namespace with one room family that announces its users and one that does not.
const SPEC: &str = r#"
namespace: /presence
auth: { required: true, require_tenant: true }
rooms:
  lobby:
    pattern: "lobby:{name}"
    presence: { online: "user:online", offline: "user:offline" }
  quiet:
    pattern: "quiet:{name}"
events:
  enter:
    payload: { type: object, required: [room], properties: { room: { type: string } } }
    do:
      - join: { name: "{payload.room}" }
      - reply: { data: { ok: true } }
  exit:
    payload: { type: object, required: [room], properties: { room: { type: string } } }
    do:
      - leave: { name: "{payload.room}" }
      - reply: { data: { ok: true } }
"#;

async fn spawn_presence_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("presence.yaml"), SPEC).unwrap();
    let path = dir.path().to_path_buf();
    let app = spawn_app_with(move |c| {
        c.namespaces = NamespaceSource::Dir(path);
        // Clients that stop reading for a while are not the subject here: a socket ends when
        // its client drops it.
        c.transport.ping_interval = Duration::from_secs(10);
        c.transport.ping_timeout = Duration::from_secs(10);
        c.tenant_api_keys = vec![TenantApiKey { tenant: "t1".into(), key: SecretString::from(TENANT_KEY.to_string()) }];
    })
    .await;
    (app, dir)
}

/// A socket of `user` in tenant `tenant`, in `rooms`.
async fn member(app: &TestApp, user: &str, tenant: &str, rooms: &[&str]) -> SioClient {
    let mut client =
        SioClient::connect(app.addr, "/presence", json!({ "token": token(user, Some(tenant), 600) })).await;
    for room in rooms {
        assert_eq!(client.emit_with_ack("enter", json!({ "room": room })).await, json!({ "ok": true }));
    }
    client
}

async fn presence(app: &TestApp, key: &str, query: &str) -> (u16, Value) {
    let res =
        app.http.get(app.url(&format!("/api/v1/presence?{query}"))).header("x-api-key", key).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn presence_counts_users_and_connections_and_a_tenant_key_sees_its_tenant_only() {
    let (app, _dir) = spawn_presence_app().await;
    let _a1 = member(&app, "alice", "t1", &["lobby:a", "quiet:a"]).await;
    let _a2 = member(&app, "alice", "t1", &["lobby:a"]).await;
    let _b = member(&app, "bob", "t1", &["lobby:a"]).await;
    let _c = member(&app, "carol", "t1", &["quiet:a"]).await;
    let _other = member(&app, "alice", "t2", &["lobby:a"]).await;

    let (status, body) = presence(&app, API_KEY, "namespace=/presence&room=lobby:a&tenantId=t1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"], json!([{ "userId": "alice", "connections": 2 }, { "userId": "bob", "connections": 1 }]));
    assert_eq!(body["connections"], 3);
    assert_eq!(body["complete"], true);

    // The whole tenant, with the tenant's own key (no tenantId: its own).
    let (status, body) = presence(&app, TENANT_KEY, "namespace=/presence").await;
    assert_eq!(status, 200, "{body}");
    let users: Vec<&str> = body["users"].as_array().unwrap().iter().map(|u| u["userId"].as_str().unwrap()).collect();
    assert_eq!((users, body["connections"].clone()), (vec!["alice", "bob", "carol"], json!(4)));

    // Another tenant's presence with a tenant key: 403; bad queries: 400.
    let (status, body) = presence(&app, TENANT_KEY, "namespace=/presence&room=lobby:a&tenantId=t2").await;
    assert_eq!((status, body["error"]["type"].as_str()), (403, Some("forbidden")), "{body}");
    let (status, body) = presence(&app, API_KEY, "namespace=/nope&room=lobby:a&tenantId=t1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no namespace `/nope`"), "{body}");
    let (status, body) = presence(&app, API_KEY, "namespace=/presence&room=lobby:a").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("tenantId"), "{body}");
    assert_eq!(presence(&app, "wrong", "namespace=/presence").await.0, 401);
}

#[tokio::test]
async fn a_users_first_connection_comes_online_its_last_goes_offline_and_a_reconnect_announces_nothing() {
    let (app, _dir) = spawn_presence_app().await;
    let mut watcher = member(&app, "watcher", "t1", &["lobby:a"]).await;
    assert_eq!(watcher.wait_for("user:online").await["userId"], "watcher");

    // Two connections of one user: one `online`; in a family without presence: nothing.
    let first = member(&app, "alice", "t1", &["lobby:a", "quiet:a"]).await;
    let second = member(&app, "alice", "t1", &["lobby:a"]).await;
    let online = watcher.expect("user:online").await;
    assert_eq!((online["userId"].as_str(), online["room"].as_str()), (Some("alice"), Some("lobby:a")));
    assert!(online["timestamp"].is_string(), "{online}");
    // The second connection leaving: still online.
    drop(second);
    watcher.idle(QUIET).await;
    // The last one leaving: `offline`, and no event before it.
    drop(first);
    assert_eq!(watcher.expect("user:offline").await["userId"], "alice");

    // A reconnect inside the window: nothing at all.
    let bob = member(&app, "bob", "t1", &["lobby:a"]).await;
    assert_eq!(watcher.expect("user:online").await["userId"], "bob");
    drop(bob);
    let _bob = member(&app, "bob", "t1", &["lobby:a"]).await;
    watcher.idle(QUIET).await;
    // Leaving the room by event counts as leaving.
    let mut carol = member(&app, "carol", "t1", &["lobby:a"]).await;
    assert_eq!(watcher.expect("user:online").await["userId"], "carol");
    carol.emit_with_ack("exit", json!({ "room": "lobby:a" })).await;
    assert_eq!(watcher.expect("user:offline").await["userId"], "carol");

    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let coalesced = metrics.lines().find(|l| l.starts_with("realtime_gateway_presence_coalesced_total")).unwrap();
    assert_ne!(coalesced.rsplit(' ').next(), Some("0"), "{coalesced}");
}

/// A plain WebSocket client of the shipped `/ws` endpoint, of `user` in tenant `t1`, subscribed
/// to `channel` (with `filters` when given).
async fn hub_subscriber(app: &TestApp, user: &str, channel: &str, filters: Option<Value>) -> PlainWs {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("ws://{}/ws?token={}", app.addr, token(user, Some("t1"), 600));
    let (mut ws, _) =
        tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.expect("a handshake in time").unwrap();
    let mut data = json!({ "channel": channel });
    if let Some(filters) = filters {
        data["filters"] = filters;
    }
    ws.send(Message::text(json!({ "type": "subscribe", "data": data }).to_string())).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("`subscribed` in time") {
            Some(Ok(Message::Text(text))) if serde_json::from_str::<Value>(&text).unwrap()["type"] == "subscribed" => {
                return ws;
            }
            Some(Ok(_)) => {}
            other => panic!("closed: {other:?}"),
        }
    }
}

type PlainWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

#[tokio::test]
async fn the_plain_websocket_endpoint_answers_by_channel_and_tenant_beside_the_namespace_of_its_name() {
    // The shipped specs: the Socket.IO namespace `/ws` and the plain endpoint `/ws` share a name.
    let app = spawn_app().await;
    let _alice = hub_subscriber(&app, "alice", "executions:e1", None).await;
    let _filtered = hub_subscriber(&app, "alice", "executions:e1", Some(json!({ "statuses": ["running"] }))).await;
    let _bob = hub_subscriber(&app, "bob", "executions:e2", None).await;

    let (status, body) =
        presence(&app, API_KEY, "namespace=/ws&transport=websocket&room=executions:e1&tenantId=t1").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["users"], json!([{ "userId": "alice", "connections": 2 }]), "the filtered one too");
    assert_eq!((&body["connections"], &body["transport"]), (&json!(2), &json!("websocket")), "{body}");
    let (status, body) = presence(&app, API_KEY, "namespace=/ws&transport=websocket&tenantId=t1").await;
    assert_eq!((status, &body["connections"]), (200, &json!(3)), "{body}");

    // Without `transport`, `/ws` is the Socket.IO namespace, which has no such room.
    let (status, body) = presence(&app, API_KEY, "namespace=/ws&room=executions:e1&tenantId=t1").await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = presence(&app, API_KEY, "namespace=/ws&tenantId=t1").await;
    assert_eq!((status, &body["transport"], &body["connections"]), (200, &json!("socketio"), &json!(0)), "{body}");
    let (status, body) = presence(&app, API_KEY, "namespace=/ws&transport=polling").await;
    assert_eq!(status, 400, "{body}");
}

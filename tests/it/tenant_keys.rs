//! Tenant-scoped API keys (`TENANT_API_KEYS`): a key acts for its own tenant only, on every
//! endpoint (publish, emit, notifications, statistics, the plain WebSocket's handshake and
//! statistics), while `API_KEYS` stay platform-wide.

use futures_util::{SinkExt, StreamExt};
use realtime_gateway::config::TenantApiKey;
use secrecy::SecretString;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest};

use crate::helpers::*;

const KEY_A: &str = "tenant-a-key";
const KEY_B: &str = "tenant-b-key";

async fn spawn_tenant_app() -> TestApp {
    spawn_app_with(|c| {
        c.tenant_api_keys = [("tenant-a", KEY_A), ("tenant-b", KEY_B)]
            .into_iter()
            .map(|(tenant, key)| TenantApiKey { tenant: tenant.into(), key: SecretString::from(key.to_string()) })
            .collect();
    })
    .await
}

/// Sends `body` to `path` with `key`; the status and JSON answer.
async fn post(app: &TestApp, path: &str, key: &str, body: Value) -> (u16, Value) {
    let res = app.http.post(app.url(path)).header("x-api-key", key).json(&body).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, key: &str) -> (u16, Value) {
    let res = app.http.get(app.url(path)).header("x-api-key", key).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// A 403 `forbidden` answer whose message contains `says`.
fn assert_forbidden((status, body): (u16, Value), says: &str) {
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["type"], "forbidden", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message}");
    assert!(!message.contains(KEY_A) && !message.contains(KEY_B), "a key in an answer: {message}");
}

fn started(tenant: Option<&str>, execution: &str) -> Value {
    let mut event = json!({ "type": "execution.started", "data": { "executionId": execution, "status": "running" } });
    if let Some(tenant) = tenant {
        event["tenantId"] = json!(tenant);
    }
    event
}

/// A `/workflow` client of `tenant` subscribed to every execution of its tenant.
async fn subscriber(app: &TestApp, tenant: &str) -> SioClient {
    let mut client = app.workflow_client("u1", tenant).await;
    client.emit_with_ack("subscribe", json!({ "type": "execution" })).await;
    client
}

/// The `executionId` of the next `update` the client receives.
async fn next_execution(client: &mut SioClient) -> Value {
    client.wait_for("update").await["payload"]["executionId"].clone()
}

#[tokio::test]
async fn a_tenant_key_publishes_to_its_tenant_only_and_a_batch_naming_another_publishes_nothing() {
    let app = spawn_tenant_app().await;
    let mut a = subscriber(&app, "tenant-a").await;
    let mut b = subscriber(&app, "tenant-b").await;

    // No tenantId: the key's own. Its own named: the same.
    let (status, body) = post(&app, "/api/v1/events", KEY_A, started(None, "a1")).await;
    assert_eq!((status, &body), (202, &json!({ "accepted": 1 })));
    assert_eq!(post(&app, "/api/v1/events", KEY_A, started(Some("tenant-a"), "a2")).await.0, 202);
    assert_eq!(next_execution(&mut a).await, "a1");
    assert_eq!(next_execution(&mut a).await, "a2");

    // Another tenant, alone or in a batch: 403, and nothing of the batch is published.
    assert_forbidden(
        post(&app, "/api/v1/events", KEY_A, started(Some("tenant-b"), "b-by-a")).await,
        "events[0].tenantId is `tenant-b`",
    );
    assert_forbidden(
        post(&app, "/api/v1/events", KEY_A, json!([started(None, "a3"), started(Some("tenant-b"), "b-by-a")])).await,
        "events[1].tenantId",
    );
    // Each socket's next update is the one published after the refusals: nothing came before.
    app.publish_ok(json!([started(Some("tenant-b"), "b-marker"), started(Some("tenant-a"), "a-marker")])).await;
    assert_eq!(next_execution(&mut b).await, "b-marker");
    assert_eq!(next_execution(&mut a).await, "a-marker");

    // Tenant B's key reaches tenant B, never A.
    assert_eq!(post(&app, "/api/v1/events", KEY_B, started(None, "b1")).await.0, 202);
    app.publish_ok(started(Some("tenant-a"), "a-marker-2")).await;
    assert_eq!(next_execution(&mut b).await, "b1");
    assert_eq!(next_execution(&mut a).await, "a-marker-2");
}

#[tokio::test]
async fn a_tenant_key_reaches_no_room_every_tenant_shares() {
    let app = spawn_tenant_app().await;
    let alert = json!({ "type": "platform.security.alert", "data": { "type": "failed_login" } });
    assert_forbidden(post(&app, "/api/v1/events", KEY_A, alert.clone()).await, "`platform_security` rooms of /ws");
    assert_eq!(app.publish(alert).await.0, 202, "a platform key may");

    let emit = |rooms: Value, tenant: Option<&str>| json!({ "namespace": "/ws", "rooms": rooms, "event": "chat.message", "data": { "text": "hi" }, "tenantId": tenant });
    let (status, body) = post(&app, "/api/v1/emit", KEY_A, emit(json!(["global.general"]), None)).await;
    assert_eq!((status, &body), (202, &json!({ "rooms": 1 })), "a tenant room of its own tenant");
    assert_forbidden(
        post(&app, "/api/v1/emit", KEY_A, emit(json!(["global.general"]), Some("tenant-b"))).await,
        "tenantId is `tenant-b`",
    );
    assert_forbidden(
        post(&app, "/api/v1/emit", KEY_A, emit(json!(["global.general", "platform.admins"]), None)).await,
        "`platform.admins` is a platform-wide room of /ws",
    );

    let notification = |tenant: Option<&str>| json!({ "recipient": { "userId": "u1" }, "content": { "subject": "hi" }, "tenantId": tenant });
    assert_eq!(post(&app, "/api/v1/notifications", KEY_A, notification(None)).await.0, 202, "its tenant implied");
    assert_forbidden(post(&app, "/api/v1/notifications", KEY_A, notification(Some("tenant-b"))).await, "tenantId");
}

#[tokio::test]
async fn a_notification_by_a_tenant_key_reaches_its_tenants_user_only() {
    let app = spawn_tenant_app().await;
    let mut clients = Vec::new();
    for tenant in ["tenant-a", "tenant-b"] {
        let mut client = SioClient::connect(app.addr, "/ws", json!({ "token": token("u1", Some(tenant), 3600) })).await;
        client.wait_for("connection.confirmed").await;
        clients.push(client);
    }
    let body = json!({ "recipient": { "userId": "u1" }, "content": { "subject": "for a" } });
    assert_eq!(post(&app, "/api/v1/notifications", KEY_A, body).await.0, 202);
    let body = json!({ "recipient": { "userId": "u1" }, "content": { "subject": "for b" }, "tenantId": "tenant-b" });
    assert_eq!(post(&app, "/api/v1/notifications", KEY_B, body).await.0, 202);
    assert_eq!(clients[0].wait_for("user.notification").await["subject"], "for a");
    assert_eq!(clients[1].wait_for("user.notification").await["subject"], "for b", "b's first is its own");
}

#[tokio::test]
async fn a_tenant_key_reads_its_own_tenants_statistics_only() {
    let app = spawn_tenant_app().await;
    let _a = subscriber(&app, "tenant-a").await;
    let _b1 = subscriber(&app, "tenant-b").await;
    let _b2 = subscriber(&app, "tenant-b").await;

    let (status, all) = get(&app, "/api/v1/stats?namespace=/workflow", API_KEY).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["namespaces"]["/workflow"]["tenants"], json!({ "tenant-a": 1, "tenant-b": 2 }));

    let (status, mine) = get(&app, "/api/v1/stats", KEY_B).await;
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["connections"], 2, "{mine}");
    assert_eq!(
        mine["namespaces"]["/workflow"],
        json!({ "connections": 2, "tenants": { "tenant-b": 2 }, "anonymous": 0 })
    );
    assert_eq!(mine["namespaces"]["/ws"], json!({ "connections": 0, "tenants": {}, "anonymous": 0 }));

    let (status, room) = get(&app, "/api/v1/stats?namespace=/workflow&room=execution:*", KEY_A).await;
    assert_eq!(status, 200, "{room}");
    assert_eq!(room["room"]["tenantId"], "tenant-a", "an absent tenantId is the key's own");
    let (_, same) = get(&app, "/api/v1/stats?namespace=/workflow&room=execution:*&tenantId=tenant-a", API_KEY).await;
    assert_eq!(room["room"], same["room"]);
    assert_eq!(room["room"]["sockets"], 1, "{room}");
    assert_forbidden(get(&app, "/api/v1/stats?tenantId=tenant-a", KEY_B).await, "tenantId is `tenant-a`");
    assert_forbidden(
        get(&app, "/api/v1/stats?namespace=/ws&room=platform.admins", KEY_A).await,
        "`platform.admins` is a platform-wide room",
    );
    assert_eq!(get(&app, "/api/v1/stats", "tenant-a").await.0, 401, "a tenant id is no key");
}

/// A plain WebSocket to `/ws` (seed 001's hub protocol) with `X-API-Key: key` and `query`:
/// the socket, or the handshake's status and JSON body.
async fn hub(app: &TestApp, key: &str, query: &str) -> Result<PlainWs, (u16, Value)> {
    let mut request = format!("ws://{}/ws{query}", app.addr).into_client_request().unwrap();
    request.headers_mut().insert("x-api-key", key.parse().unwrap());
    match tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request)).await.expect("a handshake in time") {
        Ok((ws, _)) => Ok(ws),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            let body = response.body().as_deref().map(|b| serde_json::from_slice(b).unwrap()).unwrap_or(Value::Null);
            Err((response.status().as_u16(), body))
        }
        Err(e) => panic!("{e}"),
    }
}

type PlainWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next envelope of `kind`, skipping others.
async fn envelope(ws: &mut PlainWs, kind: &str) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap_or_else(|_| panic!("no `{kind}` within {WAIT:?}")) {
            Some(Ok(Message::Text(text))) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                if message["type"] == kind {
                    return message;
                }
            }
            Some(Ok(_)) => {}
            other => panic!("closed while waiting for `{kind}`: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_tenant_key_connects_to_the_plain_endpoint_as_a_backend_of_its_tenant() {
    let app = spawn_tenant_app().await;
    let mut service = hub(&app, KEY_A, "").await.expect("a tenant key needs no ?tenantId=");
    service.send(Message::text(r#"{"type":"subscribe","data":{"channel":"executions"}}"#)).await.unwrap();
    envelope(&mut service, "subscribed").await;
    app.publish_ok(json!([started(Some("tenant-b"), "b1"), started(Some("tenant-a"), "a1")])).await;
    let got = envelope(&mut service, "execution.started").await;
    assert_eq!(got["data"]["executionId"], "a1", "tenant b's event came first: {got}");

    let _own_named = hub(&app, KEY_A, "?tenantId=tenant-a").await.expect("its own tenant named");
    let (status, body) = hub(&app, KEY_A, "?tenantId=tenant-b").await.expect_err("another tenant is refused");
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("not this API key's tenant"), "{body}");
    let (status, body) = hub(&app, API_KEY, "").await.expect_err("a platform key names its tenant");
    assert_eq!(status, 400, "{body}");
    let _platform_for_b = hub(&app, API_KEY, "?tenantId=tenant-b").await.expect("a platform key names a tenant");

    // `/ws/stats`: a tenant key counts its tenant's connections only.
    let _b = hub(&app, KEY_B, "").await.unwrap();
    let _b2 = hub(&app, KEY_B, "").await.unwrap();
    let clients = |key: &'static str| {
        let app = &app;
        async move {
            let (status, stats) = get(app, "/ws/stats", key).await;
            assert_eq!(status, 200, "{stats}");
            stats["total_clients"].as_u64().unwrap()
        }
    };
    // Registration follows the handshake: wait until all five count.
    let deadline = tokio::time::Instant::now() + WAIT;
    while clients(API_KEY).await < 5 {
        assert!(tokio::time::Instant::now() < deadline, "the connections were never counted");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(clients(KEY_A).await, 2, "a's service and the one that named tenant-a");
    assert_eq!(clients(KEY_B).await, 3, "b's two and the platform key's for tenant-b");
}

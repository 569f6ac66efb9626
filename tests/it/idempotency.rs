//! Idempotent writes: `Idempotency-Key` on the three write endpoints (a repeat is answered with
//! the first answer and delivers nothing; 409 while the first runs; 422 for another body; only
//! 2xx answers are kept), and published events' `id` (delivered once per tenant).

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

use crate::helpers::*;

/// An answer: status, headers and the body exactly as sent.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }

    fn replayed(&self) -> bool {
        self.headers.get("idempotent-replayed").is_some_and(|v| v == "true")
    }
}

/// POSTs `body` to `path` with the test API key (or `api_key`) and `key` as `Idempotency-Key`.
async fn post_as(app: &TestApp, api_key: &str, path: &str, key: Option<&[u8]>, body: &Value) -> Answer {
    let mut request = app.http.post(app.url(path)).header("x-api-key", api_key).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", HeaderValue::from_bytes(key).unwrap());
    }
    let response = request.send().await.expect("the request is answered");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Answer { status, headers, body: response.text().await.unwrap() }
}

async fn post(app: &TestApp, path: &str, key: Option<&str>, body: &Value) -> Answer {
    post_as(app, API_KEY, path, key.map(str::as_bytes), body).await
}

/// A `/workflow` client of `tenant` that gets every `metrics.updated` of its tenant as `update`.
async fn watcher(app: &TestApp, tenant: &str) -> SioClient {
    let mut c = app.workflow_client("u1", tenant).await;
    c.emit_with_ack("subscribe", json!({ "type": "tenant_activity" })).await;
    c
}

fn metric(tenant: &str, n: u64) -> Value {
    json!({ "type": "metrics.updated", "tenantId": tenant, "data": { "n": n } })
}

/// The next `update`'s `n`.
async fn next_n(c: &mut SioClient) -> u64 {
    c.wait_for("update").await["payload"]["n"].as_u64().expect("an update with n")
}

/// A socket on `/` (notifications) for `sub` in `tenant`, which never acknowledges.
async fn notified_socket(app: &TestApp, sub: &str, tenant: &str) -> SioClient {
    let mut ws = SioClient::open(app.addr, "").await;
    let auth = json!({ "token": token(sub, Some(tenant), 3600) });
    futures_util::SinkExt::send(&mut ws, tokio_tungstenite::tungstenite::Message::text(format!("40{auth}")))
        .await
        .unwrap();
    let reply = next_text(&mut ws).await.expect("a reply to the connect");
    let sid = serde_json::from_str::<Value>(reply.strip_prefix("40").expect("a CONNECT")).unwrap()["sid"]
        .as_str()
        .unwrap()
        .to_string();
    SioClient::from_ws(ws, "", &sid)
}

#[tokio::test]
async fn a_repeat_gets_the_first_answer_with_the_header_and_delivers_nothing() {
    let app = spawn_app().await;
    let mut c = watcher(&app, "t1").await;

    let first = post(&app, "/api/v1/events", Some("key-1"), &metric("t1", 1)).await;
    assert_eq!((first.status, first.json()), (202, json!({ "accepted": 1 })));
    assert!(!first.replayed());
    assert_eq!(next_n(&mut c).await, 1);
    for _ in 0..2 {
        let again = post(&app, "/api/v1/events", Some("key-1"), &metric("t1", 1)).await;
        assert_eq!((again.status, again.body.as_str()), (202, first.body.as_str()));
        assert!(again.replayed(), "{:?}", again.headers);
        assert_eq!(again.headers["content-type"], "application/json");
    }

    // A notification's answer holds a fresh id: the repeat's is the first one's.
    let notification =
        json!({ "recipient": { "userId": "u9" }, "content": { "subject": "s", "body": "b" }, "tenantId": "t1" });
    let first = post(&app, "/api/v1/notifications", Some("key-1"), &notification).await;
    assert_eq!(first.status, 202, "{}", first.body);
    let again = post(&app, "/api/v1/notifications", Some("key-1"), &notification).await;
    assert_eq!((again.status, &again.body), (202, &first.body));
    assert!(again.replayed());
    let fresh = post(&app, "/api/v1/notifications", Some("key-2"), &notification).await;
    assert_ne!(fresh.json()["id"], first.json()["id"], "another key is another call");

    let emit = json!({ "namespace": "/ws", "rooms": ["global.general"], "event": "chat.message", "data": {}, "tenantId": "t1" });
    let first = post(&app, "/api/v1/emit", Some("key-1"), &emit).await;
    assert_eq!(first.status, 202, "{}", first.body);
    assert!(post(&app, "/api/v1/emit", Some("key-1"), &emit).await.replayed());

    // Nothing was delivered by the repeats: the next event is the next one the watcher sees.
    app.publish_ok(metric("t1", 2)).await;
    assert_eq!(next_n(&mut c).await, 2);

    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("realtime_gateway_idempotent_replays_total 4"), "{metrics}");
}

#[tokio::test]
async fn a_key_belongs_to_its_credential_and_its_path() {
    let app = spawn_app_with(|c| c.api_keys.push("second-key".to_string().into())).await;
    let mut c = watcher(&app, "t1").await;
    let first = post(&app, "/api/v1/events", Some("shared"), &metric("t1", 1)).await;
    assert_eq!(first.status, 202);
    assert_eq!(next_n(&mut c).await, 1);
    let other = post_as(&app, "second-key", "/api/v1/events", Some(b"shared"), &metric("t1", 1)).await;
    assert_eq!(other.status, 202);
    assert!(!other.replayed(), "another caller's key is another call");
    assert_eq!(next_n(&mut c).await, 1);
    let notification = json!({ "recipient": { "userId": "u9" }, "content": {}, "tenantId": "t1" });
    let elsewhere = post(&app, "/api/v1/notifications", Some("shared"), &notification).await;
    assert_eq!(elsewhere.status, 202, "another path is another call: {}", elsewhere.body);
    assert!(!elsewhere.replayed());
}

#[tokio::test]
async fn a_repeat_while_the_first_runs_gets_409_with_retry_after_then_the_answer() {
    let app = spawn_app().await;
    // A socket that never acknowledges keeps a notification with acknowledgments waiting.
    let mut socket = notified_socket(&app, "u1", "t1").await;
    let body = json!({
        "recipient": { "userId": "u1" }, "content": { "subject": "s", "body": "b" }, "tenantId": "t1",
        "enableAcknowledgments": true, "ackTimeoutMs": 1500,
    });
    let first = tokio::spawn({
        let (http, url) = (app.http.clone(), app.url("/api/v1/notifications"));
        let body = body.clone();
        async move {
            let res = http
                .post(url)
                .header("x-api-key", API_KEY)
                .header("idempotency-key", "slow")
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    });
    let delivered = socket.wait_for("notification:new").await;

    let during = post(&app, "/api/v1/notifications", Some("slow"), &body).await;
    assert_eq!(during.status, 409, "{}", during.body);
    assert_eq!(during.json()["error"]["type"], "conflict");
    assert_eq!(during.headers["retry-after"], "1");

    // Reading (and answering pings) while the first call waits out its acknowledgments.
    socket.idle(Duration::from_millis(1700)).await;
    let (status, answer) = tokio::time::timeout(WAIT, first).await.expect("the first call ends").unwrap();
    assert_eq!(status, 200, "{answer}");
    let answer_json: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(answer_json["id"], delivered["id"]);
    assert_eq!((answer_json["sockets"].as_u64(), answer_json["acknowledged"].as_u64()), (Some(1), Some(0)));

    let after = post(&app, "/api/v1/notifications", Some("slow"), &body).await;
    assert_eq!((after.status, after.body.as_str()), (200, answer.as_str()));
    assert!(after.replayed());
    // Delivered once: the next notification the socket gets is a new one.
    let next = post(
        &app,
        "/api/v1/notifications",
        None,
        &json!({ "recipient": { "userId": "u1" }, "content": {}, "tenantId": "t1" }),
    )
    .await;
    assert_eq!(socket.wait_for("notification:new").await["id"], next.json()["id"]);
}

#[tokio::test]
async fn the_same_key_with_another_body_gets_422() {
    let app = spawn_app().await;
    assert_eq!(post(&app, "/api/v1/events", Some("k"), &metric("t1", 1)).await.status, 202);
    let other = post(&app, "/api/v1/events", Some("k"), &metric("t1", 2)).await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.json()["error"]["type"], "idempotency");
    assert!(other.json()["error"]["message"].as_str().unwrap().contains("Idempotency-Key"));
}

#[tokio::test]
async fn a_refused_call_is_not_remembered() {
    let app = spawn_app().await;
    let mut c = watcher(&app, "t1").await;
    let bad = json!({ "type": "metrics.updated", "data": {} });
    for _ in 0..2 {
        let refused = post(&app, "/api/v1/events", Some("k"), &bad).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(!refused.replayed());
    }
    let fixed = post(&app, "/api/v1/events", Some("k"), &metric("t1", 7)).await;
    assert_eq!(fixed.status, 202, "after a 400 the key may be used again: {}", fixed.body);
    assert_eq!(next_n(&mut c).await, 7);
}

#[tokio::test]
async fn bad_keys_get_400_naming_the_header() {
    let app = spawn_app().await;
    let long = "k".repeat(256);
    for key in [&b""[..], long.as_bytes(), b"with space", b"caf\xc3\xa9", b"tab\there"] {
        let answer = post_as(&app, API_KEY, "/api/v1/events", Some(key), &metric("t1", 1)).await;
        assert_eq!(answer.status, 400, "{key:?}: {}", answer.body);
        assert_eq!(answer.json()["error"]["type"], "validation");
        assert!(answer.json()["error"]["message"].as_str().unwrap().contains("Idempotency-Key"), "{}", answer.body);
    }
    let longest = "~".repeat(255);
    assert_eq!(post(&app, "/api/v1/events", Some(&longest), &metric("t1", 1)).await.status, 202);
    let unauthorized = post_as(&app, "wrong", "/api/v1/events", Some(b"bad key"), &metric("t1", 1)).await;
    assert_eq!(unauthorized.status, 401, "the credential is checked first");
}

#[tokio::test]
async fn an_event_id_is_delivered_once_per_tenant_within_a_batch_and_across_calls() {
    let app = spawn_app().await;
    let mut t1 = watcher(&app, "t1").await;
    let mut t2 = watcher(&app, "t2").await;
    let with_id = |tenant: &str, id: &str, n: u64| {
        let mut e = metric(tenant, n);
        e["id"] = json!(id);
        e
    };

    let (status, reply) = app
        .publish(json!([with_id("t1", "a", 1), with_id("t1", "a", 2), with_id("t1", "b", 3), metric("t1", 4)]))
        .await;
    assert_eq!((status, reply), (202, json!({ "accepted": 4, "duplicates": 1 })));
    assert_eq!([next_n(&mut t1).await, next_n(&mut t1).await, next_n(&mut t1).await], [1, 3, 4]);

    let (status, reply) = app.publish(json!([with_id("t1", "a", 5), with_id("t1", "c", 6)])).await;
    assert_eq!((status, reply), (202, json!({ "accepted": 2, "duplicates": 1 })));
    assert_eq!(next_n(&mut t1).await, 6);
    let (status, reply) = app.publish(with_id("t1", "c", 7)).await;
    assert_eq!((status, reply), (202, json!({ "accepted": 1, "duplicates": 1 })), "all duplicates");

    // Another tenant's id `a` is another event.
    let (status, reply) = app.publish(with_id("t2", "a", 8)).await;
    assert_eq!((status, reply), (202, json!({ "accepted": 1 })), "no duplicates: no field");
    assert_eq!(next_n(&mut t2).await, 8);

    // A batch refused whole marks none of its ids as seen.
    let (status, _) = app
        .publish(json!([with_id("t1", "d", 9), { "type": "execution.started", "tenantId": "t1", "data": {} }]))
        .await;
    assert_eq!(status, 400);
    app.publish_ok(with_id("t1", "d", 10)).await;
    assert_eq!(next_n(&mut t1).await, 10);

    for (id, why) in [(json!(""), "empty"), (json!("x".repeat(256)), "too long"), (json!(5), "a number")] {
        let mut e = metric("t1", 11);
        e["id"] = id;
        let (status, reply) = app.publish(e).await;
        assert_eq!(status, 400, "{why}: {reply}");
        assert!(
            reply["error"]["message"].as_str().unwrap().contains("events[0].id must be a string of 1 to 255"),
            "{reply}"
        );
    }
    let (status, _) = app.publish(with_id("t1", &"é".repeat(255), 12)).await;
    assert_eq!(status, 202, "255 characters, however many bytes");
}

#[tokio::test]
async fn after_the_window_a_key_and_an_id_run_again() {
    let app = spawn_app_with(|c| c.limits.idempotency_window = Duration::from_secs(1)).await;
    let mut c = watcher(&app, "t1").await;
    let mut event = metric("t1", 1);
    event["id"] = json!("e1");
    assert_eq!(post(&app, "/api/v1/events", Some("k"), &event).await.status, 202);
    assert_eq!(next_n(&mut c).await, 1);
    assert!(post(&app, "/api/v1/events", Some("k"), &event).await.replayed());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = post(&app, "/api/v1/events", Some("k"), &event).await;
    assert_eq!((again.status, again.json()), (202, json!({ "accepted": 1 })));
    assert!(!again.replayed());
    assert_eq!(next_n(&mut c).await, 1);
}

//! The backend event stream (`GET /api/v1/events/stream`) on one node, read with a real HTTP
//! client as a backend reads it: matching events in order with ids, resuming with
//! `Last-Event-ID`, the gap past the history, filters, refusals, keep-alives, and a consumer that
//! does not read being cut while another carries on.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::helpers::*;

/// One SSE message: its `event:` (`message` when none), `id:` and `data:`; comments apart.
#[derive(Debug, Clone)]
struct Message {
    event: String,
    id: Option<String>,
    data: Value,
}

/// An open stream, read chunk by chunk.
struct Stream {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines seen (`: keep-alive`).
    comments: Vec<String>,
}

impl Stream {
    /// The next message; panics after [`WAIT`] or when the stream ends.
    async fn next(&mut self) -> Message {
        self.next_within(WAIT).await.expect("the stream ended")
    }

    /// The next message within `within`; `None` when the stream ends.
    async fn next_within(&mut self, within: Duration) -> Option<Message> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut message = Message { event: "message".into(), id: None, data: Value::Null };
                let mut data = None;
                for line in block.lines() {
                    if let Some(comment) = line.strip_prefix(':') {
                        self.comments.push(comment.trim().to_string());
                    } else if let Some((field, value)) = line.split_once(": ") {
                        match field {
                            "event" => message.event = value.to_string(),
                            "id" => message.id = Some(value.to_string()),
                            "data" => {
                                assert!(data.is_none(), "one data line per message: {block}");
                                data = Some(serde_json::from_str(value).expect("data is JSON"));
                            }
                            other => panic!("unexpected field {other} in {block}"),
                        }
                    }
                }
                if let Some(data) = data {
                    message.data = data;
                    return Some(message);
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .unwrap_or_else(|_| panic!("no message within {within:?}"));
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                Ok(None) | Err(_) => return None,
            }
        }
    }

    /// The next `n` messages.
    async fn take(&mut self, n: usize) -> Vec<Message> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(self.next().await);
        }
        out
    }
}

/// Opens the stream with `query` and `last_event_id`; panics unless it is a 200 event stream.
async fn open(app: &TestApp, query: &str, last_event_id: Option<&str>) -> Stream {
    let (status, response) = request(app, query, last_event_id, API_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut stream = Stream { response, buffer: String::new(), comments: Vec::new() };
    // The opening comment: the stream is up, so what is published from now on is in it.
    let chunk = tokio::time::timeout(WAIT, stream.response.chunk()).await.expect("the opening").unwrap().unwrap();
    stream.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    stream
}

async fn request(app: &TestApp, query: &str, last_event_id: Option<&str>, key: &str) -> (u16, reqwest::Response) {
    let mut request = app
        .http
        .get(app.url(&format!("/api/v1/events/stream?{query}")))
        .header("x-api-key", key)
        .header("accept", "text/event-stream");
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = tokio::time::timeout(WAIT, request.send()).await.expect("an answer in time").expect("request");
    (response.status().as_u16(), response)
}

fn platform(n: u64) -> Value {
    json!({ "type": "platform.alert", "data": { "n": n } })
}

fn tenant_update(tenant: &str, n: u64) -> Value {
    json!({ "type": "tenant.data.update", "tenantId": tenant, "data": { "n": n } })
}

fn ns(messages: &[Message]) -> Vec<u64> {
    messages.iter().map(|m| m.data["data"]["n"].as_u64().unwrap()).collect()
}

#[tokio::test]
async fn matching_events_arrive_in_order_with_ids_and_their_published_fields() {
    let app = spawn_app().await;
    let mut stream = open(&app, "types=platform.*,tenant.data.update", None).await;
    app.publish_ok(json!([platform(1), tenant_update("t1", 2)])).await;
    app.publish_ok(json!({ "type": "metrics.updated", "tenantId": "t1", "data": { "n": 99 } })).await;
    app.publish_ok(json!({ "type": "platform.alert", "data": { "n": 3, "snake_case": 1 }, "timestamp": "2026-01-01T00:00:00.000Z" }))
        .await;
    let got = stream.take(3).await;
    assert_eq!(ns(&got), [1, 2, 3], "metrics.updated is not asked for");
    assert!(got.iter().all(|m| m.event == "message"));
    assert_eq!(got[1].data["type"], "tenant.data.update");
    assert_eq!(got[1].data["tenantId"], "t1");
    assert_eq!(got[0].data["tenantId"], Value::Null);
    assert_eq!(
        got[2].data,
        json!({ "type": "platform.alert", "tenantId": null, "data": { "n": 3, "snake_case": 1 }, "timestamp": "2026-01-01T00:00:00.000Z" }),
        "the data as published, no routing aliases"
    );
    let ids: Vec<&str> = got.iter().map(|m| m.id.as_deref().expect("an id")).collect();
    let (batch0, index0) = ids[0].split_once('.').unwrap();
    assert_eq!(ids[1], format!("{batch0}.1"), "one batch, consecutive indexes");
    assert_eq!(index0, "0");
    assert_ne!(ids[2].split_once('.').unwrap().0, batch0);
}

#[tokio::test]
async fn a_consumer_resumes_after_its_last_id_with_nothing_lost_or_twice() {
    let app = spawn_app().await;
    let mut first = open(&app, "types=*", None).await;
    for n in 1..=5 {
        app.publish_ok(platform(n)).await;
    }
    let got = first.take(2).await;
    drop(first);
    let mut again = open(&app, "types=*", got[1].id.as_deref()).await;
    assert_eq!(ns(&again.take(3).await), [3, 4, 5]);
    app.publish_ok(platform(6)).await;
    assert_eq!(ns(&again.take(1).await), [6], "and goes on live");
}

#[tokio::test]
async fn a_resume_past_the_history_is_told_of_the_gap_then_goes_on_from_the_oldest_held() {
    let app = spawn_app_with(|c| c.event_stream.history_events = 3).await;
    let mut stream = open(&app, "types=*", None).await;
    for n in 1..=6 {
        app.publish_ok(platform(n)).await;
    }
    let got = stream.take(6).await;
    drop(stream);
    // Held: 4, 5, 6. After 1: 2 and 3 are gone.
    let mut resumed = open(&app, "types=*", got[0].id.as_deref()).await;
    let gap = resumed.next().await;
    assert_eq!(gap.event, "gap");
    assert_eq!(gap.id, None, "a gap is not an event to resume after");
    assert_eq!(gap.data, json!({ "lastEventId": got[0].id, "resumedFrom": got[3].id, "missed": null }));
    assert_eq!(ns(&resumed.take(3).await), [4, 5, 6]);
    // After 3, the newest gone: nothing is missing.
    let mut exact = open(&app, "types=*", got[2].id.as_deref()).await;
    assert_eq!(ns(&exact.take(3).await), [4, 5, 6]);
    // An id this gateway never gave: a gap naming it.
    let mut unknown = open(&app, "types=*", Some("not-an-id")).await;
    let gap = unknown.next().await;
    assert_eq!((gap.event.as_str(), &gap.data["lastEventId"]), ("gap", &json!("not-an-id")));
    assert_eq!(ns(&unknown.take(3).await), [4, 5, 6]);
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("realtime_gateway_event_stream_gaps_total 2"), "{metrics}");
}

#[tokio::test]
async fn a_tenant_filter_keeps_one_tenants_events() {
    let app = spawn_app().await;
    let mut stream = open(&app, "types=tenant.*,platform.*&tenantId=t1", None).await;
    app.publish_ok(json!([tenant_update("t2", 1), platform(2), tenant_update("t1", 3), tenant_update("t2", 4)])).await;
    app.publish_ok(tenant_update("t1", 5)).await;
    let got = stream.take(2).await;
    assert_eq!(ns(&got), [3, 5], "only t1's: not t2's, nor a platform event of no tenant");
}

#[tokio::test]
async fn a_tenant_key_reads_its_own_tenants_events_only() {
    let app = spawn_app_with(|c| {
        c.tenant_api_keys = vec![realtime_gateway::config::TenantApiKey {
            tenant: "t1".into(),
            key: secrecy::SecretString::from("t1-key".to_string()),
        }]
    })
    .await;
    let (status, response) = request(&app, "types=*&tenantId=t2", None, "t1-key").await;
    assert_eq!(status, 403);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "forbidden", "{body}");
    assert!(!body.to_string().contains("t1-key"), "{body}");
    let (status, response) = request(&app, "types=*", None, "t1-key").await;
    assert_eq!(status, 200);
    let mut stream = Stream { response, buffer: String::new(), comments: Vec::new() };
    // The opening comment: the stream is up before anything is published.
    let chunk = tokio::time::timeout(WAIT, stream.response.chunk()).await.expect("the opening").unwrap().unwrap();
    stream.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
    app.publish_ok(json!([tenant_update("t2", 1), platform(2), tenant_update("t1", 3)])).await;
    let got = stream.take(1).await;
    assert_eq!(ns(&got), [3], "neither another tenant's events nor platform-wide ones");
}

#[tokio::test]
async fn an_event_named_by_its_publisher_carries_its_id_as_event_id() {
    let app = spawn_app().await;
    let mut stream = open(&app, "types=platform.*", None).await;
    app.publish_ok(json!([{ "id": "alert-7", "type": "platform.alert", "data": { "n": 1 } }, platform(2)])).await;
    let got = stream.take(2).await;
    assert_eq!(got[0].data["eventId"], "alert-7");
    assert!(got[1].data.get("eventId").is_none(), "{}", got[1].data);
}

#[tokio::test]
async fn bad_requests_are_refused_with_json_before_any_stream() {
    let app = spawn_app().await;
    for (query, expected) in [
        ("", "`types` is required"),
        ("types=", "empty pattern"),
        ("types=a,,b", "empty pattern"),
        ("types=pre*", "not a type pattern"),
        ("types=*.x", "not a type pattern"),
        ("types=.*", "not a type pattern"),
        ("types=a&types=b", "given twice"),
        ("types=a&tenant=t1", "unknown query parameter `tenant`"),
        ("types=a&tenantId=", "`tenantId` must be a non-empty tenant id"),
    ] {
        let (status, response) = request(&app, query, None, API_KEY).await;
        assert_eq!(status, 400, "{query}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["type"], "validation", "{query}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expected), "{query}: {message}");
    }
    for key in ["", "wrong"] {
        let (status, response) = request(&app, "types=*", None, key).await;
        assert_eq!(status, 401);
        assert_eq!(response.json::<Value>().await.unwrap()["error"]["type"], "auth");
    }
}

#[tokio::test]
async fn an_idle_stream_says_it_is_alive() {
    let app = spawn_app_with(|c| c.event_stream.keep_alive = Duration::from_millis(200)).await;
    let mut stream = open(&app, "types=platform.*", None).await;
    // Events of other types do not hold keep-alives back.
    app.publish_ok(json!({ "type": "metrics.updated", "tenantId": "t1", "data": {} })).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    app.publish_ok(platform(1)).await;
    assert_eq!(ns(&stream.take(1).await), [1]);
    let alive = stream.comments.iter().filter(|c| *c == "keep-alive").count();
    assert!(alive >= 2, "{:?}", stream.comments);
}

#[tokio::test]
async fn a_consumer_that_does_not_read_is_cut_and_counted_while_another_gets_everything() {
    let app = spawn_app_with(|c| {
        c.event_stream.stall = Duration::from_millis(500);
        c.http.write_timeout = Duration::from_secs(60);
    })
    .await;
    let mut reader = open(&app, "types=*", None).await;
    // A consumer with a small receive window that never reads what it is sent.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stalled = socket.connect(app.addr).await.unwrap();
    let head = format!(
        "GET /api/v1/events/stream?types=* HTTP/1.1\r\nHost: {}\r\nX-API-Key: {API_KEY}\r\nAccept: text/event-stream\r\n\r\n",
        app.addr
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Far more than the kernel's buffers hold between the two ends.
    let big = "x".repeat(256 * 1024);
    let count = 64;
    let mut got = Vec::new();
    for n in 0..count {
        app.publish_ok(json!({ "type": "platform.alert", "data": { "n": n, "big": big } })).await;
        got.push(reader.next().await);
    }
    assert_eq!(ns(&got), (0..count).collect::<Vec<_>>(), "the reading consumer got every event, in order");

    // The other one is cut: its connection ends (what it had buffered, then the end).
    let metrics = || async { app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = metrics().await;
        if text.contains("realtime_gateway_event_stream_consumers_cut_total{reason=\"stalled\"} 1") {
            assert!(text.contains("realtime_gateway_event_stream_consumers_cut_total{reason=\"behind\"} 0"));
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the stalled consumer was not cut: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let drained = tokio::time::timeout(WAIT, async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match tokio::io::AsyncReadExt::read(&mut stalled, &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(drained.is_ok(), "the stalled consumer's connection was closed");
    app.publish_ok(platform(1000)).await;
    assert_eq!(ns(&reader.take(1).await), [1000], "the reading consumer carries on");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !metrics().await.contains("realtime_gateway_event_stream_consumers 1\n") {
        assert!(tokio::time::Instant::now() < deadline, "one consumer left");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_node_that_stops_ends_its_streams() {
    let app = spawn_app().await;
    let mut stream = open(&app, "types=*", None).await;
    let stopped = tokio::spawn(app.shutdown());
    assert!(stream.next_within(WAIT).await.is_none(), "the stream ends");
    stopped.await.unwrap().unwrap();
}

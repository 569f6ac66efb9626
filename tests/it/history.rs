//! Room history on the plain WebSocket endpoint `/ws` (seed 001's hub protocol): events of rooms
//! with history carry their channel and position; `subscribe` with `since` gets what was missed,
//! once and in order, or `recovered: false` when the history no longer holds it all; the node's
//! history is bounded in bytes, and what it drops is counted.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::*;

type PlainWs = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A hub client of tenant `t1`, user `sub`.
async fn hub(app: &TestApp, sub: &str) -> PlainWs {
    let url = format!("ws://{}/ws?token={}", app.addr, token(sub, Some("t1"), 600));
    tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url)).await.expect("a handshake in time").unwrap().0
}

async fn send(ws: &mut PlainWs, message: Value) {
    ws.send(Message::text(message.to_string())).await.unwrap();
}

/// The next envelope, whatever its type.
async fn next(ws: &mut PlainWs) -> Value {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("an envelope in time") {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("closed: {other:?}"),
        }
    }
}

/// Subscribes to `channel` (with `since` when given) and returns the `subscribed` answer.
async fn subscribe(ws: &mut PlainWs, channel: &str, filters: Option<Value>, since: Option<&Value>) -> Value {
    let mut data = json!({ "channel": channel });
    if let Some(filters) = filters {
        data["filters"] = filters;
    }
    if let Some(since) = since {
        data["since"] = since.clone();
    }
    send(ws, json!({ "type": "subscribe", "data": data })).await;
    let answer = next(ws).await;
    assert_eq!(answer["type"], "subscribed", "{answer}");
    answer
}

fn step(seq: u64, status: &str) -> Value {
    json!({ "type": "step.progress", "tenantId": "t1",
            "data": { "executionId": "e1", "workflowId": "w1", "status": status, "seq": seq, "userId": "u9" } })
}

#[tokio::test]
async fn events_of_rooms_with_history_carry_channel_and_position_and_others_are_unchanged() {
    let app = spawn_app().await;
    let mut watcher = hub(&app, "u1").await;
    let answer = subscribe(&mut watcher, "executions:e1", None, None).await;
    assert_eq!(answer["data"], json!({ "channel": "executions:e1" }), "no `recovered` without `since`");
    let mut own = hub(&app, "u9").await;
    subscribe(&mut own, "users:u9", None, None).await;

    app.publish_ok(json!([step(1, "running"), step(2, "running"), step(3, "running")])).await;
    let mut epoch = None;
    for offset in 1..=3u64 {
        let got = next(&mut watcher).await;
        assert_eq!(got["type"], "step.progress");
        assert_eq!(got["channel"], "executions:e1");
        assert_eq!(got["position"]["offset"], offset, "{got}");
        let this = got["position"]["epoch"].as_str().unwrap().to_string();
        assert!(epoch.get_or_insert(this.clone()) == &this, "one epoch");
        assert_eq!(got["data"]["seq"], offset);
    }
    // `users:{id}` keeps no history: seed 001's envelope, exactly.
    for seq in 1..=3 {
        let got = next(&mut own).await;
        let keys: Vec<&String> = got.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["type", "timestamp", "data"], "{got}");
        assert_eq!(got["data"]["seq"], seq);
    }
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_client_that_reconnects_with_its_last_position_gets_exactly_what_it_missed_while_publishing_goes_on() {
    const TOTAL: u64 = 200;
    let app = spawn_app().await;
    let mut first = hub(&app, "u1").await;
    subscribe(&mut first, "executions:e1", None, None).await;
    let publisher = {
        let http = app.http.clone();
        let url = app.url("/api/v1/events");
        tokio::spawn(async move {
            for seq in 1..=TOTAL {
                let res =
                    http.post(&url).header("x-api-key", API_KEY).json(&step(seq, "running")).send().await.unwrap();
                assert!(res.status().is_success());
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut seen = Vec::new();
    let mut last = Value::Null;
    while seen.len() < 30 {
        let got = next(&mut first).await;
        seen.push(got["data"]["seq"].as_u64().unwrap());
        last = got["position"].clone();
    }
    // The socket is destroyed mid-stream: no close frame.
    drop(first);
    tokio::time::sleep(Duration::from_millis(50)).await;

    let mut second = hub(&app, "u1").await;
    let answer = subscribe(&mut second, "executions:e1", None, Some(&last)).await;
    assert_eq!(answer["data"]["recovered"], true, "{answer}");
    assert_eq!(answer["data"]["channel"], "executions:e1", "the answer keeps its fields");
    let mut offset = last["offset"].as_u64().unwrap();
    while *seen.last().unwrap() < TOTAL {
        let got = next(&mut second).await;
        offset += 1;
        assert_eq!(got["position"]["offset"], offset, "in order, none twice: {got}");
        assert_eq!(got["position"]["epoch"], last["epoch"]);
        seen.push(got["data"]["seq"].as_u64().unwrap());
    }
    publisher.await.unwrap();
    assert_eq!(seen, (1..=TOTAL).collect::<Vec<_>>(), "every event exactly once, in order");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_gap_longer_than_the_history_or_another_epoch_is_not_recovered_and_nothing_old_follows() {
    let app = spawn_app().await;
    let mut client = hub(&app, "u1").await;
    subscribe(&mut client, "executions:e1", None, None).await;
    app.publish_ok(step(0, "running")).await;
    let position = next(&mut client).await["position"].clone();
    drop(client);
    // The shipped spec keeps 300 events a room.
    let batch: Vec<Value> = (1..=301).map(|seq| step(seq, "running")).collect();
    app.publish_ok(json!(batch)).await;

    let mut client = hub(&app, "u1").await;
    let answer = subscribe(&mut client, "executions:e1", None, Some(&position)).await;
    assert_eq!(answer["data"]["recovered"], false, "{answer}");
    app.publish_ok(step(302, "running")).await;
    let got = next(&mut client).await;
    assert_eq!(got["data"]["seq"], 302, "live events only: {got}");
    assert_eq!(got["position"]["offset"], 303);

    // The offset is covered, the epoch is another history's.
    let mut other = hub(&app, "u1").await;
    let wrong = json!({ "offset": 300, "epoch": "0123456789ab" });
    let answer = subscribe(&mut other, "executions:e1", None, Some(&wrong)).await;
    assert_eq!(answer["data"]["recovered"], false, "{answer}");
    // Caught up: recovered, and nothing follows but live events.
    let now = got["position"].clone();
    let answer = subscribe(&mut other, "executions:e1", None, Some(&now)).await;
    assert_eq!(answer["data"]["recovered"], true, "{answer}");
    // A channel without history cannot recover.
    let answer = subscribe(&mut other, "users:u1", None, Some(&now)).await;
    assert_eq!(answer["data"]["recovered"], false, "{answer}");
    // A `since` that is not a position is refused.
    send(
        &mut other,
        json!({ "type": "subscribe", "data": { "channel": "executions:e1", "since": { "offset": "x" } } }),
    )
    .await;
    let error = next(&mut other).await;
    assert_eq!(error["type"], "error", "{error}");
    assert!(error["data"]["message"].as_str().unwrap().contains("since"), "{error}");
    app.publish_ok(step(303, "running")).await;
    assert_eq!(next(&mut other).await["data"]["seq"], 303);
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_recovery_sends_only_what_the_subscriptions_filters_let_through() {
    let app = spawn_app().await;
    let mut client = hub(&app, "u1").await;
    let filters = json!({ "statuses": ["failed"] });
    subscribe(&mut client, "executions", Some(filters.clone()), None).await;
    app.publish_ok(step(1, "failed")).await;
    let position = next(&mut client).await["position"].clone();
    drop(client);
    app.publish_ok(json!([step(2, "running"), step(3, "failed"), step(4, "running"), step(5, "failed")])).await;

    let mut client = hub(&app, "u1").await;
    let answer = subscribe(&mut client, "executions", Some(filters), Some(&position)).await;
    assert_eq!(answer["data"]["recovered"], true, "{answer}");
    let a = next(&mut client).await;
    let b = next(&mut client).await;
    assert_eq!((a["data"]["seq"].clone(), b["data"]["seq"].clone()), (json!(3), json!(5)));
    assert_eq!((a["position"]["offset"].clone(), b["position"]["offset"].clone()), (json!(3), json!(5)));
    app.publish_ok(step(6, "failed")).await;
    assert_eq!(next(&mut client).await["data"]["seq"], 6, "then live, nothing else");
    app.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_nodes_history_is_bounded_in_bytes_and_what_it_drops_is_counted_and_never_recovered() {
    let app = spawn_app_with(|c| c.limits.history_bytes = 8_000).await;
    let mut client = hub(&app, "u1").await;
    subscribe(&mut client, "executions:e1", None, None).await;
    app.publish_ok(step(0, "running")).await;
    let position = next(&mut client).await["position"].clone();
    drop(client);
    // Each event is kept in three channels (executions, executions:e1, workflows:w1).
    let batch: Vec<Value> = (1..=60).map(|seq| step(seq, "running")).collect();
    app.publish_ok(json!(batch)).await;

    let mut client = hub(&app, "u1").await;
    let answer = subscribe(&mut client, "executions:e1", None, Some(&position)).await;
    assert_eq!(answer["data"]["recovered"], false, "the oldest events went for bytes: {answer}");
    let metrics = app.http.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let sample = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no {name} in /metrics"))
    };
    assert!(sample("realtime_gateway_history_evicted_total{reason=\"bytes\"}") > 0.0);
    assert!(sample("realtime_gateway_history_bytes") <= 8_000.0);
    assert_eq!(sample("realtime_gateway_history_recoveries_total{reason=\"not_recovered\"}"), 1.0);
    app.shutdown().await.unwrap();
}

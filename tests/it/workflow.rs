//! The /workflow namespace through a real WebSocket: subscriptions, routing, state, isolation.

use serde_json::json;

use crate::helpers::*;

#[tokio::test]
async fn connect_announces_the_client_then_subscribe_confirms_and_sends_initial_data() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    let connected = c.welcome.clone();
    let client_id = connected["clientId"].as_str().expect("a clientId");
    assert_eq!(client_id.len(), 20, "{client_id}");
    assert_ne!(client_id, c.sid, "never the Engine.IO session id, which works as a credential");
    assert_eq!(connected["userId"], "u1");
    assert_eq!(connected["tenantId"], "t1");

    let ack = c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": "e1" })).await;
    let confirmed = c.expect("subscription_confirmed").await;
    assert_eq!(ack, confirmed, "the ack is the reply");
    assert_eq!(confirmed["subscriptionKey"], "execution:e1");
    assert_eq!(confirmed["resourceId"], "e1");
    let initial = c.expect("initial_data").await;
    assert_eq!(initial["type"], "execution");
    assert_eq!(initial["data"], json!(null), "nothing is known about e1 yet");
}

#[tokio::test]
async fn a_published_event_reaches_its_subscribers_once_even_through_several_rooms() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    for sub in [
        json!({ "type": "execution", "resourceId": "e1" }),
        json!({ "type": "execution" }),
        json!({ "type": "tenant_activity" }),
    ] {
        c.emit_with_ack("subscribe", sub).await;
    }
    app.publish_ok(json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1", "workflowId": "w1", "status": "running" }, "timestamp": "2024-01-15T10:30:00.000Z" })).await;
    app.publish_ok(json!({ "type": "execution.completed", "tenantId": "t1", "data": { "executionId": "e1" } })).await;
    let mut first = c.wait_for("update").await;
    // Positioned in the first of its rooms in the route's order that the socket is in.
    let position = first.as_object_mut().and_then(|f| f.remove("position"));
    assert_eq!(position.as_ref().map(|p| &p["room"]), Some(&json!("execution:e1")));
    assert_eq!(
        first,
        json!({ "type": "execution.started", "payload": { "executionId": "e1", "workflowId": "w1", "status": "running" }, "timestamp": "2024-01-15T10:30:00.000Z" })
    );
    // The very next update is the second event: the first was not delivered twice.
    let second = c.wait_for("update").await;
    assert_eq!(second["type"], "execution.completed");
}

#[tokio::test]
async fn log_filters_are_rooms_a_log_reaches_only_when_every_filter_matches() {
    let app = spawn_app().await;
    let mut errors_of_e1 = app.workflow_client("u1", "t1").await;
    let mut step_s2 = app.workflow_client("u2", "t1").await;
    let key = errors_of_e1
        .emit_with_ack("subscribe", json!({ "type": "logs", "resourceId": "e1", "filters": { "logLevel": "error" } }))
        .await;
    assert_eq!(key["subscriptionKey"], "logs:e1:error:*");
    let key = step_s2.emit_with_ack("subscribe", json!({ "type": "logs", "filters": { "stepId": "s2" } })).await;
    assert_eq!(key["subscriptionKey"], "logs:*:*:s2");

    let log = |n: u32, exec: &str, level: &str, step: &str| json!({ "type": "log.created", "tenantId": "t1", "data": { "executionId": exec, "level": level, "stepId": step, "n": n } });
    app.publish_ok(json!([
        log(1, "e1", "info", "s1"),
        log(2, "e2", "error", "s1"),
        log(3, "e1", "error", "s2"),
        log(4, "e2", "warn", "s2")
    ]))
    .await;

    let got = |data: serde_json::Value| data["payload"]["n"].as_u64().unwrap();
    assert_eq!(got(errors_of_e1.wait_for("update").await), 3, "only e1's error log");
    assert_eq!(got(step_s2.wait_for("update").await), 3);
    assert_eq!(got(step_s2.wait_for("update").await), 4, "step s2 of any execution, any level");
}

#[tokio::test]
async fn workflow_subscribers_get_their_workflows_executions_but_watchers_of_all_workflows_do_not() {
    let app = spawn_app().await;
    let mut one = app.workflow_client("u1", "t1").await;
    let mut all = app.workflow_client("u2", "t1").await;
    one.emit_with_ack("subscribe", json!({ "type": "workflow", "resourceId": "w1" })).await;
    all.emit_with_ack("subscribe", json!({ "type": "workflow" })).await;
    app.publish_ok(
        json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1", "workflowId": "w1" } }),
    )
    .await;
    app.publish_ok(
        json!({ "type": "workflow.updated", "tenantId": "t1", "data": { "workflowId": "w1", "name": "Billing" } }),
    )
    .await;
    assert_eq!(one.wait_for("update").await["type"], "execution.started");
    assert_eq!(one.wait_for("update").await["type"], "workflow.updated");
    // For the watcher of all workflows, the first update is the workflow event: the execution
    // event, published before it, never came.
    assert_eq!(all.wait_for("update").await["type"], "workflow.updated");
}

#[tokio::test]
async fn state_answers_get_status_and_initial_data() {
    let app = spawn_app().await;
    app.publish_ok(json!([
        { "type": "workflow.created", "tenantId": "t1", "data": { "workflowId": "w1", "name": "Billing" } },
        { "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1", "workflowId": "w1", "status": "running" } },
        { "type": "step.completed", "tenantId": "t1", "data": { "executionId": "e1", "stepId": "s1", "status": "completed" } },
        { "type": "log.created", "tenantId": "t1", "data": { "executionId": "e1", "logLevel": "warn", "message": "slow" } },
        { "type": "metrics.updated", "tenantId": "t1", "data": { "running": 1 } },
    ]))
    .await;
    let mut c = app.workflow_client("u1", "t1").await;

    let mut status_of = async |query: serde_json::Value| {
        let ack = c.emit_with_ack("get_status", query).await;
        assert_eq!(c.expect("status_response").await, ack, "the ack is the reply");
        ack["status"].clone()
    };
    let execution = status_of(json!({ "executionId": "e1" })).await;
    assert_eq!(execution["status"], "running");
    assert_eq!(execution["steps"]["s1"]["status"], "completed");
    assert_eq!(execution["lastEvent"], "step.completed");
    let workflow = status_of(json!({ "workflowId": "w1" })).await;
    assert_eq!(workflow["name"], "Billing");
    assert_eq!(workflow["lastExecution"]["executionId"], "e1");
    assert_eq!(status_of(json!({ "executionId": "unknown" })).await, json!(null));

    c.emit_with_ack("subscribe", json!({ "type": "logs", "resourceId": "e1", "filters": { "logLevel": "warn" } }))
        .await;
    c.expect("subscription_confirmed").await;
    let logs = c.expect("initial_data").await;
    assert_eq!(logs["data"][0]["message"], "slow", "the log level is normalised from logLevel");
    c.emit_with_ack("subscribe", json!({ "type": "metrics" })).await;
    c.expect("subscription_confirmed").await;
    assert_eq!(c.expect("initial_data").await["data"], json!({ "running": 1 }));
    c.emit_with_ack("subscribe", json!({ "type": "tenant_activity" })).await;
    c.expect("subscription_confirmed").await;
    let activity = c.expect("initial_data").await;
    let types: Vec<_> =
        activity["data"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_string()).collect();
    assert_eq!(types, ["workflow.created", "execution.started", "step.completed", "log.created", "metrics.updated"]);
}

#[tokio::test]
async fn tenants_never_see_each_others_events_or_state() {
    let app = spawn_app().await;
    let mut a = app.workflow_client("u1", "tenant-a").await;
    let mut b = app.workflow_client("u1", "tenant-b").await;
    for c in [&mut a, &mut b] {
        for sub in [
            json!({ "type": "execution", "resourceId": "e1" }),
            json!({ "type": "tenant_activity" }),
            json!({ "type": "metrics" }),
        ] {
            c.emit_with_ack("subscribe", sub).await;
        }
    }
    app.publish_ok(json!({ "type": "execution.started", "tenantId": "tenant-b", "data": { "executionId": "e1", "secret": "b's" } })).await;
    app.publish_ok(json!({ "type": "metrics.updated", "tenantId": "tenant-a", "data": { "for": "a" } })).await;
    // a's first update is its own metrics: tenant b's execution never reached it.
    assert_eq!(a.wait_for("update").await["payload"], json!({ "for": "a" }));
    assert_eq!(b.wait_for("update").await["payload"]["secret"], "b's");
    let status = a.emit_with_ack("get_status", json!({ "executionId": "e1" })).await;
    assert_eq!(status["status"], json!(null), "b's state is not a's");
}

#[tokio::test]
async fn unsubscribe_stops_updates_and_is_idempotent() {
    let app = spawn_app().await;
    let mut c = app.workflow_client("u1", "t1").await;
    c.emit_with_ack("subscribe", json!({ "type": "execution", "resourceId": "e1" })).await;
    c.emit_with_ack("subscribe", json!({ "type": "metrics" })).await;
    for _ in 0..2 {
        let ack = c.emit_with_ack("unsubscribe", json!({ "subscriptionKey": "execution:e1" })).await;
        assert_eq!(ack["subscriptionKey"], "execution:e1");
    }
    app.publish_ok(json!({ "type": "execution.started", "tenantId": "t1", "data": { "executionId": "e1" } })).await;
    app.publish_ok(json!({ "type": "metrics.updated", "tenantId": "t1", "data": { "barrier": true } })).await;
    assert_eq!(c.wait_for("update").await["type"], "metrics.updated", "the execution event did not come first");

    let err = c.emit_with_ack("unsubscribe", json!({ "subscriptionKey": "tenant" })).await;
    assert_eq!(err["error"]["type"], "permission", "server-managed rooms are not the client's to leave: {err}");
}

#[tokio::test]
async fn tenant_stats_arrive_every_metrics_interval() {
    let app = spawn_app_with(|c| c.metrics_interval = std::time::Duration::from_millis(200)).await;
    let mut c = app.workflow_client("u1", "t1").await;
    let _other = app.workflow_client("u2", "t1").await;
    c.emit_with_ack("subscribe", json!({ "type": "metrics" })).await;
    let stats = c.wait_for("tenant_stats").await;
    assert_eq!(stats["tenantId"], "t1");
    assert_eq!(stats["stats"]["connections"], 2);
    assert_eq!(stats["stats"]["users"], 2);
    assert_eq!(stats["stats"]["subscriptions"], 1);
}

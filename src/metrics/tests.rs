//! The exposition as a scrape sees it: the names dashboards and alerts use, and the series a
//! namespace has from the start.

use std::time::Duration;

use super::{DropReason, Metrics, Rejection};

#[test]
fn existing_names_are_kept_and_namespace_series_exist_from_the_start() {
    let metrics = Metrics::default();
    let ns = metrics.namespace("/workflow", "socketio", ["subscribe"]);
    ns.connected();
    ns.rejected(Rejection::Validation);
    ns.event(Some("subscribe")).observe(Duration::from_micros(70));
    ns.event(Some("made-up")).observe(Duration::from_micros(70));
    metrics.dropped(DropReason::QueueFull, 2);
    let text = metrics.render();
    for line in [
        "realtime_gateway_connections 0",
        "realtime_gateway_auth_refused_total 0",
        "realtime_gateway_deliveries_dropped_total{reason=\"queue_full\"} 2",
        "realtime_gateway_connections_cut_total{reason=\"slow_consumer\"} 0",
        "realtime_gateway_namespace_connections{namespace=\"/workflow\",protocol=\"socketio\"} 1",
        "realtime_gateway_rejections_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"validation\"} 1",
        "realtime_gateway_rejections_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"throttle\"} 0",
        "realtime_gateway_connections_closed_total{namespace=\"/workflow\",protocol=\"socketio\",reason=\"client\"} 0",
        "realtime_gateway_client_event_duration_seconds_count{namespace=\"/workflow\",protocol=\"socketio\",event=\"subscribe\"} 1",
        "realtime_gateway_client_event_duration_seconds_bucket{namespace=\"/workflow\",protocol=\"socketio\",event=\"_other\",le=\"0.0001\"} 1",
        "realtime_gateway_build_info{version=\"0.1.0\"} 1",
        "realtime_gateway_log_lines_dropped_total{reason=\"rate_limited\"} 0",
        "realtime_gateway_log_lines_dropped_total{reason=\"queue_full\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
    }
    assert!(!text.contains("made-up"), "a client's event name never becomes a label");
    assert!(!text.contains("redis_connected"), "no cluster series on a single node");
    assert!(Metrics::new(true).render().contains("realtime_gateway_redis_connected 0"));
}

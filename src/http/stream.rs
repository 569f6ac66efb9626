//! `GET /api/v1/events/stream?types=..[&tenantId=..]`: the backend event stream, as Server-Sent
//! Events. Every event published to the gateway whose type matches, from every node, in the
//! node feed's order (`node::EventFeed`: the bus's, in a cluster), each with its `id:`; a
//! consumer that comes back with `Last-Event-ID` resumes after it, or is first sent `event: gap`
//! when the history no longer holds everything after it.
//!
//! A consumer reads the shared history from its own place; nothing is copied per consumer. How
//! far behind it is (events and bytes) is bounded, and a consumer that takes nothing while
//! events wait is cut after a few seconds: a watchdog task per consumer checks both, because a
//! consumer that does not read is not polled. A cut consumer is sent `event: error` when it can
//! still take it, then its connection is closed; every cut is counted and logged once.
//! Refusals (401, 400) are JSON before any stream.

use std::{
    convert::Infallible,
    sync::{
        Arc, OnceLock, Weak,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use axum::{
    Extension,
    body::{Body, Bytes},
    extract::{Query, State, rejection::QueryRejection},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde_json::json;
use socketioxide::adapter::Adapter;
use tokio::{sync::Notify, time::Instant};

use super::{ApiError, HttpState, request};
use crate::{
    config::EventStreamConfig,
    metrics::{EventStreamMetrics, StreamCut},
    net::connection::ConnectionGuard,
    node::{Cursor, EventFeed, FedEvent, Read},
    spec::TypeMatcher,
};

/// Events one read of the history takes (one chunk written).
const READ_BATCH: usize = 256;
/// Most patterns in `types`, the longest `types` and `tenantId`, and the longest `Last-Event-ID`
/// per bus shard (its ids are one slot per shard).
const MAX_PATTERNS: usize = 100;
const MAX_PARAM_LEN: usize = 4096;
const MAX_ID_LEN: usize = 200;
/// How long a consumer that is cut has to take its `event: error` before the connection goes.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// What a consumer asked for.
struct Filter {
    types: TypeMatcher,
    /// Only this tenant's events; `None`: every tenant's (and those of none).
    tenant: Option<String>,
}

impl Filter {
    fn matches(&self, event: &FedEvent) -> bool {
        self.types.matches(&event.event_type)
            && self.tenant.as_deref().is_none_or(|tenant| event.tenant.as_deref() == Some(tenant))
    }
}

/// The stream's handler.
pub(super) async fn event_stream<A: Adapter>(
    State(state): State<HttpState<A>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
    guard: Option<Extension<Arc<ConnectionGuard>>>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(format!("the query is not readable: {e}")))?;
    let (types, asked_tenant) = parameters(&params)?;
    let tenant = authorize(&state, &headers, asked_tenant)?;
    let filter = Filter { types, tenant };
    let feed = state.engine.feed().clone();
    let max_id_len = MAX_ID_LEN * feed.shards();
    let last_event_id = headers.get("last-event-id").map(|v| match v.to_str() {
        Ok(id) if id.len() <= max_id_len => id.trim().to_string(),
        // Not an id this gateway gave: resumed with a gap, which names it as it can.
        _ => String::from_utf8_lossy(&v.as_bytes()[..v.len().min(max_id_len)]).into_owned(),
    });
    let settings = state.engine.event_stream_settings().clone();
    let metrics = state.metrics.event_stream.clone();
    let resume = feed.resume(last_event_id.as_deref().filter(|id| !id.is_empty()));
    let mut first = String::from(": ok\n\n");
    if let Some(gap) = &resume.gap {
        metrics.gaps.inc();
        let data = json!({ "lastEventId": gap.last_event_id, "resumedFrom": gap.resumed_from, "missed": null });
        first.push_str(&format!("event: gap\ndata: {data}\n\n"));
    }
    let place = Arc::new(Place {
        ordinal: AtomicU64::new(resume.ordinal),
        offset: AtomicU64::new(resume.offset),
        cut: OnceLock::new(),
        wake: Notify::new(),
    });
    tokio::spawn(watch(
        Arc::downgrade(&place),
        feed.clone(),
        settings.clone(),
        guard.map(|Extension(guard)| guard),
        metrics.clone(),
        describe(&filter),
    ));
    metrics.consumers.inc();
    let consumer = Consumer {
        head: feed.watch(),
        feed,
        place,
        filter,
        keep_alive: settings.keep_alive,
        first: Some(Bytes::from(first)),
        cursor: resume.cursor,
        done: false,
        metrics,
    };
    let body = Body::from_stream(futures_util::stream::unfold(consumer, |mut consumer| async move {
        consumer.next_chunk().await.map(|chunk| (Ok::<_, Infallible>(chunk), consumer))
    }));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx) must pass events on as they come.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    // A stream ends only when its consumer is cut or the gateway stops: its connection ends with
    // it, rather than idling for a request that never comes (a consumer resumes on a new one).
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    Ok(response)
}

/// Who may read the stream, and which tenant's events it then reads: the one place the stream
/// authorizes. A platform key reads every tenant's events (or the one it asks for); a tenant key
/// reads its own tenant's only (asking for another: 403), never platform-wide events.
fn authorize<A: Adapter>(
    state: &HttpState<A>,
    headers: &HeaderMap,
    asked_tenant: Option<String>,
) -> Result<Option<String>, ApiError> {
    let caller = request::caller(state, headers)?;
    request::acting_tenant(&caller, asked_tenant, "tenantId")
}

/// `types` (required: comma-separated `name`, `prefix.*` or `*`) and `tenantId` (optional).
fn parameters(params: &[(String, String)]) -> Result<(TypeMatcher, Option<String>), ApiError> {
    let bad = |message: String| ApiError::BadRequest(message);
    let mut types = None;
    let mut tenant = None;
    for (name, value) in params {
        let slot = match name.as_str() {
            "types" => &mut types,
            "tenantId" => &mut tenant,
            _ => return Err(bad(format!("unknown query parameter `{name}` (known: types, tenantId)"))),
        };
        if slot.is_some() {
            return Err(bad(format!("`{name}` is given twice")));
        }
        if value.len() > MAX_PARAM_LEN {
            return Err(bad(format!("`{name}` is longer than {MAX_PARAM_LEN} bytes")));
        }
        *slot = Some(value.clone());
    }
    let types = types.ok_or_else(|| {
        bad("`types` is required: event types, comma-separated (`name`, `prefix.*`, or `*` for all)".into())
    })?;
    let patterns: Vec<String> = types.split(',').map(|p| p.trim().to_string()).collect();
    if patterns.len() > MAX_PATTERNS {
        return Err(bad(format!("`types` has more than {MAX_PATTERNS} patterns")));
    }
    if patterns.iter().any(String::is_empty) {
        return Err(
            bad("`types` has an empty pattern: patterns are `name`, `prefix.*` or `*`, comma-separated".into()),
        );
    }
    let types = TypeMatcher::parse(&patterns).map_err(|e| bad(format!("`types`: {e}")))?;
    let tenant = match tenant {
        Some(t) if t.trim().is_empty() || t.chars().any(char::is_control) => {
            return Err(bad("`tenantId` must be a non-empty tenant id".into()));
        }
        other => other,
    };
    Ok((types, tenant))
}

/// For the log line of a cut: what the consumer asked for (never its key).
fn describe(filter: &Filter) -> String {
    let types = filter.types.patterns().join(",");
    match &filter.tenant {
        Some(tenant) => format!("types={types} tenantId={tenant}"),
        None => format!("types={types}"),
    }
}

/// A consumer's place in the feed, shared by its stream and its watchdog.
struct Place {
    /// The ordinal of the next event it reads.
    ordinal: AtomicU64,
    /// That event's byte offset.
    offset: AtomicU64,
    /// Set once, when it is cut.
    cut: OnceLock<StreamCut>,
    /// Wakes the stream when it is cut.
    wake: Notify,
}

impl Place {
    /// Cuts the consumer for `reason`: counted and logged once.
    fn cut(&self, reason: StreamCut, metrics: &EventStreamMetrics, who: &str) {
        if self.cut.set(reason).is_ok() {
            metrics.cut(reason);
            tracing::warn!(reason = reason.as_str(), consumer = who, "an event stream consumer was cut");
            self.wake.notify_one();
        }
    }
}

/// One consumer's stream: what it has not been sent yet, read from the feed as it is polled.
struct Consumer {
    feed: Arc<EventFeed>,
    head: tokio::sync::watch::Receiver<(u64, bool)>,
    place: Arc<Place>,
    filter: Filter,
    keep_alive: Duration,
    /// The opening comment, and the gap when there is one.
    first: Option<Bytes>,
    /// While the consumer's place differs from this node's (it resumed from another node's id):
    /// per shard what it had (not sent again) and its own ids.
    cursor: Option<Cursor>,
    done: bool,
    metrics: EventStreamMetrics,
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.metrics.consumers.dec();
    }
}

impl Consumer {
    /// The next bytes to send; `None` ends the stream.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        let quiet_until = Instant::now() + self.keep_alive;
        loop {
            if let Some(reason) = self.place.cut.get() {
                self.done = true;
                let message = match reason {
                    StreamCut::Behind => {
                        "this consumer fell too far behind the newest events; reconnect with Last-Event-ID"
                    }
                    StreamCut::Stalled => "this consumer took no events for too long; reconnect with Last-Event-ID",
                };
                let data = json!({ "error": { "type": "slow_consumer", "message": message } });
                return Some(Bytes::from(format!("event: error\ndata: {data}\n\n")));
            }
            if Instant::now() >= quiet_until {
                // Only events of other types came: the consumer still hears from us.
                return Some(Bytes::from_static(b": keep-alive\n\n"));
            }
            // Marked seen before reading: an event fed after the read wakes the wait below.
            let (_, closed) = *self.head.borrow_and_update();
            if closed {
                return None;
            }
            let ordinal = self.place.ordinal.load(Ordering::Acquire);
            match self.feed.read(ordinal, READ_BATCH) {
                Read::Evicted => self.place.cut(StreamCut::Behind, &self.metrics, &describe(&self.filter)),
                Read::Events(events, next) if !events.is_empty() => {
                    let mut chunk = Vec::new();
                    for event in &events {
                        // Every event goes through the cursor (filtered ones too: they move
                        // the consumer's frontier).
                        let frame = Cursor::frame(&mut self.cursor, event);
                        if let Some(frame) = frame.filter(|_| self.filter.matches(event)) {
                            chunk.extend_from_slice(&frame);
                        }
                    }
                    if let Some(last) = events.last() {
                        self.place.offset.store(last.offset + last.frame.len() as u64, Ordering::Release);
                    }
                    self.place.ordinal.store(next, Ordering::Release);
                    if !chunk.is_empty() {
                        return Some(Bytes::from(chunk));
                    }
                }
                Read::Events(..) => {
                    tokio::select! {
                        changed = self.head.changed() => if changed.is_err() { return None },
                        () = self.place.wake.notified() => {}
                        () = tokio::time::sleep_until(quiet_until) => {
                            return Some(Bytes::from_static(b": keep-alive\n\n"));
                        }
                    }
                }
            }
        }
    }
}

/// Watches one consumer until its stream ends: cuts it when it is further behind than
/// `settings` allow, or has taken nothing for `settings.stall` while events waited. A cut
/// consumer that does not end its stream within [`CUT_GRACE`] (it is not reading) has its
/// connection cut.
async fn watch(
    place: Weak<Place>,
    feed: Arc<EventFeed>,
    settings: EventStreamConfig,
    guard: Option<Arc<ConnectionGuard>>,
    metrics: EventStreamMetrics,
    who: String,
) {
    let tick = (settings.stall / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
    let mut seen = u64::MAX;
    let mut waiting_since: Option<Instant> = None;
    loop {
        tokio::time::sleep(tick).await;
        let Some(consumer) = place.upgrade() else { return };
        if consumer.cut.get().is_none() {
            let ordinal = consumer.ordinal.load(Ordering::Acquire);
            let now = Instant::now();
            let reason = match feed.lag(ordinal, consumer.offset.load(Ordering::Acquire)) {
                None => Some(StreamCut::Behind),
                Some((events, bytes))
                    if events > settings.max_lag_events as u64 || bytes > settings.max_lag_bytes as u64 =>
                {
                    Some(StreamCut::Behind)
                }
                Some((0, _)) => {
                    waiting_since = None;
                    None
                }
                Some(_) => {
                    // Events wait: since when, unless it took some since the last look.
                    let since = match waiting_since {
                        Some(since) if ordinal == seen => since,
                        _ => now,
                    };
                    waiting_since = Some(since);
                    (now.duration_since(since) >= settings.stall).then_some(StreamCut::Stalled)
                }
            };
            seen = ordinal;
            match reason {
                Some(reason) => consumer.cut(reason, &metrics, &who),
                None => continue,
            }
        }
        drop(consumer);
        tokio::time::sleep(CUT_GRACE).await;
        if place.upgrade().is_some()
            && let Some(guard) = &guard
        {
            guard.cut();
        }
        return;
    }
}

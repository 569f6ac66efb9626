//! Idempotent writes: the `Idempotency-Key` of `POST /api/v1/events`, `/emit` and
//! `/notifications`, and the `id` of published events (docs/backends.md, "Idempotency").
//!
//! - [`once`] is a layer on the three routes. A call with a key is run once per caller, path,
//!   key and body within the window: a repeat gets the first call's answer with
//!   `Idempotent-Replayed: true` and delivers nothing; a repeat while the first runs gets 409
//!   `conflict` (`Retry-After: 1`); the key with another body gets 422 `idempotency`. Only 2xx
//!   answers are kept: after any other the key is forgotten and may run again. The call runs in a
//!   task of its own, so a caller that gives up (its timeout, a reset) does not stop it halfway:
//!   its answer is kept for the retry.
//! - [`publish_new`] publishes a checked batch without the events whose `id` was published for
//!   the same tenant within the window (or earlier in the batch), and counts them.
//!
//! Entries are keyed by digests (SHA-256): of the presented credential, the path and the key; or
//! of the tenant and the event's id. No credential is stored. Where the entries live is the
//! [`IdempotencyStore`]'s business (this node's memory, or Redis in a cluster).

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use socketioxide::adapter::Adapter;

use super::{ApiError, HttpState};
use crate::{
    engine::PublishedEvent,
    idempotency::{Answer, Begin, Claim, Digest, Ticket},
};

/// The request header naming a call.
pub(super) const KEY_HEADER: &str = "idempotency-key";
/// The answer header marking a replayed answer.
pub(super) const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Longest `Idempotency-Key`.
const MAX_KEY_LEN: usize = 255;

/// The layer of the write routes: runs the call once per key (see the module's doc). A call
/// without the header, or without a valid API key (the route answers 401), passes untouched.
pub(super) async fn once<A: Adapter>(State(state): State<HttpState<A>>, request: Request, next: Next) -> Response {
    let Some(key) = request.headers().get(KEY_HEADER) else { return next.run(request).await };
    if state.api_keys.caller(request.headers()).is_none() {
        return next.run(request).await;
    }
    if !valid_key(key.as_bytes()) || request.headers().get_all(KEY_HEADER).iter().nth(1).is_some() {
        return ApiError::BadRequest(format!(
            "the `Idempotency-Key` header must be one value of 1 to {MAX_KEY_LEN} visible ASCII characters (0x21-0x7e)"
        ))
        .into_response();
    }
    // The routes are fixed paths: the request's path is the route's.
    let key = call_key(request.headers(), request.uri().path(), key.as_bytes());
    let (parts, body) = request.into_parts();
    let body = match to_bytes(body, state.max_body_bytes).await {
        Ok(body) => body,
        Err(_) => return ApiError::TooLarge(state.max_body_bytes).into_response(),
    };
    let claim = Claim { key, fingerprint: Sha256::digest(&body).into() };
    let store = state.idempotency.clone();
    let metrics = &state.metrics.idempotency;
    let ticket = match store.begin(&[claim]).await.pop() {
        Some(Begin::Started(ticket)) => ticket,
        Some(Begin::Done(answer)) => {
            metrics.replayed.inc();
            return replayed(answer);
        }
        Some(Begin::InFlight) => {
            metrics.refused.inc();
            return ApiError::InFlight.into_response();
        }
        Some(Begin::Mismatch) | None => {
            metrics.refused.inc();
            return ApiError::KeyReused.into_response();
        }
    };
    let request = Request::from_parts(parts, Body::from(body));
    // Its own task: the call and the record of its answer finish even if the caller goes away.
    let run = tokio::spawn(async move {
        let response = next.run(request).await;
        if !response.status().is_success() {
            store.forget(&[ticket]).await;
            return response;
        }
        let (parts, body) = response.into_parts();
        // The API's answers are small JSON objects, already whole in memory.
        let body = to_bytes(body, usize::MAX).await.unwrap_or_default();
        let answer = Answer { status: parts.status.as_u16(), body: String::from_utf8_lossy(&body).into_owned() };
        store.finish(&[ticket], &answer).await;
        Response::from_parts(parts, Body::from(body))
    });
    match run.await {
        Ok(response) => response,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is stopping: the call may not have run.
        Err(_) => ApiError::Unavailable(crate::engine::PublishError::Unavailable).into_response(),
    }
}

/// Whether `key` is 1 to 255 visible ASCII characters.
fn valid_key(key: &[u8]) -> bool {
    (1..=MAX_KEY_LEN).contains(&key.len()) && key.iter().all(|b| (0x21..=0x7e).contains(b))
}

/// The entry of a call: the credential as presented (either header, as sent), the path and the
/// key, each length-prefixed so no two different triples hash alike.
fn call_key(headers: &HeaderMap, path: &str, key: &[u8]) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"call");
    for part in [
        headers.get("x-api-key").map_or(&b""[..], HeaderValue::as_bytes),
        headers.get(header::AUTHORIZATION).map_or(&b""[..], HeaderValue::as_bytes),
        path.as_bytes(),
        key,
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// A remembered answer, sent again.
fn replayed(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut response = (status, answer.body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

/// The entry of an event's id: its tenant (or none) and the id.
fn event_key(event: &PublishedEvent, id: &str) -> Digest {
    let mut hash = Sha256::new();
    hash.update(b"event");
    match event.tenant_id() {
        Some(tenant) => {
            hash.update([1]);
            hash.update((tenant.len() as u64).to_be_bytes());
            hash.update(tenant);
        }
        None => hash.update([0]),
    }
    hash.update(id);
    hash.finalize().into()
}

/// What [`publish_new`] did with a batch.
#[derive(Debug)]
pub(super) struct Published {
    /// Events in the batch (the duplicates included: they were accepted before).
    accepted: usize,
    /// Events left out because their id had been published.
    duplicates: usize,
}

impl Published {
    /// `{"accepted": n}`, with `"duplicates": d` when some were left out.
    pub(super) fn answer(&self) -> Value {
        match self.duplicates {
            0 => json!({ "accepted": self.accepted }),
            d => json!({ "accepted": self.accepted, "duplicates": d }),
        }
    }
}

/// Checks a batch whole, then publishes the events whose `id` (if they have one) was not
/// published for their tenant within the window, nor earlier in the batch. An id being published
/// by another call right now makes this one a 409, with nothing published.
pub(super) async fn publish_new<A: Adapter>(
    state: &HttpState<A>,
    events: Vec<PublishedEvent>,
) -> Result<Published, ApiError> {
    let accepted = events.len();
    if events.iter().all(|e| e.id().is_none()) {
        state.engine.publish(events).await?;
        return Ok(Published { accepted, duplicates: 0 });
    }
    // Checked before any id is claimed: a batch refused as a whole marks none as published.
    state.engine.check(&events).map_err(ApiError::BadRequest)?;
    let mut seen = std::collections::HashSet::new();
    let mut claims = Vec::new();
    // For each event: `None` without an id, else the index of its claim; repeats in the batch
    // are dropped here.
    let mut kept = Vec::with_capacity(events.len());
    for event in events {
        match event.id() {
            None => kept.push((event, None)),
            Some(id) => {
                let key = event_key(&event, id);
                if seen.insert(key) {
                    claims.push(Claim { key, fingerprint: [0; 32] });
                    kept.push((event, Some(claims.len() - 1)));
                }
            }
        }
    }
    let found = state.idempotency.begin(&claims).await;
    let tickets: Vec<Ticket> =
        found.iter().filter_map(|b| if let Begin::Started(t) = b { Some(*t) } else { None }).collect();
    if found.iter().any(|b| matches!(b, Begin::InFlight)) {
        state.idempotency.forget(&tickets).await;
        state.metrics.idempotency.refused.inc();
        return Err(ApiError::InFlight);
    }
    let fresh: Vec<PublishedEvent> = kept
        .into_iter()
        .filter(|(_, claim)| claim.is_none_or(|i| matches!(found.get(i), Some(Begin::Started(_)))))
        .map(|(event, _)| event)
        .collect();
    let duplicates = accepted - fresh.len();
    state.metrics.idempotency.duplicate_events.inc_by(duplicates as u64);
    if fresh.is_empty() {
        return Ok(Published { accepted, duplicates });
    }
    match state.engine.publish(fresh).await {
        Ok(_) => {
            state.idempotency.finish(&tickets, &Answer { status: 202, body: String::new() }).await;
            Ok(Published { accepted, duplicates })
        }
        Err(e) => {
            state.idempotency.forget(&tickets).await;
            Err(e.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_visible_ascii_characters() {
        assert!(valid_key(b"a"));
        assert!(valid_key(b"550e8400-e29b-41d4-a716-446655440000"));
        assert!(valid_key(&[b'~'; 255]));
        assert!(valid_key(b"!"));
        assert!(!valid_key(b""));
        assert!(!valid_key(&[b'a'; 256]));
        assert!(!valid_key(b"with space"));
        assert!(!valid_key(b"tab\there"));
        assert!(!valid_key("caf\u{e9}".as_bytes()));
        assert!(!valid_key(b"del\x7f"));
    }

    #[test]
    fn a_call_key_depends_on_the_credential_the_path_and_the_key() {
        let with = |api_key: &str| {
            let mut headers = HeaderMap::new();
            headers.insert("x-api-key", HeaderValue::from_str(api_key).unwrap());
            headers
        };
        let base = call_key(&with("k1"), "/api/v1/events", b"abc");
        assert_eq!(base, call_key(&with("k1"), "/api/v1/events", b"abc"));
        assert_ne!(base, call_key(&with("k2"), "/api/v1/events", b"abc"));
        assert_ne!(base, call_key(&with("k1"), "/api/v1/emit", b"abc"));
        assert_ne!(base, call_key(&with("k1"), "/api/v1/events", b"abd"));
        // Length prefixes: moving a boundary changes the key.
        assert_ne!(call_key(&with("k1"), "/a", b"bc"), call_key(&with("k1"), "/ab", b"c"));
    }
}

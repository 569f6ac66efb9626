//! The API's idempotency entries shared by the cluster, in Redis: a call repeated through another
//! node is answered the same as through the first.
//!
//! One string per entry, `{REDIS_PREFIX}:idem:{hex digest}`: claimed with `SET NX PX` (pending,
//! for [`PENDING_TTL`]), then `SET XX PX` with the answer for the window, or `DEL` when the call
//! failed. A claim that finds the key reads it (`GET`) to tell a running call from an answered
//! one. Claims of one call go out together (fred pipelines concurrent commands).
//!
//! While Redis cannot be reached (the node knows it is away, or a command fails), claims are
//! kept in this node's memory instead, counted in `idempotency_fallbacks` and logged: a call is
//! never refused because Redis is away. What that costs: a repeat that reaches another node
//! during the outage runs again there, and one claimed here before Redis came back is not known
//! to the others.

use std::{sync::Arc, time::Duration};

use fred::{
    clients::Client,
    interfaces::KeysInterface,
    types::{Expiration, SetOptions},
};
use futures_util::future::join_all;

use super::health::Health;
use crate::{
    idempotency::{Answer, Begin, Claim, Digest, IdempotencyStore, MemoryStore, PENDING_TTL, StoreFuture, Ticket},
    metrics::IdempotencyMetrics,
};

/// Entries in Redis, this node's memory while Redis is away.
pub(crate) struct RedisIdempotency {
    client: Client,
    health: Arc<Health>,
    prefix: String,
    window: Duration,
    local: MemoryStore,
    metrics: IdempotencyMetrics,
}

impl RedisIdempotency {
    pub(super) fn new(
        client: Client,
        health: Arc<Health>,
        prefix: &str,
        window: Duration,
        local: MemoryStore,
        metrics: IdempotencyMetrics,
    ) -> Self {
        Self { client, health, prefix: format!("{prefix}:idem:"), window, local, metrics }
    }

    fn key(&self, digest: &Digest) -> String {
        format!("{}{}", self.prefix, hex(digest))
    }

    /// Whether commands are worth sending now: while the node knows Redis is away, each would
    /// wait for its timeout before failing.
    fn reachable(&self) -> bool {
        self.health.connected.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// One claim in Redis; `Err` when Redis failed.
    async fn claim(&self, claim: &Claim) -> Result<Begin, fred::error::Error> {
        let key = self.key(&claim.key);
        let pending = format!("p:{}", hex(&claim.fingerprint));
        // The key may expire between a failed SET and the GET: try again, a few times.
        for _ in 0..3 {
            let set: Option<String> = self
                .client
                .set(&key, pending.as_str(), Some(Expiration::PX(millis(PENDING_TTL))), Some(SetOptions::NX), false)
                .await?;
            if set.is_some() {
                return Ok(Begin::Started(Ticket { claim: *claim, local: false }));
            }
            let held: Option<String> = self.client.get(&key).await?;
            if let Some(held) = held {
                return Ok(read_entry(&held, &claim.fingerprint));
            }
        }
        // Claimed and gone three times in a row: someone is working on it.
        Ok(Begin::InFlight)
    }

    /// Claims in this node's memory, because Redis is away (`why`).
    fn fall_back(&self, claims: &[Claim], why: &str) -> Vec<Begin> {
        self.metrics.fallbacks.inc_by(claims.len() as u64);
        tracing::warn!(reason = why, "Redis is unreachable: idempotency keys and event ids kept on this node only");
        self.local.begin_now(claims)
    }
}

impl IdempotencyStore for RedisIdempotency {
    fn begin<'a>(&'a self, claims: &'a [Claim]) -> StoreFuture<'a, Vec<Begin>> {
        Box::pin(async move {
            if claims.is_empty() {
                return Vec::new();
            }
            if !self.reachable() {
                return self.fall_back(claims, "not connected");
            }
            let found = join_all(claims.iter().map(|c| self.claim(c))).await;
            found
                .into_iter()
                .zip(claims)
                .map(|(found, claim)| match found {
                    Ok(begin) => begin,
                    Err(e) => self.fall_back(std::slice::from_ref(claim), &e.to_string()).remove(0),
                })
                .collect()
        })
    }

    fn finish<'a>(&'a self, tickets: &'a [Ticket], answer: &'a Answer) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (local, shared) = split(tickets);
            self.local.finish_now(&local, answer);
            let done = |t: &Ticket| format!("d:{}:{}:{}", hex(&t.claim.fingerprint), answer.status, answer.body);
            let results = join_all(shared.iter().map(|t| async move {
                self.client
                    .set::<Option<String>, _, _>(
                        self.key(&t.claim.key),
                        done(t),
                        Some(Expiration::PX(millis(self.window))),
                        Some(SetOptions::XX),
                        false,
                    )
                    .await
            }))
            .await;
            if let Some(e) = results.into_iter().find_map(Result::err) {
                // The entries stay pending until PENDING_TTL: a repeat meanwhile is told to retry.
                tracing::warn!(error = %e, "Redis did not take an idempotent call's answer");
            }
        })
    }

    fn forget<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let (local, shared) = split(tickets);
            self.local.forget_now(&local);
            if shared.is_empty() {
                return;
            }
            let keys: Vec<String> = shared.iter().map(|t| self.key(&t.claim.key)).collect();
            if let Err(e) = self.client.del::<i64, _>(keys).await {
                tracing::warn!(error = %e, "Redis did not drop a failed call's idempotency entries");
            }
        })
    }
}

/// Tickets claimed in this node's memory, and those claimed in Redis.
fn split(tickets: &[Ticket]) -> (Vec<Ticket>, Vec<Ticket>) {
    tickets.iter().partition(|t| t.local)
}

/// What a held entry says to a claim with `fingerprint`: `p:{fp}` pending, `d:{fp}:{status}:{body}`
/// done. Anything else (another version's entry) counts as running, so nothing runs twice.
fn read_entry(held: &str, fingerprint: &Digest) -> Begin {
    let mut parts = held.splitn(4, ':');
    let (state, fp) = (parts.next(), parts.next());
    if fp.is_some_and(|fp| fp != hex(fingerprint)) {
        return Begin::Mismatch;
    }
    match (state, parts.next().and_then(|s| s.parse().ok()), parts.next()) {
        (Some("d"), Some(status), Some(body)) => Begin::Done(Answer { status, body: body.to_string() }),
        _ => Begin::InFlight,
    }
}

fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_entries_read_back_as_what_they_were() {
        let fp = [7; 32];
        assert_eq!(read_entry(&format!("p:{}", hex(&fp)), &fp), Begin::InFlight);
        assert_eq!(
            read_entry(&format!("d:{}:202:{{\"a\":\"x:y\"}}", hex(&fp)), &fp),
            Begin::Done(Answer { status: 202, body: "{\"a\":\"x:y\"}".into() })
        );
        assert_eq!(
            read_entry(&format!("d:{}:202:", hex(&fp)), &fp),
            Begin::Done(Answer { status: 202, body: "".into() })
        );
        assert_eq!(read_entry(&format!("p:{}", hex(&[8; 32])), &fp), Begin::Mismatch);
        assert_eq!(read_entry("garbage", &fp), Begin::InFlight);
        assert_eq!(read_entry("", &fp), Begin::InFlight);
    }
}

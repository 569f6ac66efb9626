//! Entries kept on this node: the store of a single node, and a cluster node's fallback while
//! Redis is unreachable. Bounded in count and in bytes; past either bound the oldest entries go
//! first (counted as evictions: a repeat of an evicted call would run again), and expired ones are
//! dropped as they come up. One short lock per call; nothing awaits under it.

use std::{
    collections::{HashMap, VecDeque},
    sync::Mutex,
    time::{Duration, Instant},
};

use super::{Answer, Begin, Claim, Digest, IdempotencyStore, PENDING_TTL, StoreFuture, Ticket, entry_bytes};
use crate::metrics::IdempotencyMetrics;

/// This node's entries.
pub(crate) struct MemoryStore {
    entries: Mutex<Entries>,
    /// How long a done entry is kept.
    window: Duration,
    max_entries: usize,
    max_bytes: usize,
    metrics: IdempotencyMetrics,
}

#[derive(Default)]
struct Entries {
    map: HashMap<Digest, Entry>,
    /// Keys in the order they were last written, each with the generation it had then; an item
    /// whose generation is no longer its entry's is stale and skipped.
    order: VecDeque<(Digest, u64)>,
    next_generation: u64,
    bytes: usize,
}

struct Entry {
    fingerprint: Digest,
    /// `None` while pending.
    answer: Option<Answer>,
    expires: Instant,
    bytes: usize,
    generation: u64,
}

impl MemoryStore {
    /// A store keeping done entries for `window`, at most `max_entries` of them and `max_bytes`
    /// together (both at least 1).
    pub(crate) fn new(window: Duration, max_entries: usize, max_bytes: usize, metrics: IdempotencyMetrics) -> Self {
        Self { entries: Mutex::default(), window, max_entries: max_entries.max(1), max_bytes, metrics }
    }

    /// [`IdempotencyStore::begin`], now.
    pub(crate) fn begin_now(&self, claims: &[Claim]) -> Vec<Begin> {
        self.begin_at(Instant::now(), claims)
    }

    /// [`IdempotencyStore::finish`], now. Tickets of entries no longer pending (expired,
    /// evicted) are ignored.
    pub(crate) fn finish_now(&self, tickets: &[Ticket], answer: &Answer) {
        self.finish_at(Instant::now(), tickets, answer);
    }

    /// [`IdempotencyStore::forget`]: drops the pending entries of `tickets`.
    pub(crate) fn forget_now(&self, tickets: &[Ticket]) {
        let mut entries = self.lock();
        for ticket in tickets {
            let claim = &ticket.claim;
            if entries.map.get(&claim.key).is_some_and(|e| e.answer.is_none() && e.fingerprint == claim.fingerprint) {
                entries.remove(&claim.key);
            }
        }
        self.metrics.entries.set(entries.map.len() as i64);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin_at(&self, now: Instant, claims: &[Claim]) -> Vec<Begin> {
        let mut entries = self.lock();
        let found = claims
            .iter()
            .map(|claim| {
                if let Some(entry) = entries.map.get(&claim.key) {
                    if entry.expires > now {
                        return match &entry.answer {
                            _ if entry.fingerprint != claim.fingerprint => Begin::Mismatch,
                            Some(answer) => Begin::Done(answer.clone()),
                            None => Begin::InFlight,
                        };
                    }
                    entries.remove(&claim.key);
                }
                entries.write(claim.key, claim.fingerprint, None, now + PENDING_TTL);
                Begin::Started(Ticket { claim: *claim, local: true })
            })
            .collect();
        self.bound(&mut entries, now);
        found
    }

    fn finish_at(&self, now: Instant, tickets: &[Ticket], answer: &Answer) {
        let mut entries = self.lock();
        for ticket in tickets {
            let claim = &ticket.claim;
            if entries.map.get(&claim.key).is_some_and(|e| e.answer.is_none() && e.fingerprint == claim.fingerprint) {
                entries.remove(&claim.key);
                entries.write(claim.key, claim.fingerprint, Some(answer.clone()), now + self.window);
            }
        }
        self.bound(&mut entries, now);
    }

    /// Drops expired entries from the front of the order, then the oldest until both bounds hold.
    fn bound(&self, entries: &mut Entries, now: Instant) {
        while let Some(&(key, generation)) = entries.order.front() {
            let over = entries.map.len() > self.max_entries || entries.bytes > self.max_bytes;
            match entries.map.get(&key) {
                Some(entry) if entry.generation == generation => {
                    let expired = entry.expires <= now;
                    if !expired && !over {
                        break;
                    }
                    if !expired {
                        self.metrics.evicted.inc();
                    }
                    entries.remove(&key);
                }
                _ => {}
            }
            entries.order.pop_front();
        }
        // Stale items pile up behind a live front when entries are rewritten or forgotten: keep
        // the queue within twice the live entries.
        if entries.order.len() > 2 * entries.map.len().max(1024) {
            let Entries { map, order, .. } = entries;
            order.retain(|(key, generation)| map.get(key).is_some_and(|e| e.generation == *generation));
        }
        self.metrics.entries.set(entries.map.len() as i64);
    }
}

impl Entries {
    fn write(&mut self, key: Digest, fingerprint: Digest, answer: Option<Answer>, expires: Instant) {
        let generation = self.next_generation;
        self.next_generation += 1;
        let bytes = entry_bytes(answer.as_ref());
        self.bytes += bytes;
        self.map.insert(key, Entry { fingerprint, answer, expires, bytes, generation });
        self.order.push_back((key, generation));
    }

    fn remove(&mut self, key: &Digest) {
        if let Some(entry) = self.map.remove(key) {
            self.bytes -= entry.bytes;
        }
    }
}

impl IdempotencyStore for MemoryStore {
    fn begin<'a>(&'a self, claims: &'a [Claim]) -> StoreFuture<'a, Vec<Begin>> {
        let found = self.begin_now(claims);
        Box::pin(std::future::ready(found))
    }

    fn finish<'a>(&'a self, tickets: &'a [Ticket], answer: &'a Answer) -> StoreFuture<'a, ()> {
        self.finish_now(tickets, answer);
        Box::pin(std::future::ready(()))
    }

    fn forget<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, ()> {
        self.forget_now(tickets);
        Box::pin(std::future::ready(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn store(max_entries: usize, max_bytes: usize) -> MemoryStore {
        MemoryStore::new(WINDOW, max_entries, max_bytes, IdempotencyMetrics::unregistered())
    }

    fn claim(key: u8, fingerprint: u8) -> Claim {
        Claim { key: [key; 32], fingerprint: [fingerprint; 32] }
    }

    fn answer(body: &str) -> Answer {
        Answer { status: 202, body: body.to_string() }
    }

    fn started(found: &[Begin]) -> Vec<Ticket> {
        found
            .iter()
            .map(|b| match b {
                Begin::Started(t) => *t,
                other => panic!("expected Started, got {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_claim_is_pending_then_done_then_expired() {
        let store = store(10, 1 << 20);
        let now = Instant::now();
        let tickets = started(&store.begin_at(now, &[claim(1, 1)]));
        assert_eq!(store.begin_at(now, &[claim(1, 1)]), vec![Begin::InFlight]);
        assert_eq!(store.begin_at(now, &[claim(1, 2)]), vec![Begin::Mismatch]);
        store.finish_at(now, &tickets, &answer("{\"accepted\":1}"));
        assert_eq!(store.begin_at(now + WINDOW / 2, &[claim(1, 1)]), vec![Begin::Done(answer("{\"accepted\":1}"))]);
        assert_eq!(store.begin_at(now, &[claim(1, 2)]), vec![Begin::Mismatch]);
        started(&store.begin_at(now + WINDOW, &[claim(1, 1)]));
    }

    #[test]
    fn a_forgotten_claim_may_start_again() {
        let store = store(10, 1 << 20);
        let tickets = started(&store.begin_now(&[claim(1, 1)]));
        store.forget_now(&tickets);
        started(&store.begin_now(&[claim(1, 1)]));
    }

    #[test]
    fn a_pending_claim_expires_after_its_own_time() {
        let store = store(10, 1 << 20);
        let now = Instant::now();
        started(&store.begin_at(now, &[claim(1, 1)]));
        assert_eq!(store.begin_at(now + PENDING_TTL - Duration::from_millis(1), &[claim(1, 1)]), vec![Begin::InFlight]);
        started(&store.begin_at(now + PENDING_TTL, &[claim(1, 1)]));
    }

    #[test]
    fn the_oldest_entries_go_first_past_the_count_and_are_counted() {
        let store = store(3, 1 << 20);
        let now = Instant::now();
        for key in 1..=5 {
            let tickets = started(&store.begin_at(now, &[claim(key, 0)]));
            store.finish_at(now, &tickets, &answer("{}"));
        }
        assert_eq!(store.metrics.evicted.get(), 2);
        assert_eq!(store.lock().map.len(), 3);
        started(&store.begin_at(now, &[claim(1, 0)]));
        assert!(matches!(store.begin_at(now, &[claim(5, 0)])[0], Begin::Done(_)));
    }

    #[test]
    fn the_byte_budget_holds_whatever_the_answers_size() {
        let big = "x".repeat(1000);
        let budget = 3 * entry_bytes(Some(&answer(&big)));
        let store = store(1000, budget);
        let now = Instant::now();
        for key in 0..20 {
            let tickets = started(&store.begin_at(now, &[claim(key, 0)]));
            store.finish_at(now, &tickets, &answer(&big));
            assert!(store.lock().bytes <= budget, "{} bytes", store.lock().bytes);
        }
        assert!(store.metrics.evicted.get() >= 17);
    }

    #[test]
    fn rewrites_and_forgets_do_not_grow_the_order_queue_without_bound() {
        let store = store(10, 1 << 20);
        for _ in 0..10_000 {
            let tickets = started(&store.begin_now(&[claim(1, 1)]));
            store.forget_now(&tickets);
            started(&store.begin_now(&[claim(2, 1)]));
            store.forget_now(&[Ticket { claim: claim(2, 1), local: true }]);
        }
        assert!(store.lock().order.len() <= 2048, "{}", store.lock().order.len());
    }
}

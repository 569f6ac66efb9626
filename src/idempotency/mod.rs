//! What the API remembers of recent writes, so that a retried call is answered, not run again:
//! entries keyed by a digest, each pending (its call is running) or done (with the answer it
//! got), for a window. [`IdempotencyStore`] is what the HTTP layer asks; `memory` keeps entries
//! on this node, bounded in count and bytes; `crate::cluster` shares them through Redis.
//!
//! The store knows digests only: what a key is made of (the caller's credential, the path, the
//! `Idempotency-Key`; or a tenant and an event's id) is decided by `crate::http::idempotency`,
//! so no credential ever reaches a store.

mod memory;

use std::{future::Future, pin::Pin, time::Duration};

pub(crate) use memory::MemoryStore;

/// A SHA-256 digest: an entry's key, or a request body's fingerprint.
pub(crate) type Digest = [u8; 32];

/// How long a pending entry lives when its call never finishes (its node died, or its task was
/// lost): long enough for the slowest call (a notification waits for acks up to 30 s), short
/// enough that a retry is not refused as "in flight" for the whole window.
pub(crate) const PENDING_TTL: Duration = Duration::from_secs(60);

/// The answer a done entry replays: the first call's status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Answer {
    /// The HTTP status (a 2xx: only those are remembered).
    pub status: u16,
    /// The JSON body, as sent.
    pub body: String,
}

/// One entry to claim: its key, and the fingerprint of what the call carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Claim {
    /// Where the entry is kept.
    pub key: Digest,
    /// The body's digest: a repeat with another body is not a repeat.
    pub fingerprint: Digest,
}

/// What claiming an entry found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Begin {
    /// Nobody had it: it is now pending, for the caller to [`IdempotencyStore::finish`] or
    /// [`IdempotencyStore::forget`] with this ticket.
    Started(Ticket),
    /// Another call with it is still running.
    InFlight,
    /// A call with it was answered within the window: this answer.
    Done(Answer),
    /// A call with this key but another fingerprint holds it.
    Mismatch,
}

/// A claimed entry, to finish or forget. Says where it was claimed, so a store that fell back to
/// another place settles it there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    /// What was claimed.
    pub claim: Claim,
    /// Claimed in this node's memory (no shared store, or it was unreachable).
    pub local: bool,
}

/// A boxed future, as the store's methods return them (the trait is used as `dyn`).
pub(crate) type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where entries are kept. Implementations never fail: a store that cannot reach its shared
/// place keeps the entry on this node instead (and says so in its metrics and log).
pub(crate) trait IdempotencyStore: Send + Sync {
    /// Claims each of `claims` (in one round trip where the store has trips), in order.
    fn begin<'a>(&'a self, claims: &'a [Claim]) -> StoreFuture<'a, Vec<Begin>>;
    /// Marks claimed entries done with `answer`, kept for the window from now.
    fn finish<'a>(&'a self, tickets: &'a [Ticket], answer: &'a Answer) -> StoreFuture<'a, ()>;
    /// Drops claimed entries: their calls failed, and may be run again.
    fn forget<'a>(&'a self, tickets: &'a [Ticket]) -> StoreFuture<'a, ()>;
}

/// How much an entry costs in a store's byte budget: its key, fingerprint and answer, plus the
/// bookkeeping around them (map slot, order queue, allocation).
pub(crate) fn entry_bytes(answer: Option<&Answer>) -> usize {
    const OVERHEAD: usize = 128;
    OVERHEAD + 2 * std::mem::size_of::<Digest>() + answer.map_or(0, |a| a.body.len())
}

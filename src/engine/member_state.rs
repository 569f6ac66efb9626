//! A member's state, on either front: who it is, its public id, its relays in flight and why it
//! is being ended; kept small because it is paid once per connection.
//!
//! A front creates it when it admits a connection and keeps it with the connection (a Socket.IO
//! socket's extensions, a plain WebSocket's record). Rooms are not here: each front indexes them.
//!
//! A socket is known to everyone but itself by its [`PublicId`], never by socketioxide's socket
//! id: that one is the Engine.IO session id, which works as a credential for a long-polling
//! session (whoever sends it can poll, post and upgrade as that session).

use std::{
    fmt,
    future::Future,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU8, AtomicU64, Ordering},
    },
};

use tokio::task::JoinHandle;

use crate::{auth::Identity, metrics::CloseReason};

/// The id a socket is shown under (`{socket.id}` in specs: `clientId`, relays' `from.socketId`,
/// logs): random, unrelated to the Engine.IO session id, and useless as a credential. Node's
/// socket.io gives sockets an id separate from the Engine.IO one for the same reason.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct PublicId([u8; 15]);

impl PublicId {
    /// A fresh random id.
    pub(crate) fn random() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 15];
        rand::rng().fill_bytes(&mut bytes);
        Self(bytes)
    }
}

impl fmt::Display for PublicId {
    /// 20 characters of URL-safe base64, the length of Node's socket ids.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = [0u8; 20];
        for (chunk, dst) in self.0.chunks(3).zip(out.chunks_mut(4)) {
            let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
            for (i, slot) in dst.iter_mut().enumerate() {
                *slot = ALPHABET[((n >> (18 - 6 * i)) & 63) as usize];
            }
        }
        f.write_str(std::str::from_utf8(&out).expect("the alphabet is ASCII"))
    }
}

impl fmt::Debug for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicId({self})")
    }
}

/// Relays of one socket on their way to other nodes at most: beyond, its client is asked to slow
/// down (a Redis that answers slowly would otherwise let them pile up).
pub(crate) const MAX_PENDING_RELAYS: u16 = 64;

/// A socket has [`MAX_PENDING_RELAYS`] relays on their way already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RelaysPending;

/// What the gateway knows about one connected socket.
#[derive(Debug)]
pub(crate) struct MemberState {
    /// The id others see.
    pub public_id: PublicId,
    /// When it connected (ms since the epoch), for the admin view.
    pub connected_at_ms: u64,
    /// Replaced when the client refreshes its token, hence the lock; read on every event.
    identity: RwLock<Arc<Identity>>,
    /// When this socket was last told it is rate limited (ms since the epoch), so a flood of
    /// refused events does not turn into a flood of error events.
    last_limit_notice_ms: AtomicU64,
    /// The socket's relays still on their way (in a cluster): the last one, which the next waits
    /// for, and how many there are.
    relays: Mutex<(Option<JoinHandle<()>>, u16)>,
    /// Why the gateway is ending it, when the transport's own reason would hide it (a slow
    /// consumer's cut shows as a transport error): `CloseReason` index + 1, 0 for none. One byte,
    /// which fits in the padding after `public_id`.
    ending: AtomicU8,
}

/// Why a socket was accepted at the protocol level but is being turned away: kept in its
/// extensions between the connect middleware and the connect handler, which tells the client.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    /// The `error` message.
    pub message: String,
    /// The `error` type: `auth`, or `rate_limit` for the per-IP connection limit.
    pub kind: super::errors::ErrorKind,
}

impl MemberState {
    /// A session for `identity`.
    pub(crate) fn new(identity: Identity) -> Arc<Self> {
        Arc::new(Self {
            public_id: PublicId::random(),
            connected_at_ms: crate::clock::now_millis(),
            identity: RwLock::new(Arc::new(identity)),
            last_limit_notice_ms: AtomicU64::new(0),
            relays: Mutex::new((None, 0)),
            ending: AtomicU8::new(0),
        })
    }

    /// Notes that the gateway is ending this socket for `reason`, which its disconnect is
    /// counted under.
    pub(crate) fn end_as(&self, reason: CloseReason) {
        self.ending.store(reason as u8 + 1, Ordering::Relaxed);
    }

    /// Why the gateway ended it, if it did (see [`Self::end_as`]).
    pub(crate) fn ended_as(&self) -> Option<CloseReason> {
        let n = self.ending.load(Ordering::Relaxed);
        CloseReason::ALL.get(usize::from(n).checked_sub(1)?).copied()
    }

    /// The current identity.
    pub(crate) fn identity(&self) -> Arc<Identity> {
        self.identity.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the identity (token refresh).
    pub(crate) fn set_identity(&self, identity: Identity) {
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(identity);
    }

    /// Spawns `work` once the socket's previous relay has gone, so its relays keep their order;
    /// refused when [`MAX_PENDING_RELAYS`] are still on their way. A relay whose socket has
    /// gone by its turn is dropped (and counted by `dropped`): nothing of a socket outlives it
    /// for longer than its last relay in flight.
    pub(crate) fn chain<Fut>(
        self: &Arc<Self>,
        work: Fut,
        dropped: impl FnOnce() + Send + 'static,
    ) -> Result<(), RelaysPending>
    where
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut relays = self.relays.lock().unwrap_or_else(|e| e.into_inner());
        if relays.1 >= MAX_PENDING_RELAYS {
            return Err(RelaysPending);
        }
        relays.1 += 1;
        let previous = relays.0.take().filter(|h| !h.is_finished());
        let session = Arc::downgrade(self);
        relays.0 = Some(tokio::spawn(async move {
            if let Some(previous) = previous {
                let _ = previous.await;
            }
            // Its socket is gone when nothing holds its session any more.
            if session.strong_count() > 0 {
                work.await;
            } else {
                dropped();
            }
            if let Some(session) = session.upgrade() {
                session.relays.lock().unwrap_or_else(|e| e.into_inner()).1 -= 1;
            }
        }));
        Ok(())
    }

    /// Whether a rate-limit notice may be sent now (at most one per `gap_ms`); records it if so.
    pub(crate) fn may_notify_limit(&self, now_ms: u64, gap_ms: u64) -> bool {
        let last = self.last_limit_notice_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= gap_ms
            && self.last_limit_notice_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_ids_are_twenty_url_safe_characters_and_differ() {
        let (a, b) = (PublicId::random().to_string(), PublicId::random().to_string());
        assert_eq!(a.len(), 20);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'), "{a}");
        assert_ne!(a, b);
        assert_eq!(PublicId([0xff; 15]).to_string(), "____________________");
        assert_eq!(PublicId([0; 15]).to_string(), "AAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn a_session_remembers_why_the_gateway_ended_it() {
        let session = MemberState::new(Identity::anonymous());
        assert_eq!(session.ended_as(), None);
        session.end_as(CloseReason::SlowConsumer);
        assert_eq!(session.ended_as(), Some(CloseReason::SlowConsumer));
    }
}

//! Per-socket state: who the socket is, kept small because it is paid once per connection.
//!
//! A session lives in the socket's extensions (and in its event handler), created by the connect
//! middleware. Rooms are not here: the adapter already knows them.

use std::{
    future::Future,
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::task::JoinHandle;

use crate::auth::Identity;

/// What the gateway knows about one connected socket.
#[derive(Debug)]
pub struct Session {
    /// Replaced when the client refreshes its token, hence the lock; read on every event.
    identity: RwLock<Arc<Identity>>,
    /// When this socket was last told it is rate limited (ms since the epoch), so a flood of
    /// refused events does not turn into a flood of error events.
    last_limit_notice_ms: AtomicU64,
    /// The socket's last broadcast still on its way (in a cluster), which the next one waits for.
    last_broadcast: Mutex<Option<JoinHandle<()>>>,
}

/// Why a socket was accepted at the protocol level but is being turned away: kept in its
/// extensions between the connect middleware and the connect handler, which tells the client.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// The `error` message.
    pub message: String,
    /// The `error` type: `auth`, or `rate_limit` for the per-IP connection limit.
    pub kind: super::errors::ErrorKind,
}

impl Session {
    /// A session for `identity`.
    pub fn new(identity: Identity) -> Arc<Self> {
        Arc::new(Self {
            identity: RwLock::new(Arc::new(identity)),
            last_limit_notice_ms: AtomicU64::new(0),
            last_broadcast: Mutex::new(None),
        })
    }

    /// The current identity.
    pub fn identity(&self) -> Arc<Identity> {
        self.identity.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Replaces the identity (token refresh).
    pub fn set_identity(&self, identity: Identity) {
        *self.identity.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(identity);
    }

    /// Spawns `work`, handing it the socket's previous unfinished broadcast to wait for first.
    pub fn chain<F, Fut>(&self, work: F)
    where
        F: FnOnce(Option<JoinHandle<()>>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let mut last = self.last_broadcast.lock().unwrap_or_else(|e| e.into_inner());
        let previous = last.take().filter(|h| !h.is_finished());
        *last = Some(tokio::spawn(work(previous)));
    }

    /// Whether a rate-limit notice may be sent now (at most one per `gap_ms`); records it if so.
    pub fn may_notify_limit(&self, now_ms: u64, gap_ms: u64) -> bool {
        let last = self.last_limit_notice_ms.load(Ordering::Relaxed);
        now_ms.saturating_sub(last) >= gap_ms
            && self.last_limit_notice_ms.compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

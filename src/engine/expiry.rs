//! Token expiry while connected: every socket with an `exp` is queued by expiry time; once a
//! second the due ones are checked and, unless their token was refreshed meanwhile, told
//! `error {type: "auth"}` and disconnected. One queue and one task per node, rather than a timer
//! per socket, because a timer per connection costs memory on every connection.

use std::{collections::BTreeSet, sync::Mutex};

use socketioxide::socket::Sid;

/// Pending expiries: `(exp, namespace index, socket)`.
#[derive(Debug, Default)]
pub struct ExpiryQueue {
    entries: Mutex<BTreeSet<(u64, usize, Sid)>>,
}

impl ExpiryQueue {
    /// Queues a socket's expiry.
    pub fn schedule(&self, exp: u64, ns: usize, sid: Sid) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).insert((exp, ns, sid));
    }

    /// Forgets a queued expiry (disconnect, or a refresh replaced it).
    pub fn cancel(&self, exp: u64, ns: usize, sid: Sid) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&(exp, ns, sid));
    }

    /// Takes every entry with `exp <= cutoff`.
    pub fn take_due(&self, cutoff: u64) -> Vec<(u64, usize, Sid)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let later = entries.split_off(&(cutoff.saturating_add(1), 0, Sid::ZERO));
        std::mem::replace(&mut *entries, later).into_iter().collect()
    }

    /// Entries queued.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_only_what_is_due() {
        let q = ExpiryQueue::default();
        let (a, b) = (Sid::new(), Sid::new());
        q.schedule(100, 0, a);
        q.schedule(200, 0, b);
        q.schedule(150, 1, a);
        q.cancel(150, 1, a);
        assert_eq!(q.take_due(100), vec![(100, 0, a)]);
        assert_eq!(q.len(), 1);
        assert!(q.take_due(199).is_empty());
        assert_eq!(q.take_due(1000), vec![(200, 0, b)]);
        assert_eq!(q.len(), 0);
    }
}

//! Token expiry while connected: every socket with an `exp` is queued by expiry time, and one
//! task per node sleeps until the earliest one is due, then tells each due socket
//! `error {type: "auth"}` and disconnects it, unless its token was refreshed meanwhile. One queue
//! and one task per node, rather than a timer per socket, because a timer per connection costs
//! memory on every connection. The task wakes at the due instant itself (not on a periodic tick),
//! so nothing is delivered to a socket for long after its token expired.

use std::{collections::BTreeSet, sync::Mutex};

use tokio::sync::Notify;

use super::member::MemberKey;

/// Pending expiries: `(exp, runtime index, member)`.
#[derive(Debug, Default)]
pub(crate) struct ExpiryQueue {
    entries: Mutex<BTreeSet<(u64, usize, MemberKey)>>,
    /// Woken when an entry becomes the earliest, so the task sleeps until the right instant.
    earlier: Notify,
}

impl ExpiryQueue {
    /// Queues a socket's expiry.
    pub(crate) fn schedule(&self, exp: u64, ns: usize, sid: MemberKey) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let earliest = entries.first().is_none_or(|first| exp < first.0);
        entries.insert((exp, ns, sid));
        drop(entries);
        if earliest {
            self.earlier.notify_one();
        }
    }

    /// Forgets a queued expiry (disconnect, or a refresh replaced it).
    pub(crate) fn cancel(&self, exp: u64, ns: usize, sid: MemberKey) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(&(exp, ns, sid));
    }

    /// Takes every entry with `exp <= cutoff`.
    pub(crate) fn take_due(&self, cutoff: u64) -> Vec<(u64, usize, MemberKey)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        // Entries from `cutoff + 1` on stay; a cutoff of `u64::MAX` leaves none.
        let later = match cutoff.checked_add(1) {
            Some(first_later) => entries.split_off(&(first_later, 0, MemberKey::MIN)),
            None => BTreeSet::new(),
        };
        std::mem::replace(&mut *entries, later).into_iter().collect()
    }

    /// The earliest `exp` queued.
    pub(crate) fn next(&self) -> Option<u64> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).first().map(|e| e.0)
    }

    /// Completes when an entry earlier than all others was queued since the last call.
    pub(crate) async fn earlier_scheduled(&self) {
        self.earlier.notified().await;
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
        let (a, b) = (MemberKey::Conn(1), MemberKey::Conn(2));
        q.schedule(100, 0, a);
        q.schedule(200, 0, b);
        q.schedule(150, 1, a);
        q.cancel(150, 1, a);
        assert_eq!(q.next(), Some(100));
        assert_eq!(q.take_due(100), vec![(100, 0, a)]);
        assert_eq!(q.len(), 1);
        assert!(q.take_due(199).is_empty());
        assert_eq!(q.take_due(1000), vec![(200, 0, b)]);
        assert_eq!(q.len(), 0);
        assert_eq!(q.next(), None);
    }

    #[test]
    fn an_entry_at_the_end_of_time_is_kept_until_the_last_cutoff() {
        let q = ExpiryQueue::default();
        q.schedule(u64::MAX, 0, MemberKey::Conn(1));
        q.schedule(u64::MAX - 1, 0, MemberKey::Conn(2));
        assert!(q.take_due(u64::MAX - 2).is_empty());
        assert_eq!(q.take_due(u64::MAX - 1), vec![(u64::MAX - 1, 0, MemberKey::Conn(2))]);
        assert_eq!(q.take_due(u64::MAX), vec![(u64::MAX, 0, MemberKey::Conn(1))]);
        assert_eq!(q.len(), 0);
    }

    #[tokio::test]
    async fn an_earlier_entry_wakes_the_sweeper() {
        let q = std::sync::Arc::new(ExpiryQueue::default());
        q.schedule(500, 0, MemberKey::Conn(1));
        q.earlier_scheduled().await; // the first schedule left a permit
        q.schedule(600, 0, MemberKey::Conn(2));
        let waiting = tokio::spawn({
            let q = q.clone();
            async move { q.earlier_scheduled().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "a later entry does not wake it");
        q.schedule(400, 0, MemberKey::Conn(3));
        tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await.expect("woken").unwrap();
    }
}

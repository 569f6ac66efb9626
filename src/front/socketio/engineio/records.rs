//! What the session front remembers of each Engine.IO session of this node: the client address
//! that opened it (requests naming the session must come from it), whether it has authenticated
//! (its handshake token is then given back), and its [`Backlog`].
//!
//! A long-polling session is recorded when its handshake is answered (the answer carries its
//! id); a WebSocket-first session, whose id travels inside the WebSocket, when a namespace admits
//! it. A record outlives its session by a grace period, then goes: the front learns that a
//! session is gone by asking the engine whether any namespace still has it.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use socketioxide::socket::Sid;

use crate::net::backlog::Backlog;

#[derive(Debug)]
struct Record {
    opened_by: IpAddr,
    authenticated: bool,
    /// When the session was opened or last seen open.
    seen: Instant,
    backlog: Arc<Backlog>,
}

/// The records, by session id.
#[derive(Debug, Default)]
pub(super) struct Records {
    map: Mutex<HashMap<Sid, Record>>,
}

/// What admitting a session's socket came to.
pub(super) struct Admitted {
    pub backlog: Arc<Backlog>,
    /// The address to give the handshake token back to: this was the session's first
    /// authentication.
    pub give_back_to: Option<IpAddr>,
}

impl Records {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<Sid, Record>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Session `sid` was opened by `ip` (its handshake's answer named it).
    pub(super) fn opened(&self, sid: Sid, ip: IpAddr) {
        let record = Record { opened_by: ip, authenticated: false, seen: Instant::now(), backlog: Arc::default() };
        self.map().entry(sid).or_insert(record);
    }

    /// A namespace admitted a socket of session `sid`, whose handshake came from `ip`.
    pub(super) fn admitted(&self, sid: Sid, ip: IpAddr, authenticated: bool) -> Admitted {
        let mut map = self.map();
        let record = map.entry(sid).or_insert_with(|| Record {
            opened_by: ip,
            authenticated: false,
            seen: Instant::now(),
            backlog: Arc::default(),
        });
        let first = authenticated && !record.authenticated;
        record.authenticated |= authenticated;
        Admitted { backlog: record.backlog.clone(), give_back_to: first.then_some(record.opened_by) }
    }

    /// The address that opened session `sid`, if this node recorded it.
    pub(super) fn opener(&self, sid: Sid) -> Option<IpAddr> {
        self.map().get(&sid).map(|r| r.opened_by)
    }

    /// Session `sid`'s backlog, if it is recorded.
    pub(super) fn backlog(&self, sid: Sid) -> Option<Arc<Backlog>> {
        self.map().get(&sid).map(|r| r.backlog.clone())
    }

    /// Forgets sessions that `is_open` no longer knows and have not been seen open for `grace`.
    pub(super) fn prune(&self, is_open: impl Fn(Sid) -> bool, grace: Duration) {
        let now = Instant::now();
        let ids: Vec<Sid> = self.map().keys().copied().collect();
        // Asked outside the lock: the engine's answer takes namespace locks of its own.
        let open: Vec<(Sid, bool)> = ids.into_iter().map(|sid| (sid, is_open(sid))).collect();
        let mut map = self.map();
        for (sid, open) in open {
            if let Some(record) = map.get_mut(&sid) {
                if open {
                    record.seen = now;
                } else if now.duration_since(record.seen) > grace {
                    map.remove(&sid);
                }
            }
        }
        map.shrink_to_fit();
    }

    /// Sessions recorded.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_first_authentication_gives_the_token_back_to_the_opener() {
        let records = Records::default();
        let sid = Sid::new();
        records.opened(sid, ip("10.0.0.1"));
        assert_eq!(records.admitted(sid, ip("10.0.0.1"), false).give_back_to, None, "refused: not given back");
        let first = records.admitted(sid, ip("10.0.0.9"), true);
        assert_eq!(first.give_back_to, Some(ip("10.0.0.1")), "to the address charged");
        let second = records.admitted(sid, ip("10.0.0.1"), true);
        assert_eq!(second.give_back_to, None, "once per session");
        assert!(Arc::ptr_eq(&first.backlog, &second.backlog), "one backlog per session");
        assert_eq!(records.opener(sid), Some(ip("10.0.0.1")));
    }

    #[test]
    fn a_websocket_session_is_recorded_when_admitted() {
        let records = Records::default();
        let sid = Sid::new();
        assert_eq!(records.opener(sid), None);
        assert_eq!(records.admitted(sid, ip("10.0.0.2"), true).give_back_to, Some(ip("10.0.0.2")));
        assert_eq!(records.opener(sid), Some(ip("10.0.0.2")));
    }

    #[test]
    fn sessions_gone_for_the_grace_period_are_forgotten() {
        let records = Records::default();
        let (open, gone) = (Sid::new(), Sid::new());
        records.opened(open, ip("10.0.0.1"));
        records.opened(gone, ip("10.0.0.1"));
        records.prune(|_| false, Duration::from_secs(60));
        assert_eq!(records.len(), 2, "within the grace period");
        std::thread::sleep(Duration::from_millis(5));
        records.prune(|sid| sid == open, Duration::ZERO);
        assert_eq!(records.len(), 1);
        assert!(records.opener(open).is_some());
    }
}

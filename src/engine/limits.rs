//! Rate limits: one keyed limiter per limited client event (and one for all events together),
//! keyed by member (a socket or a plain WebSocket connection), so a member costs nothing until it
//! sends something limited; and the per-IP connection throttle, keyed by client address.
//!
//! The limiters are GCRA (governor): `max` per `per` with a burst of `max`, refilling smoothly
//! rather than resetting at window edges. Keys of sockets that went quiet are dropped every
//! `WS_CLEANUP_INTERVAL`.

use std::{hash::Hash, net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter, clock::Clock};

use super::member::MemberKey;
use crate::spec::RateLimit;

/// A limiter per key: per socket for one event (or for all events), or per client IP.
pub(crate) struct KeyedLimiter<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
}

/// Client events, per member.
pub(crate) type MemberLimiter = KeyedLimiter<MemberKey>;
/// Connections, per client IP.
pub(crate) type IpLimiter = KeyedLimiter<IpAddr>;

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// `limit.max` requests per `limit.per`.
    pub(crate) fn new(limit: RateLimit) -> Self {
        let max = NonZeroU32::new(limit.max.max(1)).expect("at least 1");
        let period = (limit.per / max.get()).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period).expect("non-zero period").allow_burst(max);
        Self { limiter: RateLimiter::keyed(quota) }
    }

    /// Takes one request for `key`; on refusal, how long until one would pass.
    pub(crate) fn check(&self, key: K) -> Result<(), Duration> {
        self.limiter.check_key(&key).map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }

    /// Forgets sockets whose budget is full again (they are indistinguishable from new ones).
    pub(crate) fn cleanup(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_the_burst_then_refuses_with_a_wait() {
        let l = MemberLimiter::new(RateLimit { max: 3, per: Duration::from_secs(60) });
        let a = MemberKey::Conn(1);
        for _ in 0..3 {
            assert!(l.check(a).is_ok());
        }
        let wait = l.check(a).unwrap_err();
        assert!(wait > Duration::from_secs(10) && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(l.check(MemberKey::Conn(2)).is_ok(), "other members have their own budget");
    }
}

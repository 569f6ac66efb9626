//! How many new sessions a client address may open (`WS_HANDSHAKE_RATE_LIMIT`), charged for what a
//! flood costs rather than for every handshake.
//!
//! A session costs memory from its handshake until it authenticates or closes, so a handshake
//! takes a token from its address's bucket (`max` tokens, refilled at `max` per `per`). A session
//! that then authenticates in a namespace gives its token back: a storm of real users
//! reconnecting through one NAT (a restart, a balancer's failover) is limited only by how many are
//! still unauthenticated at once, while handshakes that never authenticate, are refused or stay
//! idle keep their tokens, and a flood of them runs dry at the configured rate.
//!
//! Addresses are grouped as the limits group them (`client_ip::limit_key`): an IPv6 /64 is one
//! client.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use crate::{net::client_ip::limit_key, spec::RateLimit};

/// Token buckets per client address.
#[derive(Debug)]
pub(super) struct HandshakeBudget {
    max: f64,
    /// Tokens per second.
    refill: f64,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl HandshakeBudget {
    pub(super) fn new(limit: RateLimit) -> Self {
        let max = f64::from(limit.max.max(1));
        let refill = max / limit.per.as_secs_f64().max(1e-3);
        Self { max, refill, buckets: Mutex::new(HashMap::new()) }
    }

    fn buckets(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        self.buckets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bucket of `key` brought up to `now`.
    fn refilled(&self, bucket: Option<Bucket>, now: Instant) -> Bucket {
        match bucket {
            Some(b) => Bucket {
                tokens: (b.tokens + now.duration_since(b.at).as_secs_f64() * self.refill).min(self.max),
                at: now,
            },
            None => Bucket { tokens: self.max, at: now },
        }
    }

    /// Takes a token for a handshake from `ip`; on refusal, how long until one is back.
    pub(super) fn take(&self, ip: IpAddr) -> Result<(), Duration> {
        let key = limit_key(ip);
        let now = Instant::now();
        let mut buckets = self.buckets();
        let mut bucket = self.refilled(buckets.get(&key).copied(), now);
        let taken = bucket.tokens >= 1.0;
        if taken {
            bucket.tokens -= 1.0;
        }
        buckets.insert(key, bucket);
        match taken {
            true => Ok(()),
            false => Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.refill)),
        }
    }

    /// Gives back the token of a session from `ip` that authenticated.
    pub(super) fn give_back(&self, ip: IpAddr) {
        let key = limit_key(ip);
        let now = Instant::now();
        let mut buckets = self.buckets();
        let mut bucket = self.refilled(buckets.get(&key).copied(), now);
        bucket.tokens = (bucket.tokens + 1.0).min(self.max);
        buckets.insert(key, bucket);
    }

    /// Forgets addresses whose bucket is full again (they are indistinguishable from new ones).
    pub(super) fn cleanup(&self) {
        let now = Instant::now();
        let mut buckets = self.buckets();
        buckets.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * self.refill < self.max);
        buckets.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn handshakes_that_authenticate_give_their_token_back() {
        let budget = HandshakeBudget::new(RateLimit { max: 3, per: Duration::from_secs(3600) });
        let a = ip("198.51.100.7");
        // A storm of 100 real users through one address: each authenticates before the next
        // three are in flight.
        for _ in 0..100 {
            budget.take(a).expect("an authenticated storm is never refused");
            budget.give_back(a);
        }
        for _ in 0..3 {
            budget.take(a).unwrap();
        }
        let wait = budget.take(a).expect_err("three that never authenticate use the budget up");
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        assert!(budget.take(ip("198.51.100.8")).is_ok(), "other addresses have their own");
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let budget = HandshakeBudget::new(RateLimit { max: 1, per: Duration::from_secs(3600) });
        budget.take(ip("2001:db8:1:2::1")).unwrap();
        assert!(budget.take(ip("2001:db8:1:2:ffff::9")).is_err(), "same /64");
        assert!(budget.take(ip("2001:db8:1:3::1")).is_ok(), "another /64");
    }

    #[test]
    fn full_buckets_are_forgotten() {
        let budget = HandshakeBudget::new(RateLimit { max: 2, per: Duration::from_millis(10) });
        budget.take(ip("10.0.0.1")).unwrap();
        assert_eq!(budget.buckets().len(), 1);
        std::thread::sleep(Duration::from_millis(20));
        budget.cleanup();
        assert!(budget.buckets().is_empty());
    }
}

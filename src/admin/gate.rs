//! Who may open the admin namespace: the official UI's basic auth (`{username, password}` in the
//! handshake's `auth`, the password checked against `ADMIN_PASSWORD_HASH`, bcrypt), and the login
//! sessions it keeps in the browser (`{sessionId}`, handed out as the `session` event), so a page
//! reload does not ask for the password again. A valid session id logs in without a password
//! check, whatever else is going on.
//!
//! A bcrypt check costs tens of milliseconds of CPU on purpose, so what a flood of wrong
//! passwords can make the node do is bounded, and every attempt is answered at once when it
//! cannot be checked soon:
//! - each client address may try [`ATTEMPTS_PER_MINUTE`] times a minute (an IPv6 address
//!   counts with its whole /64, which one host usually has);
//! - the node as a whole checks [`NODE_ATTEMPTS_PER_MINUTE`] a minute, from any address;
//! - [`CONCURRENT_CHECKS`] run at once, on the blocking pool, never on the runtime's threads,
//!   and at most [`QUEUED_CHECKS`] wait for it: past that, the attempt is refused at once with
//!   how long to wait, never left hanging.
//!
//! An address that logged in with the password in the last [`LOGIN_TTL`] is known: its
//! attempts skip the node's budget and the queue's bound (they still wait their turn, behind at
//! most [`QUEUED_CHECKS`]), so an operator logging in again from where they did is not locked
//! out by a flood from elsewhere. A wrong username costs the same check as a wrong password, so
//! timing does not tell which.
//!
//! Sessions live in this node's memory for [`LOGIN_TTL`] (the official server's Redis store
//! keeps them a day too): behind a load balancer, a reload that lands on another node asks for
//! the password again.

use std::{
    collections::HashMap,
    fmt,
    net::{IpAddr, Ipv6Addr},
    sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::{
    config::random_hex,
    engine::limits::{IpLimiter, KeyedLimiter},
    metrics::{AdminMetrics, LoginOutcome},
    spec::RateLimit,
};

/// Login attempts with a password, per client address (IPv6: per /64) and minute.
const ATTEMPTS_PER_MINUTE: u32 = 10;
/// Login attempts with a password the node checks a minute, from any address (a burst of as
/// many, then one every two seconds).
const NODE_ATTEMPTS_PER_MINUTE: u32 = 30;
/// bcrypt checks running at once, whoever asks: one, so a flood keeps at most one core busy.
const CONCURRENT_CHECKS: usize = 1;
/// Checks waiting for a turn at most (known addresses aside); past it an attempt is refused.
const QUEUED_CHECKS: usize = 4;
/// How long a login session is accepted, and an address that logged in is known.
const LOGIN_TTL: Duration = Duration::from_secs(24 * 3600);
/// Login sessions kept at most; past it the oldest goes (each password login makes one).
const MAX_LOGINS: usize = 1000;
/// Known addresses kept at most; past it the oldest goes.
const MAX_KNOWN: usize = 64;

/// The handshake's `auth`, as the official UI sends it.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Credentials {
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// How a connection got in.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Login {
    /// With a session handed out earlier.
    Resumed,
    /// With the password: here is its new session id, for the `session` event.
    Password(String),
}

/// Why a connection was refused; `Display` is the `connect_error` message the UI shows.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(super) enum Refused {
    /// Wrong or missing credentials: the UI recognises this exact text and asks again.
    #[error("invalid credentials")]
    Invalid,
    /// Over [`ATTEMPTS_PER_MINUTE`] from this address.
    #[error("too many login attempts from this address: retry in {0} s")]
    TooManyAttempts(u64),
    /// Over [`NODE_ATTEMPTS_PER_MINUTE`], or [`QUEUED_CHECKS`] already wait: refused at once.
    #[error("too many login attempts on this node: retry in {0} s")]
    Busy(u64),
    /// The node has as many admin sockets as it serves.
    #[error("too many admin connections on this node: close one and retry")]
    TooManyAdmins,
}

impl Refused {
    /// How `admin_logins_total` counts it.
    pub(super) fn outcome(&self) -> LoginOutcome {
        match self {
            Self::Invalid => LoginOutcome::Invalid,
            Self::TooManyAttempts(_) => LoginOutcome::Throttled,
            Self::Busy(_) | Self::TooManyAdmins => LoginOutcome::Busy,
        }
    }
}

/// The address attempts are counted by: an IPv4 address, or an IPv6 address's /64 (a host
/// usually has a whole /64: counted one by one, it would have 2^64 budgets).
fn address_group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// A place among the checks running or waiting; given back when dropped.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The admin credentials and the login sessions they opened (`logins`).
pub(super) struct Gate {
    username: String,
    password_hash: SecretString,
    logins: Mutex<HashMap<String, Instant>>,
    /// Per address group.
    attempts: IpLimiter,
    /// The node's.
    node_attempts: KeyedLimiter<()>,
    /// Address groups that logged in with the password, until when they are known.
    known: Mutex<HashMap<IpAddr, Instant>>,
    /// Checks admitted and not finished (waiting or running), known addresses aside.
    queued: AtomicUsize,
    checks: Semaphore,
    metrics: AdminMetrics,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate for these credentials, counting logins in `metrics`.
    pub(super) fn new(username: String, password_hash: SecretString, metrics: AdminMetrics) -> Self {
        let minute = Duration::from_secs(60);
        Self {
            username,
            password_hash,
            logins: Mutex::new(HashMap::new()),
            attempts: IpLimiter::new(RateLimit { max: ATTEMPTS_PER_MINUTE, per: minute }),
            node_attempts: KeyedLimiter::new(RateLimit { max: NODE_ATTEMPTS_PER_MINUTE, per: minute }),
            known: Mutex::new(HashMap::new()),
            queued: AtomicUsize::new(0),
            checks: Semaphore::new(CONCURRENT_CHECKS),
            metrics,
        }
    }

    /// Lets `credentials` in, from `client` (the address that counts for attempts), and counts
    /// the outcome.
    pub(super) async fn admit(&self, credentials: &Credentials, client: Option<IpAddr>) -> Result<Login, Refused> {
        let result = self.try_admit(credentials, client).await;
        self.metrics.login(match &result {
            Ok(Login::Resumed) => LoginOutcome::Session,
            Ok(Login::Password(_)) => LoginOutcome::Password,
            Err(refused) => refused.outcome(),
        });
        result
    }

    async fn try_admit(&self, credentials: &Credentials, client: Option<IpAddr>) -> Result<Login, Refused> {
        // First, and with no limit: it costs a map lookup.
        if let Some(id) = &credentials.session_id
            && self.login_is_valid(id)
        {
            return Ok(Login::Resumed);
        }
        let (Some(username), Some(password)) = (&credentials.username, &credentials.password) else {
            return Err(Refused::Invalid);
        };
        let group = client.map(address_group);
        if let Some(group) = group
            && let Err(wait) = self.attempts.check(group)
        {
            return Err(Refused::TooManyAttempts(wait.as_secs().max(1)));
        }
        let known = group.is_some_and(|g| self.is_known(g));
        let _slot = match known {
            true => None,
            // Taken before the node's budget, so an attempt refused here spends none of it.
            false => Some(self.slot().ok_or(Refused::Busy(1))?),
        };
        if !known && let Err(wait) = self.node_attempts.check(()) {
            return Err(Refused::Busy(wait.as_secs().max(1)));
        }
        if !self.check_password(username, password).await {
            return Err(Refused::Invalid);
        }
        if let Some(group) = group {
            self.remember(group);
        }
        Ok(Login::Password(self.open_login()))
    }

    /// A place among the checks running or waiting, if there is one.
    fn slot(&self) -> Option<Slot<'_>> {
        self.queued
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < CONCURRENT_CHECKS + QUEUED_CHECKS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot(&self.queued))
    }

    fn is_known(&self, group: IpAddr) -> bool {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&group).is_some_and(|until| *until > Instant::now())
    }

    fn remember(&self, group: IpAddr) {
        let now = Instant::now();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.retain(|_, until| *until > now);
        if known.len() >= MAX_KNOWN
            && !known.contains_key(&group)
            && let Some(oldest) = known.iter().min_by_key(|(_, until)| **until).map(|(ip, _)| *ip)
        {
            known.remove(&oldest);
        }
        known.insert(group, now + LOGIN_TTL);
    }

    /// Whether `username` and `password` are the configured ones, on the blocking pool.
    async fn check_password(&self, username: &str, password: &str) -> bool {
        let Ok(_permit) = self.checks.acquire().await else { return false };
        self.metrics.password_checks.inc();
        let user_matches: bool = username.as_bytes().ct_eq(self.username.as_bytes()).into();
        let (password, hash) = (password.to_string(), self.password_hash.expose_secret().to_string());
        // Always checked, so a wrong username takes as long as a wrong password.
        let password_matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        user_matches && password_matches
    }

    fn login_is_valid(&self, id: &str) -> bool {
        let sessions = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).is_some_and(|expires| *expires > Instant::now())
    }

    fn open_login(&self) -> String {
        let id = random_hex(16);
        let now = Instant::now();
        let mut sessions = self.logins.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_LOGINS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, expires)| **expires).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), now + LOGIN_TTL);
        id
    }

    /// Forgets expired sessions, quiet addresses and addresses no longer known.
    pub(super) fn cleanup(&self) {
        let now = Instant::now();
        self.logins.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, expires| *expires > now);
        self.known.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, until| *until > now);
        self.attempts.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::metrics::Metrics;

    fn gate() -> Gate {
        // Cost 4, the least bcrypt allows: the tests check logic, not strength.
        Gate::new("admin".into(), SecretString::from(bcrypt::hash("s3cret", 4).unwrap()), Metrics::default().admin)
    }

    fn creds(username: &str, password: &str) -> Credentials {
        Credentials { username: Some(username.into()), password: Some(password.into()), session_id: None }
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[tokio::test]
    async fn the_password_opens_a_session_that_opens_the_next_connection() {
        let gate = gate();
        let from = ip("10.0.0.1");
        let Ok(Login::Password(session)) = gate.admit(&creds("admin", "s3cret"), from).await else {
            panic!("the right credentials are refused")
        };
        assert_eq!(session.len(), 32);
        let again = Credentials { session_id: Some(session), ..Default::default() };
        assert_eq!(gate.admit(&again, from).await, Ok(Login::Resumed));
        let forged = Credentials { session_id: Some("0".repeat(32)), ..Default::default() };
        assert_eq!(gate.admit(&forged, from).await, Err(Refused::Invalid));
        assert_eq!(gate.metrics.password_checks.get(), 1, "a session login checks no password");
    }

    #[tokio::test]
    async fn wrong_or_missing_credentials_are_invalid_and_attempts_are_limited() {
        let gate = gate();
        let from = ip("10.0.0.2");
        assert_eq!(gate.admit(&creds("admin", "nope"), from).await, Err(Refused::Invalid));
        assert_eq!(gate.admit(&creds("root", "s3cret"), from).await, Err(Refused::Invalid));
        assert_eq!(gate.admit(&Credentials::default(), from).await, Err(Refused::Invalid));
        for _ in 2..ATTEMPTS_PER_MINUTE {
            let _ = gate.admit(&creds("admin", "nope"), from).await;
        }
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), from).await, Err(Refused::TooManyAttempts(_))));
        let other = ip("10.0.0.3");
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), other).await, Ok(Login::Password(_))));
    }

    #[tokio::test]
    async fn the_addresses_of_one_ipv6_64_share_their_attempts() {
        let gate = gate();
        for i in 0..ATTEMPTS_PER_MINUTE {
            let _ = gate.admit(&creds("admin", "nope"), ip(&format!("2001:db8:1:2::{:x}", i + 1))).await;
        }
        let same_64 = ip("2001:db8:1:2:ffff:ffff:ffff:ffff");
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), same_64).await, Err(Refused::TooManyAttempts(_))));
        let next_64 = ip("2001:db8:1:3::1");
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), next_64).await, Ok(Login::Password(_))));
        assert_eq!(address_group("::ffff:10.0.0.9".parse().unwrap()), "10.0.0.9".parse::<IpAddr>().unwrap());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_while_a_session_still_logs_in() {
        let gate = Arc::new(gate());
        let Ok(Login::Password(session)) = gate.admit(&creds("admin", "s3cret"), ip("10.1.0.1")).await else {
            panic!("the right credentials are refused")
        };
        // The worker is busy: the next attempts wait, up to the queue's bound.
        let busy = gate.checks.acquire().await.unwrap();
        let waiting: Vec<_> = (0..CONCURRENT_CHECKS + QUEUED_CHECKS)
            .map(|i| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.admit(&creds("admin", "nope"), ip(&format!("10.2.0.{i}"))).await })
            })
            .collect();
        while gate.queued.load(Ordering::SeqCst) < CONCURRENT_CHECKS + QUEUED_CHECKS {
            tokio::task::yield_now().await;
        }
        assert_eq!(gate.admit(&creds("admin", "s3cret"), ip("10.3.0.1")).await, Err(Refused::Busy(1)));
        let with_session = Credentials { session_id: Some(session), ..Default::default() };
        assert_eq!(gate.admit(&with_session, ip("10.3.0.2")).await, Ok(Login::Resumed));
        // Where the operator logged in before is known: it waits its turn instead.
        let known = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.admit(&creds("admin", "s3cret"), ip("10.1.0.1")).await })
        };
        drop(busy);
        for attempt in waiting {
            assert_eq!(attempt.await.unwrap(), Err(Refused::Invalid));
        }
        assert!(matches!(known.await.unwrap(), Ok(Login::Password(_))));
        assert_eq!(gate.queued.load(Ordering::SeqCst), 0, "every place is given back");
    }

    #[tokio::test]
    async fn the_node_checks_so_many_attempts_a_minute_from_any_address_but_known_ones() {
        let gate = gate();
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), ip("10.4.0.1")).await, Ok(Login::Password(_))));
        for i in 1..NODE_ATTEMPTS_PER_MINUTE {
            assert_eq!(gate.admit(&creds("admin", "nope"), ip(&format!("10.5.0.{i}"))).await, Err(Refused::Invalid));
        }
        let Err(Refused::Busy(wait)) = gate.admit(&creds("admin", "s3cret"), ip("10.6.0.1")).await else {
            panic!("the node's budget is spent")
        };
        assert!((1..=2).contains(&wait), "{wait}");
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), ip("10.4.0.1")).await, Ok(Login::Password(_))));
        assert_eq!(gate.metrics.password_checks.get(), u64::from(NODE_ATTEMPTS_PER_MINUTE) + 1);
    }
}

//! Who may open the admin namespace: the official UI's basic auth (`{username, password}` in the
//! handshake's `auth`, the password checked against `ADMIN_PASSWORD_HASH`, bcrypt), and the login
//! sessions it keeps in the browser (`{sessionId}`, handed out as the `session` event), so a page
//! reload does not ask for the password again.
//!
//! A bcrypt check costs tens of milliseconds of CPU on purpose, so the checks are bounded: each
//! client address may try [`ATTEMPTS_PER_MINUTE`] times a minute, and at most
//! [`CONCURRENT_CHECKS`] run at once, on the blocking pool, never on the runtime's threads. A
//! wrong username costs the same check as a wrong password, so timing does not tell which.
//!
//! Sessions live in this node's memory for [`SESSION_TTL`] (the official server's Redis store
//! keeps them a day too): behind a load balancer, a reload that lands on another node asks for
//! the password again.

use std::{
    collections::HashMap,
    fmt,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use tokio::sync::Semaphore;

use crate::{config::random_hex, engine::limits::IpLimiter, spec::RateLimit};

/// Login attempts with a password, per client address and minute.
const ATTEMPTS_PER_MINUTE: u32 = 10;
/// bcrypt checks running at once, whoever asks.
const CONCURRENT_CHECKS: usize = 2;
/// How long a login session is accepted.
const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);
/// Sessions kept at most; past it the oldest goes (each login makes one).
const MAX_SESSIONS: usize = 1000;

/// The handshake's `auth`, as the official UI sends it.
#[derive(Debug, Default, Deserialize)]
pub struct Credentials {
    username: Option<String>,
    password: Option<String>,
    #[serde(rename = "sessionId")]
    session_id: Option<String>,
}

/// How a connection got in.
#[derive(Debug, PartialEq, Eq)]
pub enum Login {
    /// With a session handed out earlier.
    Session,
    /// With the password: here is its new session id, for the `session` event.
    Password(String),
}

/// Why a connection was refused; `Display` is the `connect_error` message the UI shows.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// Wrong or missing credentials: the UI recognises this exact text and asks again.
    #[error("invalid credentials")]
    Invalid,
    /// Over [`ATTEMPTS_PER_MINUTE`] from this address.
    #[error("too many login attempts from this address: retry in {0} s")]
    TooManyAttempts(u64),
}

/// The admin credentials and the sessions they opened.
pub struct Gate {
    username: String,
    password_hash: SecretString,
    sessions: Mutex<HashMap<String, Instant>>,
    attempts: IpLimiter,
    checks: Semaphore,
}

impl fmt::Debug for Gate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gate").finish_non_exhaustive()
    }
}

impl Gate {
    /// A gate for these credentials.
    pub fn new(username: String, password_hash: SecretString) -> Self {
        Self {
            username,
            password_hash,
            sessions: Mutex::new(HashMap::new()),
            attempts: IpLimiter::new(RateLimit { max: ATTEMPTS_PER_MINUTE, per: Duration::from_secs(60) }),
            checks: Semaphore::new(CONCURRENT_CHECKS),
        }
    }

    /// Lets `credentials` in, from `client` (the address that counts for attempts).
    pub async fn admit(&self, credentials: &Credentials, client: Option<IpAddr>) -> Result<Login, Refused> {
        if let Some(id) = &credentials.session_id
            && self.session_is_valid(id)
        {
            return Ok(Login::Session);
        }
        let (Some(username), Some(password)) = (&credentials.username, &credentials.password) else {
            return Err(Refused::Invalid);
        };
        if let Some(ip) = client
            && let Err(wait) = self.attempts.check(ip)
        {
            return Err(Refused::TooManyAttempts(wait.as_secs().max(1)));
        }
        if !self.check_password(username, password).await {
            return Err(Refused::Invalid);
        }
        Ok(Login::Password(self.open_session()))
    }

    /// Whether `username` and `password` are the configured ones, on the blocking pool.
    async fn check_password(&self, username: &str, password: &str) -> bool {
        let Ok(_permit) = self.checks.acquire().await else { return false };
        let user_matches: bool = username.as_bytes().ct_eq(self.username.as_bytes()).into();
        let (password, hash) = (password.to_string(), self.password_hash.expose_secret().to_string());
        // Always checked, so a wrong username takes as long as a wrong password.
        let password_matches = tokio::task::spawn_blocking(move || bcrypt::verify(password, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        user_matches && password_matches
    }

    fn session_is_valid(&self, id: &str) -> bool {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.get(id).is_some_and(|expires| *expires > Instant::now())
    }

    fn open_session(&self) -> String {
        let id = random_hex(16);
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, expires| *expires > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, expires)| **expires).map(|(id, _)| id.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(id.clone(), now + SESSION_TTL);
        id
    }

    /// Forgets expired sessions and quiet addresses.
    pub fn cleanup(&self) {
        let now = Instant::now();
        self.sessions.lock().unwrap_or_else(|e| e.into_inner()).retain(|_, expires| *expires > now);
        self.attempts.cleanup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate() -> Gate {
        // Cost 4, the least bcrypt allows: the tests check logic, not strength.
        Gate::new("admin".into(), SecretString::from(bcrypt::hash("s3cret", 4).unwrap()))
    }

    fn creds(username: &str, password: &str) -> Credentials {
        Credentials { username: Some(username.into()), password: Some(password.into()), session_id: None }
    }

    #[tokio::test]
    async fn the_password_opens_a_session_that_opens_the_next_connection() {
        let gate = gate();
        let ip = Some("10.0.0.1".parse().unwrap());
        let Ok(Login::Password(session)) = gate.admit(&creds("admin", "s3cret"), ip).await else {
            panic!("the right credentials are refused")
        };
        assert_eq!(session.len(), 32);
        let again = Credentials { session_id: Some(session), ..Default::default() };
        assert_eq!(gate.admit(&again, ip).await, Ok(Login::Session));
        let forged = Credentials { session_id: Some("0".repeat(32)), ..Default::default() };
        assert_eq!(gate.admit(&forged, ip).await, Err(Refused::Invalid));
    }

    #[tokio::test]
    async fn wrong_or_missing_credentials_are_invalid_and_attempts_are_limited() {
        let gate = gate();
        let ip = Some("10.0.0.2".parse().unwrap());
        assert_eq!(gate.admit(&creds("admin", "nope"), ip).await, Err(Refused::Invalid));
        assert_eq!(gate.admit(&creds("root", "s3cret"), ip).await, Err(Refused::Invalid));
        assert_eq!(gate.admit(&Credentials::default(), ip).await, Err(Refused::Invalid));
        for _ in 2..ATTEMPTS_PER_MINUTE {
            let _ = gate.admit(&creds("admin", "nope"), ip).await;
        }
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), ip).await, Err(Refused::TooManyAttempts(_))));
        let other = Some("10.0.0.3".parse().unwrap());
        assert!(matches!(gate.admit(&creds("admin", "s3cret"), other).await, Ok(Login::Password(_))));
    }
}

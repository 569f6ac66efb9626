//! What a bridge reports about itself (`GET /api/v1/bridges`): its state, the last error, the
//! reconnection attempt it is at, and messages each way. Never a credential.

use std::sync::{
    Mutex,
    atomic::{AtomicU64, Ordering},
};

use serde_json::{Value, json};

/// Where a bridge's connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Dialling its peer (first time or a reconnection attempt).
    Connecting,
    /// Connected: notifications go through.
    Connected,
    /// Waiting before the next reconnection attempt.
    BackingOff,
    /// Gave up (`reconnectionAttempts` reached, or `reconnection: false`); a restart retries.
    Failed,
    /// `enabled: false`: not started.
    Disabled,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Connecting => "connecting",
            State::Connected => "connected",
            State::BackingOff => "backing_off",
            State::Failed => "failed",
            State::Disabled => "disabled",
        }
    }
}

#[derive(Debug)]
struct Current {
    state: State,
    last_error: Option<String>,
    /// What made the bridge give up, when `last_error` is the seed's "Max reconnection attempts".
    cause: Option<String>,
    attempts: u32,
    connected_since: Option<String>,
}

/// A bridge's status, written by its task and read by the API.
#[derive(Debug)]
pub(crate) struct Status {
    current: Mutex<Current>,
    /// Messages sent to the peer.
    pub messages_out: AtomicU64,
    /// Subscribed events received from the peer.
    pub messages_in: AtomicU64,
}

impl Status {
    pub(super) fn new(state: State) -> Self {
        let current = Current { state, last_error: None, cause: None, attempts: 0, connected_since: None };
        Self { current: Mutex::new(current), messages_out: AtomicU64::new(0), messages_in: AtomicU64::new(0) }
    }

    fn with(&self, f: impl FnOnce(&mut Current)) {
        f(&mut self.current.lock().unwrap_or_else(|e| e.into_inner()));
    }

    pub(crate) fn state(&self) -> State {
        self.current.lock().unwrap_or_else(|e| e.into_inner()).state
    }

    pub(super) fn connecting(&self, attempt: u32) {
        self.with(|c| {
            c.state = State::Connecting;
            c.attempts = attempt;
        });
    }

    pub(super) fn connected(&self) {
        self.with(|c| {
            c.state = State::Connected;
            c.attempts = 0;
            c.cause = None;
            c.connected_since = Some(crate::clock::iso_now());
        });
    }

    pub(super) fn lost(&self, error: String, next: State) {
        self.with(|c| {
            c.state = next;
            c.last_error = Some(error);
            c.connected_since = None;
        });
    }

    pub(super) fn failed(&self, message: String) {
        self.with(|c| {
            c.state = State::Failed;
            c.cause = c.last_error.replace(message);
            c.connected_since = None;
        });
    }

    /// The API's view: `name`, `tenantId` and `url` are the caller's (the URL without its query).
    pub(crate) fn describe(&self) -> Value {
        let c = self.current.lock().unwrap_or_else(|e| e.into_inner());
        json!({
            "state": c.state.as_str(),
            "lastError": c.last_error,
            "cause": c.cause,
            "attempts": c.attempts,
            "connectedSince": c.connected_since,
            "messagesIn": self.messages_in.load(Ordering::Relaxed),
            "messagesOut": self.messages_out.load(Ordering::Relaxed),
        })
    }
}

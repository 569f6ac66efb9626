//! What the node knows about Redis: whether commands answer and the subscriptions are in place
//! (together, whether the cluster is reachable), and the last failure, told once when it starts
//! and once when it ends.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::SystemTime,
};

/// What the node knows about Redis.
#[derive(Debug, Default)]
pub(super) struct Health {
    /// Commands answer.
    pub(super) connected: AtomicBool,
    /// Our input subscriptions are in place (false from a disconnect until they are restored).
    pub(super) subscribed: AtomicBool,
    /// socketioxide-redis's subscriptions are in place (same).
    pub(super) adapter_subscribed: AtomicBool,
    /// The last failure and when it started, while unhealthy.
    pub(super) problem: Mutex<Option<(String, SystemTime)>>,
}

impl Health {
    pub(super) fn reachable(&self) -> bool {
        self.connected.load(Ordering::SeqCst)
            && self.subscribed.load(Ordering::SeqCst)
            && self.adapter_subscribed.load(Ordering::SeqCst)
    }

    pub(super) fn fail(&self, why: String) {
        self.connected.store(false, Ordering::SeqCst);
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        if problem.is_none() {
            tracing::warn!(error = %why, "Redis is unreachable: serving this node's sockets only");
            *problem = Some((why, SystemTime::now()));
        } else if let Some((reason, _)) = problem.as_mut() {
            *reason = why;
        }
    }

    pub(super) fn recover(&self) {
        self.connected.store(true, Ordering::SeqCst);
        let mut problem = self.problem.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, since)) = problem.take() {
            let down = since.elapsed().unwrap_or_default();
            tracing::info!(down_ms = down.as_millis() as u64, "Redis is reachable again");
        }
    }
}

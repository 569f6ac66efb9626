//! What a cluster adds to bridges: [`BridgeLink`], implemented by `cluster` (the bridges never
//! name Redis), and the [`Lease`] under which a node runs a bridge it holds.
//!
//! In a cluster each bridge runs on one node only, the one holding its lease. Every other node
//! forwards its sends there, and a run-time change is stored where every node reads it.

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::Value;

use super::SendError;

/// A future a link answers with; `'static`, so the registry's locks are never held across it.
pub(crate) type LinkFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The cluster's side of bridges.
pub(crate) trait BridgeLink: Send + Sync {
    /// This node's name in the cluster, as `GET /api/v1/bridges` shows which node holds a bridge.
    fn node(&self) -> String;

    /// Sends `event` with `data` through `tenant`'s bridge on the node holding it, waiting for the
    /// peer's answer up to `ack` when given.
    fn forward(
        &self,
        tenant: &str,
        event: String,
        data: Value,
        ack: Option<Duration>,
    ) -> LinkFuture<Result<Value, SendError>>;

    /// Stores `tenant`'s provider (`{name, provider}`, credentials included) for every node;
    /// fails when the cluster's store cannot be reached.
    fn store(&self, tenant: &str, entry: Value) -> LinkFuture<Result<(), String>>;

    /// This node stops: closes the bridges it runs and hands their leases over, waiting at most
    /// `within`.
    fn stop(&self, within: Duration) -> LinkFuture<()>;

    /// The status each holder last reported, by tenant (each with `node`).
    fn statuses(&self) -> LinkFuture<HashMap<String, Value>>;
}

/// A held lease: its fencing token and until when this node may act on it. A node whose lease
/// ran out (not renewed in time: Redis away, the node stalled) stops sending at once, before
/// another node can take the lease over, since the lease's key expires no earlier than that.
#[derive(Debug)]
pub(crate) struct Lease {
    token: u64,
    valid_until: Mutex<Instant>,
}

impl Lease {
    /// Lease `token`, valid until `until`.
    pub(crate) fn new(token: u64, until: Instant) -> Self {
        Self { token, valid_until: Mutex::new(until) }
    }

    /// Its fencing token: a holder answers only requests naming it.
    pub(crate) fn token(&self) -> u64 {
        self.token
    }

    /// Renewed: valid until `until`.
    pub(crate) fn extend(&self, until: Instant) {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner()) = until;
    }

    /// Whether this node may still act on it.
    pub(crate) fn valid(&self) -> bool {
        Instant::now() < self.until()
    }

    fn until(&self) -> Instant {
        *self.valid_until.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Resolves once it has run out (never while renewed in time): the bridge under it stops at
    /// once, not at the lease loop's next tick.
    pub(crate) async fn lapsed(&self) {
        loop {
            tokio::time::sleep_until(tokio::time::Instant::from_std(self.until())).await;
            if !self.valid() {
                return;
            }
        }
    }
}

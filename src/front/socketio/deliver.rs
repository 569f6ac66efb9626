//! A published event reaching the Socket.IO front's sockets on this node: the namespace's state
//! updated, its route's rooms found, the event rendered once and emitted to the union of the rooms
//! (kept and positioned first when they keep history: `history`); or, for notifications, emitted
//! with acks that are counted over the cluster.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use socketioxide::{AckError, adapter::Adapter};

use super::{namespace::NamespaceRuntime, outbound::Encoded};
use crate::engine::publish::{AckReport, PublishedEvent, Routed};

/// Beyond the ack timeout, how long the other nodes' counts and acks may take to arrive.
const REMOTE_ANSWER_GRACE: Duration = Duration::from_millis(500);

impl<A: Adapter> NamespaceRuntime<A> {
    /// Updates state and emits the event to its rooms on this node.
    pub(crate) async fn deliver(&self, event: &PublishedEvent) {
        self.record(event);
        if !self.routes(event) {
            return;
        }
        // No socket here and nothing to keep, no room to look for: a namespace no client of this
        // node uses costs only its state rules (and its history, when its rooms keep one).
        let routed = if self.keeps_history || self.has_sockets_here() { self.route(event) } else { None };
        let Some(delivery) = routed.map(Routed::render) else {
            self.shared.metrics.published.inc();
            self.metrics.publish_delivery.observe(event.since_received());
            return;
        };
        if !delivery.history.is_empty() {
            self.deliver_kept(event, delivery);
            self.shared.metrics.published.inc();
            self.metrics.publish_delivery.observe(event.since_received());
            return;
        }
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return };
        let message = match Encoded::new(&self.spec.path, &delivery.event, delivery.data().as_deref()) {
            Ok(message) => message,
            Err(e) => {
                self.shared.metrics.dropped(crate::metrics::DropReason::Unserializable, 1);
                tracing::error!(ns = %self.spec.path, error = %e, "a published event could not be serialized");
                return;
            }
        };
        // Every node delivers every event to its own sockets: never through the adapter.
        let result = self.emit_here(op.to(delivery.rooms), &delivery.event, &message).await;
        self.shared.metrics.published.inc();
        self.metrics.publish_delivery.observe(event.since_received());
        if let Err(e) = result {
            self.note_broadcast_failure(&e);
        }
    }

    /// Like [`Self::deliver`], then waits up to `timeout` for each reached socket's ack.
    pub(crate) async fn deliver_with_acks(&self, event: &PublishedEvent, timeout: Duration) -> AckReport {
        self.record(event);
        let Some(delivery) = self.route(event).map(Routed::render) else { return AckReport::default() };
        let Some(op) = self.io.of(self.spec.path.as_str()) else { return AckReport::default() };
        let data = delivery.data().map_or(Value::Null, std::borrow::Cow::into_owned);
        self.shared.metrics.published.inc();
        // Acks are counted by the origin, so this emit goes through the adapter to every node;
        // when the cluster is unreachable, to this node's sockets only.
        let op = if self.shared.cluster.get().is_some() && !self.shared.cluster_reachable() { op.local() } else { op };
        let op = op.to(delivery.rooms);
        self.charge_all(op.clone(), Encoded::size_of(&self.spec.path, &delivery.event, &[&data]));
        let op = op.timeout(timeout);
        let stream = match op.clone().emit_with_ack::<_, Value>(&delivery.event, &data).await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(ns = %self.spec.path, error = %e, "broadcast with acks failed; acks from this node only");
                match op.local().emit_with_ack::<_, Value>(&delivery.event, &data).await {
                    Ok(stream) => stream,
                    Err(e) => {
                        tracing::error!(ns = %self.spec.path, error = %e, "local broadcast with acks failed");
                        return AckReport::default();
                    }
                }
            }
        };
        self.metrics.publish_delivery.observe(event.since_received());
        let mut report = AckReport::default();
        let counting = stream.for_each(|(_, ack)| {
            report.sockets += 1;
            // An ack whose arguments do not decode (`ack()` has none) is still an ack.
            report.acknowledged += usize::from(matches!(ack, Ok(_) | Err(AckError::Decode(_))));
            std::future::ready(())
        });
        // The caller asked for an answer within `timeout`. socketioxide-redis's stream can outlive
        // it by the adapter's request timeout: when the other nodes' last answers are "0 sockets
        // here", it does not notice it is complete until that timer fires (an upstream defect).
        if tokio::time::timeout(timeout + REMOTE_ANSWER_GRACE, counting).await.is_err() {
            tracing::debug!(ns = %self.spec.path, "stopped waiting for acks at the caller's timeout");
        }
        report
    }
}

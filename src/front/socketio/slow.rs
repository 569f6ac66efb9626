//! Slow consumers: a socket whose queue is full (its client reads slower than it is sent to, or
//! not at all) has its message dropped, counted, and its session ended, so the client reconnects
//! and resynchronises (`initial_data`) instead of silently missing events, and the queue it
//! holds is freed.
//!
//! socketioxide reports a broadcast's full queues without saying whose, so a broadcast with full
//! queues starts a sweep of the namespace (at most one per [`SWEEP_GAP_MS`]): every local socket
//! is probed, and those that are full are ended. The probe is an emit whose payload refuses to
//! serialize: socketioxide reserves a place in the queue before it serializes, so the emit fails
//! with "full" for a full queue and with a serialization error (nothing queued) otherwise. Were
//! that order to change, the probe would report nothing full and slow consumers would still be
//! ended by their heartbeat and their write deadline (`crate::connection`).

use serde::{Serialize, Serializer, ser::Error as _};
use socketioxide::{BroadcastError, SendError, SocketError, SocketIo, adapter::Adapter, extract::SocketRef};
use std::sync::atomic::Ordering;

use super::SocketIoShared;
use crate::metrics::{CloseReason, CutReason, DropReason};
use crate::{clock::now_millis, engine::Shared};

/// Sweeps of one namespace are at least this far apart: a burst of full broadcasts costs one.
const SWEEP_GAP_MS: u64 = 200;

/// A payload that cannot be serialized: the probe of [`queue_full`].
struct Probe;

impl Serialize for Probe {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(S::Error::custom("a queue probe is never sent"))
    }
}

/// Whether `socket`'s queue is full, without queueing anything.
fn queue_full<A: Adapter>(socket: &SocketRef<A>) -> bool {
    matches!(socket.emit("", &Probe), Err(SendError::Socket(SocketError::InternalChannelFull)))
}

/// Ends the session of a socket whose queue is full: its transport is closed (a WebSocket is cut,
/// whatever its writer is blocked on).
pub(crate) fn end<A: Adapter>(socket: &SocketRef<A>, path: &str, sio: &SocketIoShared) {
    tracing::info!(ns = path, "ending a slow consumer: its send queue is full");
    if let Some(session) = socket.extensions.get::<std::sync::Arc<crate::engine::member_state::MemberState>>() {
        session.end_as(CloseReason::SlowConsumer);
    }
    sio.sessions.close(
        socket.id,
        socket.transport_type(),
        socket.protocol(),
        socket.req_parts(),
        CutReason::SlowConsumer,
    );
}

/// Probes every local socket of namespace `index` and ends those whose queue is full, unless the
/// namespace was swept moments ago.
pub(crate) fn sweep<A: Adapter>(io: &SocketIo<A>, path: &str, index: usize, sio: &SocketIoShared) {
    let now = now_millis();
    let last = &sio.slow_sweeps[index];
    let previous = last.load(Ordering::Relaxed);
    if now.saturating_sub(previous) < SWEEP_GAP_MS
        || last.compare_exchange(previous, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        return;
    }
    let Some(op) = io.of(path) else { return };
    for socket in op.local().sockets().iter().filter(|s| queue_full(s)) {
        end(socket, path, sio);
    }
}

/// Counts what a broadcast could not deliver; returns whether a queue was full.
pub(crate) fn note_broadcast_failure(shared: &Shared, path: &str, error: &BroadcastError) -> bool {
    match error {
        BroadcastError::Socket(errors) => {
            let full = errors.iter().filter(|e| matches!(e, SocketError::InternalChannelFull)).count();
            shared.metrics.dropped(DropReason::QueueFull, full as u64);
            shared.metrics.dropped(DropReason::Closed, (errors.len() - full) as u64);
            if full > 0 {
                tracing::warn!(ns = path, sockets = full, "send queues full: messages dropped for slow consumers");
            }
            full > 0
        }
        BroadcastError::Serialize(e) => {
            shared.metrics.dropped(DropReason::Unserializable, 1);
            tracing::error!(ns = path, error = %e, "a broadcast could not be serialized");
            false
        }
        other => {
            tracing::error!(ns = path, error = %other, "broadcast failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probe_never_serializes() {
        assert!(serde_json::to_string(&Probe).is_err());
    }
}

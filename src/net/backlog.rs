//! How far behind a Socket.IO client is: the bytes the gateway has queued for one Engine.IO
//! session that its transport has not written yet, and when the transport last wrote any.
//!
//! engineioxide bounds a session's queue in packets and tells no one how deep it is
//! (docs/upstream.md), so a burst that a client reads at full speed looked, to the gateway, like
//! a client that does not read: the queue filled before its writer could drain it. The gateway
//! keeps the count itself instead. Every packet the engine queues for a session adds its size,
//! and every byte the session's transport writes takes from it: its WebSocket connection's writes
//! (`connection::GuardedIo` tells the backlog attached to its guard), or the bodies of its
//! polling responses (the session front tells). A session is behind when what is queued exceeds
//! its byte budget, or when something has been queued for longer than the write deadline without
//! a byte written; then the engine ends it as a slow consumer.
//!
//! The count errs low, never high, so a reader is never judged behind by mistake: a packet is
//! counted at its smallest encoding (its transport's framing adds to what is written, never to
//! what is counted), and what is written for packets the engine does not count (pings, relays
//! from other nodes) lowers the count only down to zero.

use std::{
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Instant,
};

/// What a session may have queued: bytes, and how long a queue may go without a write.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BacklogLimits {
    /// `WS_MAX_BUFFER_BYTES`.
    pub bytes: u64,
    /// `WS_WRITE_TIMEOUT`, in milliseconds.
    pub stall_ms: u64,
}

/// Why a session is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behind {
    /// More than the byte budget is queued (this many bytes).
    Over(u64),
    /// Bytes have been queued and none written for this many milliseconds.
    Stalled(u64),
}

/// One Engine.IO session's unwritten bytes. Shared by the session's namespace sockets, its
/// transport's connection and the session front.
#[derive(Debug)]
pub(crate) struct Backlog {
    /// Bytes the transport has written, ever.
    written: AtomicU64,
    /// When it last wrote (ms since `epoch`).
    progressed_ms: AtomicU64,
    epoch: Instant,
    queue: Mutex<Queued>,
}

#[derive(Debug, Default)]
struct Queued {
    /// Bytes queued and not written.
    bytes: u64,
    /// `written` as last read, so each read takes only what was written since.
    written_seen: u64,
}

impl Default for Backlog {
    fn default() -> Self {
        Self {
            written: AtomicU64::new(0),
            progressed_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            queue: Mutex::new(Queued::default()),
        }
    }
}

impl Backlog {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// The transport wrote `n` bytes of the session's.
    pub(crate) fn wrote(&self, n: usize) {
        if n == 0 {
            return;
        }
        self.written.fetch_add(n as u64, Ordering::Relaxed);
        self.progressed_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Counts `n` more bytes queued; `Err` when the session is now behind (what was queued is
    /// counted either way).
    pub(crate) fn queue(&self, n: usize, limits: BacklogLimits) -> Result<(), Behind> {
        let written = self.written.load(Ordering::Relaxed);
        let mut queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        let drained = written.saturating_sub(queue.written_seen);
        queue.written_seen = written;
        let waiting = queue.bytes.saturating_sub(drained);
        queue.bytes = waiting.saturating_add(n as u64);
        let bytes = queue.bytes;
        drop(queue);
        if bytes > limits.bytes {
            return Err(Behind::Over(bytes));
        }
        if waiting > 0 {
            // Something was already waiting: it must have seen a write within the deadline.
            let quiet = self.now_ms().saturating_sub(self.progressed_ms.load(Ordering::Relaxed));
            if quiet > limits.stall_ms {
                return Err(Behind::Stalled(quiet));
            }
        } else {
            // Nothing waited: the deadline of what is queued now starts now.
            self.progressed_ms.store(self.now_ms(), Ordering::Relaxed);
        }
        Ok(())
    }

    /// Bytes queued and not written, as of now.
    pub(crate) fn pending(&self) -> u64 {
        let written = self.written.load(Ordering::Relaxed);
        let queue = self.queue.lock().unwrap_or_else(|e| e.into_inner());
        queue.bytes.saturating_sub(written.saturating_sub(queue.written_seen))
    }
}

/// The smallest size of an event packet as a transport writes it: the Engine.IO message type
/// (`4`), the Socket.IO event type (`2`), the namespace (`/workflow,`; none for `/`) and the
/// arguments' JSON (`["name",data]`, `json_len` bytes). Acks and framing only add to it.
pub(crate) fn event_packet_len(namespace: &str, json_len: usize) -> usize {
    let namespace = if namespace == "/" { 0 } else { namespace.len() + 1 };
    2 + namespace + json_len
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BacklogLimits = BacklogLimits { bytes: 1000, stall_ms: 60_000 };

    #[test]
    fn what_is_written_drains_what_is_queued() {
        let b = Backlog::default();
        assert_eq!(b.queue(600, LIMITS), Ok(()));
        b.wrote(500);
        assert_eq!(b.pending(), 100);
        assert_eq!(b.queue(800, LIMITS), Ok(()), "900 waiting: within the budget");
        assert_eq!(b.queue(200, LIMITS), Err(Behind::Over(1100)));
        b.wrote(5000);
        assert_eq!(b.pending(), 0, "never below zero");
        assert_eq!(b.queue(1000, LIMITS), Ok(()), "bytes written for others give no credit");
    }

    #[test]
    fn a_queue_with_no_write_for_the_deadline_is_stalled() {
        let limits = BacklogLimits { bytes: 1 << 20, stall_ms: 0 };
        let b = Backlog::default();
        assert_eq!(b.queue(10, limits), Ok(()), "nothing waited before: the deadline starts now");
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(matches!(b.queue(10, limits), Err(Behind::Stalled(_))));
        b.wrote(20);
        assert_eq!(b.queue(10, limits), Ok(()), "drained: a fresh start");
    }

    #[test]
    fn event_packets_count_their_namespace() {
        assert_eq!(event_packet_len("/", 10), 12);
        assert_eq!(event_packet_len("/workflow", 10), 22);
    }
}

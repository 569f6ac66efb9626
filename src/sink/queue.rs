//! One sink's queue: what a bridge's task (or a `forward` action) hands over and the sink's
//! delivery task takes, bounded in messages and bytes (a bridge's sinks: [`MAX_QUEUED`] and
//! [`MAX_QUEUED_BYTES`]; a forward destination: its `queue` and `queue_bytes`). Handing over
//! never waits: what does not fit is refused (`queue_full`; for a forward, `busy`, which the
//! client is told). Every drop, here or by the sink, is counted by its [`Tally`] (a bridge's in
//! `bridge_sink_dropped_total{sink, reason}`, a forward destination's in `backend_calls_total`)
//! and logged, at most one line per [`LOG_EVERY`] per sink, with the number dropped since the
//! last line (a peer flooding a sink that is down must not flood the log too); drops held back
//! are told at the end of the window, so none goes without a line.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use tokio::sync::Notify;

use crate::metrics::{BridgeMetrics, ForwardMetrics, ForwardOutcome, SinkDrop, SinkKind};

/// Most messages waiting for one sink of one bridge.
pub(crate) const MAX_QUEUED: usize = 1000;
/// Most bytes waiting for one sink of one bridge.
pub(crate) const MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;
/// At most one drop line per sink this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Whose queue it is: where its deliveries and drops are counted, and how its logs name it.
#[derive(Clone)]
pub(crate) enum Tally {
    /// Sink `kind` of bridge `bridge` (`bridge_sink_*`).
    Bridge { bridge: String, kind: SinkKind, metrics: BridgeMetrics },
    /// The `forward` destination `destination` of `BACKENDS_FILE` (`backend_calls`: `written`,
    /// `busy` when the queue is full, `write_failed` when refused for good).
    Forward { destination: String, metrics: ForwardMetrics },
}

impl Tally {
    /// What logs name: `bridge NAME` or `forward destination NAME`.
    pub(super) fn owner(&self) -> String {
        match self {
            Tally::Bridge { bridge, .. } => format!("bridge {bridge}"),
            Tally::Forward { destination, .. } => format!("forward destination {destination}"),
        }
    }

    fn delivered(&self, n: usize) {
        match self {
            Tally::Bridge { kind, metrics, .. } => metrics.sink_delivered(*kind, n as u64),
            Tally::Forward { metrics, .. } => metrics.ended_many(ForwardOutcome::Written, n as u64),
        }
    }

    fn dropped(&self, reason: SinkDrop, n: usize) {
        match self {
            Tally::Bridge { kind, metrics, .. } => metrics.sink_drop(*kind, reason, n as u64),
            Tally::Forward { metrics, .. } => {
                let outcome =
                    if reason == SinkDrop::QueueFull { ForwardOutcome::Busy } else { ForwardOutcome::WriteFailed };
                metrics.ended_many(outcome, n as u64);
            }
        }
    }
}

/// A queue of `T`s, each weighing the bytes it was offered with.
pub(super) struct Queue<T> {
    tally: Tally,
    max: usize,
    max_bytes: usize,
    state: Mutex<State<T>>,
    ready: Notify,
    /// Shared with the task that tells held-back drops at the end of a window.
    log: Arc<Mutex<DropLog>>,
}

struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
}

/// Drops not logged yet, why the last of them happened, and when the last line was.
#[derive(Default)]
struct DropLog {
    last: Option<Instant>,
    unlogged: u64,
    why: String,
    /// A task will tell `unlogged` at the end of the window.
    flush_due: bool,
}

impl DropLog {
    /// Logs what is held back, and starts a new window.
    fn write(&mut self, tally: &Tally) {
        match tally {
            Tally::Bridge { bridge, kind, .. } => tracing::warn!(
                bridge,
                sink = kind.as_str(),
                dropped = self.unlogged,
                reason = %self.why,
                "incoming messages dropped (counted in bridge_sink_dropped_total; at most one such line per sink every {} s)",
                LOG_EVERY.as_secs()
            ),
            Tally::Forward { destination, .. } => tracing::warn!(
                backend = %destination,
                dropped = self.unlogged,
                reason = %self.why,
                "forwarded client events dropped (counted in backend_calls_total as busy or write_failed; at most one such line per destination every {} s)",
                LOG_EVERY.as_secs()
            ),
        }
        self.last = Some(Instant::now());
        self.unlogged = 0;
    }
}

impl<T> Queue<T> {
    /// The queue of sink `kind` of bridge `bridge`, bounded by [`MAX_QUEUED`] and
    /// [`MAX_QUEUED_BYTES`].
    pub(super) fn for_bridge(kind: SinkKind, bridge: &str, metrics: BridgeMetrics) -> Self {
        Self::new(Tally::Bridge { bridge: bridge.to_string(), kind, metrics }, MAX_QUEUED, MAX_QUEUED_BYTES)
    }

    /// A queue counted by `tally`, bounded by `max` items and `max_bytes` bytes.
    pub(super) fn new(tally: Tally, max: usize, max_bytes: usize) -> Self {
        Self {
            tally,
            max,
            max_bytes,
            state: Mutex::new(State { items: VecDeque::new(), bytes: 0 }),
            ready: Notify::new(),
            log: Arc::default(),
        }
    }

    /// Whose it is (named in the sink's logs).
    pub(super) fn owner(&self) -> String {
        self.tally.owner()
    }

    /// Queues `item` of `bytes` bytes, or drops it (counted, logged) when it does not fit;
    /// whether it was queued.
    pub(super) fn offer(&self, item: T, bytes: usize) -> bool {
        let accepted = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            if state.items.len() >= self.max || state.bytes + bytes > self.max_bytes {
                false
            } else {
                state.bytes += bytes;
                state.items.push_back((item, bytes));
                true
            }
        };
        if accepted {
            self.ready.notify_one();
        } else {
            self.dropped(
                SinkDrop::QueueFull,
                1,
                &format!("queue full ({} messages or {} bytes)", self.max, self.max_bytes),
            );
        }
        accepted
    }

    /// Waits for at least one item, then takes up to `max`, oldest first.
    pub(super) async fn take(&self, max: usize) -> Vec<T> {
        loop {
            // Registered before looking, so an offer between the look and the wait is not missed.
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let n = state.items.len().min(max);
                if n > 0 {
                    let taken: Vec<(T, usize)> = state.items.drain(..n).collect();
                    state.bytes -= taken.iter().map(|(_, b)| b).sum::<usize>();
                    return taken.into_iter().map(|(item, _)| item).collect();
                }
            }
            notified.await;
        }
    }

    /// Counts `n` messages delivered.
    pub(super) fn delivered(&self, n: usize) {
        self.tally.delivered(n);
    }

    /// Counts `n` messages dropped for `reason`, and logs it (rate-limited); `why` is told.
    pub(super) fn dropped(&self, reason: SinkDrop, n: usize, why: &str) {
        self.tally.dropped(reason, n);
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        log.unlogged += n as u64;
        why.clone_into(&mut log.why);
        let since = log.last.map(|at| at.elapsed());
        match since {
            Some(since) if since < LOG_EVERY => {
                // Held back: told when the window ends, unless a line is already due then.
                if !log.flush_due
                    && let Ok(runtime) = tokio::runtime::Handle::try_current()
                {
                    log.flush_due = true;
                    let (shared, tally) = (self.log.clone(), self.tally.clone());
                    runtime.spawn(async move {
                        tokio::time::sleep(LOG_EVERY - since).await;
                        let mut log = shared.lock().unwrap_or_else(|e| e.into_inner());
                        log.flush_due = false;
                        if log.unlogged > 0 {
                            log.write(&tally);
                        }
                    });
                }
            }
            _ => log.write(&self.tally),
        }
    }

    /// Messages waiting.
    #[cfg(test)]
    pub(super) fn len(&self) -> (usize, usize) {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        (state.items.len(), state.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_drops_and_counts_by_count_and_by_bytes() {
        let metrics = crate::metrics::Metrics::new(false).bridges;
        let queue = Queue::for_bridge(SinkKind::Kafka, "b", metrics.clone());
        for _ in 0..MAX_QUEUED + 3 {
            queue.offer((), 10);
        }
        assert_eq!(metrics.sink_dropped(SinkKind::Kafka, SinkDrop::QueueFull), 3);
        assert_eq!(metrics.sink_dropped(SinkKind::Database, SinkDrop::QueueFull), 0, "counted for its sink only");

        let metrics = crate::metrics::Metrics::new(false).bridges;
        let queue = Queue::for_bridge(SinkKind::Database, "b", metrics.clone());
        for _ in 0..5 {
            queue.offer((), MAX_QUEUED_BYTES / 4 + 1);
        }
        assert_eq!(metrics.sink_dropped(SinkKind::Database, SinkDrop::QueueFull), 2, "three fit in the bytes");
        assert!(queue.len().1 <= MAX_QUEUED_BYTES);

        // A forward destination's own bounds; a refusal is `busy`, as for HTTP backends.
        let forward = crate::metrics::Metrics::new(false).forward;
        let tally = Tally::Forward { destination: "audit-db".into(), metrics: forward.clone() };
        let queue = Queue::new(tally, 2, 100);
        assert!(queue.offer((), 10) && queue.offer((), 10));
        assert!(!queue.offer((), 10), "past the count");
        let queue = Queue::new(Tally::Forward { destination: "k".into(), metrics: forward.clone() }, 10, 100);
        assert!(!queue.offer((), 101), "past the bytes");
        assert_eq!(forward.count(ForwardOutcome::Busy), 2);
        queue.delivered(3);
        queue.dropped(SinkDrop::Failed, 1, "refused");
        assert_eq!((forward.count(ForwardOutcome::Written), forward.count(ForwardOutcome::WriteFailed)), (3, 1));
    }

    #[tokio::test]
    async fn take_gives_the_oldest_first_and_returns_their_bytes() {
        let metrics = crate::metrics::Metrics::new(false).bridges;
        let queue = Queue::for_bridge(SinkKind::Callback, "b", metrics.clone());
        for i in 0..5 {
            queue.offer(i, 100);
        }
        assert_eq!(queue.take(3).await, [0, 1, 2]);
        assert_eq!(queue.len(), (2, 200));
        assert_eq!(queue.take(10).await, [3, 4]);
        assert_eq!(queue.len(), (0, 0));
        let waiting = tokio::time::timeout(Duration::from_millis(20), queue.take(1)).await;
        assert!(waiting.is_err(), "an empty queue waits");
        queue.delivered(5);
        assert_eq!(metrics.sink_delivered_count(SinkKind::Callback), 5);
        assert_eq!(metrics.sink_delivered_count(SinkKind::Kafka), 0);
    }
}

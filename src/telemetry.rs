//! Logging: `tracing` events to stdout, one JSON object per line when stdout is not a terminal
//! (containers, log shippers), human-readable otherwise; the filter comes from `LOG_LEVEL`.
//!
//! Logging never makes a runtime worker wait, and a client cannot make the gateway log without
//! bound, whatever it does:
//! - lines go to stdout from a thread of their own (tracing-appender's non-blocking writer),
//!   through a queue bounded in lines and in bytes ([`QUEUE_LINES`], [`QUEUE_BYTES`]). A slow or
//!   stuck reader of stdout fills the queue; a line that does not fit is dropped and counted;
//! - each place in the code that logs (a call site) may log [`BURST_PER_PLACE`] lines at once
//!   and [`LINES_PER_SECOND_PER_PLACE`] a second after that; beyond, its lines are dropped and
//!   counted, and every [`SUMMARY_EVERY`] one line per such place says how many. Many client
//!   requests hit the same few call sites (refused handshakes, slow consumers, expiries), so
//!   this bounds them without the call sites knowing, and a flood at one place cannot crowd
//!   out the lines of another;
//! - [`LogGuard`] flushes what is queued when the process ends, for at most [`FLUSH_TIMEOUT`]
//!   (stdout may be a pipe nobody reads).
//!
//! Both counts are on `/metrics` ([`dropped_lines`]).

use std::{
    collections::HashMap,
    io::{self, IsTerminal, Write},
    num::NonZeroU32,
    sync::{
        Arc, Mutex, OnceLock,
        atomic::{AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tracing::{Event, Metadata, Subscriber, callsite::Identifier};
use tracing_appender::non_blocking::{ErrorCounter, NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{
    EnvFilter,
    fmt::{self, MakeWriter},
    layer::Context,
    prelude::*,
};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when stdout is not a terminal, human-readable otherwise.
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Lines waiting for stdout, at most.
pub const QUEUE_LINES: usize = 8192;
/// Bytes of lines waiting for stdout, at most.
pub const QUEUE_BYTES: usize = 4 * 1024 * 1024;
/// Lines one call site may log at once.
pub const BURST_PER_PLACE: NonZeroU32 = NonZeroU32::new(50).unwrap();
/// Lines one call site may log a second, after its burst.
pub const LINES_PER_SECOND_PER_PLACE: NonZeroU32 = NonZeroU32::new(10).unwrap();
/// How often the places that were cut are reported.
pub const SUMMARY_EVERY: Duration = Duration::from_secs(10);
/// The longest the process waits at exit for its queued lines to be written.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Crates whose debug and trace logs print frames, headers or URLs, and with them client tokens
/// (a handshake's `auth` payload, a `?token=` query). They never log below `info`, whatever
/// `LOG_LEVEL` says: secrets must not reach logs.
const TRANSPORT_CRATES: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "engineioxide",
    "socketioxide",
    "axum",
    "tower_http",
    // Its debug lines print statements' parameters: the rows a sink writes.
    "tokio_postgres",
];

/// The Kafka sink's client, which logs each retry of a request at `info` or `warn`: during an
/// outage, lines every few hundred milliseconds. The sink logs the outage and its end itself, so
/// this crate says only errors.
const RETRYING_CRATES: &[&str] = &["rskafka"];

/// Log lines not written since the process started, by why.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedLines {
    /// Their call site had logged more than its rate.
    pub rate_limited: u64,
    /// The queue to stdout was full (stdout is read too slowly, or not at all).
    pub queue_full: u64,
}

/// What [`dropped_lines`] reads: set once by [`init`].
struct Counts {
    places: Arc<PerPlaceLimit>,
    queue: Arc<QueueBudget>,
    /// tracing-appender's own count; stays 0 while [`QueueBudget`] admits no more than the
    /// channel holds.
    appender: ErrorCounter,
}

static COUNTS: OnceLock<Counts> = OnceLock::new();

/// Log lines dropped so far; zeros when [`init`] has not run (tests, subcommands).
pub fn dropped_lines() -> DroppedLines {
    COUNTS.get().map_or_else(DroppedLines::default, |c| DroppedLines {
        rate_limited: c.places.suppressed_total.load(Ordering::Relaxed),
        queue_full: c.queue.dropped.load(Ordering::Relaxed) + c.appender.dropped_lines() as u64,
    })
}

/// The `LOG_LEVEL` filter, with the transport crates capped at `info`, the retrying ones at
/// `error`.
fn log_filter(level: &str) -> anyhow::Result<EnvFilter> {
    let mut filter =
        EnvFilter::try_new(level).map_err(|e| anyhow::anyhow!("LOG_LEVEL `{level}` is not a valid filter: {e}"))?;
    for name in TRANSPORT_CRATES {
        filter = filter.add_directive(format!("{name}=info").parse().expect("a valid directive"));
    }
    for name in RETRYING_CRATES {
        filter = filter.add_directive(format!("{name}=error").parse().expect("a valid directive"));
    }
    Ok(filter)
}

/// Installs the global subscriber, writing to stdout. Call once, before anything logs, and keep
/// the guard until the process ends: dropping it writes out what is queued.
pub fn init(level: &str, format: LogFormat) -> anyhow::Result<LogGuard> {
    let filter = log_filter(level)?;
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !io::stdout().is_terminal(),
    };
    let (queue, worker) = LineQueue::new(io::stdout(), QUEUE_LINES, QUEUE_BYTES);
    let per_place = Quota::per_second(LINES_PER_SECOND_PER_PLACE).allow_burst(BURST_PER_PLACE);
    let places = Arc::new(PerPlaceLimit::new(per_place));
    let counts = Counts { places: places.clone(), queue: queue.budget.clone(), appender: queue.lines.error_counter() };
    let registry = tracing_subscriber::registry().with(filter).with(PerPlace(places.clone()));
    if json {
        let layer = fmt::layer().json().flatten_event(true).with_current_span(false).with_span_list(false);
        registry.with(layer.with_writer(queue)).try_init()?;
    } else {
        registry.with(fmt::layer().compact().with_writer(queue)).try_init()?;
    }
    // A second `init` failed above, so this is the first.
    let _ = COUNTS.set(counts);
    let (stop, stopped) = mpsc::channel::<()>();
    let summary = std::thread::Builder::new().name("log-summary".into()).spawn(move || {
        while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(SUMMARY_EVERY) {
            places.report();
        }
        places.report();
    })?;
    Ok(LogGuard { summary: Some((stop, summary)), worker: Some(worker) })
}

/// Keeps the log writer running; dropping it reports the places cut since the last summary and
/// writes out the queued lines, waiting at most [`FLUSH_TIMEOUT`].
#[must_use = "dropping the guard stops logging"]
pub struct LogGuard {
    summary: Option<(mpsc::Sender<()>, JoinHandle<()>)>,
    worker: Option<WorkerGuard>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some((stop, summary)) = self.summary.take() {
            drop(stop);
            let _ = summary.join();
        }
        let Some(worker) = self.worker.take() else { return };
        // The writer thread may be stuck on a full pipe (and tracing-appender then prints to
        // that same stdout): wait for it on another thread, and only so long.
        let (done, flushed) = mpsc::channel();
        let flusher = std::thread::Builder::new().name("log-flush".into()).spawn(move || {
            drop(worker);
            let _ = done.send(());
        });
        if flusher.is_ok() {
            let _ = flushed.recv_timeout(FLUSH_TIMEOUT);
        }
    }
}

/// How many lines, and bytes, are queued for stdout, and how many were refused.
#[derive(Debug)]
struct QueueBudget {
    lines: AtomicUsize,
    bytes: AtomicUsize,
    max_lines: usize,
    max_bytes: usize,
    dropped: AtomicU64,
}

impl QueueBudget {
    /// Takes room for one line of `len` bytes, or counts it dropped.
    fn reserve(&self, len: usize) -> bool {
        if self.lines.fetch_add(1, Ordering::AcqRel) >= self.max_lines {
            self.lines.fetch_sub(1, Ordering::AcqRel);
        } else if self.bytes.fetch_add(len, Ordering::AcqRel) + len > self.max_bytes {
            self.bytes.fetch_sub(len, Ordering::AcqRel);
            self.lines.fetch_sub(1, Ordering::AcqRel);
        } else {
            return true;
        }
        self.dropped.fetch_add(1, Ordering::Relaxed);
        false
    }

    /// Gives back the room of a line written (or lost) by the writer thread.
    fn release(&self, len: usize) {
        self.bytes.fetch_sub(len, Ordering::AcqRel);
        self.lines.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The logging side of the queue: takes each formatted line whole, or drops it. A line keeps
/// its room until the writer thread has written it, so the channel (sized to the line budget)
/// never fills and tracing-appender never has to drop.
#[derive(Clone)]
struct LineQueue {
    lines: NonBlocking,
    budget: Arc<QueueBudget>,
}

impl LineQueue {
    /// A queue of at most `max_lines` lines and `max_bytes` bytes to `out`, written by a thread
    /// of its own, which the guard stops.
    fn new<W: Write + Send + 'static>(out: W, max_lines: usize, max_bytes: usize) -> (Self, WorkerGuard) {
        let budget = Arc::new(QueueBudget {
            lines: AtomicUsize::new(0),
            bytes: AtomicUsize::new(0),
            max_lines,
            max_bytes,
            dropped: AtomicU64::new(0),
        });
        let (lines, worker) = NonBlockingBuilder::default()
            .lossy(true)
            // One more than the budget: room for the guard's shutdown message.
            .buffered_lines_limit(max_lines + 1)
            .thread_name("log-writer")
            .finish(Written { out, budget: budget.clone() });
        (Self { lines, budget }, worker)
    }
}

impl Write for LineQueue {
    /// One call per line: the fmt layer writes each formatted event with one `write_all`.
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        if self.budget.reserve(line.len()) {
            self.lines.write(line)?;
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LineQueue {
    type Writer = LineQueue;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// The writer thread's side: writes a line, then gives its room back.
struct Written<W> {
    out: W,
    budget: Arc<QueueBudget>,
}

impl<W: Write> Write for Written<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    /// tracing-appender writes each queued line with one `write_all`.
    fn write_all(&mut self, line: &[u8]) -> io::Result<()> {
        let written = self.out.write_all(line);
        self.budget.release(line.len());
        written
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

/// A rate per call site: lines beyond it are dropped, counted by place for the summary.
struct PerPlaceLimit {
    limiter: DefaultKeyedRateLimiter<Identifier>,
    /// Places cut since the last summary, with how many lines. Touched only when a line is
    /// dropped, so the lock costs nothing while logging stays within the rate.
    suppressed: Mutex<HashMap<Identifier, (&'static Metadata<'static>, u64)>>,
    suppressed_total: AtomicU64,
}

impl PerPlaceLimit {
    fn new(quota: Quota) -> Self {
        Self {
            limiter: RateLimiter::keyed(quota),
            suppressed: Mutex::new(HashMap::new()),
            suppressed_total: AtomicU64::new(0),
        }
    }

    /// Whether `event` may be written. The summary lines themselves always are.
    fn admit(&self, event: &Event<'_>) -> bool {
        let metadata = event.metadata();
        if metadata.target() == SUMMARY_TARGET {
            return true;
        }
        let place = metadata.callsite();
        if self.limiter.check_key(&place).is_ok() {
            return true;
        }
        self.suppressed_total.fetch_add(1, Ordering::Relaxed);
        let mut suppressed = self.suppressed.lock().unwrap_or_else(|e| e.into_inner());
        suppressed.entry(place).or_insert((metadata, 0)).1 += 1;
        false
    }

    /// Logs one line per place cut since the last call, with how many of its lines were dropped.
    fn report(&self) {
        let cut = std::mem::take(&mut *self.suppressed.lock().unwrap_or_else(|e| e.into_inner()));
        for (metadata, dropped) in cut.into_values() {
            let at = format!("{}:{}", metadata.file().unwrap_or("?"), metadata.line().unwrap_or(0));
            tracing::warn!(
                target: SUMMARY_TARGET,
                at,
                of = metadata.target(),
                dropped,
                "log lines dropped: this place logged more than {LINES_PER_SECOND_PER_PLACE} a second"
            );
        }
    }
}

/// The target of the summary lines, which are never limited.
const SUMMARY_TARGET: &str = "realtime_gateway::telemetry";

/// [`PerPlaceLimit`] as a layer: refuses events over their place's rate before they are
/// formatted.
struct PerPlace(Arc<PerPlaceLimit>);

impl<S: Subscriber> tracing_subscriber::Layer<S> for PerPlace {
    fn event_enabled(&self, event: &Event<'_>, _ctx: Context<'_, S>) -> bool {
        self.0.admit(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transport_crates_stay_at_info_even_when_asked_for_trace() {
        let shown = log_filter("trace,tungstenite=trace").unwrap().to_string();
        assert!(shown.contains("tungstenite=info"), "{shown}");
        assert!(!shown.contains("tungstenite=trace"), "{shown}");
    }

    /// A writer that blocks until the test opens it, recording what it wrote.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, std::sync::Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Gate {
        fn open(&self) {
            *self.open.0.lock().unwrap() = true;
            self.open.1.notify_all();
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, opened) = &*self.open;
            drop(opened.wait_while(lock.lock().unwrap(), |open| !*open).unwrap());
            self.written.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// Runs `f` on another thread and fails if it takes longer than a second: a blocked logger.
    fn without_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        let (done, result) = mpsc::channel();
        std::thread::spawn(move || done.send(f()).unwrap());
        result.recv_timeout(Duration::from_secs(1)).expect("logging blocked")
    }

    #[test]
    fn a_stuck_stdout_drops_and_counts_lines_past_the_line_budget_and_never_blocks() {
        let gate = Gate::default();
        let (queue, worker) = LineQueue::new(gate.clone(), 4, 1000);
        let budget = queue.budget.clone();
        let mut writer = queue.make_writer();
        without_blocking(move || {
            for i in 0..10 {
                writer.write_all(format!("line {i}\n").as_bytes()).unwrap();
            }
        });
        assert_eq!(budget.dropped.load(Ordering::Relaxed), 6, "four lines fit");
        gate.open();
        drop(worker);
        assert_eq!(String::from_utf8_lossy(&gate.written.lock().unwrap()), "line 0\nline 1\nline 2\nline 3\n");
        assert_eq!((budget.lines.load(Ordering::Relaxed), budget.bytes.load(Ordering::Relaxed)), (0, 0));
        assert_eq!(queue.lines.error_counter().dropped_lines(), 0, "tracing-appender never had to drop");
    }

    #[test]
    fn the_byte_budget_holds_whatever_the_line_count() {
        let gate = Gate::default();
        let (queue, worker) = LineQueue::new(gate.clone(), 100, 100);
        let budget = queue.budget.clone();
        let mut writer = queue.make_writer();
        let line = [b'x'; 39];
        without_blocking(move || {
            for _ in 0..5 {
                writer.write_all(&line).unwrap();
            }
        });
        assert_eq!(budget.dropped.load(Ordering::Relaxed), 3, "two 39-byte lines fit in 100 bytes");
        assert!(budget.bytes.load(Ordering::Relaxed) <= 100);
        gate.open();
        drop(worker);
        assert_eq!(gate.written.lock().unwrap().len(), 78);
        assert_eq!(budget.bytes.load(Ordering::Relaxed), 0, "written lines give their room back");
    }

    #[test]
    fn one_place_over_its_rate_is_cut_and_reported_and_others_are_not() {
        // Five at once, then one an hour: the loop below cannot earn a sixth however slow it runs.
        let quota = Quota::per_hour(NonZeroU32::new(1).unwrap()).allow_burst(NonZeroU32::new(5).unwrap());
        let places = Arc::new(PerPlaceLimit::new(quota));
        let gate = Gate::default();
        gate.open();
        let (queue, worker) = LineQueue::new(gate.clone(), 1000, 1 << 20);
        let subscriber = tracing_subscriber::registry()
            .with(PerPlace(places.clone()))
            .with(fmt::layer().json().flatten_event(true).with_writer(queue));
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..100 {
                tracing::info!(i, "noisy");
            }
            tracing::info!("quiet");
            places.report();
            places.report();
        });
        drop(worker);
        let written = String::from_utf8(gate.written.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = written.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.iter().filter(|l| l["message"] == "noisy").count(), 5, "the burst");
        assert_eq!(lines.iter().filter(|l| l["message"] == "quiet").count(), 1);
        let summaries: Vec<_> = lines.iter().filter(|l| l["dropped"].is_u64()).collect();
        assert_eq!(summaries.len(), 1, "one summary line per place, and none when nothing more was cut: {written}");
        assert_eq!(summaries[0]["dropped"], 95);
        assert_eq!(summaries[0]["level"], "WARN");
        assert!(summaries[0]["at"].as_str().unwrap().starts_with("src/telemetry.rs:"), "{}", summaries[0]);
        assert_eq!(places.suppressed_total.load(Ordering::Relaxed), 95);
    }
}

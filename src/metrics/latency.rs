//! [`Latency`]: the count, total and largest of one kind of work's durations, for the `/ws`
//! performance stream, which wants the largest since its last reading (a histogram cannot say).

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

/// Durations of one kind of work for the `/ws` performance stream: count, total and the largest
/// since the last reading (which a histogram cannot say).
#[derive(Debug, Default)]
pub(crate) struct Latency {
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
}

impl Latency {
    /// Records one duration.
    pub(crate) fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.total_us.fetch_add(us, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    /// `(count, total µs)` so far.
    pub(crate) fn totals(&self) -> (u64, u64) {
        (self.count.load(Ordering::Relaxed), self.total_us.load(Ordering::Relaxed))
    }

    /// The largest duration in µs since the previous call, which starts a new period.
    pub(crate) fn take_max(&self) -> u64 {
        self.max_us.swap(0, Ordering::Relaxed)
    }
}

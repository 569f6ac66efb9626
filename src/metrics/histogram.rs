//! A histogram of durations that records with two atomic adds and no lock, encoded by
//! `prometheus-client` as a classic Prometheus histogram.
//!
//! prometheus-client's own `Histogram` takes a mutex on every observation. Ours sits on the
//! receive path of every client event and on every delivery, where several runtime threads can
//! observe the same series at once, so it keeps one atomic count per bucket and an atomic sum in
//! nanoseconds instead. A scrape reads the buckets one by one: the total count is derived from
//! them, so `_count` always equals the `+Inf` bucket; the sum may miss an observation that is
//! being recorded at that instant, which the next scrape includes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// A duration histogram with fixed bucket bounds (in seconds). Clones share their counts.
#[derive(Debug, Clone)]
pub(crate) struct Histogram(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// Upper bounds in seconds, ascending, as exposed in `le`.
    bounds: &'static [f64],
    /// The same bounds in nanoseconds, compared against on every observation.
    bounds_ns: Box<[u64]>,
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    counts: Box<[AtomicU64]>,
    /// Sum of all observations, in nanoseconds: 584 years of cumulated time fit.
    sum_ns: AtomicU64,
}

impl Histogram {
    /// A histogram with these upper bounds, in seconds, ascending.
    pub(crate) fn new(bounds: &'static [f64]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]), "bucket bounds must ascend");
        let bounds_ns = bounds.iter().map(|b| (b * 1e9) as u64).collect();
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Self(Arc::new(Inner { bounds, bounds_ns, counts, sum_ns: AtomicU64::new(0) }))
    }

    /// Records one duration.
    pub(crate) fn observe(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        // The first bucket whose bound is at or above the value (`le` is inclusive).
        let bucket = self.0.bounds_ns.partition_point(|&bound| bound < ns);
        self.0.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    #[cfg(test)]
    pub(crate) fn count(&self) -> u64 {
        self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for Histogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Histogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let buckets: Vec<(f64, u64)> = self
            .0
            .bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

#[cfg(test)]
mod tests {
    use prometheus_client::{encoding::prometheus_text::encode, registry::Registry};

    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_at_or_above_them() {
        let h = Histogram::new(&[0.001, 0.01]);
        h.observe(Duration::from_micros(500));
        h.observe(Duration::from_millis(1));
        h.observe(Duration::from_millis(5));
        h.observe(Duration::from_secs(2));
        let mut registry = Registry::default();
        registry.register("took_seconds", "Time taken.", h.clone());
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert_eq!(h.count(), 4);
        for line in [
            "took_seconds_bucket{le=\"0.001\"} 2",
            "took_seconds_bucket{le=\"0.01\"} 3",
            "took_seconds_bucket{le=\"+Inf\"} 4",
            "took_seconds_sum 2.0065",
            "took_seconds_count 4",
        ] {
            assert!(text.lines().any(|l| l == line), "no `{line}` in\n{text}");
        }
    }
}

//! The live performance figures behind `{gateway.stats}` (the `/ws` performance stream):
//! connections, message rates and latencies since the previous reading, process CPU and memory.
//!
//! Rates and the CPU share are deltas between two readings, so one sampler serves every timer
//! that asks; with one timer they cover exactly its interval.

use std::{
    sync::Mutex,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::clock::iso_now;
use crate::metrics::Metrics;

/// The previous reading.
#[derive(Debug, Clone, Copy)]
struct Reading {
    at: Instant,
    cpu: Option<Duration>,
    received: u64,
    published: u64,
    relayed: u64,
    handled: (u64, u64),
    delivered: (u64, u64),
}

/// Turns counters into rates between readings.
#[derive(Debug)]
pub(crate) struct PerfSampler {
    started: Instant,
    last: Mutex<Reading>,
}

impl PerfSampler {
    /// A sampler whose first reading covers the time since now.
    pub(crate) fn new(metrics: &Metrics) -> Self {
        let started = Instant::now();
        Self { started, last: Mutex::new(reading(metrics, started)) }
    }

    /// The figures since the previous call. `connections` is `(total, per namespace)`.
    pub(crate) fn sample(&self, metrics: &Metrics, connections: Value) -> Value {
        let now = reading(metrics, Instant::now());
        let before = std::mem::replace(&mut *self.last.lock().unwrap_or_else(|e| e.into_inner()), now);
        let secs = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
        let rate = |a: u64, b: u64| round2(a.saturating_sub(b) as f64 / secs);
        let average_ms = |(count, total): (u64, u64), (count0, total0): (u64, u64)| {
            let n = count.saturating_sub(count0);
            (n > 0).then(|| round2(total.saturating_sub(total0) as f64 / n as f64 / 1000.0))
        };
        let cpu_percent = match (now.cpu, before.cpu) {
            (Some(a), Some(b)) => Some(round2(a.saturating_sub(b).as_secs_f64() / secs * 100.0)),
            _ => None,
        };
        let handled_max = metrics.event_handling.take_max();
        let delivered_max = metrics.publish_delivery.take_max();
        json!({
            "connections": connections,
            "messages": {
                "receivedPerSecond": rate(now.received, before.received),
                "publishedPerSecond": rate(now.published, before.published),
                "relayedPerSecond": rate(now.relayed, before.relayed),
            },
            "latency": {
                "eventHandlingMs": { "avg": average_ms(now.handled, before.handled), "max": round2(handled_max as f64 / 1000.0) },
                "publishDeliveryMs": { "avg": average_ms(now.delivered, before.delivered), "max": round2(delivered_max as f64 / 1000.0) },
            },
            "process": {
                "cpuPercent": cpu_percent,
                "memoryRssBytes": rss_bytes(),
                "uptimeSeconds": self.started.elapsed().as_secs(),
            },
            "intervalSeconds": round2(secs),
            "timestamp": iso_now(),
        })
    }
}

fn reading(metrics: &Metrics, at: Instant) -> Reading {
    Reading {
        at,
        cpu: process_cpu_time(),
        received: metrics.events_received.get(),
        published: metrics.published.get(),
        relayed: metrics.relayed.get(),
        handled: metrics.event_handling.totals(),
        delivered: metrics.publish_delivery.totals(),
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// User plus system CPU time of the whole process.
fn process_cpu_time() -> Option<Duration> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::uninit();
    // SAFETY: getrusage writes a full `rusage` into the pointer on success and reads nothing.
    let usage = unsafe {
        if libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) != 0 {
            return None;
        }
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000);
    Some(tv(usage.ru_utime) + tv(usage.ru_stime))
}

/// Resident memory, from `/proc/self/status` (Linux; `None` elsewhere).
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_latencies_cover_the_time_since_the_last_reading() {
        let metrics = Metrics::default();
        let sampler = PerfSampler::new(&metrics);
        for _ in 0..10 {
            metrics.events_received.inc();
        }
        metrics.event_handling.record(Duration::from_millis(2));
        metrics.event_handling.record(Duration::from_millis(4));
        std::thread::sleep(Duration::from_millis(20));
        let first = sampler.sample(&metrics, json!({ "total": 1 }));
        assert!(first["messages"]["receivedPerSecond"].as_f64().unwrap() > 0.0, "{first}");
        assert_eq!(first["latency"]["eventHandlingMs"]["avg"], json!(3.0), "{first}");
        assert_eq!(first["latency"]["eventHandlingMs"]["max"], json!(4.0), "{first}");
        assert_eq!(first["connections"]["total"], 1);
        assert!(first["process"]["cpuPercent"].is_number(), "{first}");
        let second = sampler.sample(&metrics, json!({}));
        assert_eq!(second["messages"]["receivedPerSecond"], json!(0.0), "{second}");
        assert_eq!(second["latency"]["eventHandlingMs"]["avg"], Value::Null, "{second}");
        assert_eq!(second["latency"]["eventHandlingMs"]["max"], json!(0.0), "{second}");
    }
}

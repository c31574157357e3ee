//! Counters the stages update and the status line and run summary read.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sysinfo::median;

/// Shared, lock-free counters plus a bounded sample of timings.
#[derive(Debug, Default)]
pub struct ServiceStats {
    pub frames: AtomicU64,
    pub faces: AtomicU64,
    pub embeddings: AtomicU64,
    pub vision_errors: AtomicU64,
    pub granted: AtomicU64,
    pub denied: AtomicU64,
    pub unknown: AtomicU64,
    /// Denials because the liveness vote failed (print or screen suspected).
    pub spoof_suspected: AtomicU64,
    pub alerts: AtomicU64,
    pub pulses: AtomicU64,
    pub store_errors: AtomicU64,
    /// Milliseconds per processed frame (detect + embed + decide).
    inference_ms: Samples,
    /// Milliseconds from a frame's capture to the relay pulse it caused.
    latency_ms: Samples,
}

/// The most recent samples (a ring of fixed size: memory never grows with uptime).
#[derive(Debug, Default)]
struct Samples(Mutex<(Vec<f64>, usize)>);

const KEEP: usize = 4096;

impl Samples {
    fn push(&self, v: f64) {
        let Ok(mut guard) = self.0.lock() else { return };
        let (values, next) = &mut *guard;
        if values.len() < KEEP {
            values.push(v);
        } else {
            values[*next % KEEP] = v;
        }
        *next += 1;
    }

    fn values(&self) -> Vec<f64> {
        self.0.lock().map(|g| g.0.clone()).unwrap_or_default()
    }
}

/// Median and 95th percentile of a sample, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Percentiles {
    pub count: usize,
    pub p50: f64,
    pub p95: f64,
    pub max: f64,
}

impl Percentiles {
    pub fn of(values: &[f64]) -> Percentiles {
        if values.is_empty() {
            return Percentiles::default();
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = |q: f64| sorted[((q * (sorted.len() - 1) as f64).round() as usize).min(sorted.len() - 1)];
        Percentiles { count: sorted.len(), p50: median(&sorted), p95: rank(0.95), max: sorted[sorted.len() - 1] }
    }
}

impl ServiceStats {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn record_inference(&self, took: Duration) {
        self.inference_ms.push(took.as_secs_f64() * 1e3);
    }

    pub fn record_latency(&self, latency: Duration) {
        self.latency_ms.push(latency.as_secs_f64() * 1e3);
    }

    pub fn inference(&self) -> Percentiles {
        Percentiles::of(&self.inference_ms.values())
    }

    pub fn latency(&self) -> Percentiles {
        Percentiles::of(&self.latency_ms.values())
    }

    /// Decisions of every kind.
    pub fn decisions(&self) -> u64 {
        [&self.granted, &self.denied, &self.unknown, &self.alerts].iter().map(|c| Self::get(c)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_bounded_samples() {
        let p = Percentiles::of(&[5.0, 1.0, 3.0, 2.0, 4.0]);
        assert_eq!((p.count, p.p50, p.max), (5, 3.0, 5.0));
        assert_eq!(Percentiles::of(&[]).count, 0);
        let s = ServiceStats::default();
        for i in 0..(KEEP + 10) {
            s.record_latency(Duration::from_millis(i as u64));
        }
        let l = s.latency();
        assert_eq!(l.count, KEEP, "the sample never grows past its ring");
        assert_eq!(l.max, (KEEP + 9) as f64);
    }
}

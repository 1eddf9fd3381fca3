//! A fixed-bucket latency histogram on atomics: one `partition_point` over a dozen bounds and
//! two relaxed increments per observation, so it can sit on a probe's or an fsync's path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket bounds for health-check attempts: 1 ms to 10 s (a check's timeout is seconds).
pub static CHECK_LATENCY_BOUNDS: [Duration; 13] = [
    Duration::from_millis(1),
    Duration::from_micros(2_500),
    Duration::from_millis(5),
    Duration::from_millis(10),
    Duration::from_millis(25),
    Duration::from_millis(50),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_millis(2_500),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// Observations counted in buckets with inclusive upper bounds (`le`), plus their sum.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [Duration],
    /// One per bound, plus the overflow bucket; not cumulative.
    counts: Box<[AtomicU64]>,
    sum_nanos: AtomicU64,
}

impl Histogram {
    /// An empty histogram over `bounds`, which must be ascending.
    pub fn new(bounds: &'static [Duration]) -> Self {
        debug_assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        Self {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Counts one observation.
    pub fn observe(&self, value: Duration) {
        let bucket = self.bounds.partition_point(|b| *b < value);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(value.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// A consistent-enough copy for one scrape (each bucket is read once; the count is their
    /// total, so `+Inf` always equals `_count`).
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut cumulative = 0;
        let buckets = self
            .bounds
            .iter()
            .zip(self.counts.iter())
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (bound.as_secs_f64(), cumulative)
            })
            .collect();
        let overflow = self.counts[self.bounds.len()].load(Ordering::Relaxed);
        HistogramSnapshot {
            buckets,
            count: cumulative + overflow,
            sum_secs: Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed)).as_secs_f64(),
        }
    }
}

/// A histogram as the exposition writer renders it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// `(upper bound in seconds, cumulative count)`, ascending, without `+Inf`.
    buckets: Vec<(f64, u64)>,
    count: u64,
    sum_secs: f64,
}

impl HistogramSnapshot {
    /// A snapshot from cumulative `(bound_secs, count)` pairs and the totals, for histograms
    /// kept elsewhere (the Raft log's fsync histogram lives in `vigil-coord`).
    pub fn from_cumulative(buckets: Vec<(f64, u64)>, count: u64, sum_secs: f64) -> Self {
        Self {
            buckets,
            count,
            sum_secs,
        }
    }

    /// `(upper bound in seconds, cumulative count)` pairs, without `+Inf`.
    pub fn buckets(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.buckets.iter().copied()
    }

    /// Observations in total.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the observations, in seconds.
    pub fn sum_secs(&self) -> f64 {
        self.sum_secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_counts_only_in_the_total() {
        let h = Histogram::new(&CHECK_LATENCY_BOUNDS);
        h.observe(Duration::from_mins(1));
        h.observe(Duration::ZERO);
        let s = h.snapshot();
        assert_eq!(s.count(), 2);
        assert!(s.buckets().all(|(_, c)| c == 1), "{s:?}");
        assert!((s.sum_secs() - 60.0).abs() < 1e-9);
    }
}

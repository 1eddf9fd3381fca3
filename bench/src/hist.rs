//! Latency samples and percentiles.
//!
//! A phase records at most a few hundred thousand samples, so a plain vector sorted once at
//! the end is exact and cheaper to trust than a bucketed approximation.

use std::time::Duration;

/// Latency samples in microseconds.
#[derive(Debug, Default, Clone)]
pub struct Histogram {
    samples: Vec<u64>,
    sorted: bool,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records one sample.
    pub fn record(&mut self, d: Duration) {
        self.samples
            .push(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.sorted = false;
    }

    /// Appends every sample of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.samples.extend_from_slice(&other.samples);
        self.sorted = false;
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The nearest-rank percentile `p` (0 < p ≤ 100): the smallest sample with at least
    /// `p`% of samples at or below it. `None` when empty.
    pub fn percentile(&mut self, p: f64) -> Option<Duration> {
        if self.samples.is_empty() {
            return None;
        }
        if !self.sorted {
            self.samples.sort_unstable();
            self.sorted = true;
        }
        let n = self.samples.len();
        let rank = ((p / 100.0) * n as f64).ceil() as usize;
        let idx = rank.clamp(1, n) - 1;
        Some(Duration::from_micros(self.samples[idx]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hist(us: &[u64]) -> Histogram {
        let mut h = Histogram::new();
        for &u in us {
            h.record(Duration::from_micros(u));
        }
        h
    }

    #[test]
    fn nearest_rank_on_one_to_hundred() {
        // Shuffled insertion order: the result must not depend on it.
        let mut us: Vec<u64> = (1..=100).map(|i| (i * 37) % 100 + 1).collect();
        us.dedup();
        let mut h = hist(&us);
        assert_eq!(h.len(), 100);
        assert_eq!(h.percentile(50.0), Some(Duration::from_micros(50)));
        assert_eq!(h.percentile(99.0), Some(Duration::from_micros(99)));
        assert_eq!(h.percentile(100.0), Some(Duration::from_micros(100)));
        assert_eq!(h.percentile(0.1), Some(Duration::from_micros(1)));
    }

    #[test]
    fn small_and_empty() {
        assert_eq!(Histogram::new().percentile(50.0), None);
        let mut h = hist(&[10, 1000]);
        assert_eq!(h.percentile(50.0), Some(Duration::from_micros(10)));
        assert_eq!(h.percentile(99.0), Some(Duration::from_millis(1)));
    }

    #[test]
    fn merge_then_resort() {
        let mut a = hist(&[5, 1]);
        assert_eq!(a.percentile(100.0), Some(Duration::from_micros(5)));
        a.merge(&hist(&[9, 7]));
        assert_eq!(a.percentile(100.0), Some(Duration::from_micros(9)));
        assert_eq!(a.percentile(50.0), Some(Duration::from_micros(5)));
    }
}

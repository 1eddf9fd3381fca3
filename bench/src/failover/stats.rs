//! Min/median/max of a series of outages.

use std::time::Duration;

use crate::hist::Histogram;

/// The spread of one series of measured outages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Number of runs.
    pub runs: usize,
    /// Shortest outage.
    pub min: Duration,
    /// Nearest-rank median (the lower middle sample for an even count), so it is always a
    /// measured value rather than an interpolation.
    pub median: Duration,
    /// Longest outage.
    pub max: Duration,
}

impl Summary {
    /// The summary of `samples`; `None` when there are none.
    pub fn of(samples: &[Duration]) -> Option<Self> {
        let mut hist = Histogram::new();
        for s in samples {
            hist.record(*s);
        }
        // The smallest positive percentile is the minimum by nearest rank.
        let min = hist.percentile(f64::MIN_POSITIVE)?;
        Some(Self {
            runs: samples.len(),
            min,
            median: hist.percentile(50.0)?,
            max: hist.percentile(100.0)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|m| Duration::from_millis(*m)).collect()
    }

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Summary::of(&[]), None);
    }

    #[test]
    fn odd_count_takes_the_middle_sample_regardless_of_order() {
        let s = Summary::of(&ms(&[340, 30, 3000, 160, 35])).expect("samples");
        assert_eq!(s.runs, 5);
        assert_eq!(s.min, Duration::from_millis(30));
        assert_eq!(s.median, Duration::from_millis(160));
        assert_eq!(s.max, Duration::from_secs(3));
    }

    #[test]
    fn even_count_takes_the_lower_middle_sample() {
        let s = Summary::of(&ms(&[40, 10, 30, 20])).expect("samples");
        assert_eq!(s.median, Duration::from_millis(20));
        assert_eq!(
            (s.min, s.max),
            (Duration::from_millis(10), Duration::from_millis(40))
        );
    }

    #[test]
    fn single_sample_is_min_median_and_max() {
        let s = Summary::of(&ms(&[7])).expect("sample");
        assert_eq!((s.min, s.median, s.max), (s.min, s.min, s.min));
        assert_eq!(s.min, Duration::from_millis(7));
    }
}

//! A tiny seeded generator (no cryptographic needs, no dependency): the scheduler's jitter and,
//! seeded from the OS, the half-open check's sequence numbers.

use std::time::Duration;

/// SplitMix64: fast, and over 2^64 calls every output value comes once.
pub(crate) struct SplitMix64(pub(crate) u64);

impl SplitMix64 {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `[0, max)`, or zero when `max` is zero.
    pub(crate) fn below(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
        if nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.next() % nanos)
        }
    }
}

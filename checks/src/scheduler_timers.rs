//! The checks' timers (next round, retry), bucketed by the millisecond they fall due in.
//!
//! Why not a binary heap: at 10,000 checks a second every round pops one timer off a heap of
//! 10,000 and pushes another, and the pops (a sift through fourteen levels of 32-byte entries)
//! were a sixth of the scheduler's time. Here a timer goes into its millisecond's bucket (an
//! ordered map of about a thousand buckets for one-second intervals, searched once) and the
//! loop takes whole buckets, a few milliseconds' worth per wake-up; a bucket's vector is reused
//! once emptied, so a steady rate allocates nothing.

use std::collections::BTreeMap;

use tokio::time::Instant;

use super::CheckId;

/// A check's next round or retry; stale once its check's generation has moved on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timer {
    pub(super) due: Instant,
    pub(super) id: CheckId,
    pub(super) generation: u64,
}

/// Emptied buckets kept for reuse: more than one wake-up empties.
const SPARE_MAX: usize = 16;

pub(super) struct Timers {
    /// Bucket 0 starts here; earlier times go into bucket 0 too.
    epoch: Instant,
    buckets: BTreeMap<u64, Vec<Timer>>,
    spare: Vec<Vec<Timer>>,
    /// Buckets emptied by the last take (reused buffer).
    emptied: Vec<u64>,
}

impl Timers {
    pub(super) fn new(epoch: Instant) -> Self {
        Timers {
            epoch,
            buckets: BTreeMap::new(),
            spare: Vec::new(),
            emptied: Vec::new(),
        }
    }

    fn bucket(&self, at: Instant) -> u64 {
        // A u64 of milliseconds lasts 584 million years.
        at.saturating_duration_since(self.epoch).as_millis() as u64
    }

    pub(super) fn push(&mut self, timer: Timer) {
        let k = self.bucket(timer.due);
        let spare = &mut self.spare;
        self.buckets
            .entry(k)
            .or_insert_with(|| spare.pop().unwrap_or_default())
            .push(timer);
    }

    /// When the earliest timer falls due. Every timer of a later bucket is due later than
    /// every timer of the first, so only the first is searched.
    pub(super) fn next_due(&self) -> Option<Instant> {
        let (_, first) = self.buckets.first_key_value()?;
        first.iter().map(|t| t.due).min()
    }

    /// Offers `take` every timer due at or before `horizon`, bucket by bucket; a timer it
    /// declines (returns `false` for) stays.
    pub(super) fn take_due(&mut self, horizon: Instant, mut take: impl FnMut(Timer) -> bool) {
        let last = self.bucket(horizon);
        for (&k, timers) in self.buckets.range_mut(..=last) {
            timers.retain(|t| t.due > horizon || !take(*t));
            if timers.is_empty() {
                self.emptied.push(k);
            }
        }
        for k in self.emptied.drain(..) {
            if let Some(v) = self.buckets.remove(&k)
                && self.spare.len() < SPARE_MAX
            {
                self.spare.push(v);
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.buckets.values().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// Against a sorted list: the same next due time after every step, and each take hands
    /// over exactly the timers due by its horizon that the taker accepts.
    #[test]
    fn timers_come_out_as_a_sorted_list_says() {
        let epoch = Instant::now();
        let mut timers = Timers::new(epoch);
        let mut model: Vec<Timer> = Vec::new();
        let mut rng = 0x1234_5678_u64;
        let mut next = move |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut now = epoch;
        for step in 0..2000u64 {
            for _ in 0..next(8) {
                // Up to 3 s ahead, at microsecond resolution; now and then in the past.
                let due = if next(20) == 0 {
                    now.checked_sub(Duration::from_micros(next(5000)))
                        .unwrap_or(epoch)
                } else {
                    now + Duration::from_micros(next(3_000_000))
                };
                let t = Timer {
                    due,
                    id: CheckId(next(1000)),
                    generation: step,
                };
                timers.push(t);
                model.push(t);
            }
            assert_eq!(
                timers.next_due(),
                model.iter().map(|t| t.due).min(),
                "step {step}"
            );
            now += Duration::from_micros(next(4000));
            let horizon = now + Duration::from_micros(next(5000));
            // Decline the odd ids: they must stay.
            let mut got = Vec::new();
            timers.take_due(horizon, |t| {
                if t.id.0 % 2 == 0 {
                    got.push(t);
                    true
                } else {
                    false
                }
            });
            let mut want: Vec<Timer> = model
                .iter()
                .filter(|t| t.due <= horizon && t.id.0 % 2 == 0)
                .copied()
                .collect();
            model.retain(|t| !(t.due <= horizon && t.id.0 % 2 == 0));
            let key = |t: &Timer| (t.due, t.id, t.generation);
            got.sort_by_key(key);
            want.sort_by_key(key);
            assert_eq!(got, want, "step {step}");
            assert_eq!(timers.len(), model.len(), "step {step}");
        }
        assert!(timers.spare.len() <= SPARE_MAX);
    }
}

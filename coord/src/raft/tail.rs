//! [`Tail`]: the most recently appended entries' encoded payloads, kept in memory.
//!
//! Right after an append, openraft reads the same entries back twice on the path of every
//! write: the leader's replication task to send them, and the state machine to apply them
//! once committed. From the segment files, each read is a round trip through tokio's blocking
//! pool (a thread wake-up there and back, on a machine where threads wait for a core). The
//! tail answers those reads on the spot from the very buffer the append wrote (shared, not
//! copied). It is only a copy of the files' content: the files stay the truth, and a read the
//! tail cannot answer in full goes to them as before.
//!
//! Invariant: the tail holds consecutive entries ending at the log's last entry, each equal to
//! the file's entry at that index. Appends extend it (restarting it when not consecutive),
//! truncation cuts it before the files are cut, purges drop its front.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

/// Bounds of a [`Tail`]: enough for the entries in flight between append and apply, small
/// next to the log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TailLimits {
    /// At most this many entries.
    pub(crate) entries: usize,
    /// At most this many encoded payload bytes (the newest entry is always kept).
    pub(crate) bytes: usize,
}

impl Default for TailLimits {
    fn default() -> Self {
        TailLimits {
            entries: 1024,
            bytes: 4 << 20,
        }
    }
}

#[derive(Debug)]
struct State {
    /// (index, encoded payload), consecutive indexes.
    entries: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

/// The recent entries of one log (see the module docs).
#[derive(Debug)]
pub(crate) struct Tail {
    limits: TailLimits,
    state: Mutex<State>,
}

impl Tail {
    pub(crate) fn new(limits: TailLimits) -> Tail {
        Tail {
            limits,
            state: Mutex::new(State {
                entries: VecDeque::new(),
                bytes: 0,
            }),
        }
    }

    /// The lock is only held for copies; a panic under it leaves a consistent deque.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets everything.
    #[cfg(test)]
    pub(crate) fn clear(&self) {
        let mut s = self.lock();
        s.entries.clear();
        s.bytes = 0;
    }

    /// Entries just appended (and readable from the files): (index, encoded payload), in
    /// index order.
    pub(crate) fn extend(&self, appended: Vec<(u64, Bytes)>) {
        let Some(&(first, _)) = appended.first() else {
            return;
        };
        let mut s = self.lock();
        if s.entries
            .back()
            .is_some_and(|&(i, _)| i.checked_add(1) != Some(first))
        {
            s.entries.clear();
            s.bytes = 0;
        }
        for (index, payload) in appended {
            s.bytes = s.bytes.saturating_add(payload.len());
            s.entries.push_back((index, payload));
        }
        while s.entries.len() > 1
            && (s.entries.len() > self.limits.entries || s.bytes > self.limits.bytes)
        {
            if let Some((_, payload)) = s.entries.pop_front() {
                s.bytes = s.bytes.saturating_sub(payload.len());
            }
        }
    }

    /// Drops the entries at `from` and after (call before cutting the files).
    pub(crate) fn truncate(&self, from: u64) {
        let mut s = self.lock();
        while s.entries.back().is_some_and(|&(i, _)| i >= from) {
            if let Some((_, payload)) = s.entries.pop_back() {
                s.bytes = s.bytes.saturating_sub(payload.len());
            }
        }
    }

    /// Drops the entries up to `upto` included.
    pub(crate) fn purge(&self, upto: u64) {
        let mut s = self.lock();
        while s.entries.front().is_some_and(|&(i, _)| i <= upto) {
            if let Some((_, payload)) = s.entries.pop_front() {
                s.bytes = s.bytes.saturating_sub(payload.len());
            }
        }
    }

    /// The entries in `[start, end)` if the tail holds all of those the log has: `start` must
    /// be in the tail; `end` may lie past the log's end (the tail ends where the log does).
    /// With `budget`, stops once that many payload bytes are taken, after one entry at least,
    /// like the file read. `None` sends the caller to the files.
    pub(crate) fn read(&self, start: u64, end: u64, budget: usize) -> Option<Vec<(u64, Bytes)>> {
        let s = self.lock();
        let front = s.entries.front()?.0;
        if start < front || start >= end {
            return None;
        }
        let skip = usize::try_from(start - front).ok()?;
        if skip >= s.entries.len() {
            return None;
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (index, payload) in s.entries.iter().skip(skip) {
            if *index >= end || bytes >= budget {
                break;
            }
            out.push((*index, payload.clone()));
            bytes = bytes.saturating_add(payload.len());
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(index: u64) -> (u64, Bytes) {
        (index, Bytes::from(vec![0u8; 10]))
    }

    fn indexes(v: Option<Vec<(u64, Bytes)>>) -> Option<Vec<u64>> {
        v.map(|v| v.iter().map(|(i, _)| *i).collect())
    }

    #[test]
    fn answers_only_ranges_it_holds_from_their_start() {
        let t = Tail::new(TailLimits::default());
        assert_eq!(indexes(t.read(1, 2, usize::MAX)), None);
        t.extend((5..=8).map(rec).collect());
        assert_eq!(
            indexes(t.read(6, u64::MAX, usize::MAX)),
            Some(vec![6, 7, 8])
        );
        assert_eq!(indexes(t.read(5, 7, usize::MAX)), Some(vec![5, 6]));
        // Before its front or past its end: the files answer.
        assert_eq!(indexes(t.read(4, 7, usize::MAX)), None);
        assert_eq!(indexes(t.read(9, 10, usize::MAX)), None);
        assert_eq!(indexes(t.read(7, 7, usize::MAX)), None);
        // The byte budget stops after one entry at least.
        assert_eq!(indexes(t.read(5, 9, 1)), Some(vec![5]));
        assert_eq!(indexes(t.read(5, 9, 15)), Some(vec![5, 6]));
    }

    #[test]
    fn follows_truncation_purge_and_gaps() {
        let t = Tail::new(TailLimits::default());
        t.extend((1..=6).map(rec).collect());
        t.truncate(4);
        assert_eq!(
            indexes(t.read(1, u64::MAX, usize::MAX)),
            Some(vec![1, 2, 3])
        );
        t.extend(vec![rec(4)]);
        t.purge(2);
        assert_eq!(indexes(t.read(3, u64::MAX, usize::MAX)), Some(vec![3, 4]));
        assert_eq!(indexes(t.read(2, u64::MAX, usize::MAX)), None);
        // Not consecutive (after a snapshot install, say): start over.
        t.extend(vec![rec(10)]);
        assert_eq!(indexes(t.read(3, u64::MAX, usize::MAX)), None);
        assert_eq!(indexes(t.read(10, 11, usize::MAX)), Some(vec![10]));
        t.clear();
        assert_eq!(indexes(t.read(10, 11, usize::MAX)), None);
    }

    #[test]
    fn stays_within_its_limits_keeping_the_newest() {
        let t = Tail::new(TailLimits {
            entries: 3,
            bytes: 25,
        });
        t.extend((1..=5).map(rec).collect());
        assert_eq!(indexes(t.read(4, u64::MAX, usize::MAX)), Some(vec![4, 5]));
        assert_eq!(indexes(t.read(3, u64::MAX, usize::MAX)), None);
        // One entry larger than the byte bound is still kept.
        t.extend(vec![(6, Bytes::from(vec![0u8; 100]))]);
        assert_eq!(indexes(t.read(6, u64::MAX, usize::MAX)), Some(vec![6]));
    }
}

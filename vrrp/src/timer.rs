//! Timers as data: the instance keeps deadlines, the daemon keeps one runtime sleep.
//!
//! The daemon asks [`Instance::poll_timeout`](crate::instance::Instance::poll_timeout) for the
//! earliest deadline and calls `handle_timeout(now)` when it passes; nothing here reads a clock.

use std::time::Instant;

/// The instance's timers (RFC 9568 §6.2 names the first two).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Timer {
    /// Adver_Timer: the master's next advertisement.
    Adver,
    /// Master_Down_Timer (RFC 9568: Active_Down_Timer): a backup's takeover deadline.
    MasterDown,
    /// Second gratuitous ARP/NA burst after becoming master.
    GarpDelay,
    /// Periodic gratuitous ARP/NA refresh while master.
    GarpRefresh,
}

impl Timer {
    const ALL: [Timer; 4] = [
        Timer::Adver,
        Timer::MasterDown,
        Timer::GarpDelay,
        Timer::GarpRefresh,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One optional deadline per [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.deadlines[timer.index()] = Some(at);
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    /// The earliest armed deadline.
    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The armed timer with the earliest deadline at or before `now`, disarmed.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .filter_map(|t| self.get(t).filter(|&at| at <= now).map(|at| (at, t)))
            .min_by_key(|&(at, _)| at)
            .map(|(_, t)| t)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_and_only_when_due() {
        // The test's epoch; production code never reads the clock.
        let t0 = Instant::now();
        let mut table = TimerTable::default();
        table.set(Timer::GarpRefresh, t0 + Duration::from_secs(3));
        table.set(Timer::Adver, t0 + Duration::from_secs(1));
        assert_eq!(table.next_timeout(), Some(t0 + Duration::from_secs(1)));
        assert_eq!(table.pop_expired(t0), None);
        assert_eq!(
            table.pop_expired(t0 + Duration::from_secs(5)),
            Some(Timer::Adver)
        );
        assert_eq!(
            table.pop_expired(t0 + Duration::from_secs(5)),
            Some(Timer::GarpRefresh)
        );
        assert_eq!(table.pop_expired(t0 + Duration::from_secs(5)), None);
        assert_eq!(table.next_timeout(), None);
    }
}

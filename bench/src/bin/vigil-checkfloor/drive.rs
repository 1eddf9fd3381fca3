//! The loop every mode runs: checks started at a fixed rate, evenly spread, on one thread with
//! one epoll instance, and that thread's own CPU time over a measured window.

use std::io;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::event::Event;
use mio::{Events, Poll};
use vigil_bench::procstat::{parse_stat, ticks_to_duration};

/// Outcomes of the checks that have ended so far.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    /// The server answered: connected, `200`, or `SYN-ACK`.
    pub(crate) up: u64,
    /// The server refused (`RST`, an error, another status).
    pub(crate) down: u64,
    /// No verdict within the timeout.
    pub(crate) timed_out: u64,
}

impl Tally {
    fn ended(self) -> u64 {
        self.up + self.down + self.timed_out
    }

    fn failed(self) -> u64 {
        self.down + self.timed_out
    }
}

/// One way of checking a server, driven by [`drive`].
pub(crate) trait Prober {
    /// Starts a check of fleet server `target`. Errors are local failures (out of descriptors,
    /// say) that end the measurement; a server's refusal is a verdict in `tally`.
    fn start(
        &mut self,
        poll: &Poll,
        target: usize,
        now: Instant,
        tally: &mut Tally,
    ) -> anyhow::Result<()>;

    /// Handles one readiness event of one of this prober's sockets.
    fn ready(&mut self, event: &Event, tally: &mut Tally) -> anyhow::Result<()>;

    /// Counts the checks whose timeout has passed by `now` as timed out and forgets them.
    fn expire(&mut self, now: Instant, tally: &mut Tally);
}

/// What to run: `rate` checks a second over `targets` servers in turn, so with as many servers
/// as checks a second each server is checked once a second.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Plan {
    pub(crate) targets: usize,
    pub(crate) rate: u64,
    pub(crate) warmup: Duration,
    pub(crate) window: Duration,
    /// Coalesce wake-ups: sleep this long between passes and then collect every socket event
    /// without blocking, instead of blocking in `epoll_wait` (which wakes for each event).
    pub(crate) tick: Option<Duration>,
}

/// The measured window of one run.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    /// Wall-clock length of the window.
    pub(crate) elapsed: Duration,
    /// Checks that ended in the window, by verdict.
    pub(crate) tally: Tally,
    /// The checking thread's `utime + stime` in the window.
    pub(crate) cpu: Duration,
    /// Its `utime` alone.
    pub(crate) user: Duration,
    /// Connections the real servers accepted in the window.
    pub(crate) accepted: u64,
}

impl Measured {
    pub(crate) fn checks_per_sec(&self) -> f64 {
        self.tally.ended() as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn accepted_per_sec(&self) -> f64 {
        self.accepted as f64 / self.elapsed.as_secs_f64()
    }

    pub(crate) fn failures(&self) -> u64 {
        self.tally.failed()
    }

    pub(crate) fn cpu_percent(&self) -> f64 {
        100.0 * self.cpu.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    pub(crate) fn user_percent(&self) -> f64 {
        100.0 * self.user.as_secs_f64() / self.elapsed.as_secs_f64()
    }

    pub(crate) fn micros_per_check(&self) -> f64 {
        1e6 * self.cpu.as_secs_f64() / self.tally.ended().max(1) as f64
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
struct Snapshot {
    at: Instant,
    tally: Tally,
    ticks: u64,
    user_ticks: u64,
    accepted: u64,
}

impl Snapshot {
    fn take(tally: Tally, accepted: u64) -> anyhow::Result<Self> {
        // This thread's own times: the real servers' threads live in the same process.
        let line = std::fs::read_to_string("/proc/thread-self/stat")
            .context("reading /proc/thread-self/stat")?;
        let stat = parse_stat(&line).context("parsing /proc/thread-self/stat")?;
        Ok(Self {
            at: Instant::now(),
            tally,
            ticks: stat.ticks,
            user_ticks: stat.user_ticks,
            accepted,
        })
    }

    fn since(self, first: Self) -> Measured {
        Measured {
            elapsed: self.at - first.at,
            tally: Tally {
                up: self.tally.up - first.tally.up,
                down: self.tally.down - first.tally.down,
                timed_out: self.tally.timed_out - first.tally.timed_out,
            },
            cpu: ticks_to_duration(self.ticks - first.ticks),
            user: ticks_to_duration(self.user_ticks - first.user_ticks),
            accepted: self.accepted.saturating_sub(first.accepted),
        }
    }
}

/// When check `k` (counted from 0) is due, after the start.
fn due_at(k: u64, rate: u64) -> Duration {
    Duration::from_nanos((u128::from(k) * 1_000_000_000 / u128::from(rate)) as u64)
}

/// How many checks are due `elapsed` after the start: check 0 is due at once.
fn due_by(elapsed: Duration, rate: u64) -> u64 {
    (elapsed.as_nanos() * u128::from(rate) / 1_000_000_000) as u64 + 1
}

/// Runs `prober` on the calling thread for `plan.warmup + plan.window` and measures the window.
///
/// Each pass of the loop expires timed-out checks, starts every check that is due, and waits in
/// `epoll_wait` until the next one is due (epoll's millisecond resolution makes that batches of
/// `rate / 1000` checks, as a timer wheel's would). `accepted` reads the servers' counter.
pub(crate) fn drive(
    prober: &mut dyn Prober,
    poll: &mut Poll,
    plan: &Plan,
    accepted: &dyn Fn() -> u64,
) -> anyhow::Result<Measured> {
    let start = Instant::now();
    let (window_start, end) = (start + plan.warmup, start + plan.warmup + plan.window);
    let mut tally = Tally::default();
    let mut first = None;
    let mut started = 0u64;
    let mut events = Events::with_capacity(1024);
    loop {
        let now = Instant::now();
        prober.expire(now, &mut tally);
        if first.is_none() && now >= window_start {
            first = Some(Snapshot::take(tally, accepted())?);
        }
        if let Some(first) = first
            && now >= end
        {
            return Ok(Snapshot::take(tally, accepted())?.since(first));
        }
        let due = due_by(now - start, plan.rate);
        while started < due {
            let target = (started % plan.targets as u64) as usize;
            prober.start(poll, target, now, &mut tally)?;
            started += 1;
        }
        let next = (start + due_at(started, plan.rate)).min(end);
        let timeout = match plan.tick {
            Some(tick) => {
                // The whole tick, whatever is due sooner: what is due by then starts in one batch.
                std::thread::sleep(tick.min(end.saturating_duration_since(now)));
                Duration::ZERO
            }
            None => next.saturating_duration_since(now),
        };
        match poll.poll(&mut events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        }
        for event in &events {
            prober.ready(event, &mut tally)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_are_due_evenly_from_the_start() {
        assert_eq!(due_by(Duration::ZERO, 10_000), 1);
        assert_eq!(due_by(Duration::from_micros(99), 10_000), 1);
        assert_eq!(due_by(Duration::from_micros(100), 10_000), 2);
        assert_eq!(due_by(Duration::from_secs(1), 10_000), 10_001);
        assert_eq!(due_at(0, 10_000), Duration::ZERO);
        assert_eq!(due_at(10_000, 10_000), Duration::from_secs(1));
        assert_eq!(due_at(3, 7), Duration::from_nanos(428_571_428));
        // Check k is due exactly at due_at(k): counting it makes k + 1 due.
        for k in [1, 9_999, 123_457] {
            assert_eq!(due_by(due_at(k, 10_000), 10_000), k + 1);
        }
    }

    #[test]
    fn a_window_counts_only_what_happened_inside_it() {
        let at = Instant::now();
        let first = Snapshot {
            at,
            tally: Tally {
                up: 10,
                down: 1,
                timed_out: 0,
            },
            ticks: 100,
            user_ticks: 20,
            accepted: 9,
        };
        let last = Snapshot {
            at: at + Duration::from_secs(2),
            tally: Tally {
                up: 20_010,
                down: 3,
                timed_out: 5,
            },
            ticks: 150,
            user_ticks: 30,
            accepted: 20_009,
        };
        let m = last.since(first);
        assert_eq!(m.tally.ended(), 20_007);
        assert_eq!(m.failures(), 7);
        assert!((m.checks_per_sec() - 10_003.5).abs() < 1e-9);
        assert!((m.accepted_per_sec() - 10_000.0).abs() < 1e-9);
        assert!((m.cpu_percent() - 25.0).abs() < 1e-9);
        assert!((m.user_percent() - 5.0).abs() < 1e-9);
        assert!((m.micros_per_check() - 500_000.0 / 20_007.0).abs() < 1e-9);
    }
}

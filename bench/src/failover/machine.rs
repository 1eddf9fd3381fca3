//! What the machine itself did during a hog run, second by second: time stolen by the
//! hypervisor and how long the softirq threads waited for a CPU. A VRRP advert that is late
//! although both daemons' threads ran on time was delayed by one of these, so printing the
//! seconds where they spiked next to the flaps tells the daemons' fault from the machine's.

use std::fs;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

/// Seconds worth printing: steal at or above this share of the machine's CPU time...
const STEAL_NOTABLE: f64 = 0.05;
/// ...or `ksoftirqd` threads that waited at least this long in total for a CPU.
const KSOFTIRQD_WAIT_NOTABLE: Duration = Duration::from_millis(10);

/// The `cpu` line of `/proc/stat`: (steal, softirq, total) in clock ticks.
pub fn parse_cpu_line(stat: &str) -> Option<(u64, u64, u64)> {
    let t = crate::procstat::parse_cpu_ticks(stat, "cpu")?;
    Some((t.steal, t.softirq, t.total))
}

/// The second field of `/proc/<pid>/schedstat`: time spent runnable but waiting, in ns.
pub fn parse_schedstat_wait(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

/// Total run-queue wait of every `ksoftirqd/N` thread so far.
fn ksoftirqd_wait() -> Duration {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Duration::ZERO;
    };
    let ns: u64 = dir
        .flatten()
        .filter(|e| {
            fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.starts_with("ksoftirqd/"))
        })
        .filter_map(|e| parse_schedstat_wait(&fs::read_to_string(e.path().join("schedstat")).ok()?))
        .sum();
    Duration::from_nanos(ns)
}

fn cpu() -> Option<(u64, u64, u64)> {
    parse_cpu_line(&fs::read_to_string("/proc/stat").ok()?)
}

/// One second that stood out.
#[derive(Debug, Clone)]
pub struct Notable {
    /// When it ended (UTC, RFC 3339).
    pub at: String,
    /// Share of all CPU time stolen by the hypervisor in it.
    pub steal: f64,
    /// How long the `ksoftirqd` threads waited for a CPU in it, together.
    pub ksoftirqd_wait: Duration,
}

/// The whole run.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Seconds sampled.
    pub seconds: usize,
    /// Steal over the whole run, as a share of all CPU time.
    pub steal: f64,
    /// Softirq time over the whole run, as a share of all CPU time.
    pub softirq: f64,
    /// The worst second's steal share.
    pub max_steal: f64,
    /// The worst second's `ksoftirqd` wait.
    pub max_ksoftirqd_wait: Duration,
    /// Every second at or above the thresholds, in order.
    pub notable: Vec<Notable>,
}

/// Samples once a second until `until`, on a thread of its own.
pub fn sample_until(until: Instant) -> JoinHandle<Summary> {
    std::thread::spawn(move || {
        let mut summary = Summary::default();
        let (Some(first), wait0) = (cpu(), ksoftirqd_wait()) else {
            return summary;
        };
        let (mut prev, mut prev_wait) = (first, wait0);
        while Instant::now() < until {
            std::thread::sleep(Duration::from_secs(1));
            let (Some(now), wait) = (cpu(), ksoftirqd_wait()) else {
                break;
            };
            let total = now.2.saturating_sub(prev.2).max(1) as f64;
            let steal = now.0.saturating_sub(prev.0) as f64 / total;
            let waited = wait.saturating_sub(prev_wait);
            summary.seconds += 1;
            summary.max_steal = summary.max_steal.max(steal);
            summary.max_ksoftirqd_wait = summary.max_ksoftirqd_wait.max(waited);
            if steal >= STEAL_NOTABLE || waited >= KSOFTIRQD_WAIT_NOTABLE {
                summary.notable.push(Notable {
                    at: crate::run::rfc3339(SystemTime::now()),
                    steal,
                    ksoftirqd_wait: waited,
                });
            }
            (prev, prev_wait) = (now, wait);
        }
        let total = prev.2.saturating_sub(first.2).max(1) as f64;
        summary.steal = prev.0.saturating_sub(first.0) as f64 / total;
        summary.softirq = prev.1.saturating_sub(first.1) as f64 / total;
        summary
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_line_gives_steal_softirq_and_the_total_without_guest_time() {
        let stat = "cpu  100 5 50 800 10 1 7 27 99 0\ncpu0 1 2 3 4 5 6 7 8 9 10\nintr 5\n";
        assert_eq!(parse_cpu_line(stat), Some((27, 7, 1000)));
        assert_eq!(parse_cpu_line("cpu0 1 2\n"), None);
        assert_eq!(parse_cpu_line("cpu  1 2 3\n"), None);
    }

    #[test]
    fn schedstat_wait_is_its_second_field() {
        assert_eq!(parse_schedstat_wait("1234 5678 9\n"), Some(5678));
        assert_eq!(parse_schedstat_wait("1234\n"), None);
    }
}

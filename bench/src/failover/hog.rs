//! False failovers under CPU starvation: a steady pair of each implementation (each in its own
//! lab, both at once, so they share the same starvation) while busy loops saturate every core
//! for a bounded time. Any VRRP transition in that time is a false failover: nothing failed.

use std::hint::black_box;
use std::time::{Duration, Instant};

use super::daemon::{Binaries, Implementation, Scheduling};
use super::machine::{self, Summary};
use super::pair::{Pair, into_master};

/// What one implementation's pair did under the hog.
#[derive(Debug, Clone)]
pub struct Flaps {
    /// Which implementation.
    pub implementation: Implementation,
    /// Transitions lb1 (the master) logged during the hog.
    pub master_transitions: Vec<String>,
    /// Transitions lb2 (the backup) logged during the hog.
    pub backup_transitions: Vec<String>,
    /// Whether lb1 alone held the VIP after the hog.
    pub steady_after: bool,
    /// Late wake-ups of the VRRP thread the daemons logged during the hog, lb1's then lb2's.
    pub late_wakeups: Vec<String>,
}

impl Flaps {
    /// Times the backup became master: each one is a false failover.
    pub fn false_failovers(&self) -> usize {
        self.backup_transitions
            .iter()
            .filter(|l| into_master(l))
            .count()
    }
}

/// Spins `threads` threads until `until`.
fn hog(until: Instant, threads: usize) -> Vec<std::thread::JoinHandle<u64>> {
    (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                let mut spins = 0u64;
                // Checking the clock every 4096 iterations keeps the loop pure CPU.
                while Instant::now() < until {
                    for _ in 0..4096 {
                        spins = black_box(spins.wrapping_add(1));
                    }
                }
                spins
            })
        })
        .collect()
}

/// Runs a steady pair of each of `implementations` at `interval`, scheduled as `scheduling`
/// says, while `threads` busy threads saturate the cores for `duration`; `progress` is called
/// about every 30 s with the time left. Also returns what the machine did meanwhile (steal, softirq waits).
pub fn run(
    bins: &Binaries,
    implementations: &[Implementation],
    (interval, scheduling): (Duration, Scheduling),
    (duration, threads): (Duration, usize),
    mut progress: impl FnMut(Duration),
) -> anyhow::Result<(Vec<Flaps>, Summary)> {
    let pairs = implementations
        .iter()
        .map(|&i| Pair::start(bins, i, interval, scheduling))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // A few seconds of steady adverts before the hog starts.
    std::thread::sleep(Duration::from_secs(3));
    // How many lines each log had: what came after them came during the hog.
    let before: Vec<_> = pairs
        .iter()
        .map(|p| {
            let ((m, b), (lm, lb)) = (p.transitions(), p.late_wakeups());
            [m.len(), b.len(), lm.len(), lb.len()]
        })
        .collect();
    let until = Instant::now() + duration;
    let spinners = hog(until, threads);
    let sampler = machine::sample_until(until);
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        progress(left);
        std::thread::sleep(left.min(Duration::from_secs(30)));
    }
    for s in spinners {
        // A spinner cannot panic; if one did, the hog was merely shorter.
        let _ = s.join();
    }
    // The sampler only reads /proc; a panic there leaves the run without its machine figures.
    let summary = sampler.join().unwrap_or_default();
    // Transitions logged while the hog ran (log lines are only appended).
    let flaps = pairs
        .iter()
        .zip(before)
        .map(|(pair, [m0, b0, lm0, lb0])| {
            let (m, b) = pair.transitions();
            let (lm, lb) = pair.late_wakeups();
            let tagged = |tag: &str, lines: &[String]| -> Vec<String> {
                lines.iter().map(|l| format!("{tag} {l}")).collect()
            };
            Flaps {
                implementation: pair.implementation,
                master_transitions: since(&m, m0).to_vec(),
                backup_transitions: since(&b, b0).to_vec(),
                steady_after: pair.steady(),
                late_wakeups: [
                    tagged("lb1", since(&lm, lm0)),
                    tagged("lb2", since(&lb, lb0)),
                ]
                .concat(),
            }
        })
        .collect();
    Ok((flaps, summary))
}

/// The lines of `all` after its first `seen`.
fn since(all: &[String], seen: usize) -> &[String] {
    &all[seen.min(all.len())..]
}

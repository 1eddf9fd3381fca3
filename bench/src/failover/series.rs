//! One series: a fresh lab, one implementation at one interval, N failovers caused by the same
//! fault (a SIGKILL of the master, or its link going down).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use vigil_integration::{Host, Lab, Process, wait_for};

use super::daemon::{self, Binaries, Implementation, Setup};
use super::probe::{self, Responders, VIP};

/// Priorities of the master and the backup (the RFC's skew depends on the backup's).
pub const MASTER_PRIORITY: u8 = 150;
/// See [`MASTER_PRIORITY`].
pub const BACKUP_PRIORITY: u8 = 100;
/// How often the client probes the VIP during a failover.
pub const PROBE_EVERY: Duration = Duration::from_millis(2);

/// What happens to the master at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of the master daemon's whole process group; it is restarted after the run.
    Kill,
    /// The master's link goes down at the bridge (carrier lost, as when a cable is pulled), so
    /// not even a priority-0 advert can leave; it comes back up after the run.
    LinkDown,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kill => "SIGKILL",
            Self::LinkDown => "link down",
        })
    }
}

/// What a series measures.
#[derive(Debug, Clone, Copy)]
pub struct Series {
    /// Which implementation runs on both load balancers.
    pub implementation: Implementation,
    /// What happens to the master.
    pub fault: Fault,
    /// Advertisement interval of both.
    pub interval: Duration,
    /// Number of failovers.
    pub runs: usize,
}

impl Series {
    /// Bound for anything VRRP does at this interval: several Master_Down_Intervals plus slack
    /// for daemon start-up on a loaded machine.
    fn settle(&self) -> Duration {
        self.interval * 10 + Duration::from_secs(10)
    }

    fn setup(&self, priority: u8) -> Setup {
        Setup {
            implementation: self.implementation,
            priority,
            interval: self.interval,
        }
    }

    /// Runs the series; `progress` is called with each measured outage.
    pub fn run(
        &self,
        bins: &Binaries,
        mut progress: impl FnMut(usize, Duration),
    ) -> anyhow::Result<Vec<Duration>> {
        let lab = Lab::with_hosts(&["lb1", "lb2", "client"])?;
        let (lb1, lb2, client) = (lab.host("lb1")?, lab.host("lb2")?, lab.host("client")?);
        let _responders = Responders::start(&[&lb1, &lb2])?;
        let backup = daemon::start(bins, &lb2, self.setup(BACKUP_PRIORITY))?;
        let mut master = daemon::start(bins, &lb1, self.setup(MASTER_PRIORITY))?;
        let mut outages = Vec::with_capacity(self.runs);
        for run in 0..self.runs {
            self.wait_master_serves(&lb1, &lb2, &client, &master, &backup)
                .with_context(|| format!("{} before run {}", self.implementation, run + 1))?;
            std::thread::sleep(self.kill_phase(run));
            let faulted_at = Instant::now();
            match self.fault {
                Fault::Kill => {
                    master.kill()?;
                }
                Fault::LinkDown => lab.link_down(&lb1)?,
            }
            let Some(outage) =
                probe::probe_until(&client, lb2.name(), faulted_at, PROBE_EVERY, self.settle())?
            else {
                bail!(
                    "{} run {}: lb2 never answered for {VIP} after the {}:\n{}",
                    self.implementation,
                    run + 1,
                    self.fault,
                    backup.log_tail(40)
                );
            };
            progress(run, outage);
            outages.push(outage);
            match self.fault {
                Fault::Kill => master = daemon::start(bins, &lb1, self.setup(MASTER_PRIORITY))?,
                Fault::LinkDown => lab.link_up(&lb1)?,
            }
        }
        Ok(outages)
    }

    /// Waits until the (re)started master holds the VIP alone and the client reaches it, then
    /// lets the backup hear a few adverts so its Master_Down timer runs from a steady state.
    fn wait_master_serves(
        &self,
        lb1: &Host,
        lb2: &Host,
        client: &Host,
        master: &Process,
        backup: &Process,
    ) -> anyhow::Result<()> {
        let vip = IpAddr::V4(VIP);
        let served = wait_for("lb1 alone serves the VIP", self.settle(), || {
            master.is_running()
                && lb2.has_address(vip).is_ok_and(|held| !held)
                && lb1.has_address(vip).is_ok_and(|held| held)
                && probe::who_answers(client, Duration::from_millis(200)).as_deref()
                    == Some(lb1.name())
        });
        if served.is_err() {
            bail!(
                "lb1 never served the VIP alone\n--- lb1 ---\n{}\n--- lb2 ---\n{}",
                master.log_tail(40),
                backup.log_tail(40)
            );
        }
        std::thread::sleep((self.interval * 3).max(Duration::from_millis(200)));
        Ok(())
    }

    /// Extra wait before run `run`'s kill. The master's adverts tick from when it took over,
    /// which [`Self::wait_master_serves`] notices within a poll or two, so without this every
    /// kill would land just after an advert and every outage would be a full
    /// Master_Down_Interval. Spreading the kills evenly over one interval, in the same way for
    /// both implementations, measures the outage a crash at a random moment causes.
    fn kill_phase(&self, run: usize) -> Duration {
        phase(self.interval, run, self.runs)
    }
}

/// The `run`-th of `runs` evenly spread offsets within `interval` (bucket midpoints).
pub fn phase(interval: Duration, run: usize, runs: usize) -> Duration {
    // Capped so `2 * runs` cannot overflow; no series comes near a million runs.
    let runs = u32::try_from(runs.clamp(1, 1 << 20)).unwrap_or(1 << 20);
    let run = u32::try_from(run).unwrap_or(u32::MAX).min(runs - 1);
    interval * (2 * run + 1) / (2 * runs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_bucket_midpoints_within_one_interval() {
        let i = Duration::from_millis(100);
        let all: Vec<Duration> = (0..4).map(|r| phase(i, r, 4)).collect();
        assert_eq!(
            all,
            [12_500, 37_500, 62_500, 87_500].map(Duration::from_micros)
        );
        assert_eq!(phase(i, 0, 1), Duration::from_millis(50));
        // Out-of-range input stays inside the interval instead of overflowing.
        assert!(phase(i, 9, 4) < i);
        assert!(phase(i, 0, 0) < i);
        assert!(phase(i, usize::MAX - 1, usize::MAX) < i);
    }
}

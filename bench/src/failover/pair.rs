//! A steady pair: lb1 (priority 150) master and lb2 (priority 100) backup of one
//! implementation, in a lab of their own, for the measurements that watch a pair run rather
//! than fail it over (idle cost, false failovers under load).

use std::net::IpAddr;
use std::time::Duration;

use anyhow::bail;
use vigil_integration::{Host, Lab, Process, wait_for};

use super::daemon::{self, Binaries, Implementation, Scheduling, Setup};
use super::probe::VIP;
use super::series::{BACKUP_PRIORITY, MASTER_PRIORITY};

/// Two load balancers running one implementation, lb1 holding the VIP.
#[derive(Debug)]
pub struct Pair {
    /// Which implementation runs.
    pub implementation: Implementation,
    /// lb1's daemon (the master).
    pub master: Process,
    /// lb2's daemon (the backup).
    pub backup: Process,
    lb1: Host,
    lb2: Host,
    // Dropped last: it kills the daemons and removes the namespaces.
    _lab: Lab,
}

impl Pair {
    /// Starts both daemons and waits until lb1 alone holds the VIP.
    pub fn start(
        bins: &Binaries,
        implementation: Implementation,
        interval: Duration,
        scheduling: Scheduling,
    ) -> anyhow::Result<Self> {
        let lab = Lab::with_hosts(&["lb1", "lb2"])?;
        let (lb1, lb2) = (lab.host("lb1")?, lab.host("lb2")?);
        let setup = |priority| Setup {
            implementation,
            priority,
            interval,
            quorum: None,
            scheduling,
        };
        let backup = daemon::start(bins, &lb2, setup(BACKUP_PRIORITY))?;
        let master = daemon::start(bins, &lb1, setup(MASTER_PRIORITY))?;
        let pair = Self {
            implementation,
            master,
            backup,
            lb1,
            lb2,
            _lab: lab,
        };
        let settle = interval * 10 + Duration::from_secs(10);
        if wait_for("lb1 alone holds the VIP", settle, || pair.steady()).is_err() {
            bail!(
                "{implementation}: lb1 never held the VIP alone\n--- lb1 ---\n{}\n--- lb2 ---\n{}",
                pair.master.log_tail(30),
                pair.backup.log_tail(30)
            );
        }
        Ok(pair)
    }

    /// Whether both daemons run, lb1 holds the VIP and lb2 does not.
    pub fn steady(&self) -> bool {
        let vip = IpAddr::V4(VIP);
        self.master.is_running()
            && self.backup.is_running()
            && self.lb1.has_address(vip).is_ok_and(|held| held)
            && self.lb2.has_address(vip).is_ok_and(|held| !held)
    }

    /// The lines each daemon has logged so far about its VRRP thread waking up late (vigild's
    /// `VRRP timer fired late`; keepalived logs nothing comparable): (lb1, lb2).
    pub fn late_wakeups(&self) -> (Vec<String>, Vec<String>) {
        let late = |log: &str| -> Vec<String> {
            log.lines()
                .filter(|l| l.contains("VRRP timer fired late"))
                .map(str::to_owned)
                .collect()
        };
        (late(&self.master.log()), late(&self.backup.log()))
    }

    /// VRRP state transitions each daemon has logged so far: (lb1, lb2).
    pub fn transitions(&self) -> (Vec<String>, Vec<String>) {
        (
            transitions(&self.master.log()),
            transitions(&self.backup.log()),
        )
    }
}

/// The lines of a daemon log that announce a VRRP state transition: vigild's
/// `VRRP state changed` and keepalived's `Entering … STATE`.
pub fn transitions(log: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains("VRRP state changed") || l.contains(") Entering "))
        .map(str::to_owned)
        .collect()
}

/// Whether a transition line (see [`transitions`]) is one into Master.
pub fn into_master(line: &str) -> bool {
    line.contains("Entering MASTER STATE")
        || (line.contains("VRRP state changed")
            && (line.contains("to=\"master\"") || line.contains("to=master")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_daemons_transition_lines_are_recognised() {
        let log = "\
2026-11-22T03:20:43.1Z  INFO vigil_daemon::vrrp::actions: VRRP state changed: no master heard instance=\"vi_bench\" vrid=51 from=\"backup\" to=\"master\"
2026-11-22T03:20:44.1Z  INFO vigil_daemon::vrrp::actions: VIPs added instance=\"vi_bench\"
Sun Nov 22 03:20:45 2026: (VI_bench) Entering BACKUP STATE
Sun Nov 22 03:20:46 2026: (VI_bench) Entering MASTER STATE
Sun Nov 22 03:20:46 2026: (VI_bench) received lower priority (100) advert
";
        let t = transitions(log);
        assert_eq!(t.len(), 3, "{t:?}");
        let masters: Vec<bool> = t.iter().map(|l| into_master(l)).collect();
        assert_eq!(masters, [true, false, true]);
    }
}

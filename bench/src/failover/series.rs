//! One series: a fresh lab, one implementation at one interval, N failovers caused by the same
//! fault (a SIGKILL of the master, or its link going down).

use std::fmt;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use vigil_integration::{Host, Lab, Process, wait_for};

use super::adverts::{Adverts, Wait};
use super::daemon::{self, Binaries, Implementation, Quorum, Scheduling, Setup};
use super::probe::{self, Responders, VIP};

/// Priorities of the master and the backup (the RFC's skew depends on the backup's).
pub const MASTER_PRIORITY: u8 = 150;
/// See [`MASTER_PRIORITY`].
pub const BACKUP_PRIORITY: u8 = 100;
/// How often the client probes the VIP during a failover.
pub const PROBE_EVERY: Duration = Duration::from_millis(2);
/// How late the harness may put a fault at its phase in the advert cycle: this, or a fiftieth
/// of the interval if longer (timer and scheduling latency of a loaded machine).
const PHASE_TOLERANCE: Duration = Duration::from_millis(2);
/// Advert cycles tried for one fault's phase before the fault goes at the phase it got.
const PHASE_ATTEMPTS: u32 = 10;

/// What happens to the master at the start of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL of the master daemon's whole process group; it is restarted after the run.
    Kill,
    /// SIGTERM of the master daemon: a graceful stop (priority-0 advert, VIPs released, and
    /// under fencing the owner znode handed over); it is restarted after the run.
    Term,
    /// The master's link goes down at the bridge (carrier lost, as when a cable is pulled), so
    /// not even a priority-0 advert can leave; it comes back up after the run.
    LinkDown,
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Kill => "SIGKILL",
            Self::Term => "SIGTERM",
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
    /// vigild only: quorum fencing with this session timeout (a witness joins the lab as the
    /// third voter); `None`: no fencing.
    pub fencing: Option<Duration>,
    /// Fenced only: before every run, start the whole cluster afresh (empty state), so that
    /// lb1, which bootstraps it, is the Raft leader when it is faulted. Otherwise only lb1 is
    /// restarted after a run and rejoins as a follower, so after the first run the master is
    /// usually not the leader.
    pub master_leads: bool,
    /// Real-time scheduling of the daemons' VRRP work.
    pub scheduling: Scheduling,
}

/// One measured failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    /// From the fault to the first answer from lb2.
    pub outage: Duration,
    /// Fenced series: whether the master was the coordination cluster's Raft leader when it
    /// was faulted (a new leader then gives every session a full timeout from its take-over,
    /// so a crashed leader's session expires later). `None` when unknown or not fenced.
    pub master_led: Option<bool>,
    /// From the master's last advert the client received to the fault: the run's phase in
    /// the advert cycle, as it really was.
    pub since_advert: Duration,
}

impl Series {
    /// The series' name in tables: the implementation, and whether fenced.
    pub fn label(&self) -> String {
        match (self.fencing, self.master_leads) {
            (Some(_), true) => format!("{} (fenced, the master leads Raft)", self.implementation),
            (Some(_), false) => format!("{} (fenced)", self.implementation),
            (None, _) => self.implementation.to_string(),
        }
    }

    /// Bound for anything VRRP does at this interval: several Master_Down_Intervals plus slack
    /// for daemon start-up on a loaded machine (and, fenced, a session expiry and a Raft
    /// election).
    fn settle(&self) -> Duration {
        self.interval * 10 + Duration::from_secs(10) + self.fencing.unwrap_or_default() * 2
    }

    fn setup(&self, priority: u8, quorum: Option<Quorum>) -> Setup {
        Setup {
            implementation: self.implementation,
            priority,
            interval: self.interval,
            quorum,
            scheduling: self.scheduling,
        }
    }

    /// Runs the series; `progress` is called with each measured failover.
    pub fn run(
        &self,
        bins: &Binaries,
        mut progress: impl FnMut(usize, Failover),
    ) -> anyhow::Result<Vec<Failover>> {
        let fenced = self.fencing.is_some() && self.implementation == Implementation::Vigild;
        let hosts: &[&str] = if fenced {
            &["lb1", "lb2", "witness", "client"]
        } else {
            &["lb1", "lb2", "client"]
        };
        let lab = Lab::with_hosts(hosts)?;
        let (lb1, lb2, client) = (lab.host("lb1")?, lab.host("lb2")?, lab.host("client")?);
        let quorum = match self.fencing {
            Some(session_timeout) if fenced => Some(Quorum {
                voters: [lb1.ipv4(), lb2.ipv4(), lab.host("witness")?.ipv4()],
                session_timeout,
            }),
            _ => None,
        };
        let witness_host = quorum.map(|_| lab.host("witness")).transpose()?;
        let mut witness = match (&quorum, &witness_host) {
            (Some(q), Some(host)) => Some(daemon::start_witness(bins, host, q)?),
            _ => None,
        };
        let _responders = Responders::start(&[&lb1, &lb2])?;
        let adverts = Adverts::listen(&client)?;
        let mut backup = daemon::start(bins, &lb2, self.setup(BACKUP_PRIORITY, quorum))?;
        let mut master = daemon::start(bins, &lb1, self.setup(MASTER_PRIORITY, quorum))?;
        let mut outages = Vec::with_capacity(self.runs);
        for run in 0..self.runs {
            if run > 0
                && let (true, Some(q), Some(host)) = (self.master_leads, &quorum, &witness_host)
            {
                // A fresh cluster: lb1 bootstraps it and leads.
                for p in [Some(&master), Some(&backup), witness.as_ref()]
                    .into_iter()
                    .flatten()
                {
                    p.terminate(Duration::from_secs(5))?;
                }
                for h in [&lb1, &lb2, host] {
                    daemon::wipe_state(h)?;
                }
                witness = Some(daemon::start_witness(bins, host, q)?);
                backup = daemon::start(bins, &lb2, self.setup(BACKUP_PRIORITY, quorum))?;
                master = daemon::start(bins, &lb1, self.setup(MASTER_PRIORITY, quorum))?;
            }
            self.wait_master_serves(&lb1, &lb2, &client, &master, &backup)
                .with_context(|| format!("{} before run {}", self.label(), run + 1))?;
            let master_led = quorum.and_then(|_| raft_leader(bins, &lb1));
            let advert = self
                .await_phase(&adverts, &lb1, run)
                .with_context(|| format!("{} run {}", self.label(), run + 1))?;
            let faulted_at = Instant::now();
            match self.fault {
                Fault::Kill => {
                    master.kill()?;
                }
                // Not waited for: the stop runs while the client probes.
                Fault::Term => master.signal(nix::sys::signal::Signal::SIGTERM)?,
                Fault::LinkDown => lab.link_down(&lb1)?,
            }
            let Some(outage) =
                probe::probe_until(&client, lb2.name(), faulted_at, PROBE_EVERY, self.settle())?
            else {
                bail!(
                    "{} run {}: lb2 never answered for {VIP} after the {}:\n{}",
                    self.label(),
                    run + 1,
                    self.fault,
                    backup.log_tail(40)
                );
            };
            let failover = Failover {
                outage,
                master_led,
                since_advert: faulted_at.saturating_duration_since(advert),
            };
            progress(run, failover);
            outages.push(failover);
            match self.fault {
                Fault::Kill | Fault::Term => {
                    if self.fault == Fault::Term {
                        master.terminate(self.settle())?;
                    }
                    if !self.master_leads || quorum.is_none() {
                        master = daemon::start(bins, &lb1, self.setup(MASTER_PRIORITY, quorum))?;
                    }
                }
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

    /// Waits for the master's next advert, then until run `run`'s phase in the advert cycle
    /// ([`phase`]); returns when that advert arrived. Spreading the faults evenly over one
    /// interval, in the same way for every implementation, measures the outage a crash at a
    /// random moment causes, and pairs runs of equal number across series. Timed from adverts
    /// the client receives rather than from when the master was seen serving, which lags its
    /// advert timer by the harness's polls (see [`Adverts`]). A wait that ends late (a loaded
    /// machine) or after the next advert is tried again in a later cycle, a few times.
    fn await_phase(&self, adverts: &Adverts, master: &Host, run: usize) -> anyhow::Result<Instant> {
        let from = master.ipv4();
        let offset = phase(self.interval, run, self.runs);
        let tolerance = (self.interval / 50).max(PHASE_TOLERANCE);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let advert = adverts
                .next_from(from, self.interval * 3 + Duration::from_secs(1))?
                .ok_or_else(|| {
                    anyhow!("the client heard no advert from {} ({from})", master.name())
                })?;
            match adverts.wait_until(from, advert + offset, tolerance)? {
                Wait::OnTime => return Ok(advert),
                // Out of attempts: the fault goes now, its phase reported as it is.
                Wait::Late if attempts >= PHASE_ATTEMPTS => return Ok(advert),
                Wait::Advert(newest) if attempts >= PHASE_ATTEMPTS => return Ok(newest),
                Wait::Late | Wait::Advert(_) => {}
            }
        }
    }
}

/// Whether `host`'s vigild is the coordination cluster's Raft leader (`None` if it cannot say).
fn raft_leader(bins: &Binaries, host: &Host) -> Option<bool> {
    let vigilctl = bins.vigild.with_file_name("vigilctl");
    let out = host
        .run(&[
            vigilctl.as_os_str(),
            "--api".as_ref(),
            "127.0.0.1:7400".as_ref(),
            "status".as_ref(),
            "--json".as_ref(),
        ])
        .ok()?;
    let status: serde_json::Value = serde_json::from_str(&out).ok()?;
    Some(status["coord"]["role"].as_str()? == "leader")
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

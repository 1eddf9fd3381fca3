//! Running one schedule against one target in a fresh lab, with the holder recorder running
//! from before the daemons start until the VIP has settled after the final heal.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::thread::sleep;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::schedule::{Fault, Node, Schedule};
use super::target::{self, Target, Tuning, VIP, Voters};
use crate::daemons;
use crate::holders::{HolderRecorder, HolderReport};
use crate::lab::Lab;
use crate::process::Process;
use crate::tokens::{self, TokenCheck};

/// What vigild logs while `fencing = "quorum"` is accepted but not enforced.
const NOT_ENFORCED: &str = "is not enforced yet";

/// The binaries the targets need.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `vigild`, for the vigild targets.
    pub vigild: Option<PathBuf>,
    /// keepalived, for its target.
    pub keepalived: Option<PathBuf>,
}

impl Binaries {
    /// `vigild` next to the running executable (see [`crate::workspace_binary`]) and the
    /// installed keepalived.
    pub fn find() -> Self {
        Self {
            vigild: crate::workspace_binary("vigild"),
            keepalived: daemons::keepalived_binary(),
        }
    }

    /// The binary `target` runs, or why it is missing.
    pub fn for_target(&self, target: Target) -> anyhow::Result<&Path> {
        match target {
            Target::Keepalived => self
                .keepalived
                .as_deref()
                .context("keepalived is not installed (scripts/install-deps installs it)"),
            _ => self.vigild.as_deref().context(
                "vigild is not built next to this executable (cargo build -p vigil-daemon --bins)",
            ),
        }
    }
}

/// How a schedule is run.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Config tunables.
    pub tuning: Tuning,
    /// How long the VIP must stay with one holder to count as settled.
    pub stable: Duration,
    /// Longest wait for the first holder after start-up, and for settling after the heal.
    pub settle_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            tuning: Tuning::default(),
            stable: Duration::from_secs(1),
            settle_timeout: Duration::from_secs(20),
        }
    }
}

/// The result of one schedule on one target.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The schedule's seed.
    pub seed: u64,
    /// What ran.
    pub target: Target,
    /// The recording (holding intervals, overlaps in both views).
    pub holders: HolderReport,
    /// Token monotonicity, for targets with tokens.
    pub tokens: Option<TokenCheck>,
    /// After the final heal: the single holder and how long it took to get there (not
    /// counting the stability period); `None` when it never settled.
    pub settled: Option<(String, Duration)>,
    /// Daemons that exited on their own during the schedule (restarted for the end check).
    pub exited: Vec<String>,
    /// For vigild: whether it enforced fencing (false: it logged that it does not yet).
    pub fencing_enforced: Option<bool>,
    /// Wall time of the whole run, lab set-up and tear-down included.
    pub elapsed: Duration,
}

impl Outcome {
    /// Whether every invariant held: never two holders, tokens increasing (where there are
    /// tokens), settled at the end, no daemon died by itself.
    pub fn clean(&self) -> bool {
        self.holders.never_two_holders()
            && self.tokens.as_ref().is_none_or(TokenCheck::ok)
            && self.settled.is_some()
            && self.exited.is_empty()
    }
}

/// The daemons of one target in one lab.
struct Fleet<'a> {
    lab: &'a Lab,
    target: Target,
    binary: PathBuf,
    voters: Voters,
    configs: [Option<PathBuf>; 3],
    procs: [Option<Process>; 3],
    exited: Vec<String>,
}

impl Fleet<'_> {
    fn start(&mut self, node: Node) -> anyhow::Result<()> {
        let Some(config) = &self.configs[node as usize] else {
            return Ok(());
        };
        let host = self.voters.host(node);
        let process = match self.target {
            Target::Keepalived => daemons::spawn_keepalived(&self.binary, host, config, &["-P"])?,
            _ => daemons::spawn_vigild(&self.binary, host, config)?,
        };
        self.procs[node as usize] = Some(process);
        Ok(())
    }

    fn process(&self, node: Node) -> Option<&Process> {
        self.procs[node as usize].as_ref()
    }

    /// Notes daemons that died without being killed, and starts them again.
    fn revive(&mut self) -> anyhow::Result<()> {
        for node in Node::ALL {
            if let Some(p) = self.process(node)
                && let Some(status) = p.exit_status()
            {
                self.exited.push(format!("{} ({status})", node.name()));
                self.start(node)?;
            }
        }
        Ok(())
    }

    fn apply(&mut self, fault: Fault) -> anyhow::Result<()> {
        let host = |n: Node| self.voters.host(n).clone();
        match fault {
            Fault::Isolate(n) => self.lab.cut(&host(n))?,
            Fault::CutPair(a, b) => self.lab.cut_between(&host(a), &host(b))?,
            Fault::LinkDown(n) => self.lab.link_down(&host(n))?,
            Fault::Heal => self.heal()?,
            Fault::Crash { node, down } => {
                self.revive()?;
                if let Some(p) = self.process(node) {
                    p.kill()?;
                }
                sleep(down);
                self.start(node)?;
            }
            Fault::Pause { node, paused } => {
                self.revive()?;
                let p = self.process(node).cloned();
                if let Some(p) = &p {
                    p.stop()?;
                }
                sleep(paused);
                if let Some(p) = &p {
                    p.cont()?;
                }
            }
        }
        Ok(())
    }

    fn heal(&self) -> anyhow::Result<()> {
        self.lab.heal_all()?;
        for host in &self.voters.hosts {
            self.lab.link_up(host)?;
        }
        Ok(())
    }

    fn logs(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for (node, p) in Node::ALL.iter().zip(&self.procs) {
            if let Some(p) = p {
                let _ = writeln!(s, "--- {} ---\n{}", node.name(), p.log_tail(40));
            }
        }
        s
    }
}

/// Runs `schedule` against `target` in a new lab (lb1, lb2, witness, client).
pub fn run_schedule(
    binaries: &Binaries,
    target: Target,
    schedule: &Schedule,
    options: Options,
) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let binary = binaries.for_target(target)?.to_path_buf();
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness", "client"])?;
    let voters = Voters {
        hosts: [lab.host("lb1")?, lab.host("lb2")?, lab.host("witness")?],
    };
    let token_file = lab.dir().join("tokens.log");
    let mut configs: [Option<PathBuf>; 3] = [None, None, None];
    for node in Node::ALL.into_iter().filter(|&n| target.runs_on(n)) {
        let host = voters.host(node);
        let dir = target::node_dir(lab.dir(), node);
        let text = target::config(target, node, &voters, &dir, &token_file, options.tuning);
        let path = host.write_file(target::config_name(target), &text)?;
        if target != Target::Keepalived {
            daemons::check_vigild_config(&binary, &path)?;
        }
        configs[node as usize] = Some(path);
    }
    let vip: IpAddr = VIP.parse()?;
    let recorder = HolderRecorder::start(&[voters.host(Node::Lb1), voters.host(Node::Lb2)], vip)?;
    let mut fleet = Fleet {
        lab: &lab,
        target,
        binary,
        voters,
        configs,
        procs: [None, None, None],
        exited: Vec::new(),
    };
    // lb1 first: plain VRRP then elects it without a preemption hand-over from lb2 (a brief
    // double holder of its own that is not what the schedule tests).
    for node in Node::ALL {
        fleet.start(node)?;
    }
    if let Err(e) = recorder.wait_sole_holder("lb1", options.stable / 2, options.settle_timeout) {
        bail!(
            "{target} seed {}: no initial master: {e}\n{}{}",
            schedule.seed,
            recorder.report().describe(),
            fleet.logs()
        );
    }
    for step in &schedule.steps {
        fleet
            .apply(step.fault)
            .with_context(|| format!("seed {}: {}", schedule.seed, step.fault))?;
        sleep(step.then_wait);
    }
    fleet.heal()?;
    fleet.revive()?;
    let healed = Instant::now();
    let settled = recorder
        .wait_settled(options.stable, options.settle_timeout)
        .ok()
        .map(|holder| (holder, healed.elapsed().saturating_sub(options.stable)));
    let fencing_enforced = (target == Target::Vigild).then(|| {
        [Node::Lb1, Node::Lb2]
            .iter()
            .filter_map(|&n| fleet.process(n))
            .all(|p| !p.log().contains(NOT_ENFORCED))
    });
    let holders = recorder.finish()?;
    let tokens = if target.has_tokens() {
        Some(tokens::check_file(&token_file).map_err(anyhow::Error::msg)?)
    } else {
        None
    };
    let exited = std::mem::take(&mut fleet.exited);
    drop(fleet);
    drop(lab);
    Ok(Outcome {
        seed: schedule.seed,
        target,
        holders,
        tokens,
        settled,
        exited,
        fencing_enforced,
        elapsed: started.elapsed(),
    })
}

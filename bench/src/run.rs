//! The phase sequence run against each target, and the facts about the machine.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::{
    load::{self, Op},
    report::{Figures, PhaseFigures, WatchFigures},
    target::Target,
};

/// Sizes of one run.
#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// Length of each timed phase.
    pub phase_secs: u64,
    /// Nodes created for the memory and restart phases.
    pub nodes: usize,
    /// Watchers in the watch phase.
    pub watchers: usize,
    /// Requests in flight while creating nodes.
    pub create_inflight: usize,
    /// The phases to run (all by default); the others are reported as "n/a".
    pub phases: Vec<Phase>,
}

/// A group of phases that can be run on its own (`vigil-bench coord --phases watch`), e.g. to
/// repeat one measurement without the minutes the node creation takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// 100-byte sets with 1 client, then with 64.
    Writes,
    /// Linearizable reads with 64 clients.
    Reads,
    /// Watch-notification latency.
    Watch,
    /// Creating the nodes, then memory and restart-to-serving with them.
    Create,
}

impl Phase {
    /// Every phase, in the order they run.
    pub const ALL: [Phase; 4] = [Phase::Writes, Phase::Reads, Phase::Watch, Phase::Create];
}

/// Runs every phase against `target`, in order; a failed phase is recorded in
/// `Figures::errors` and the rest still run, except that the restart phase needs the nodes.
pub async fn run_target(target: &mut dyn Target, s: &Settings) -> Figures {
    let mut f = Figures {
        nodes: s.nodes,
        ..Figures::default()
    };
    let name = target.name();
    let phase = Duration::from_secs(s.phase_secs);
    let fail = |f: &mut Figures, what: &str, e: &dyn std::fmt::Display| {
        eprintln!("[{name}] {what} failed: {e}");
        f.errors.push(format!("{what}: {e}"));
    };

    let runs = |p: Phase| s.phases.contains(&p);
    if runs(Phase::Writes) || runs(Phase::Reads) {
        eprintln!("[{name}] preparing {} keys", load::KEYS);
        if let Err(e) = load::prepare_keys(target).await {
            fail(&mut f, "prepare", &e);
            return f;
        }
    }
    for (clients, op, label) in [
        (1, Op::Write, "write x1"),
        (64, Op::Write, "write x64"),
        (64, Op::Read, "read x64"),
    ] {
        if !runs(if op == Op::Write {
            Phase::Writes
        } else {
            Phase::Reads
        }) {
            continue;
        }
        eprintln!("[{name}] {label} for {phase:?}");
        let cpu_before = cpu_now(target);
        match load::closed_loop(target, clients, phase, op).await {
            Ok(t) => {
                let mut p = PhaseFigures::from(&t);
                if let (Some((members, bench)), Some((members2, bench2))) =
                    (cpu_before, cpu_now(target))
                {
                    let per_1k =
                        |d: Duration| (t.ops > 0).then(|| d.as_secs_f64() * 1e6 / t.ops as f64);
                    p.member_cpu_ms_per_1k = per_1k(members2.saturating_sub(members));
                    p.bench_cpu_ms_per_1k = per_1k(bench2.saturating_sub(bench));
                }
                let p = Some(p);
                match (clients, op) {
                    (1, Op::Write) => f.write_1 = p,
                    (_, Op::Write) => f.write_64 = p,
                    _ => f.read_64 = p,
                }
            }
            Err(e) => fail(&mut f, label, &e),
        }
    }
    if runs(Phase::Watch) {
        eprintln!("[{name}] watch latency, {} watchers, {phase:?}", s.watchers);
        match load::watch_latency(target, s.watchers, phase).await {
            Ok(w) => f.watch = Some(WatchFigures::from(&w)),
            Err(e) => fail(&mut f, "watch", &e),
        }
    }
    if !runs(Phase::Create) {
        return f;
    }
    eprintln!("[{name}] creating {} nodes", s.nodes);
    match target.create_many(s.nodes, s.create_inflight).await {
        Ok(d) => f.create_secs = Some(d.as_secs_f64()),
        Err(e) => {
            fail(&mut f, "create", &e);
            return f;
        }
    }
    // Let the members settle (snapshots, compaction of the in-memory log) before sampling.
    tokio::time::sleep(Duration::from_secs(3)).await;
    match target.rss_of_members() {
        Ok(v) => f.rss_mib = Some(v.iter().map(|b| *b as f64 / f64::from(1 << 20)).collect()),
        Err(e) => fail(&mut f, "rss", &e),
    }
    eprintln!("[{name}] restarting all members");
    match target.restart_all().await {
        Ok(d) => f.restart_secs = Some(d.as_secs_f64()),
        Err(e) => fail(&mut f, "restart", &e),
    }
    f
}

/// CPU time used so far by the target's members together, and by this (load generator)
/// process; `None` if either cannot be read, so the phase is reported without CPU figures.
fn cpu_now(target: &mut dyn Target) -> Option<(Duration, Duration)> {
    let members = target.cpu_of_members().ok()?;
    let bench = crate::procstat::own_cpu().ok()?;
    Some((members, bench))
}

/// Facts recorded next to the figures.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available.
    pub nproc: usize,
    /// `uname -r`.
    pub kernel: String,
    /// CPU model from `/proc/cpuinfo`.
    pub cpu: String,
    /// Total memory, MiB.
    pub mem_mib: u64,
    /// UTC start time, RFC 3339.
    pub date: String,
}

impl Machine {
    /// Reads the facts from `/proc`.
    pub fn probe() -> Self {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| {
                l.strip_prefix("model name")
                    .and_then(|r| r.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default();
        let mem_mib = read("/proc/meminfo")
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024);
        Self {
            nproc: std::thread::available_parallelism().map_or(0, std::num::NonZero::get),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu,
            mem_mib,
            date: rfc3339(SystemTime::now()),
        }
    }
}

/// Formats a time as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), valid for every date after 1970.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(951_782_400 + 3661); // 2000-02-29 01:01:01
        assert_eq!(rfc3339(t), "2000-02-29T01:01:01Z");
        let t = UNIX_EPOCH + Duration::from_hours(498_696); // 2026-11-22
        assert_eq!(rfc3339(t), "2026-11-22T00:00:00Z");
    }
}

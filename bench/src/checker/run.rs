//! One daemon checking the whole fleet: start it, let the first rounds spread out, then measure
//! CPU time, resident memory and the connections the fleet accepted over a window; and, for
//! vigild, how long a stopped real server stays in the desired table.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use vigil_integration::{Host, Process};

use super::config::{self, CheckPlan};
use super::fleet::Fleet;
use super::logtime;
use crate::failover::daemon::{self, Binaries, Implementation};
use crate::procstat::{Meter, Window};

/// How one measurement runs.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The check every real server gets.
    pub plan: CheckPlan,
    /// Time from the daemon's start to the window (start-up, config parsing, first rounds).
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
}

/// What one daemon did in the window.
#[derive(Debug, Clone)]
pub struct Load {
    /// Checks per second: the connections the fleet accepted, or for half-open checks (which
    /// make none) the attempts vigild counted (`vigil_check_attempts_total`).
    pub checks_per_sec: f64,
    /// Connections the fleet accepted per second.
    pub connections_per_sec: f64,
    /// HTTP requests the fleet answered per second (0 for TCP).
    pub answered_per_sec: f64,
    /// CPU and memory of the daemon's process group.
    pub usage: Window,
    /// Processes in the daemon's group at the end.
    pub processes: usize,
    /// Real servers the daemon declared down during the window (all were up).
    pub false_downs: usize,
    /// `/proc/loadavg` at the start and end of the window.
    pub loadavg: (String, String),
    /// CPU the benchmark process itself (the real servers) used in the window, in percent of one
    /// core: near 200 % on two cores would mean the servers, not the daemon, set the rate.
    pub fleet_cpu_percent: f64,
}

/// The result of trying one daemon.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It ran the checks and was measured.
    Measured(Load),
    /// It exited before the end of the window; the evidence is the lines of its log that say
    /// why (see [`evidence`]).
    Refused(String),
}

/// Starts `implementation` on `host` against the fleet with `settings.plan`.
pub fn start(
    bins: &Binaries,
    host: &Host,
    fleet: &Fleet,
    implementation: Implementation,
    plan: CheckPlan,
) -> anyhow::Result<Process> {
    match implementation {
        Implementation::Vigild => daemon::spawn_vigild(&bins.vigild, host, |state| {
            config::vigild(host.name(), state, fleet.targets(), plan)
        }),
        Implementation::Keepalived => daemon::spawn_keepalived(
            &bins.keepalived,
            host,
            &config::keepalived(fleet.targets(), plan),
            &["-C"],
        ),
    }
}

/// What this run of `daemon` logged: the lab appends every start of a program with the same
/// name on the same host to one file, each after a `=== vigil-lab: starting …` line.
pub fn own_log(daemon: &Process) -> String {
    let bytes = std::fs::read(daemon.log_path()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let start = text.rfind("=== vigil-lab: starting").map_or(0, |i| {
        text[i..].find('\n').map_or(text.len(), |nl| i + nl + 1)
    });
    text[start..].to_owned()
}

/// Lines of `log` that say a real server went down.
fn downs(log: &str) -> impl Iterator<Item = &str> {
    log.lines().filter(|l| {
        // vigild: the policy line; keepalived: its checker's removal line.
        l.contains("real server down") || l.contains("Removing service")
    })
}

/// The lines of a daemon's log that explain an exit: errors, IPVS, fatal and stop messages,
/// without the one line per real server keepalived prints while shutting down.
pub fn evidence(log: &str) -> String {
    const SIGNS: [&str; 6] = ["ipvs", "IPVS", "FATAL", "rror", "Stopped", "exited"];
    log.lines()
        .filter(|l| SIGNS.iter().any(|s| l.contains(s)) && !l.contains("Shutting down service"))
        .take(15)
        .fold(String::new(), |mut out, l| {
            out.push_str(l);
            out.push('\n');
            out
        })
}

/// Waits up to two minutes for a daemon that gave up to finish exiting (keepalived's checker
/// spent 35 s of mostly system time withdrawing 10,000 services here), then returns its
/// evidence.
fn refused(daemon: &Process) -> Outcome {
    // A daemon still running after that is reported on what it logged so far.
    let _ = daemon.wait(Duration::from_mins(2));
    Outcome::Refused(evidence(&own_log(daemon)))
}

/// Whether the daemon said it cannot go on. keepalived's checker without IPVS logs `Can't
/// initialize ipvs` at once, then spends many seconds withdrawing every service before it exits:
/// measuring that would measure a dying process, not a checker.
fn gave_up(daemon: &Process) -> bool {
    if !daemon.is_running() {
        return true;
    }
    let log = own_log(daemon);
    log.contains("Can't initialize ipvs") || log.contains("exited with permanent error")
}

/// Measures `daemon`, which checks `fleet`, over one window after the warm-up.
pub fn measure(
    host: &Host,
    daemon: &Process,
    fleet: &Fleet,
    settings: &Settings,
) -> anyhow::Result<Outcome> {
    let attempts = || -> anyhow::Result<Option<u64>> {
        if settings.plan.half_open {
            Ok(Some(vigild_attempts(host)?))
        } else {
            Ok(None)
        }
    };
    let started = Instant::now();
    while started.elapsed() < settings.warmup {
        if gave_up(daemon) {
            return Ok(refused(daemon));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let downs_before = downs(&own_log(daemon)).count();
    let load_start = crate::procstat::load_average();
    let (conns, answered) = (fleet.connections(), fleet.answered());
    let attempts_before = attempts()?;
    let own_before = crate::procstat::own_cpu()?;
    let meter = Meter::start(&[daemon.pid()])?;
    let window_start = Instant::now();
    while window_start.elapsed() < settings.window {
        if gave_up(daemon) {
            return Ok(refused(daemon));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let windows = meter.finish()?;
    let own = crate::procstat::own_cpu()?.saturating_sub(own_before);
    let elapsed = window_start.elapsed().as_secs_f64();
    let (conns, answered) = (fleet.connections() - conns, fleet.answered() - answered);
    let checks = match (attempts_before, attempts()?) {
        (Some(before), Some(after)) => after.saturating_sub(before),
        _ => conns,
    };
    let processes = crate::procstat::group_usage(daemon.pid())?.processes;
    Ok(Outcome::Measured(Load {
        checks_per_sec: checks as f64 / elapsed,
        connections_per_sec: conns as f64 / elapsed,
        answered_per_sec: answered as f64 / elapsed,
        usage: windows[0],
        processes,
        false_downs: downs(&own_log(daemon)).count() - downs_before,
        loadavg: (load_start, crate::procstat::load_average()),
        fleet_cpu_percent: own.as_secs_f64() / windows[0].elapsed.as_secs_f64() * 100.0,
    }))
}

/// The check attempts vigild has finished, from its metrics (read inside `host`, where its API
/// listens on [`config::VIGILD_API`]).
fn vigild_attempts(host: &Host) -> anyhow::Result<u64> {
    host.enter(vigild_attempts_here)?
}

/// [`vigild_attempts`] from the calling thread's namespace (inside the VM, the only one).
pub fn vigild_attempts_here() -> anyhow::Result<u64> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(config::VIGILD_API)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: vigild\r\n\r\n")?;
    let mut text = String::new();
    s.read_to_string(&mut text)?;
    attempts_in(&text)
        .with_context(|| format!("no check attempts in vigild's metrics: {text:.300}"))
}

/// The sum of `vigil_check_attempts_total` over its labels in a Prometheus exposition.
fn attempts_in(exposition: &str) -> Option<u64> {
    let values: Vec<u64> = exposition
        .lines()
        .filter(|l| l.starts_with("vigil_check_attempts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// Stops `kills` real servers of the fleet one after another (1.37 s apart, so the stops fall at
/// different points of the check interval) and returns, for each, the time from closing its
/// listener to vigild logging it down — the moment the desired table loses it — or `None` if it
/// was not logged within `limit` of the last stop.
pub fn dead_servers(
    vigild: &Process,
    fleet: &mut Fleet,
    kills: usize,
    limit: Duration,
) -> anyhow::Result<Vec<(std::net::SocketAddr, Option<Duration>)>> {
    let n = fleet.targets().len();
    let mut stopped = Vec::with_capacity(kills);
    for k in 0..kills {
        // Spread over the fleet, away from index 0.
        let i = (k * n / kills.max(1) + 37) % n;
        let addr = fleet.targets()[i];
        let at = fleet.stop_server(i)?;
        stopped.push((addr, at));
        std::thread::sleep(Duration::from_millis(1370));
    }
    std::thread::sleep(limit);
    let log = own_log(vigild);
    Ok(stopped
        .into_iter()
        .map(|(addr, at)| {
            let needle = format!("real_server={addr} ");
            // The first time it went down after the stop (a loaded machine may have produced
            // false downs of the same server earlier; those are counted by `measure`).
            let delay = log
                .lines()
                .filter(|l| l.contains("real server down") && l.contains(&needle))
                .filter_map(logtime::parse_line)
                .find_map(|t| t.duration_since(at).ok());
            (addr, delay)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evidence_keeps_the_reasons_and_drops_per_server_noise() {
        let log = "\
Sun Nov 22 03:20:43 2026: Starting Healthcheck child process, pid=21656
Sun Nov 22 03:20:43 2026: Initializing ipvs
Sun Nov 22 03:20:43 2026: IPVS: Can't initialize ipvs: No such file or directory
Sun Nov 22 03:20:43 2026: Shutting down service [127.1.0.2]:tcp:20000 from VS [10.200.0.1]:tcp:80
Sun Nov 22 03:20:44 2026: pid 21656 exited with permanent error FATAL. Terminating
";
        assert_eq!(
            evidence(log),
            "Sun Nov 22 03:20:43 2026: Initializing ipvs\n\
             Sun Nov 22 03:20:43 2026: IPVS: Can't initialize ipvs: No such file or directory\n\
             Sun Nov 22 03:20:44 2026: pid 21656 exited with permanent error FATAL. Terminating\n"
        );
    }

    #[test]
    fn down_lines_of_both_daemons_are_counted() {
        let log = "\
2026-11-22T03:20:43.1Z  WARN vigil_daemon::lb::runtime: real server down real_server=127.1.0.1:20000
2026-11-22T03:20:43.2Z  INFO vigil_daemon::lb::runtime: real server up real_server=127.1.0.1:20000
Sun Nov 22 03:20:43 2026: Removing service [127.1.0.2]:tcp:20000 to VS [10.200.0.1]:tcp:80
";
        assert_eq!(downs(log).count(), 2);
    }
}

//! `vigil-failover`: the client-visible VIP outage after SIGKILL of the VRRP master and after
//! its link goes down, vigild and keepalived side by side at the same advert intervals; the same
//! after SIGKILL and SIGTERM with vigild's quorum fencing on and off; their idle CPU and memory;
//! and false failovers while a CPU hog saturates every core (needs root and keepalived).

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use vigil_bench::failover::daemon::{Binaries, Implementation, Scheduling};
use vigil_bench::failover::hog::{self, Flaps};
use vigil_bench::failover::idle::{self, Idle};
use vigil_bench::failover::series::{Fault, Series};
use vigil_bench::failover::stats::Summary;
use vigil_bench::failover::table::{FencingRow, Row, render, render_fencing};
use vigil_integration::root_available;

/// The parts of the benchmark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// Outage after SIGKILL of the master.
    Kill,
    /// Outage after the master's link goes down.
    LinkDown,
    /// Outage after SIGKILL and after SIGTERM of the master: vigild with quorum fencing, vigild
    /// without, keepalived.
    Fencing,
    /// Idle CPU and RSS of each daemon.
    Idle,
    /// False failovers while a CPU hog saturates every core.
    Hog,
}

#[derive(Parser)]
#[command(about = "VRRP failover: vigild vs keepalived (outage, idle cost, false failovers)")]
struct Cli {
    /// Parts to run, in this order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "kill,link-down,fencing,idle,hog"
    )]
    parts: Vec<Part>,
    /// Failovers per implementation and interval.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Advert intervals, comma-separated (`1s`, `100ms`, …; VRRPv3 allows 10 ms to 40.95 s
    /// in 10 ms steps).
    #[arg(long, value_delimiter = ',', value_parser = parse_interval,
          default_value = "1s,100ms,50ms,10ms")]
    intervals: Vec<Duration>,
    /// Advert interval of the fencing part (keepalived's default: a crash costs VRRP about
    /// as long as the default fencing session).
    #[arg(long, value_parser = parse_interval, default_value = "1s")]
    fencing_interval: Duration,
    /// `[cluster.fencing] session_timeout` of the fencing part, in milliseconds (a crashed
    /// fenced master's VIPs move once its session expired); vigild's default.
    #[arg(long, default_value_t = 3000)]
    session_timeout_ms: u64,
    /// Fencing part: also run a fenced series in which the master is always the Raft leader
    /// (the whole cluster starts afresh before every run, so lb1 bootstraps and leads it).
    #[arg(long)]
    fenced_leader: bool,
    /// Advert intervals of the idle measurement.
    #[arg(long, value_delimiter = ',', value_parser = parse_interval, default_value = "1s,10ms")]
    idle_intervals: Vec<Duration>,
    /// Length of each idle window in seconds.
    #[arg(long, default_value_t = 30)]
    idle_secs: u64,
    /// Advert interval under the CPU hog.
    #[arg(long, value_parser = parse_interval, default_value = "10ms")]
    hog_interval: Duration,
    /// How long the CPU hog runs, in seconds (issue #3 asks for 10 minutes).
    #[arg(long, default_value_t = 600)]
    hog_secs: u64,
    /// Busy threads of the CPU hog; 0 = one per core (the "saturates both cores").
    /// More than one per core adds run-queue contention, as a loaded box has: with 4 per core
    /// a normal-priority thread that wakes up competes with 4 others for its core.
    #[arg(long, default_value_t = 0)]
    hog_threads: usize,
    /// Real-time scheduling of both daemons' VRRP work in every part: `default` (each daemon's
    /// own: vigild's VRRP threads under SCHED_RR at 10, keepalived normal), `off` (both
    /// normal; vigild `vrrp_rt_priority = 0`), or a SCHED_RR priority 1..=99 for both (vigild
    /// `vrrp_rt_priority`, keepalived `vrrp_rt_priority`, both with a 100 ms RLIMIT_RTTIME).
    #[arg(long, value_parser = parse_scheduling, default_value = "default")]
    rt_priority: Scheduling,
    /// Smoke test: 3 runs at 100 ms and 10 ms, 5 s idle windows, a 20 s hog (overrides --runs,
    /// --intervals, --idle-secs and --hog-secs).
    #[arg(long)]
    quick: bool,
}

fn main() -> ExitCode {
    if !root_available("vigil-failover") {
        eprintln!("vigil-failover needs root: it builds network namespaces");
        return ExitCode::from(77);
    }
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-failover: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if cli.quick {
        cli.runs = 3;
        cli.intervals = vec![Duration::from_millis(100), Duration::from_millis(10)];
        (cli.idle_secs, cli.hog_secs) = (5, 20);
    }
    if cli.runs == 0 {
        bail!("--runs must be at least 1");
    }
    let bins = Binaries::find()?;
    println!(
        "vigild: {}\nkeepalived: {}\n{} runs per series; probes every {} ms",
        bins.vigild.display(),
        bins.keepalived.display(),
        cli.runs,
        vigil_bench::failover::series::PROBE_EVERY.as_millis()
    );
    let mut rows = Vec::new();
    let faults = cli.parts.iter().filter_map(|p| match p {
        Part::Kill => Some(Fault::Kill),
        Part::LinkDown => Some(Fault::LinkDown),
        Part::Fencing | Part::Idle | Part::Hog => None,
    });
    for fault in faults {
        rows.extend(outages(&cli, &bins, fault)?);
    }
    if !rows.is_empty() {
        println!("\n{}", render(&rows));
    }
    if cli.parts.contains(&Part::Fencing) {
        let mut fencing = Vec::new();
        for fault in [Fault::Kill, Fault::Term] {
            fencing.push(fencing_row(&cli, &bins, fault)?);
        }
        println!("\n{}", render_fencing(&fencing));
    }
    if cli.parts.contains(&Part::Idle) {
        let mut idle = Vec::new();
        for &interval in &cli.idle_intervals {
            for implementation in [Implementation::Vigild, Implementation::Keepalived] {
                println!("\n==> idle {implementation}, adverts every {interval:?}");
                let figures = idle::measure(
                    &bins,
                    implementation,
                    interval,
                    Duration::from_secs(3),
                    Duration::from_secs(cli.idle_secs),
                    cli.rt_priority,
                )?;
                for line in &figures.transitions {
                    println!("  transition: {line}");
                }
                println!("  {}", loadavg());
                idle.push(figures);
            }
        }
        println!("\n{}", render_idle(&idle));
    }
    if cli.parts.contains(&Part::Hog) {
        let duration = Duration::from_secs(cli.hog_secs);
        let threads = match cli.hog_threads {
            0 => std::thread::available_parallelism().map_or(2, std::num::NonZero::get),
            n => n,
        };
        println!(
            "\n==> CPU hog: {threads} busy threads for {duration:?}, both pairs at {:?} adverts, {}; {}",
            cli.hog_interval,
            cli.rt_priority,
            loadavg()
        );
        let (flaps, machine) = hog::run(
            &bins,
            &[Implementation::Vigild, Implementation::Keepalived],
            (cli.hog_interval, cli.rt_priority),
            (duration, threads),
            |left| println!("  {} s left, {}", left.as_secs(), loadavg()),
        )?;
        for f in &flaps {
            for line in f.master_transitions.iter().chain(&f.backup_transitions) {
                println!("  {}: {line}", f.implementation);
            }
            for line in &f.late_wakeups {
                println!("  {} late: {line}", f.implementation);
            }
        }
        println!(
            "  machine over {} s: steal {:.2} %, softirq {:.2} %; worst second: steal {:.1} %, \
             ksoftirqd waited {:?}",
            machine.seconds,
            100.0 * machine.steal,
            100.0 * machine.softirq,
            100.0 * machine.max_steal,
            machine.max_ksoftirqd_wait
        );
        for n in &machine.notable {
            println!(
                "  machine: {} steal {:.1} %, ksoftirqd waited {:?}",
                n.at,
                100.0 * n.steal,
                n.ksoftirqd_wait
            );
        }
        println!("\n{}", render_hog(&flaps, cli.hog_interval, duration));
    }
    Ok(())
}

/// `/proc/loadavg`'s three averages, for the record of how busy the machine was.
fn loadavg() -> String {
    format!("load average {}", vigil_bench::procstat::load_average())
}

/// One row per interval: each implementation's outages after `fault`.
fn outages(cli: &Cli, bins: &Binaries, fault: Fault) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for &interval in &cli.intervals {
        let mut summaries = Vec::new();
        for implementation in [Implementation::Vigild, Implementation::Keepalived] {
            let series = Series {
                implementation,
                fault,
                interval,
                runs: cli.runs,
                fencing: None,
                master_leads: false,
                scheduling: cli.rt_priority,
            };
            summaries.push(run_series(bins, &series)?);
        }
        rows.push(Row {
            fault,
            interval,
            vigild: summaries[0],
            keepalived: summaries[1],
        });
    }
    Ok(rows)
}

/// Runs `series`, printing every failover, and summarises its outages.
fn run_series(bins: &Binaries, series: &Series) -> anyhow::Result<Summary> {
    println!(
        "\n==> {}: {}, adverts every {:?}",
        series.fault,
        series.label(),
        series.interval
    );
    let failovers = series.run(bins, |i, f| {
        let role = match f.master_led {
            Some(true) => " (the master was the Raft leader)",
            Some(false) => " (the master was a Raft follower)",
            None => "",
        };
        println!(
            "  run {:>2}: {:.1} ms (fault {:.1} ms after an advert){role}",
            i + 1,
            f.outage.as_secs_f64() * 1000.0,
            f.since_advert.as_secs_f64() * 1000.0
        );
    })?;
    let outages: Vec<Duration> = failovers.iter().map(|f| f.outage).collect();
    let summary = Summary::of(&outages).context("a series measured nothing")?;
    // A crashed Raft leader's session expires a full timeout after the new leader took over,
    // a follower's a timeout after its last keep-alive: show both when both happened.
    for (led, what) in [(true, "Raft leader"), (false, "Raft follower")] {
        let part: Vec<Duration> = failovers
            .iter()
            .filter(|f| f.master_led == Some(led))
            .map(|f| f.outage)
            .collect();
        if let Some(s) = Summary::of(&part).filter(|s| s.runs < failovers.len()) {
            println!(
                "  master was the {what} in {} runs: {:.0}/{:.0}/{:.0} ms min/median/max",
                s.runs,
                s.min.as_secs_f64() * 1000.0,
                s.median.as_secs_f64() * 1000.0,
                s.max.as_secs_f64() * 1000.0
            );
        }
    }
    Ok(summary)
}

/// One fault's outages with fencing on, off, and keepalived, in that order, in one run.
fn fencing_row(cli: &Cli, bins: &Binaries, fault: Fault) -> anyhow::Result<FencingRow> {
    let session_timeout = Duration::from_millis(cli.session_timeout_ms);
    let series = |implementation, fencing, master_leads| Series {
        implementation,
        fault,
        interval: cli.fencing_interval,
        runs: cli.runs,
        fencing,
        master_leads,
        scheduling: cli.rt_priority,
    };
    let fenced = Some(session_timeout);
    Ok(FencingRow {
        fault,
        interval: cli.fencing_interval,
        session_timeout,
        fenced: run_series(bins, &series(Implementation::Vigild, fenced, false))?,
        fenced_leader: if cli.fenced_leader {
            Some(run_series(
                bins,
                &series(Implementation::Vigild, fenced, true),
            )?)
        } else {
            None
        },
        unfenced: run_series(bins, &series(Implementation::Vigild, None, false))?,
        keepalived: run_series(bins, &series(Implementation::Keepalived, None, false))?,
    })
}

/// The idle table: per interval and implementation, each node's CPU and RSS.
fn render_idle(rows: &[Idle]) -> String {
    let mut out = String::from(
        "| advert | daemon | master CPU % | backup CPU % | master RSS MiB | backup RSS MiB | \
         window s | transitions |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {:?} | {} | {:.3} | {:.3} | {:.1} | {:.1} | {:.0} | {} |",
            r.interval,
            r.implementation,
            r.master.cpu_percent(),
            r.backup.cpu_percent(),
            r.master.rss_mib(),
            r.backup.rss_mib(),
            r.master.elapsed.as_secs_f64(),
            r.transitions.len()
        );
    }
    out
}

/// The hog table: transitions per node and false failovers per implementation.
fn render_hog(rows: &[Flaps], interval: Duration, duration: Duration) -> String {
    let mut out = format!(
        "CPU hog for {} s at {} ms adverts\n\n| daemon | false failovers (backup → master) | \
         master transitions | backup transitions | lb1 alone holds the VIP after |\n\
         |---|---|---|---|---|\n",
        duration.as_secs(),
        interval.as_millis()
    );
    for f in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |",
            f.implementation,
            f.false_failovers(),
            f.master_transitions.len(),
            f.backup_transitions.len(),
            if f.steady_after { "yes" } else { "no" }
        );
    }
    out
}

/// Parses `--rt-priority`: `default`, `off` or a `SCHED_RR` priority.
fn parse_scheduling(s: &str) -> Result<Scheduling, String> {
    match s.trim() {
        "default" => Ok(Scheduling::Defaults),
        "off" => Ok(Scheduling::Normal),
        n => match n.parse::<u8>() {
            Ok(p @ 1..=99) => Ok(Scheduling::Realtime(p)),
            _ => Err(format!(
                "{s:?}: give `default`, `off` or a SCHED_RR priority 1..=99"
            )),
        },
    }
}

/// Parses `1s`, `100ms`, `0.5s`; VRRPv3 carries the interval in centiseconds, 1..=4095.
fn parse_interval(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, unit_ms) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000.0)
    } else {
        return Err(format!("{s:?}: give a unit, e.g. 100ms or 1s"));
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a duration"))?;
    let ms = value * unit_ms;
    if !(10.0..=40_950.0).contains(&ms) || (ms / 10.0).fract() != 0.0 {
        return Err(format!(
            "{s:?}: VRRPv3 intervals are 10 ms to 40.95 s in 10 ms steps"
        ));
    }
    // In range and a whole number of centiseconds, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Ok(Duration::from_millis(ms as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_parse_in_both_units() {
        assert_eq!(parse_interval("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_interval("100ms"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_interval("0.05s"), Ok(Duration::from_millis(50)));
        assert_eq!(parse_interval(" 10ms "), Ok(Duration::from_millis(10)));
    }

    #[test]
    fn rt_priority_is_default_off_or_a_sched_rr_priority() {
        assert_eq!(parse_scheduling("default"), Ok(Scheduling::Defaults));
        assert_eq!(parse_scheduling("off"), Ok(Scheduling::Normal));
        assert_eq!(parse_scheduling("10"), Ok(Scheduling::Realtime(10)));
        for bad in ["0", "100", "rt", ""] {
            assert!(parse_scheduling(bad).is_err(), "{bad} accepted");
        }
        let cli = Cli::try_parse_from(["vigil-failover"]).expect("defaults");
        assert_eq!(cli.rt_priority, Scheduling::Defaults);
    }

    #[test]
    fn intervals_outside_vrrpv3_are_refused() {
        for bad in ["5ms", "15ms", "41s", "100", "fast", "-10ms"] {
            assert!(parse_interval(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn quick_and_defaults_parse() {
        let cli = Cli::try_parse_from(["vigil-failover"]).expect("defaults");
        assert_eq!(cli.runs, 20);
        assert_eq!(
            cli.parts,
            [
                Part::Kill,
                Part::LinkDown,
                Part::Fencing,
                Part::Idle,
                Part::Hog
            ]
        );
        assert_eq!(cli.fencing_interval, Duration::from_secs(1));
        // vigild's default `[cluster.fencing] session_timeout` (conf/tests/defaults.rs pins it).
        assert_eq!(cli.session_timeout_ms, 3000);
        assert_eq!(cli.hog_secs, 600, "issue #3 asks for a 10-minute hog");
        assert_eq!(cli.hog_interval, Duration::from_millis(10));
        assert_eq!(
            cli.intervals,
            [1000, 100, 50, 10].map(Duration::from_millis).to_vec()
        );
        let cli = Cli::try_parse_from(["vigil-failover", "--runs", "5", "--intervals", "50ms,1s"])
            .expect("flags");
        assert_eq!(cli.runs, 5);
        assert_eq!(
            cli.intervals,
            vec![Duration::from_millis(50), Duration::from_secs(1)]
        );
    }
}

//! `vigil-failover`: the client-visible VIP outage after SIGKILL of the VRRP master, vigild
//! and keepalived side by side at the same advert intervals (needs root and keepalived).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::Parser;
use vigil_bench::failover::daemon::{Binaries, Implementation};
use vigil_bench::failover::series::Series;
use vigil_bench::failover::stats::Summary;
use vigil_bench::failover::table::{Row, render};
use vigil_integration::root_available;

#[derive(Parser)]
#[command(about = "VRRP failover outage: vigild vs keepalived after SIGKILL of the master")]
struct Cli {
    /// Failovers per implementation and interval.
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// Advert intervals, comma-separated (`1s`, `100ms`, …; VRRPv3 allows 10 ms to 40.95 s
    /// in 10 ms steps).
    #[arg(long, value_delimiter = ',', value_parser = parse_interval,
          default_value = "1s,100ms,50ms,10ms")]
    intervals: Vec<Duration>,
    /// Smoke test: 3 runs at 100 ms and 10 ms (overrides --runs and --intervals).
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
    for &interval in &cli.intervals {
        let mut summaries = Vec::new();
        for implementation in [Implementation::Vigild, Implementation::Keepalived] {
            let series = Series {
                implementation,
                interval,
                runs: cli.runs,
            };
            println!("\n==> {implementation}, adverts every {interval:?}");
            let outages = series.run(&bins, |i, outage| {
                println!(
                    "  run {:>2}: {:.1} ms",
                    i + 1,
                    outage.as_secs_f64() * 1000.0
                );
            })?;
            summaries.push(Summary::of(&outages).context("a series measured nothing")?);
        }
        rows.push(Row {
            interval,
            vigild: summaries[0],
            keepalived: summaries[1],
        });
    }
    println!("\n{}", render(&rows));
    Ok(())
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

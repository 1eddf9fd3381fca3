//! `vigil-checkfloor`: what a health check costs at the least, so vigild's checker can be judged
//! against a floor and not only against the targets of issue #5 (≤ 5 % of one core for 10,000
//! TCP checks a second, ≤ 15 % by HTTP).
//!
//! The real servers are `vigil-checkbench`'s fleet (listeners on `127.1.x.y` inside one lab
//! namespace, served by a tokio runtime of the same process). They are checked at a fixed rate,
//! spread evenly, by one thread with one epoll instance and no async runtime, and what is
//! reported is that thread's own CPU time (`utime + stime` from `/proc/thread-self/stat`, the
//! user part separately) per check and as a share of one core, with the rate achieved, the
//! failures, and the connections the servers accepted. On loopback the checking thread also
//! runs the servers' side of each handshake in softirq context, exactly as vigild does under
//! `vigil-checkbench`, so the two are charged alike. Modes, one after another:
//!
//! - `connect`: the leanest full TCP connect check ([`connect`]); the kernel and system-call
//!   floor of vigild's TCP check.
//! - `half-open`: a SYN probe from a raw socket ([`synprobe`]); SYN-ACK up, reset down. The
//!   floor of vigild's half-open check (`half_open = true`), whose segments it shares.
//! - `http`: the leanest HTTP/1.0 `GET` that judges the status line ([`connect`]).
//!
//! Needs root (a lab namespace; the raw socket) and about 12,000 open files:
//!
//! ```sh
//! cargo build --release -p vigil-bench --bin vigil-checkfloor
//! ulimit -n 65536
//! target/release/vigil-checkfloor                  # connect, half-open, http: 10,000 servers, 10,000 checks/s, 3 s warm-up + 20 s window each
//! target/release/vigil-checkfloor --modes connect,half-open,connect,half-open
//! target/release/vigil-checkfloor --modes connect,half-open --steer-rx   # receive work on CPU 1
//! target/release/vigil-checkfloor --modes connect,half-open --tick-ms 4  # coalesced wake-ups
//! ```
//!
//! `--steer-rx` asks whether loopback overstates a real network, where the servers' half of
//! each handshake and the checker's receive path run in another CPU's softirq (see
//! `vigil_bench::steer`); `--tick-ms` whether waking less often makes a check cheaper. Each row
//! also shows both CPUs' busy and softirq shares, so work that moved is not work that vanished.

mod connect;
mod drive;
mod synprobe;

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use mio::Poll;
use vigil_bench::checker::fleet::{Fleet, HEALTH_PATH, Protocol};
use vigil_bench::steer::{CpuTimes, Steering, pin_process, pin_thread, steer_loopback_rx};
use vigil_integration::{Lab, root_available};

use crate::connect::Connector;
use crate::drive::{Measured, Plan, drive};
use crate::synprobe::SynProber;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Full TCP connect, closed with a reset.
    Connect,
    /// SYN probe from a raw socket.
    HalfOpen,
    /// HTTP/1.0 GET of the health path; status 200 is up.
    Http,
}

impl Mode {
    fn protocol(self) -> Protocol {
        match self {
            Self::Connect | Self::HalfOpen => Protocol::Tcp,
            Self::Http => Protocol::Http,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Connect => "connect",
            Self::HalfOpen => "half-open",
            Self::Http => "http",
        }
    }
}

#[derive(Parser)]
#[command(about = "The CPU floor of TCP, half-open (SYN) and HTTP health checks on loopback")]
struct Cli {
    /// Modes to run, one after another (repeat one to alternate).
    #[arg(long, value_delimiter = ',', default_value = "connect,half-open,http")]
    modes: Vec<Mode>,
    /// Real servers (listeners), checked in turn.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Checks started per second, evenly spread.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// A check without a verdict after this many milliseconds fails.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Seconds from a mode's start to its measured window.
    #[arg(long, default_value_t = 3)]
    warmup_secs: u64,
    /// Length of each measured window in seconds.
    #[arg(long, default_value_t = 20)]
    window_secs: u64,
    /// Servers to stop (listener closed) before measuring, to see refusals counted as failures.
    #[arg(long, default_value_t = 0)]
    stopped: usize,
    /// Receive every packet on CPU 1 (RPS on the lab's `lo`) and check from CPU 0, as a NIC
    /// interrupt on another CPU would (see `vigil_bench::steer`).
    #[arg(long)]
    steer_rx: bool,
    /// Coalesce wake-ups: sleep this many milliseconds between passes instead of blocking in
    /// `epoll_wait` until the next event.
    #[arg(long)]
    tick_ms: Option<u64>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !root_available("vigil-checkfloor") {
        eprintln!("vigil-checkfloor needs root: it builds a network namespace and a raw socket");
        return ExitCode::from(77);
    }
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-checkfloor: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// One mode's measured window.
struct Row {
    mode: Mode,
    measured: Measured,
    /// Half-open: replies that matched no probe in flight.
    strays: Option<u64>,
    load: (String, String),
    /// Each CPU's busy and softirq share over the whole mode (warm-up included), in percent.
    cpus: [(f64, f64); 2],
}

fn run(cli: &Cli) -> anyhow::Result<()> {
    if cli.servers == 0 || cli.rate == 0 || cli.timeout_ms == 0 || cli.window_secs == 0 {
        bail!("--servers, --rate, --timeout-ms and --window-secs must be positive");
    }
    vigil_bench::procstat::ensure_open_files(cli.servers)?;
    let plan = Plan {
        targets: cli.servers,
        rate: cli.rate,
        warmup: Duration::from_secs(cli.warmup_secs),
        window: Duration::from_secs(cli.window_secs),
        tick: cli.tick_ms.map(Duration::from_millis),
    };
    let timeout = Duration::from_millis(cli.timeout_ms);
    println!(
        "{} real servers, {} checks/s, timeout {timeout:?}; warm-up {} s, window {} s; {}; {}",
        cli.servers,
        cli.rate,
        cli.warmup_secs,
        cli.window_secs,
        if cli.steer_rx {
            "receive steered to CPU 1, checking on CPU 0"
        } else {
            "receive on the sending CPU (plain loopback)"
        },
        cli.tick_ms.map_or_else(
            || "blocking in epoll_wait".to_owned(),
            |ms| format!("{ms} ms ticks")
        ),
    );
    let steering = cli.steer_rx.then(Steering::two_cpus).transpose()?;
    let lab = Lab::with_hosts(&["lb"])?;
    let lb = lab.host("lb")?;
    if let Some(steering) = steering {
        steer_loopback_rx(&lb, steering.rx_cpu)?;
    }
    let mut fleet: Option<(Protocol, Fleet)> = None;
    let mut rows = Vec::new();
    for &mode in &cli.modes {
        let protocol = mode.protocol();
        if fleet.as_ref().is_none_or(|(p, _)| *p != protocol) {
            // Close the old listeners before the new ones bind the same addresses.
            drop(fleet.take());
            let mut started = Fleet::start(&lb, cli.servers, protocol)
                .with_context(|| format!("starting {} {protocol} servers", cli.servers))?;
            for i in 0..cli.stopped.min(cli.servers) {
                started.stop_server(i)?;
            }
            fleet = Some((protocol, started));
            if let Some(steering) = steering {
                // The servers' threads (and this one, which only waits) on the receiving CPU.
                pin_process(std::process::id(), steering.rx_cpu)?;
            }
        }
        let Some((_, servers)) = &fleet else {
            unreachable!("a fleet was started above");
        };
        let before = loadavg();
        let cpus_before = [CpuTimes::read(0)?, CpuTimes::read(1)?];
        let started = std::time::Instant::now();
        let (measured, strays) = lb
            .enter(|| {
                if let Some(steering) = steering {
                    pin_thread(steering.checker_cpu)?;
                }
                measure(mode, servers, &plan, timeout)
            })
            .context("entering the lab host")??;
        let elapsed = started.elapsed();
        let cpus = [0, 1].map(|cpu| {
            CpuTimes::read(cpu).map_or((f64::NAN, f64::NAN), |now| {
                cpus_before[cpu].percent_until(now, elapsed)
            })
        });
        let row = Row {
            mode,
            measured,
            strays,
            load: (before, loadavg()),
            cpus,
        };
        println!("{}", render(&[&row]));
        rows.push(row);
    }
    println!("{}", render(&rows.iter().collect::<Vec<_>>()));
    Ok(())
}

/// Runs `mode` against `fleet` on the calling thread, which must be in the fleet's namespace.
fn measure(
    mode: Mode,
    fleet: &Fleet,
    plan: &Plan,
    timeout: Duration,
) -> anyhow::Result<(Measured, Option<u64>)> {
    let mut poll = Poll::new().context("epoll_create")?;
    let targets = fleet.targets();
    let accepted = || fleet.connections();
    Ok(match mode {
        Mode::Connect => {
            let mut prober = Connector::tcp(targets, timeout);
            (drive(&mut prober, &mut poll, plan, &accepted)?, None)
        }
        Mode::Http => {
            let mut prober = Connector::http(targets, HEALTH_PATH, timeout);
            (drive(&mut prober, &mut poll, plan, &accepted)?, None)
        }
        Mode::HalfOpen => {
            let mut prober = SynProber::new(&poll, Ipv4Addr::LOCALHOST, targets, timeout)?;
            let measured = drive(&mut prober, &mut poll, plan, &accepted)?;
            (measured, Some(prober.strays()))
        }
    })
}

/// A Markdown table of `rows`.
fn render(rows: &[&Row]) -> String {
    let mut out = String::from(
        "| mode | checks/s | server accepts/s | CPU % of one core (user) | CPU µs per check \
         | failures (refused/timed out) | stray replies | CPU 0 / CPU 1 busy % (softirq) \
         | load average |\n\
         |---|---|---|---|---|---|---|---|---|\n",
    );
    for row in rows {
        let m = &row.measured;
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {:.2} ({:.2}) | {:.1} | {} ({}/{}) | {} | {:.0} ({:.0}) / {:.0} ({:.0}) | {} → {} |",
            row.mode.name(),
            m.checks_per_sec(),
            m.accepted_per_sec(),
            m.cpu_percent(),
            m.user_percent(),
            m.micros_per_check(),
            m.failures(),
            m.tally.down,
            m.tally.timed_out,
            row.strays.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            row.cpus[0].0,
            row.cpus[0].1,
            row.cpus[1].0,
            row.cpus[1].1,
            row.load.0,
            row.load.1,
        );
    }
    out
}

/// The one-minute load average, as `uptime` shows it.
fn loadavg() -> String {
    let all = vigil_bench::procstat::load_average();
    all.split(' ').next().unwrap_or("?").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_issue_load_and_modes_alternate() {
        let cli = Cli::try_parse_from(["vigil-checkfloor"]).expect("defaults");
        assert_eq!(cli.modes, vec![Mode::Connect, Mode::HalfOpen, Mode::Http]);
        assert_eq!(
            (cli.servers, cli.rate, cli.timeout_ms),
            (10_000, 10_000, 1000)
        );
        let cli =
            Cli::try_parse_from(["vigil-checkfloor", "--modes", "half-open,connect,half-open"])
                .expect("modes");
        assert_eq!(
            cli.modes,
            vec![Mode::HalfOpen, Mode::Connect, Mode::HalfOpen]
        );
        assert!(Cli::try_parse_from(["vigil-checkfloor", "--modes", "syn"]).is_err());
    }
}

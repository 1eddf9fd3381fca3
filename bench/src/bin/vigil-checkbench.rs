//! `vigil-checkbench`: 10,000 real servers checked every second, by TCP connect and separately by
//! HTTP GET; the checking daemon's CPU time and memory and the achieved check rate, vigild and
//! keepalived side by side; and how fast a stopped real server leaves vigild's desired table
//! (needs root: the servers and the daemon run in a lab namespace).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Parser, ValueEnum};
use vigil_bench::checker::config::{CheckPlan, Forwarding};
use vigil_bench::checker::fleet::{Fleet, Protocol};
use vigil_bench::checker::run::{self, Outcome, Settings};
use vigil_bench::checker::table::{LoadRow, check_name, render_dead, render_load};
use vigil_bench::checker::vm;
use vigil_bench::failover::daemon::{Binaries, Implementation};
use vigil_bench::steer::{Steering, pin_process, steer_loopback_rx};
use vigil_integration::{Lab, root_available};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Check {
    Tcp,
    /// vigild's half-open (SYN) TCP check; keepalived, which has none, connects.
    TcpHalfOpen,
    Http,
}

#[derive(Parser)]
#[command(about = "Health-checker scale: vigild vs keepalived checking 10,000 real servers")]
struct Cli {
    /// Real servers (listeners), each checked once per interval.
    #[arg(long, default_value_t = 10_000)]
    servers: usize,
    /// Check types to run, one after another.
    #[arg(long, value_delimiter = ',', default_value = "tcp,http")]
    checks: Vec<Check>,
    /// Check interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Check timeout in milliseconds.
    #[arg(long, default_value_t = 1000)]
    timeout_ms: u64,
    /// Seconds from a daemon's start to the measured window.
    #[arg(long, default_value_t = 10)]
    warmup_secs: u64,
    /// Length of the measured window in seconds.
    #[arg(long, default_value_t = 30)]
    window_secs: u64,
    /// Real servers stopped after vigild's window to time their removal.
    #[arg(long, default_value_t = 10)]
    kills: usize,
    /// Do not try keepalived.
    #[arg(long)]
    no_keepalived: bool,
    /// Receive work on CPU 1, as a NIC's interrupt on another core would take it: Receive
    /// Packet Steering on the lab's `lo`, the real servers pinned to CPU 1 and the daemon to
    /// CPU 0 (see `vigil_bench::steer`). Without it the daemon's CPU time includes the servers'
    /// half of every handshake, which on a real network runs on other machines.
    #[arg(long)]
    steer_rx: bool,
    /// Smoke test: 1,000 servers, 3 s warm-up, 5 s window, 3 stopped servers.
    #[arg(long)]
    quick: bool,
    /// Instead: vigild and keepalived one after the other inside the IPVS VM
    /// (`scripts/vm-run`), TCP_CHECK under DR with one retry; see the `--vm-*` options.
    #[arg(long)]
    vm: bool,
    /// `--vm`: real servers inside the VM. Emulated on one vCPU: at 1,000 neither daemon kept
    /// up on this 2-core machine (both ~500 checks/s), at 300 both did.
    #[arg(long, default_value_t = 300)]
    vm_servers: usize,
    /// `--vm`: seconds from a full kernel table to the measured window.
    #[arg(long, default_value_t = 5)]
    vm_settle_secs: u64,
    /// `--vm`: length of the CPU and memory window in seconds.
    #[arg(long, default_value_t = 20)]
    vm_window_secs: u64,
    /// `--vm`: real-server stop/restart repetitions per daemon.
    #[arg(long, default_value_t = 5)]
    vm_reps: usize,
    /// `--vm`: vigild's `--log-level` inside the VM, e.g. `info,vigil_checks=trace` to see
    /// every attempt; prints its lines about the first stopped real server.
    #[arg(long)]
    vm_vigild_log: Option<String>,
    /// `--vm`: vigild checks by its half-open (SYN) probe; keepalived, which has none, by
    /// `TCP_CHECK` as before.
    #[arg(long)]
    vm_half_open: bool,
    /// Internal: the side of `--vm` that runs inside the VM.
    #[arg(long, hide = true)]
    vm_guest: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.vm_guest {
        // Inside the VM: root, no lab, the kernel has IPVS.
        return match vm::run_guest(&vm_settings(&cli)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                println!("vigil-checkbench (guest): {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if !root_available("vigil-checkbench") {
        eprintln!("vigil-checkbench needs root: it builds a network namespace");
        return ExitCode::from(77);
    }
    let result = if cli.vm {
        Binaries::find().and_then(|b| vm::run_host(&b.vigild, &b.keepalived, &vm_settings(&cli)))
    } else {
        run(cli)
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-checkbench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn vm_settings(cli: &Cli) -> vm::VmSettings {
    vm::VmSettings {
        servers: cli.vm_servers,
        settle: Duration::from_secs(cli.vm_settle_secs),
        window: Duration::from_secs(cli.vm_window_secs),
        repetitions: cli.vm_reps,
        vigild_log: cli.vm_vigild_log.clone(),
        half_open: cli.vm_half_open,
    }
}

fn run(mut cli: Cli) -> anyhow::Result<()> {
    if cli.quick {
        (cli.servers, cli.warmup_secs, cli.window_secs, cli.kills) = (1000, 3, 5, 3);
    }
    if cli.interval_ms == 0 || cli.timeout_ms == 0 || cli.window_secs == 0 {
        bail!("--interval-ms, --timeout-ms and --window-secs must be positive");
    }
    vigil_bench::procstat::ensure_open_files(cli.servers)?;
    let bins = Binaries::find()?;
    let interval = Duration::from_millis(cli.interval_ms);
    let timeout = Duration::from_millis(cli.timeout_ms);
    println!(
        "vigild: {}\nkeepalived: {}\n{} real servers, interval {interval:?}, timeout {timeout:?}; \
         warm-up {} s, window {} s",
        bins.vigild.display(),
        bins.keepalived.display(),
        cli.servers,
        cli.warmup_secs,
        cli.window_secs
    );
    let lab = Lab::with_hosts(&["lb"])?;
    let lb = lab.host("lb")?;
    let steering = cli.steer_rx.then(Steering::two_cpus).transpose()?;
    if let Some(steering) = steering {
        steer_loopback_rx(&lb, steering.rx_cpu)?;
        // The fleet's threads are started from this one and inherit its CPU.
        pin_process(std::process::id(), steering.rx_cpu)?;
        println!(
            "receive work and real servers on CPU {}, the daemon on CPU {}",
            steering.rx_cpu, steering.checker_cpu
        );
    }
    let mut rows = Vec::new();
    let mut dead = Vec::new();
    for check in &cli.checks {
        let protocol = match check {
            Check::Tcp | Check::TcpHalfOpen => Protocol::Tcp,
            Check::Http => Protocol::Http,
        };
        let half_open = *check == Check::TcpHalfOpen;
        let label = check_name(protocol, half_open);
        let settings = Settings {
            plan: CheckPlan {
                protocol,
                half_open,
                interval,
                timeout,
                retries: 0,
                retry_delay: Duration::from_secs(1),
                forwarding: Forwarding::Nat,
            },
            warmup: Duration::from_secs(cli.warmup_secs),
            window: Duration::from_secs(cli.window_secs),
        };
        let mut fleet = Fleet::start(&lb, cli.servers, protocol)
            .with_context(|| format!("starting {} {protocol} servers", cli.servers))?;
        let keepalived = if cli.no_keepalived {
            None
        } else {
            println!("\n==> keepalived, {protocol} checks");
            let ka = run::start(
                &bins,
                &lb,
                &fleet,
                Implementation::Keepalived,
                settings.plan,
            )?;
            if let Some(steering) = steering {
                pin_process(ka.pid(), steering.checker_cpu)?;
            }
            let outcome = run::measure(&lb, &ka, &fleet, &settings)?;
            report(&outcome);
            ka.kill()?;
            Some(outcome)
        };
        println!("\n==> vigild, {label} checks");
        let vigild = run::start(&bins, &lb, &fleet, Implementation::Vigild, settings.plan)?;
        if let Some(steering) = steering {
            pin_process(vigild.pid(), steering.checker_cpu)?;
        }
        let outcome = run::measure(&lb, &vigild, &fleet, &settings)?;
        report(&outcome);
        if matches!(outcome, Outcome::Measured(_)) && cli.kills > 0 {
            let delays = run::dead_servers(&vigild, &mut fleet, cli.kills, interval + timeout)?;
            for (addr, delay) in &delays {
                match delay {
                    Some(d) => println!("  stopped {addr}: down after {:.0} ms", ms(*d)),
                    None => println!("  stopped {addr}: NOT logged down"),
                }
            }
            dead.push((label.clone(), delays.into_iter().map(|(_, d)| d).collect()));
        }
        vigild.terminate(Duration::from_secs(10))?;
        rows.push(LoadRow {
            protocol,
            half_open,
            vigild: outcome,
            keepalived,
        });
    }
    println!("\n{}", render_load(&rows));
    if !dead.is_empty() {
        println!("{}", render_dead(&dead, interval + timeout));
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn report(outcome: &Outcome) {
    match outcome {
        Outcome::Measured(l) => println!(
            "  {:.0} checks/s, {:.0} connections/s ({:.0} HTTP answers/s), CPU {:.2} % of one core ({:.2} % user), \
             RSS {:.1} MiB, \
             {} process(es), {} false downs; servers' CPU {:.0} %; load average {} -> {}",
            l.checks_per_sec,
            l.connections_per_sec,
            l.answered_per_sec,
            l.usage.cpu_percent(),
            l.usage.user_percent(),
            l.usage.rss_mib(),
            l.processes,
            l.false_downs,
            l.fleet_cpu_percent,
            l.loadavg.0,
            l.loadavg.1
        ),
        Outcome::Refused(log) => println!("  exited before the window; its log ends:\n{log}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_issue_load() {
        let cli = Cli::try_parse_from(["vigil-checkbench"]).expect("defaults");
        assert_eq!(cli.servers, 10_000);
        assert_eq!(cli.checks, vec![Check::Tcp, Check::Http]);
        assert_eq!((cli.interval_ms, cli.timeout_ms), (1000, 1000));
        assert!(cli.window_secs >= 20);
        let cli = Cli::try_parse_from(["vigil-checkbench", "--checks", "http", "--quick"])
            .expect("flags");
        assert_eq!(cli.checks, vec![Check::Http]);
        assert!(cli.quick);
        let cli = Cli::try_parse_from(["vigil-checkbench", "--vm"]).expect("vm");
        let settings = vm_settings(&cli);
        assert!(cli.vm && !cli.vm_guest);
        assert_eq!((settings.servers, settings.repetitions), (300, 5));
    }
}

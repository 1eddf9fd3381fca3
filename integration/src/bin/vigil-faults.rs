//! `vigil-faults`: seeded fault schedules against vigild (quorum fencing), vigild without
//! fencing and keepalived, counting double VIP holders, token regressions and failures to
//! settle. Needs root; see integration/README.md.
//!
//! ```text
//! vigil-faults --seeds 200 --target vigild-nofence --target keepalived
//! vigil-faults --seed 17 --target vigild -v        # replay one schedule, print its timeline
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Parser;
use vigil_integration::faults::{
    self, Binaries, Options, Schedule, Summary, Target, Timing, Tuning,
};
use vigil_integration::root_available;

/// Randomized split-brain fault schedules (root).
#[derive(Debug, Parser)]
#[command(name = "vigil-faults", version)]
struct Args {
    /// Run seeds `first-seed .. first-seed + seeds`.
    #[arg(long, default_value_t = 200)]
    seeds: u64,
    /// The first seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Run only this seed (replay).
    #[arg(long, conflicts_with_all = ["seeds", "first_seed"])]
    seed: Option<u64>,
    /// Targets, in table order (repeatable): vigild, vigild-nofence, keepalived.
    #[arg(long = "target", default_values_t = Target::ALL.map(|t| t.to_string()))]
    targets: Vec<String>,
    /// Fault steps per schedule.
    #[arg(long, default_value_t = 5)]
    steps: usize,
    /// Coordination session timeout, in milliseconds (pauses and crash downtimes scale with it).
    #[arg(long, default_value_t = 4000)]
    session_timeout_ms: u64,
    /// Print the steps and the holder timeline of every schedule.
    #[arg(short, long)]
    verbose: bool,
    /// Stop at this much wall time (remaining seeds are not run; the table says how many ran).
    #[arg(long, default_value_t = 4 * 3600)]
    max_seconds: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !root_available("vigil-faults") {
        return ExitCode::from(77);
    }
    let targets: Vec<Target> = match args.targets.iter().map(|t| t.parse()).collect() {
        Ok(t) => t,
        Err(e) => {
            eprintln!("vigil-faults: {e}");
            return ExitCode::from(64);
        }
    };
    let seeds: Vec<u64> = match args.seed {
        Some(s) => vec![s],
        None => (args.first_seed..args.first_seed + args.seeds).collect(),
    };
    let session_timeout = Duration::from_millis(args.session_timeout_ms);
    let timing = Timing {
        session_timeout,
        ..Timing::default()
    };
    let options = Options {
        tuning: Tuning {
            session_timeout,
            ..Tuning::default()
        },
        ..Options::default()
    };
    let binaries = Binaries::find();
    let deadline = Instant::now() + Duration::from_secs(args.max_seconds);
    let mut rows = Vec::new();
    let mut clean = true;
    for &target in &targets {
        if let Err(e) = binaries.for_target(target) {
            eprintln!("vigil-faults: {target}: {e:#}");
            return ExitCode::FAILURE;
        }
        let mut summary = Summary::default();
        for &seed in &seeds {
            if Instant::now() >= deadline {
                eprintln!(
                    "vigil-faults: --max-seconds reached; {target} stopped before seed {seed}"
                );
                break;
            }
            let schedule = Schedule::generate(seed, args.steps, timing);
            if args.verbose {
                println!("seed {seed}: {}", schedule.describe());
            }
            let started = Instant::now();
            match faults::run_schedule(&binaries, target, &schedule, options) {
                Ok(outcome) => {
                    println!("{}", faults::line(&outcome));
                    if args.verbose || !outcome.holders.mismatches.is_empty() {
                        print!("{}", outcome.holders.describe());
                    }
                    if target == Target::Vigild && !outcome.clean() {
                        clean = false;
                    }
                    summary.add(&outcome);
                }
                Err(e) => {
                    println!("{target:<14} seed {seed:>6}  ERROR: {e:#}");
                    summary.add_error(started.elapsed());
                    if target == Target::Vigild {
                        clean = false;
                    }
                }
            }
        }
        rows.push((target, summary));
    }
    println!(
        "\n{} steps per schedule, session timeout {} ms, adverts 100 ms, seeds {}..={}\n",
        args.steps,
        session_timeout.as_millis(),
        seeds.first().copied().unwrap_or_default(),
        seeds.last().copied().unwrap_or_default()
    );
    print!("{}", faults::table(&rows));
    // Only fenced vigild is held to the invariants; the others are the comparison.
    if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

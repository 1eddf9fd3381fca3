//! The `vigild` entry point: flags, `--check-config`, start-up and exit codes.
//!
//! Start-up order: parse flags → load and validate the config (invalid → errors on stderr, exit
//! 78) → logging → runtime → [`supervisor::run`] (binds the API, then `READY=1`).
//!
//! The runtime is multi-threaded with two workers: VRRP timers must keep firing on time while a
//! burst of health-check or Raft work runs, and two workers do that on the 2-core boxes load
//! balancers often are. Each worker costs one thread stack of mostly untouched memory, and the
//! blocking pool is capped, so idle RSS stays small.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use vigil_conf::ConfigErrors;

use crate::cli::Args;
use crate::{exit, logging, supervisor};

/// Worker threads of the runtime; see the module docs.
const WORKER_THREADS: usize = 2;
/// Blocking-pool cap (tokio's default is 512): file reads and, later, notify scripts.
const MAX_BLOCKING_THREADS: usize = 8;
/// How long leftover tasks may take once the supervisor has stopped.
const RUNTIME_SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);
/// How long the log lines still queued may take to be written at exit.
const LOG_FLUSH_LIMIT: Duration = Duration::from_secs(1);

/// Runs `vigild` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            // `--help`/`--version` also arrive here, on stdout, and are not failures.
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(start(&args))
}

/// glibc's defaults, made fixed: see [`vigil_net::tune_malloc`]. The config parser's one large
/// buffer (28 MB for 10,000 checked real servers) would otherwise raise both thresholds for
/// good, and the worker arenas would then keep tens of megabytes of freed check memory
/// resident.
const MALLOC: vigil_net::MallocTuning = vigil_net::MallocTuning {
    mmap_threshold: 128 * 1024,
    trim_threshold: 128 * 1024,
    arena_max: None,
};

fn start(args: &Args) -> u8 {
    // Before the parser's thread and the runtime's: mallopt is meant for a single-threaded
    // start. Failing only costs memory, and other C libraries have no such thresholds.
    let _ = vigil_net::tune_malloc(MALLOC);
    let loaded = crate::config_file::load(&args.config);
    if args.check_config {
        return match loaded {
            Ok(_) => {
                println!("{}: configuration is valid", args.config.display());
                exit::OK
            }
            Err(errors) => {
                print_errors(&errors, &mut std::io::stderr().lock());
                exit::CHECK_FAILED
            }
        };
    }
    let config = match loaded {
        Ok(config) => config,
        Err(errors) => {
            print_errors(&errors, &mut std::io::stderr().lock());
            eprintln!("vigild: invalid configuration, not starting");
            return exit::CONFIG;
        }
    };

    let format = args.log_format.map_or(config.global.log_format, Into::into);
    if let Err(error) = logging::init(format, args.log_level.as_deref()) {
        eprintln!("vigild: {error}");
        return exit::USAGE;
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKER_THREADS)
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .thread_name("vigild-worker")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return exit::OSERR;
        }
    };

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        config = %args.config.display(),
        "vigild starting"
    );
    // Signals are the only way to stop the real daemon; the future is for embedding and tests.
    let result = runtime.block_on(supervisor::run(
        args.config.clone(),
        config,
        std::future::pending::<()>(),
    ));
    // Do not let a blocking task stuck on a hung filesystem hold the exit hostage.
    runtime.shutdown_timeout(RUNTIME_SHUTDOWN_LIMIT);
    let code = match result {
        Ok(()) => exit::OK,
        Err(error) => {
            tracing::error!(%error, "vigild failed");
            error.exit_code()
        }
    };
    // The VRRP threads' last lines (priority-0 adverts, VIPs removed) are still queued.
    logging::flush(LOG_FLUSH_LIMIT);
    code
}

/// Writes one `file:line:col: message` line per error, the format editors and CI jump to.
pub fn print_errors(errors: &ConfigErrors, out: &mut impl Write) {
    for error in &errors.0 {
        // Nothing useful to do when stderr itself is gone.
        let _ = writeln!(out, "{error}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_conf::ConfigError;

    #[test]
    fn errors_print_one_per_line_with_position() {
        let errors = ConfigErrors(vec![
            ConfigError {
                file: "a.toml".into(),
                line: 3,
                col: 1,
                message: "unknown key `bogus`".into(),
            },
            ConfigError {
                file: "a.toml".into(),
                line: 7,
                col: 10,
                message: "bad address".into(),
            },
        ]);
        let mut out = Vec::new();
        print_errors(&errors, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "a.toml:3:1: unknown key `bogus`\na.toml:7:10: bad address\n"
        );
    }
}

//! `vigilctl`: the operator CLI. It talks to the daemon's control API and grows subcommand
//! groups (`vrrp`, `lvs`, `tree`, `cluster`) in later issues.
//!
//! The API address comes from `--api`/`VIGIL_API`, else from `[api] listen` in the config file
//! (`--config`, default `/etc/vigil/vigil.toml`) when it exists, else `127.0.0.1:7400`. The token
//! file likewise comes from `--token-file`/`VIGIL_TOKEN_FILE`, else from `[api] token_file`.
//! Diagnostics go to stderr; exit codes follow sysexits(3): 69 daemon unreachable, 77 not
//! authorised, 78 reload rejected. The coordination commands ([`coord`], [`lock`]) talk to the
//! coordination client API instead (`--coord`, else `[cluster] client_listen`).

pub mod client;
pub mod cluster;
pub mod config;
pub mod coord;
pub mod import;
pub mod lock;
pub mod render;
pub mod watch;

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{CommandFactory, Parser, Subcommand};
use clap_complete::Shell;

use crate::api::auth::{ApiToken, TokenError};
use crate::reload::{ReloadOutcome, unix_now};
use crate::{DEFAULT_API_PORT, DEFAULT_CONFIG_PATH, exit};
use client::Client;

/// Operate a running vigild; convert keepalived configs.
///
/// Talks to vigild's local control API: the address comes from `--api`, else from `[api]
/// listen` in the config, else 127.0.0.1:7400; the bearer token from `--token-file`, else from
/// `[api] token_file`. `import-keepalived` works offline. See vigilctl(8) for exit codes.
#[derive(Debug, Clone, Parser)]
#[command(name = "vigilctl", version)]
pub struct Cli {
    /// Control API address of vigild, e.g. `127.0.0.1:7400` [default: `[api] listen` from the
    /// config, else 127.0.0.1:7400].
    #[arg(long, env = "VIGIL_API", global = true, value_name = "ADDR")]
    pub api: Option<SocketAddr>,

    /// Config file to read the API address and token file from.
    #[arg(
        short = 'f',
        long,
        env = "VIGIL_CONFIG",
        global = true,
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,

    /// File holding the API bearer token [default: `[api] token_file` from the config].
    #[arg(long, env = "VIGIL_TOKEN_FILE", global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,

    /// Seconds to wait for the daemon's answer.
    #[arg(
        long,
        env = "VIGIL_TIMEOUT",
        global = true,
        default_value_t = 30,
        value_name = "SECS"
    )]
    pub timeout: u64,

    /// Coordination client API address(es) for the tree, `members`, `lock` and `elect`; repeat
    /// or separate with commas to fail over [default: `[cluster] client_listen` from the
    /// config, else 127.0.0.1:7402].
    #[arg(
        long,
        env = "VIGIL_COORD",
        global = true,
        value_name = "ADDR",
        value_delimiter = ','
    )]
    pub coord: Vec<SocketAddr>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// `vigilctl` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Show the daemon's node, version, uptime, config generation, last reload, VRRP instances
    /// and, with `[cluster]`, every node of the cluster (up or down, with its last record).
    Status {
        /// Print JSON (stable field names) instead of a table; with --watch, one compact JSON
        /// document per line (NDJSON) for each change.
        #[arg(long)]
        json: bool,
        /// Follow changes until Ctrl-C: redraw the view (on a terminal) or print each change.
        /// Counters and clocks moving are not changes; states, health and leaders are.
        #[arg(short, long)]
        watch: bool,
        /// With --watch: seconds between two polls of the daemon.
        #[arg(
            long,
            default_value_t = 1.0,
            value_name = "SECS",
            requires = "watch",
            value_parser = parse_interval
        )]
        interval: f64,
        /// With --watch: stop after printing N changes (the first view counts).
        #[arg(long, value_name = "N", requires = "watch")]
        count: Option<u64>,
    },
    /// Show virtual servers, real servers, their state, last check result, latency and since
    /// when (the kernel's desired IPVS table).
    Lvs {
        /// Print JSON (stable field names) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the daemon's Prometheus metrics (the text `GET /metrics` serves), e.g. to check a
    /// counter by hand or from a script without an HTTP client.
    Metrics,
    /// Make the daemon re-read its config; an invalid file keeps the old config running.
    Reload {
        /// Print the reload report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        shell: Shell,
    },
    /// Convert a keepalived.conf (and the files it includes) into vigil TOML, offline.
    ///
    /// The TOML goes to stdout (or OUT) and always passes `vigild --check-config`. Every line
    /// that could not be converted is listed on stderr as `file:line: text — reason`, then a
    /// summary. Exit 0: all converted; 1: TOML written but lines were listed; 65: keepalived
    /// syntax error; 66: a file cannot be read; 73: OUT cannot be written.
    ImportKeepalived {
        /// The keepalived config to convert.
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write the TOML here instead of stdout.
        #[arg(short = 'o', long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
    /// Coordination tree, membership, locks and elections (see `coord`).
    #[command(flatten)]
    Coord(coord::CoordCommand),
    /// Shared config fragments pushed to every node: push, show, history, rollback, rm.
    #[command(subcommand)]
    Config(config::ConfigCommand),
}

/// Runs `vigilctl` with the process's arguments and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = error.print();
            return ExitCode::from(code);
        }
    };
    ExitCode::from(execute(&cli))
}

/// The single-threaded runtime every request runs on; `Err` is the exit code after saying why.
fn runtime() -> Result<tokio::runtime::Runtime, u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            eprintln!("vigilctl: cannot start the async runtime: {error}");
            exit::OSERR
        })
}

fn execute(cli: &Cli) -> u8 {
    let json = match cli.command {
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "vigilctl",
                &mut std::io::stdout(),
            );
            return exit::OK;
        }
        Command::ImportKeepalived {
            ref file,
            ref output,
        } => return import::run(file, output.as_deref()),
        Command::Coord(ref command) => return coord::run(cli, command),
        Command::Status { json, .. } | Command::Reload { json } | Command::Lvs { json } => json,
        Command::Metrics | Command::Config(_) => false,
    };
    let target = match Target::resolve(cli) {
        Ok(target) => target,
        Err(code) => return code,
    };
    let token = match target.token_file.as_deref().map(ApiToken::load).transpose() {
        Ok(token) => token,
        Err(error) => {
            eprintln!("vigilctl: {error}");
            return token_exit_code(&error);
        }
    };
    let timeout = Duration::from_secs(cli.timeout);
    let Ok(client) = Client::new(target.addr, token.as_ref(), timeout) else {
        eprintln!("vigilctl: the API token contains characters not allowed in an HTTP header");
        return exit::CONFIG;
    };
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    runtime.block_on(async {
        match cli.command {
            Command::Status {
                watch: true,
                interval,
                count,
                ..
            } => watch::run(&client, json, Duration::from_secs_f64(interval), count).await,
            Command::Status { .. } => status(&client, json).await,
            Command::Metrics => match client.metrics().await {
                Ok(text) => print_stdout(&text),
                Err(error) => fail(&error),
            },
            Command::Reload { .. } => reload(&client, json).await,
            Command::Lvs { .. } => lvs(&client, json).await,
            Command::Config(ref command) => config::run(&client, command).await,
            Command::Completions { .. } | Command::ImportKeepalived { .. } | Command::Coord(_) => {
                exit::OK
            }
        }
    })
}

async fn status(client: &Client, json: bool) -> u8 {
    let status = match client.status().await {
        Ok(status) => status,
        Err(error) => return fail(&error),
    };
    let text = if json {
        to_json(&status)
    } else {
        render::status_table(&status, unix_now())
    };
    print_stdout(&text)
}

async fn lvs(client: &Client, json: bool) -> u8 {
    let status = match client.lvs().await {
        Ok(status) => status,
        Err(error) => return fail(&error),
    };
    let text = if json {
        to_json(&status)
    } else {
        crate::lb::render::lvs_table(&status)
    };
    print_stdout(&text)
}

async fn reload(client: &Client, json: bool) -> u8 {
    let report = match client.reload().await {
        Ok(report) => report,
        Err(error) => return fail(&error),
    };
    let code = if json {
        print_stdout(&to_json(&report))
    } else {
        print_stdout(&format!("reload {}\n", render::reload_summary(&report)))
    };
    match &report.outcome {
        ReloadOutcome::Rejected { errors, .. } => {
            if !json {
                for error in errors {
                    eprintln!("{error}");
                }
            }
            exit::CONFIG
        }
        ReloadOutcome::Applied { needs_restart, .. } => {
            if !json {
                for setting in needs_restart {
                    eprintln!("vigilctl: {setting} changed; it takes effect after a restart");
                }
            }
            code
        }
    }
}

/// `--interval`: a number of seconds, at least 0.1 (the daemon answers from memory, but a
/// tighter loop only burns CPU) and at most a day.
fn parse_interval(text: &str) -> Result<f64, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if (0.1..=86_400.0).contains(&secs) {
        Ok(secs)
    } else {
        Err(format!("{text} is outside 0.1..=86400 seconds"))
    }
}

fn fail(error: &client::ClientError) -> u8 {
    eprintln!("vigilctl: {error}");
    error.exit_code()
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising these plain structs cannot fail; fall back to `{}` rather than panic.
    let mut text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".to_owned());
    text.push('\n');
    text
}

fn print_stdout(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => exit::OK,
        // A closed pipe (`vigilctl status | head -1`) is not worth a message.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(error) => {
            eprintln!("vigilctl: cannot write output: {error}");
            exit::OSERR
        }
    }
}

fn token_exit_code(error: &TokenError) -> u8 {
    if error.is_permission_denied() {
        exit::NOPERM
    } else {
        exit::NOINPUT
    }
}

/// Where to connect and which token file to send.
#[derive(Debug)]
struct Target {
    addr: SocketAddr,
    token_file: Option<PathBuf>,
    /// `[cluster] client_listen`, when the config was read and has one.
    coord: Option<SocketAddr>,
    /// `[cluster] session_timeout`, likewise.
    session_timeout: Option<std::time::Duration>,
}

impl Target {
    /// Flags win; the config fills the gaps. A config named explicitly must be valid (exit 78);
    /// the default one may be missing or broken — e.g. while the daemon still runs the old
    /// config — and then only earns a warning.
    fn resolve(cli: &Cli) -> Result<Self, u8> {
        let fallback = SocketAddr::from((Ipv4Addr::LOCALHOST, DEFAULT_API_PORT));
        if let (Some(addr), Some(token_file)) = (cli.api, &cli.token_file) {
            return Ok(Self {
                addr,
                token_file: Some(token_file.clone()),
                coord: None,
                session_timeout: None,
            });
        }
        let explicit = cli.config.is_some();
        let path = cli
            .config
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH));
        let config = if explicit || path.exists() {
            match vigil_conf::load_file(&path) {
                Ok(config) => Some(config),
                Err(errors) if explicit => {
                    crate::vigild::print_errors(&errors, &mut std::io::stderr().lock());
                    eprintln!("vigilctl: invalid config {}", path.display());
                    return Err(exit::CONFIG);
                }
                Err(errors) => {
                    eprintln!(
                        "vigilctl: warning: ignoring invalid {} ({} error(s)); use --api to choose the address",
                        path.display(),
                        errors.0.len()
                    );
                    None
                }
            }
        } else {
            None
        };
        let addr = cli
            .api
            .or_else(|| config.as_ref().map(|c| connectable(c.api.listen)))
            .unwrap_or(fallback);
        let cluster = config.as_ref().and_then(|c| c.cluster.as_ref());
        let coord = cluster.map(|c| c.client_listen);
        let session_timeout = cluster.map(|c| c.session_timeout);
        let token_file = cli
            .token_file
            .clone()
            .or_else(|| config.and_then(|c| c.api.token_file));
        Ok(Self {
            addr,
            token_file,
            coord,
            session_timeout,
        })
    }
}

/// A listen address usable as a destination: a wildcard listener is reached over loopback.
fn connectable(listen: SocketAddr) -> SocketAddr {
    crate::members::local_address(listen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn wildcard_listen_is_reached_over_loopback() {
        assert_eq!(
            connectable("0.0.0.0:7400".parse().unwrap()),
            "127.0.0.1:7400".parse().unwrap()
        );
        assert_eq!(
            connectable("[::]:7400".parse().unwrap()),
            "[::1]:7400".parse().unwrap()
        );
        assert_eq!(
            connectable("10.0.0.1:9".parse().unwrap()),
            "10.0.0.1:9".parse().unwrap()
        );
    }

    #[test]
    fn flags_win_without_reading_any_config() {
        let cli = Cli::try_parse_from([
            "vigilctl",
            "--api",
            "127.0.0.1:9",
            "--token-file",
            "/t",
            "--config",
            "/nonexistent/vigil.toml",
            "status",
        ])
        .unwrap();
        let target = Target::resolve(&cli).unwrap();
        assert_eq!(target.addr, "127.0.0.1:9".parse().unwrap());
        assert_eq!(target.token_file, Some(PathBuf::from("/t")));
    }

    #[test]
    fn explicit_missing_config_is_an_error() {
        let cli =
            Cli::try_parse_from(["vigilctl", "--config", "/nonexistent/vigil.toml", "status"])
                .unwrap();
        assert_eq!(Target::resolve(&cli).unwrap_err(), exit::CONFIG);
    }
}

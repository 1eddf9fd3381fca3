//! `vigild` command-line flags.
//!
//! Every flag can also come from a `VIGIL_*` environment variable (vector's convention), so a
//! systemd drop-in or a container can configure the daemon without editing the unit's command.

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Parser, ValueEnum};
use vigil_conf::LogFormat;

use crate::DEFAULT_CONFIG_PATH;

/// VRRP failover, LVS health checks and a replicated coordination tree for load balancers.
///
/// Loads the TOML config, validates it (each error as `file:line:col: message`; an invalid
/// config exits 78 without starting), binds its sockets and tells systemd when it is ready.
/// SIGHUP re-reads the config (an invalid file keeps the old one running); SIGTERM or SIGINT
/// stops gracefully, a second one exits at once. Check a file before installing it with
/// `vigild --check-config -f FILE`. See vigild(8) for files, signals and exit codes.
#[derive(Debug, Clone, Parser)]
#[command(name = "vigild", version)]
pub struct Args {
    /// Config file to load (TOML).
    #[arg(short = 'f', long, env = "VIGIL_CONFIG", default_value = DEFAULT_CONFIG_PATH)]
    pub config: PathBuf,

    /// Validate the config and exit: 0 when valid, 1 with one `file:line:col: message` line per
    /// error on stderr otherwise (like `keepalived -t`).
    #[arg(
        short = 't',
        long,
        env = "VIGIL_CHECK_CONFIG",
        // `VIGIL_CHECK_CONFIG=1` (or yes/on/true) as well as the flag.
        action = ArgAction::SetTrue,
        value_parser = BoolishValueParser::new()
    )]
    pub check_config: bool,

    /// Log line format; overrides `[global] log_format`.
    #[arg(long, env = "VIGIL_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,

    /// Log filter, e.g. `info` or `vigil_daemon=debug,info`; when absent `RUST_LOG` is used,
    /// then `info`.
    #[arg(long, env = "VIGIL_LOG_LEVEL")]
    pub log_level: Option<String>,
}

/// `--log-format` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormatArg {
    /// Human-readable lines.
    Plain,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(arg: LogFormatArg) -> Self {
        match arg {
            LogFormatArg::Plain => LogFormat::Plain,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn defaults_and_overrides() {
        let args = Args::try_parse_from(["vigild"]).unwrap();
        assert_eq!(args.config, PathBuf::from(DEFAULT_CONFIG_PATH));
        assert!(!args.check_config);
        assert_eq!(args.log_format, None);

        let args = Args::try_parse_from([
            "vigild",
            "-t",
            "--config",
            "/x.toml",
            "--log-format",
            "json",
        ])
        .unwrap();
        assert!(args.check_config);
        assert_eq!(args.config, PathBuf::from("/x.toml"));
        assert_eq!(args.log_format.map(LogFormat::from), Some(LogFormat::Json));
    }
}

//! vigil's configuration model: TOML in, validated [`Config`] out.
//!
//! SKELETON — the config issue fills in the whole model. The public contract that other crates
//! rely on from day one:
//! - [`load_file`] / [`load_str`] return a [`Config`] or *every* error found, as [`ConfigErrors`];
//! - each [`ConfigError`] displays as `FILE:LINE:COL: message`;
//! - `Config::global.log_format`, `Config::global.node_name`, `Config::api.listen`,
//!   `Config::api.token_file` and `Config::metrics.listen` exist with these names.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[global]`.
    pub global: Global,
    /// `[api]`: the local control API that `vigilctl` talks to.
    pub api: Api,
    /// `[metrics]`.
    pub metrics: Metrics,
}

/// `[global]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// This node's name (defaults to the host name).
    pub node_name: String,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[api]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// Where the control API listens; loopback by default.
    pub listen: SocketAddr,
    /// File holding the bearer token; no auth when absent.
    pub token_file: Option<PathBuf>,
}

/// `[metrics]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Where Prometheus metrics are served; off when absent.
    pub listen: Option<SocketAddr>,
}

/// One problem found in a config file, with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// File name as given by the caller.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub col: usize,
    /// What is wrong, and where possible how to fix it.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.col, self.message)
    }
}

/// Every error found in one config, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&src, &name),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: name,
            line: 1,
            col: 1,
            message: format!("cannot read config: {e}"),
        }])),
    }
}

/// Validates config text; `file` names it in error messages.
pub fn load_str(src: &str, file: &str) -> Result<Config, ConfigErrors> {
    let _ = (src, file);
    Ok(Config {
        global: Global { node_name: "vigil".into(), log_format: LogFormat::Plain },
        api: Api { listen: SocketAddr::from(([127, 0, 0, 1], 7400)), token_file: None },
        metrics: Metrics { listen: None },
    })
}

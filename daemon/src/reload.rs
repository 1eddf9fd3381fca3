//! What a reload did. Every outcome is logged and kept as the API's `last_reload`.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The result of one reload attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum ReloadOutcome {
    /// The new config is valid and is now the current one.
    Applied {
        /// The generation of the config now running.
        generation: u64,
        /// Whether the new config differs from the old one at all.
        changed: bool,
        /// Settings that changed but only take effect after a restart (e.g. `api.listen`).
        needs_restart: Vec<String>,
    },
    /// The new config is invalid; the previous one keeps running untouched.
    Rejected {
        /// The generation still running.
        generation: u64,
        /// Every problem found, each formatted `file:line:col: message`.
        errors: Vec<String>,
    },
}

impl ReloadOutcome {
    /// The config generation running after this reload.
    pub fn generation(&self) -> u64 {
        match self {
            Self::Applied { generation, .. } | Self::Rejected { generation, .. } => *generation,
        }
    }

    /// Whether the reload was refused.
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }

    /// Writes the outcome to the log: one line per config error, then a summary line, so each
    /// error stays greppable and a JSON log shipper sees one event per error.
    pub fn log(&self) {
        match self {
            Self::Applied {
                generation,
                changed,
                needs_restart,
            } => {
                for setting in needs_restart {
                    tracing::warn!(setting = %setting, "changed setting takes effect only after a restart");
                }
                tracing::info!(generation, changed, "config reload applied");
            }
            Self::Rejected { generation, errors } => {
                for error in errors {
                    tracing::error!("config error: {error}");
                }
                tracing::error!(
                    generation,
                    errors = errors.len(),
                    "config reload rejected; keeping the running config"
                );
            }
        }
    }
}

/// A [`ReloadOutcome`] with the time it happened: the body of `POST /v1/reload` and the
/// `last_reload` field of `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadReport {
    /// When the reload finished, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
    /// What it did.
    pub outcome: ReloadOutcome,
}

impl ReloadReport {
    /// Stamps `outcome` with the current wall-clock time.
    pub fn now(outcome: ReloadOutcome) -> Self {
        Self {
            at_unix_secs: unix_now(),
            outcome,
        }
    }
}

/// Seconds since the Unix epoch; 0 if the clock is before 1970, which only a broken RTC causes.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_format_is_tagged_and_stable() {
        let report = ReloadReport {
            at_unix_secs: 7,
            outcome: ReloadOutcome::Rejected {
                generation: 3,
                errors: vec!["a.toml:1:1: unknown key `bogus`".into()],
            },
        };
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "at_unix_secs": 7,
                "outcome": {
                    "result": "rejected",
                    "generation": 3,
                    "errors": ["a.toml:1:1: unknown key `bogus`"],
                }
            })
        );
        let back: ReloadReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, report);
        assert!(back.outcome.is_rejected());
        assert_eq!(back.outcome.generation(), 3);
    }

    #[test]
    fn applied_round_trips() {
        let outcome = ReloadOutcome::Applied {
            generation: 2,
            changed: true,
            needs_restart: vec![],
        };
        let json = serde_json::to_string(&outcome).unwrap();
        assert!(json.contains(r#""result":"applied""#), "{json}");
        assert_eq!(
            serde_json::from_str::<ReloadOutcome>(&json).unwrap(),
            outcome
        );
        assert!(!outcome.is_rejected());
    }
}

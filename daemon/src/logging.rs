//! The tracing subscriber: plain lines for humans, JSON lines for log shippers; always stderr,
//! which journald captures. The real-time VRRP threads never write to stderr themselves: their
//! lines go through a bounded queue to a writer thread ([`queue`]).

mod queue;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use vigil_conf::LogFormat;

pub use queue::{Output, QUEUE_LINES, QueuedWriter, enter_nonblocking};

/// The installed writer, for [`flush`] at exit.
static WRITER: OnceLock<QueuedWriter> = OnceLock::new();

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// The `--log-level` / `RUST_LOG` directive does not parse.
    #[error("invalid log filter {filter:?}: {source}")]
    Filter {
        /// The directive as given.
        filter: String,
        /// The parser's complaint.
        source: tracing_subscriber::filter::ParseError,
    },
    /// A global subscriber was already installed (only possible when embedding the library).
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
}

/// Installs the global subscriber.
///
/// `level` (the `--log-level` flag) wins over `RUST_LOG`, which wins over `info`. At `info`,
/// openraft logs only warnings: it logs several lines per election and per membership change at
/// `info`, which drowns vigild's own lines; `RUST_LOG=info,openraft=info` brings them back.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), LoggingError> {
    let filter = filter(level, std::env::var("RUST_LOG").ok().as_deref())?;
    let json = format == LogFormat::Json;
    let writer =
        match QueuedWriter::start(Arc::new(Mutex::new(std::io::stderr())), QUEUE_LINES, json) {
            Ok(queued) => {
                let _ = WRITER.set(queued.clone());
                BoxMakeWriter::new(queued)
            }
            // No thread for the queue: every line written directly, as before.
            Err(_) => BoxMakeWriter::new(std::io::stderr),
        };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Colour codes only for a person at a terminal, never into journald or a file.
        .with_ansi(std::io::stderr().is_terminal());
    let result = match format {
        LogFormat::Plain => builder.try_init(),
        // Fields at the top level of each object, so `jq .instance` works without `.fields`.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|_| LoggingError::AlreadyInstalled)
}

/// Writes out what the VRRP threads' queue still holds, waiting at most `limit` (at exit).
pub fn flush(limit: Duration) {
    if let Some(writer) = WRITER.get() {
        writer.flush(limit);
    }
}

/// Log lines of the VRRP threads dropped so far because the output fell behind.
pub fn dropped_lines() -> u64 {
    WRITER.get().map_or(0, QueuedWriter::dropped_total)
}

/// The directive used when none is given, or when the one given is the bare level `info`.
const QUIET_INFO: &str = "info,openraft=warn";

/// Picks and parses the filter directive.
fn filter(level: Option<&str>, rust_log: Option<&str>) -> Result<EnvFilter, LoggingError> {
    let directive = match level.or(rust_log) {
        None => QUIET_INFO,
        Some(d) if d.trim().eq_ignore_ascii_case("info") => QUIET_INFO,
        Some(d) => d,
    };
    EnvFilter::try_new(directive).map_err(|source| LoggingError::Filter {
        filter: directive.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_wins_over_rust_log() {
        let f = filter(Some("debug"), Some("warn")).unwrap();
        assert_eq!(f.to_string(), "debug");
        let f = filter(None, Some("warn")).unwrap();
        assert_eq!(f.to_string(), "warn");
        let f = filter(None, None).unwrap();
        assert_eq!(f.to_string(), "openraft=warn,info");
    }

    #[test]
    fn openraft_is_quiet_at_info_unless_asked_for() {
        let f = filter(Some("info"), None).unwrap();
        assert!(f.to_string().contains("openraft=warn"), "{f}");
        let f = filter(None, Some("info,openraft=info")).unwrap();
        assert!(f.to_string().contains("openraft=info"), "{f}");
        let f = filter(Some("debug"), None).unwrap();
        assert_eq!(f.to_string(), "debug");
    }

    #[test]
    fn bad_filter_is_an_error() {
        let err = filter(Some("vigil=notalevel"), None).unwrap_err();
        assert!(err.to_string().contains("vigil=notalevel"), "{err}");
    }
}

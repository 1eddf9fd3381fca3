//! One attempt of one check: connect, exchange, judge. Every probe is a future with no task or
//! thread of its own; the scheduler polls thousands of them together.

mod dns;
mod http;
mod net;
mod script;
mod smtp;
mod tls;
mod udp;

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::spec::{CheckKind, CheckSpec};

pub use http::{ResponseError, parse_response_head};
pub use tls::TlsError;

/// The result of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether the attempt succeeded.
    pub ok: bool,
    /// Time from start to verdict.
    pub latency: Duration,
    /// Why it failed (or a short note on success, e.g. the HTTP status).
    pub detail: String,
    /// Weight reported by a dynamic-weight script.
    pub weight: Option<u32>,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// No verdict within the timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// Socket-level failure (refused, unreachable, reset, …).
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The peer spoke, but not acceptably.
    #[error("{0}")]
    Protocol(String),
    /// A TLS handshake or configuration problem.
    #[error("tls: {0}")]
    Tls(String),
    /// A script exited with a failing code or by a signal.
    #[error("{0}")]
    Script(String),
}

/// Per-check state built once when a check is added, not on every attempt (TLS configs are
/// costly to build and immutable).
#[derive(Clone, Default)]
pub struct Prepared {
    tls: Option<Arc<rustls::ClientConfig>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Prepared {
    /// Builds what the check needs (a TLS client config for HTTPS).
    pub fn new(spec: &CheckSpec) -> Result<Self, TlsError> {
        let tls = match &spec.kind {
            CheckKind::Http(h) => match &h.tls {
                Some(t) => Some(tls::client_config(t)?),
                None => None,
            },
            _ => None,
        };
        Ok(Prepared { tls })
    }
}

/// Runs one attempt of `spec`, bounded by its timeout.
pub async fn probe(spec: &CheckSpec, prepared: &Prepared, seq: u16) -> ProbeOutcome {
    let start = Instant::now();
    let timeout = spec.timing.timeout;
    let result = match tokio::time::timeout(timeout, attempt(spec, prepared, seq)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    };
    let latency = start.elapsed();
    match result {
        Ok((detail, weight)) => ProbeOutcome {
            ok: true,
            latency,
            detail,
            weight,
        },
        Err(e) => ProbeOutcome {
            ok: false,
            latency,
            detail: e.to_string(),
            weight: None,
        },
    }
}

type AttemptResult = Result<(String, Option<u32>), ProbeError>;

/// Every kind but TCP runs boxed: an `async fn` is as large as its largest state, and the
/// scheduler allocates one attempt future per check per round, so inlined HTTP/TLS/DNS states
/// (several KiB of buffers and handshake state) would make every TCP check allocate them too.
/// At 10,000 checks a second that churn, spread over the runtime's worker threads, kept tens of
/// MB of allocator arenas resident.
async fn attempt(spec: &CheckSpec, prepared: &Prepared, seq: u16) -> AttemptResult {
    match &spec.kind {
        CheckKind::Tcp => {
            net::connect_and_reset(spec.target, &spec.source).await?;
            Ok(("connected".into(), None))
        }
        CheckKind::Http(h) => Box::pin(http::check(spec, h, prepared.tls.as_ref())).await,
        CheckKind::Script(s) => Box::pin(script::check(spec, s)).await,
        CheckKind::Dns(d) => Box::pin(dns::check(spec, d, seq)).await,
        CheckKind::Udp(u) => Box::pin(udp::check(spec, u)).await,
        CheckKind::Smtp(s) => Box::pin(smtp::check(spec, s)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{HttpCheck, Source, Timing};

    fn spec(kind: CheckKind) -> CheckSpec {
        CheckSpec {
            target: "127.0.0.1:9".parse().expect("addr"),
            kind,
            timing: Timing::default(),
            source: Source::default(),
            start_down: false,
        }
    }

    /// The scheduler boxes one attempt per check per round; a TCP attempt must not carry the
    /// other kinds' state (see `attempt`).
    #[test]
    fn an_attempt_future_is_small_whatever_the_kind() {
        let prepared = Prepared::default();
        for kind in [CheckKind::Tcp, CheckKind::Http(HttpCheck::get("/"))] {
            let spec = spec(kind);
            let size = std::mem::size_of_val(&probe(&spec, &prepared, 0));
            assert!(
                size < 1024,
                "{} attempt future is {size} bytes",
                spec.kind.name()
            );
        }
    }
}

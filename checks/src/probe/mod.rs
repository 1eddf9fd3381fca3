//! One attempt of one check: connect, exchange, judge. Every probe is a future with no task or
//! thread of its own; the scheduler polls thousands of them together.

mod dns;
mod half_open;
mod http;
mod net;
mod script;
pub mod segment;
mod smtp;
mod tls;
mod udp;

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::spec::{CheckKind, CheckSpec};

pub(crate) use half_open::{SynProber, TICK as SYN_TICK};
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

impl ProbeOutcome {
    /// The outcome of an attempt that ended with `verdict` after `latency`.
    pub(crate) fn new(verdict: Verdict, latency: Duration) -> Self {
        let mut outcome = ProbeOutcome {
            ok: false,
            latency,
            detail: String::new(),
            weight: None,
        };
        outcome.set(verdict, latency);
        outcome
    }

    /// Overwrites this outcome with a newer one, keeping the buffer of `detail`: a check that
    /// keeps succeeding (or failing the same way) allocates nothing for it.
    pub(crate) fn set(&mut self, verdict: Verdict, latency: Duration) {
        self.latency = latency;
        match verdict {
            Ok((detail, weight)) => {
                self.ok = true;
                self.weight = weight;
                if self.detail != detail {
                    self.detail.clear();
                    self.detail.push_str(&detail);
                }
            }
            Err(e) => {
                self.ok = false;
                self.weight = None;
                self.detail.clear();
                // Writing to a String cannot fail.
                let _ = write!(self.detail, "{e}");
            }
        }
    }
}

/// What wrote an outcome's `detail`, when the same cause would write the same text: a server
/// that stays down fails the same way every round, and formatting its error (an `strerror` and
/// a `write!`) costs more than the rest of a refused attempt; one that stays up succeeds with
/// the same static note, and even comparing that costs a call per attempt.
#[derive(Debug, Default)]
pub(crate) struct DetailOf(Option<Written>);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Os(i32),
    Timeout(Duration),
    /// A success's static note, by address and length.
    Note(usize, usize),
}

impl ProbeOutcome {
    /// [`set`](Self::set), skipping the text when `of` says `detail` already holds it.
    pub(crate) fn update(&mut self, verdict: Verdict, latency: Duration, of: &mut DetailOf) {
        let written = match &verdict {
            Err(ProbeError::Io(e)) => e.raw_os_error().map(Written::Os),
            Err(ProbeError::Timeout(t)) => Some(Written::Timeout(*t)),
            Ok((Cow::Borrowed(note), _)) => Some(Written::Note(note.as_ptr() as usize, note.len())),
            _ => None,
        };
        if written.is_some() && written == of.0 && self.ok == verdict.is_ok() {
            self.latency = latency;
            if let Ok((_, weight)) = verdict {
                self.weight = weight;
            }
            return;
        }
        self.set(verdict, latency);
        of.0 = written;
    }
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
    /// An HTTP check's request bytes (path, `Host`), the same for every attempt.
    http_request: Option<Arc<[u8]>>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("tls", &self.tls.is_some())
            .field("http_request", &self.http_request.as_ref().map(|r| r.len()))
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
        let http_request = match &spec.kind {
            CheckKind::Http(h) => Some(http::request(spec, h)),
            _ => None,
        };
        Ok(Prepared { tls, http_request })
    }
}

/// Runs one attempt of `spec`, bounded by its timeout.
pub async fn probe(spec: &CheckSpec, prepared: &Prepared, seq: u16) -> ProbeOutcome {
    let start = Instant::now();
    let timeout = spec.timing.timeout;
    let verdict = match tokio::time::timeout(timeout, alone(spec, prepared, seq)).await {
        Ok(r) => r,
        Err(_) => Err(ProbeError::Timeout(timeout)),
    };
    ProbeOutcome::new(verdict, start.elapsed())
}

/// The verdict of the half-open attempt whose SYN was sent or queued (see
/// [`SynProber::queue`]) as `ack`: the scheduler sends the SYNs of the attempts it starts
/// together in one system call.
pub(crate) async fn half_open(syn: Arc<SynProber>, ack: std::io::Result<u32>) -> Verdict {
    half_open::wait(syn, ack).await?;
    Ok((Cow::Borrowed("SYN-ACK"), None))
}

/// [`attempt`] outside a scheduler, which would otherwise drain the half-open check's socket.
async fn alone(spec: &CheckSpec, prepared: &Prepared, seq: u16) -> Verdict {
    let syn = Arc::<SynProber>::default();
    let attempt = attempt(spec, prepared, seq, &syn);
    if matches!(spec.kind, CheckKind::TcpHalfOpen) {
        half_open::drained(&syn, attempt).await
    } else {
        attempt.await
    }
}

/// What one attempt found: a note on success (static for the common cases, so that the
/// scheduler's steady state allocates nothing for it) and a dynamic weight, or why it failed.
pub(crate) type Verdict = Result<(Cow<'static, str>, Option<u32>), ProbeError>;

/// What a probe of one kind found.
type AttemptResult = Result<(String, Option<u32>), ProbeError>;

/// Every kind but TCP runs boxed: an `async fn` is as large as its largest state, and the
/// scheduler keeps every attempt in flight inline in a slot of its own, so inlined HTTP/TLS/DNS
/// states (several KiB of buffers and handshake state) would make every TCP check's slot that
/// large too (and, when attempts were boxed, every TCP check allocate them: at 10,000 checks a
/// second that churn kept tens of MB of allocator arenas resident).
///
/// Not bounded by the timeout: [`probe`] bounds it, and the scheduler, which keeps the
/// deadlines of all its attempts itself, cancels an attempt that is late.
///
/// `syn` sends the half-open checks' SYNs and reads their answers; whoever polls the attempt
/// must [`drain`](SynProber::drain) it.
pub(crate) async fn attempt(
    spec: &CheckSpec,
    prepared: &Prepared,
    seq: u16,
    syn: &Arc<SynProber>,
) -> Verdict {
    let found = match &spec.kind {
        CheckKind::Tcp => {
            net::connect_and_reset(spec.target, &spec.source).await?;
            return Ok((Cow::Borrowed("connected"), None));
        }
        CheckKind::TcpHalfOpen => {
            let ack = syn.send(spec.target, &spec.source);
            return half_open(syn.clone(), ack).await;
        }
        CheckKind::Http(h) => {
            // A `Prepared` made by hand (`Default`) has no request yet: build it here.
            let built;
            let request = if let Some(r) = &prepared.http_request {
                r
            } else {
                built = http::request(spec, h);
                &built
            };
            return Box::pin(http::check(spec, h, request, prepared.tls.as_ref())).await;
        }
        CheckKind::Script(s) => Box::pin(script::check(spec, s)).await,
        CheckKind::Dns(d) => Box::pin(dns::check(spec, d, seq)).await,
        CheckKind::Udp(u) => Box::pin(udp::check(spec, u)).await,
        CheckKind::Smtp(s) => Box::pin(smtp::check(spec, s)).await,
    };
    found.map(|(detail, weight)| (Cow::Owned(detail), weight))
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

    /// An outcome overwritten in place reads as a fresh one would, whether its text was kept
    /// (the same failure again) or rewritten.
    #[test]
    fn an_updated_outcome_reads_as_a_new_one() {
        use std::io::{Error, ErrorKind};
        let refused = || Err(ProbeError::Io(Error::from_raw_os_error(111)));
        let ms = Duration::from_millis;
        let verdicts: Vec<fn() -> Verdict> = vec![
            refused,
            refused,
            || Err(ProbeError::Timeout(Duration::from_secs(1))),
            || Err(ProbeError::Timeout(Duration::from_secs(1))),
            refused,
            || Ok(("connected".into(), None)),
            refused,
            || Err(ProbeError::Io(ErrorKind::UnexpectedEof.into())),
            || Ok(("weighed".into(), Some(3))),
            || Ok(("weighed".into(), Some(5))),
            || Ok(("weighed".into(), Some(5))),
            || Ok(("connected".into(), None)),
            || Ok(("connected".into(), None)),
            || Ok((Cow::Owned("owned".into()), Some(1))),
            || Ok(("connected".into(), None)),
            refused,
            || Ok(("connected".into(), None)),
        ];
        let mut outcome = ProbeOutcome::new(Ok(("".into(), None)), ms(0));
        let mut of = DetailOf::default();
        for (i, verdict) in verdicts.into_iter().enumerate() {
            outcome.update(verdict(), ms(i as u64), &mut of);
            assert_eq!(
                outcome,
                ProbeOutcome::new(verdict(), ms(i as u64)),
                "step {i}"
            );
        }
    }

    /// The scheduler holds every attempt in flight inline; a TCP attempt must not carry the
    /// other kinds' state (see `attempt`).
    #[test]
    fn an_attempt_future_is_small_whatever_the_kind() {
        let prepared = Prepared::default();
        let syn = Arc::default();
        for kind in [
            CheckKind::Tcp,
            CheckKind::TcpHalfOpen,
            CheckKind::Http(HttpCheck::get("/")),
        ] {
            let spec = spec(kind);
            let size = std::mem::size_of_val(&probe(&spec, &prepared, 0))
                .max(std::mem::size_of_val(&attempt(&spec, &prepared, 0, &syn)));
            assert!(
                size < 1024,
                "{} attempt future is {size} bytes",
                spec.kind.name()
            );
        }
    }
}

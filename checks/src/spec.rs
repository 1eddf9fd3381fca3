//! What to check and how often: the checker's own description of a check, independent of the
//! config file format (the daemon maps `vigil-conf` types onto these).

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// One check of one real server.
#[derive(Debug, Clone)]
pub struct CheckSpec {
    /// The address probed (for scripts: exported to the script as `VIGIL_RS_ADDR`/`_PORT`).
    pub target: SocketAddr,
    /// The kind of probe and its kind-specific settings.
    pub kind: CheckKind,
    /// How often, how patiently and with what hysteresis.
    pub timing: Timing,
    /// Where probes leave from; the kernel chooses when unset.
    pub source: Source,
    /// Whether the server counts as down until its first successful round (keepalived's
    /// `alpha`). Without it a freshly added server is trusted until proven bad, which avoids
    /// emptying a pool on a daemon restart.
    pub start_down: bool,
}

/// Kind-specific probe settings.
#[derive(Debug, Clone)]
pub enum CheckKind {
    /// A TCP connect that completes within the timeout.
    Tcp,
    /// A SYN answered with a SYN-ACK within the timeout, from a raw socket; no connection is
    /// made (see `probe::half_open`). Needs `CAP_NET_RAW`.
    TcpHalfOpen,
    /// An HTTP/1.1 `GET` (HTTPS when `tls` is set).
    Http(HttpCheck),
    /// An external program; its exit code decides.
    Script(ScriptCheck),
    /// A DNS query over UDP that must get an answer.
    Dns(DnsCheck),
    /// A UDP datagram, optionally with a required reply.
    Udp(UdpCheck),
    /// An SMTP greeting (220) and a `HELO` accepted with 250.
    Smtp(SmtpCheck),
}

impl CheckKind {
    /// Short lower-case name for logs, metrics labels and status output.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "tcp",
            CheckKind::TcpHalfOpen => "tcp-half-open",
            CheckKind::Http(h) if h.tls.is_some() => "https",
            CheckKind::Http(_) => "http",
            CheckKind::Script(_) => "script",
            CheckKind::Dns(_) => "dns",
            CheckKind::Udp(_) => "udp",
            CheckKind::Smtp(_) => "smtp",
        }
    }
}

/// Scheduling and hysteresis of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// Time between the starts of two rounds (less up to 2% of jitter, never more, so that a
    /// failure is noticed within one interval).
    pub interval: Duration,
    /// Limit for one attempt (connect plus exchange).
    pub timeout: Duration,
    /// Extra attempts within a round before the round counts as failed, spent only while the
    /// server is up (as keepalived's MISC_CHECK and DNS_CHECK spend `retry`): a down server
    /// gets one attempt per round.
    pub retries: u32,
    /// Pause between the attempts of one round.
    pub retry_delay: Duration,
    /// Consecutive successful rounds that bring a down server up.
    pub rise: u32,
    /// Consecutive failed rounds that take an up server down.
    pub fall: u32,
    /// The first round starts at a random point within this span, so that thousands of checks
    /// configured at once do not all fire in the same millisecond.
    pub warmup: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            retries: 0,
            retry_delay: Duration::from_secs(1),
            rise: 1,
            fall: 1,
            warmup: Duration::ZERO,
        }
    }
}

/// Source address or interface for probes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Source {
    /// Local address to bind before connecting.
    pub bind_addr: Option<IpAddr>,
    /// Interface to bind to (`SO_BINDTODEVICE`).
    pub bind_device: Option<String>,
}

/// An HTTP or HTTPS `GET` check.
#[derive(Debug, Clone)]
pub struct HttpCheck {
    /// Request path, starting with `/`.
    pub path: String,
    /// `Host` header; the target address when unset.
    pub host: Option<String>,
    /// Accepted status codes; empty means 200..=299.
    pub expect_status: Vec<RangeInclusive<u16>>,
    /// The body must match this regular expression.
    pub body_regex: Option<regex::Regex>,
    /// The body must hash to this digest.
    pub digest: Option<Digest>,
    /// TLS settings; plain HTTP when unset.
    pub tls: Option<TlsCheck>,
    /// Bodies longer than this fail the check rather than being buffered without bound.
    pub max_body: usize,
}

impl HttpCheck {
    /// A plain `GET path` expecting a 2xx answer.
    pub fn get(path: impl Into<String>) -> Self {
        HttpCheck {
            path: path.into(),
            host: None,
            expect_status: Vec::new(),
            body_regex: None,
            digest: None,
            tls: None,
            max_body: 1 << 20,
        }
    }

    /// Whether `status` is accepted.
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..=299).contains(&status)
        } else {
            self.expect_status.iter().any(|r| r.contains(&status))
        }
    }
}

/// Expected digest of an HTTP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256.
    Sha256([u8; 32]),
    /// MD5, for parity with keepalived's `digest` (integrity against accidents, not attackers).
    Md5([u8; 16]),
}

/// TLS settings of an HTTPS check.
#[derive(Debug, Clone)]
pub struct TlsCheck {
    /// Server name sent in SNI and verified; the `Host` or target IP when unset.
    pub sni: Option<String>,
    /// Verify the certificate chain and name. Off by default in keepalived's SSL_GET; vigil
    /// makes it explicit per check.
    pub verify: bool,
    /// PEM bundle of trusted roots; the system bundle when unset.
    pub ca_file: Option<PathBuf>,
}

/// A script check.
#[derive(Debug, Clone)]
pub struct ScriptCheck {
    /// Program and arguments (no shell involved).
    pub argv: Vec<String>,
    /// keepalived's `misc_dynamic`: exit 0 = up with the configured weight, 1 = down,
    /// 2..=255 = up with weight `code - 2`.
    pub dynamic_weight: bool,
    /// Run as this user id (and group id); the daemon's own when unset.
    pub uid: Option<u32>,
    /// Group id to run as.
    pub gid: Option<u32>,
}

/// A DNS check.
#[derive(Debug, Clone)]
pub struct DnsCheck {
    /// Name to query.
    pub name: String,
    /// Query type (1 = A, 28 = AAAA, 15 = MX, …).
    pub qtype: u16,
}

/// A UDP check.
#[derive(Debug, Clone)]
pub struct UdpCheck {
    /// Datagram to send.
    pub payload: Arc<[u8]>,
    /// When set, a reply starting with these bytes is required; when unset the check fails
    /// only on an ICMP error (port unreachable), like keepalived's UDP_CHECK.
    pub expect_prefix: Option<Arc<[u8]>>,
}

/// An SMTP check.
#[derive(Debug, Clone)]
pub struct SmtpCheck {
    /// Name sent with `HELO`.
    pub helo: String,
}

//! Health checks of real servers.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One `[[virtual_server.real_server.check]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// What is checked and how.
    pub kind: CheckKind,
    /// Time between checks. Default 5s.
    pub interval: Duration,
    /// Give up on one attempt after. Default 3s.
    pub timeout: Duration,
    /// Extra attempts within one round before the round counts as failed, made only while the
    /// server is up. Default 0.
    pub retries: u32,
    /// Pause between attempts. Default 1s.
    pub retry_delay: Duration,
    /// Consecutive successes to mark the server up. Default 1.
    pub rise: u32,
    /// Consecutive failures to mark the server down. Default 1.
    pub fall: u32,
    /// The first check runs after a random delay in 0..warmup, spreading load at start-up.
    /// Default: the interval.
    pub warmup: Duration,
    /// Port to check instead of the real server's port.
    pub port: Option<u16>,
    /// Source address of check traffic.
    pub bind: Option<IpAddr>,
    /// Interface to send check traffic from (`SO_BINDTODEVICE`).
    pub bind_device: Option<String>,
}

/// Checker type and its specific settings.
#[derive(Debug, Clone, PartialEq)]
pub enum CheckKind {
    /// TCP connect.
    Tcp,
    /// TCP half-open: a SYN from a raw socket, up on SYN-ACK; no connection is made
    /// (`type = "tcp"` with `half_open = true`).
    TcpHalfOpen,
    /// HTTP or HTTPS GET (`tls` is `Some` for https).
    Http(HttpCheck),
    /// Run a program; exit 0 is success.
    Script {
        /// argv; run without a shell, as `[global] script_user`.
        command: Vec<String>,
        /// keepalived's `misc_dynamic`: exit 0 = up, 1 = down, 2..=255 = up with weight
        /// `code - 2`. Default false.
        dynamic_weight: bool,
    },
    /// DNS query; any answer of the type is success.
    Dns(DnsCheck),
    /// UDP probe.
    Udp(UdpCheck),
    /// SMTP: expect a 2xx greeting, send HELO, expect 250.
    Smtp {
        /// HELO name. Default: the node name.
        helo: String,
    },
}

/// HTTP(S) check settings.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpCheck {
    /// Request path. Default `/`.
    pub path: String,
    /// Accepted status codes. Default 200–299.
    pub status: Vec<StatusRange>,
    /// Body must match this regex (validated at load).
    pub body_regex: Option<String>,
    /// Body digest must equal this.
    pub digest: Option<Digest>,
    /// `Host` header. Default: the real server address.
    pub host: Option<String>,
    /// TLS settings for https; `None` for plain http.
    pub tls: Option<TlsOptions>,
}

/// An inclusive range of HTTP status codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusRange {
    /// Lowest accepted code.
    pub from: u16,
    /// Highest accepted code.
    pub to: u16,
}

impl StatusRange {
    /// Whether `code` is in the range.
    pub fn contains(&self, code: u16) -> bool {
        (self.from..=self.to).contains(&code)
    }
}

/// Expected digest of an HTTP body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    /// SHA-256.
    Sha256([u8; 32]),
    /// MD5 (keepalived compatibility).
    Md5([u8; 16]),
}

/// TLS settings of an https check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    /// Server name to send; default the `host` setting, else none.
    pub sni: Option<String>,
    /// Verify the server certificate chain and name. Default true.
    pub verify_cert: bool,
    /// PEM bundle of trusted roots; the system roots when `None`.
    pub ca_file: Option<PathBuf>,
}

/// DNS check settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsCheck {
    /// Name to query.
    pub name: String,
    /// Record type. Default A.
    pub record_type: DnsType,
}

/// DNS record types a check may query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DnsType {
    /// IPv4 address.
    #[default]
    A,
    /// IPv6 address.
    Aaaa,
    /// Canonical name.
    Cname,
    /// Mail exchanger.
    Mx,
    /// Name server.
    Ns,
    /// Pointer (reverse lookup).
    Ptr,
    /// Start of authority.
    Soa,
    /// Service locator.
    Srv,
    /// Text.
    Txt,
}

/// UDP check settings.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UdpCheck {
    /// Bytes to send. Default: an empty datagram.
    pub payload: Vec<u8>,
    /// The reply must start with these bytes; `None` accepts any reply (and no ICMP error).
    pub expect: Option<Vec<u8>>,
}

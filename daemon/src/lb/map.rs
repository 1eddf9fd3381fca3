//! Config → runtime types: a `[[virtual_server]]` becomes a [`lvs::VsPolicy`] for `vigil-lvs`,
//! and each `[[virtual_server.real_server.check]]` a [`CheckSpec`] for `vigil-checks`.
//!
//! Check identities are derived, not allocated: [`check_id`] hashes (virtual server, real server
//! address and port, check index), so the same check in the next config gets the same
//! [`CheckId`] and the scheduler keeps its rise/fall state across a reload.

use std::net::SocketAddr;
use std::sync::Arc;

use vigil_checks::spec::{DnsCheck, ScriptCheck, SmtpCheck, TlsCheck, UdpCheck};
use vigil_checks::{CheckId, CheckSpec, Source, Timing};
use vigil_conf as conf;
use vigil_lvs as lvs;

/// Bodies larger than this fail an HTTP check instead of being buffered.
const HTTP_MAX_BODY: usize = 1 << 20;

/// Why a config cannot be turned into checks.
#[derive(Debug, thiserror::Error)]
pub enum MapError {
    /// `[global] script_user` does not exist on this host.
    #[error("script_user {0:?} does not exist")]
    UnknownUser(String),
    /// `[global] script_group` does not exist on this host.
    #[error("script_group {0:?} does not exist")]
    UnknownGroup(String),
    /// The user database could not be read.
    #[error("cannot look up {name:?}: {source}")]
    Lookup {
        /// The user or group name.
        name: String,
        /// The libc error.
        source: nix::Error,
    },
    /// A body regex that `vigil-conf` accepted but the regex engine refuses (size limits).
    #[error("{virtual_server} {real_server} check {index}: bad body_regex: {source}")]
    Regex {
        /// The virtual server.
        virtual_server: conf::VsKey,
        /// The real server, `addr:port`.
        real_server: SocketAddr,
        /// Index of the check within the real server.
        index: usize,
        /// What the engine said.
        source: regex::Error,
    },
    /// An https check whose TLS settings cannot be used (unreadable or bad CA file).
    #[error("{virtual_server} {real_server} check {index}: {message}")]
    Tls {
        /// The virtual server.
        virtual_server: conf::VsKey,
        /// The real server, `addr:port`.
        real_server: SocketAddr,
        /// Index of the check within the real server.
        index: usize,
        /// What was wrong.
        message: String,
    },
    /// Two checks hashed to the same [`CheckId`] (see [`check_id`]); practically impossible.
    #[error("check id collision between {0}")]
    IdCollision(String),
}

/// The uid/gid that script checks run as, resolved from `[global] script_user`/`script_group`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptIdentity {
    /// User id.
    pub uid: u32,
    /// Group id.
    pub gid: u32,
}

impl ScriptIdentity {
    /// Looks the configured user (and group, else the user's primary group) up in the system's
    /// user database. Only needed when the config has script checks.
    pub fn resolve(global: &conf::Global) -> Result<Self, MapError> {
        let lookup = |source| MapError::Lookup {
            name: global.script_user.clone(),
            source,
        };
        let user = nix::unistd::User::from_name(&global.script_user)
            .map_err(lookup)?
            .ok_or_else(|| MapError::UnknownUser(global.script_user.clone()))?;
        let gid = match &global.script_group {
            None => user.gid.as_raw(),
            Some(name) => nix::unistd::Group::from_name(name)
                .map_err(|source| MapError::Lookup {
                    name: name.clone(),
                    source,
                })?
                .ok_or_else(|| MapError::UnknownGroup(name.clone()))?
                .gid
                .as_raw(),
        };
        let euid = nix::unistd::geteuid();
        if !euid.is_root() && euid != user.uid {
            tracing::warn!(
                script_user = %global.script_user,
                uid = euid.as_raw(),
                "not running as root: script checks run as the daemon's own user, not script_user"
            );
        }
        Ok(Self {
            uid: user.uid.as_raw(),
            gid,
        })
    }

    /// [`ScriptIdentity::resolve`] only if some check of `config` is a script.
    pub fn resolve_if_needed(config: &conf::Config) -> Result<Option<Self>, MapError> {
        let any_script = config
            .virtual_servers
            .iter()
            .flat_map(|vs| &vs.real_servers)
            .flat_map(|rs| &rs.checks)
            .any(|c| matches!(c.kind, conf::CheckKind::Script { .. }));
        if any_script {
            Self::resolve(&config.global).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// The stable identity of check number `index` of real server `real` in virtual server `vs`.
///
/// FNV-1a over a canonical text form: deterministic across reloads and restarts, independent of
/// the order of virtual servers in the file. With 64 bits, a collision among even a million
/// checks has a probability around 3·10⁻⁸.
pub fn check_id(vs: &conf::VsKey, real: SocketAddr, index: usize) -> CheckId {
    let text = format!("{vs}|{real}|{index}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    CheckId(hash)
}

/// The IPVS destination key of a real server.
pub fn dest_key(real: &conf::RealServer) -> lvs::DestKey {
    lvs::DestKey {
        addr: real.addr,
        port: real.port,
    }
}

/// The kernel key of a virtual server.
pub fn service_key(key: &conf::VsKey) -> lvs::ServiceKey {
    match *key {
        conf::VsKey::Addr { addr, protocol } => match protocol {
            conf::Protocol::Tcp => lvs::ServiceKey::Tcp(addr.ip(), addr.port()),
            conf::Protocol::Udp => lvs::ServiceKey::Udp(addr.ip(), addr.port()),
            conf::Protocol::Sctp => lvs::ServiceKey::Sctp(addr.ip(), addr.port()),
        },
        conf::VsKey::Fwmark { mark, family } => lvs::ServiceKey::Fwmark(
            mark,
            match family {
                conf::AddressFamily::Ipv4 => lvs::Family::V4,
                conf::AddressFamily::Ipv6 => lvs::Family::V6,
            },
        ),
    }
}

/// The LVS policy of a virtual server.
pub fn vs_policy(vs: &conf::VirtualServer) -> lvs::VsPolicy {
    let fwd = forwarding(vs.forwarding);
    let mut flags = lvs::ServiceFlags::empty();
    if vs.sched_flags.fallback {
        flags = flags | lvs::ServiceFlags::SCHED1;
    }
    if vs.sched_flags.port {
        flags = flags | lvs::ServiceFlags::SCHED2;
    }
    let service = lvs::Service {
        key: service_key(&vs.service),
        scheduler: scheduler(vs.scheduler),
        flags,
        persistence: vs.persistence.map(|p| lvs::Persistence {
            // The kernel rejects a zero timeout; conf already demands whole seconds ≥ 1.
            timeout_s: u32::try_from(p.timeout.as_secs())
                .unwrap_or(u32::MAX)
                .max(1),
            netmask_prefix: p.prefix_len,
        }),
        pe_name: None,
    };
    let reals = vs
        .real_servers
        .iter()
        .map(|rs| lvs::RealServer {
            dest: lvs::Destination {
                key: dest_key(rs),
                weight: rs.weight,
                fwd,
                upper_threshold: rs.upper_threshold,
                lower_threshold: rs.lower_threshold,
                tunnel: lvs::TunnelType::Ipip,
            },
            inhibit_on_failure: vs.inhibit_on_failure,
        })
        .collect();
    lvs::VsPolicy {
        service,
        reals,
        sorry_server: vs
            .sorry_server
            .map(|s| lvs::Destination::new(s.ip(), s.port(), 1, fwd)),
        sorry_server_inhibit: false,
        quorum: vs.quorum,
        hysteresis: vs.hysteresis,
        alpha: vs.alpha,
        omega: vs.omega,
    }
}

fn forwarding(f: conf::Forwarding) -> lvs::Forwarding {
    match f {
        conf::Forwarding::Dr => lvs::Forwarding::DirectRoute,
        conf::Forwarding::Nat => lvs::Forwarding::Nat,
        conf::Forwarding::Tun => lvs::Forwarding::Tunnel,
    }
}

fn scheduler(s: conf::Scheduler) -> lvs::Scheduler {
    use conf::Scheduler as C;
    use lvs::Scheduler as L;
    match s {
        C::Rr => L::Rr,
        C::Wrr => L::Wrr,
        C::Lc => L::Lc,
        C::Wlc => L::Wlc,
        C::Lblc => L::Lblc,
        C::Lblcr => L::Lblcr,
        C::Dh => L::Dh,
        C::Sh => L::Sh,
        C::Sed => L::Sed,
        C::Nq => L::Nq,
        C::Fo => L::Fo,
        C::Ovf => L::Ovf,
        C::Mh => L::Mh,
        C::Twos => L::Twos,
    }
}

/// The address a check probes: the real server, on the check's own port if it has one.
pub fn check_target(real: &conf::RealServer, check: &conf::Check) -> SocketAddr {
    SocketAddr::new(real.addr, check.port.unwrap_or(real.port))
}

/// The checker's description of one configured check.
///
/// `script` must be `Some` when the check is a script (see
/// [`ScriptIdentity::resolve_if_needed`]); without it a script would run as vigild itself, so
/// the mapping refuses by reporting the configured user as unknown.
pub fn check_spec(
    vs: &conf::VirtualServer,
    real: &conf::RealServer,
    index: usize,
    check: &conf::Check,
    script: Option<ScriptIdentity>,
    script_user: &str,
) -> Result<CheckSpec, MapError> {
    let target = check_target(real, check);
    let kind = match &check.kind {
        conf::CheckKind::Tcp => vigil_checks::CheckKind::Tcp,
        conf::CheckKind::TcpHalfOpen => vigil_checks::CheckKind::TcpHalfOpen,
        conf::CheckKind::Http(h) => {
            let body_regex = h
                .body_regex
                .as_deref()
                .map(regex::Regex::new)
                .transpose()
                .map_err(|source| MapError::Regex {
                    virtual_server: vs.service,
                    real_server: SocketAddr::new(real.addr, real.port),
                    index,
                    source,
                })?;
            vigil_checks::CheckKind::Http(vigil_checks::HttpCheck {
                path: h.path.clone(),
                host: h.host.clone(),
                expect_status: h.status.iter().map(|r| r.from..=r.to).collect(),
                body_regex,
                digest: h.digest.map(|d| match d {
                    conf::Digest::Sha256(b) => vigil_checks::Digest::Sha256(b),
                    conf::Digest::Md5(b) => vigil_checks::Digest::Md5(b),
                }),
                tls: h.tls.as_ref().map(|t| TlsCheck {
                    // conf: "the SNI name (default: the host setting, else none)".
                    sni: t.sni.clone().or_else(|| h.host.clone()),
                    verify: t.verify_cert,
                    ca_file: t.ca_file.clone(),
                }),
                max_body: HTTP_MAX_BODY,
            })
        }
        conf::CheckKind::Script {
            command,
            dynamic_weight,
        } => {
            let id = script.ok_or_else(|| MapError::UnknownUser(script_user.to_owned()))?;
            vigil_checks::CheckKind::Script(ScriptCheck {
                argv: command.clone(),
                dynamic_weight: *dynamic_weight,
                uid: Some(id.uid),
                gid: Some(id.gid),
            })
        }
        conf::CheckKind::Dns(d) => vigil_checks::CheckKind::Dns(DnsCheck {
            name: d.name.clone(),
            qtype: dns_qtype(d.record_type),
        }),
        conf::CheckKind::Udp(u) => vigil_checks::CheckKind::Udp(UdpCheck {
            payload: Arc::from(u.payload.as_slice()),
            expect_prefix: u.expect.as_deref().map(Arc::from),
        }),
        conf::CheckKind::Smtp { helo } => {
            vigil_checks::CheckKind::Smtp(SmtpCheck { helo: helo.clone() })
        }
    };
    Ok(CheckSpec {
        target,
        kind,
        timing: Timing {
            interval: check.interval,
            timeout: check.timeout,
            retries: check.retries,
            retry_delay: check.retry_delay,
            rise: check.rise,
            fall: check.fall,
            warmup: check.warmup,
        },
        source: Source {
            bind_addr: check.bind,
            bind_device: check.bind_device.clone(),
        },
        start_down: vs.alpha,
    })
}

/// DNS query type numbers (RFC 1035 §3.2.2, RFC 3596, RFC 2782).
fn dns_qtype(t: conf::DnsType) -> u16 {
    match t {
        conf::DnsType::A => 1,
        conf::DnsType::Ns => 2,
        conf::DnsType::Cname => 5,
        conf::DnsType::Soa => 6,
        conf::DnsType::Ptr => 12,
        conf::DnsType::Mx => 15,
        conf::DnsType::Txt => 16,
        conf::DnsType::Aaaa => 28,
        conf::DnsType::Srv => 33,
    }
}

#[cfg(test)]
#[path = "map_tests.rs"]
mod tests;

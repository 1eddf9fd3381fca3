//! The IPVS table as vigil sees it: virtual services, their destinations (real servers) and the
//! observed table read back from the kernel.
//!
//! The same types describe the desired state (built from config and health) and the observed state
//! (decoded from the kernel), so the reconciler can compare them with `==`. Fields the kernel keeps
//! but config cannot set (counters, the internal `HASHED` flag) live only in the observed wrappers
//! [`ObservedService`] and [`ObservedDest`].

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

/// Address family of a firewall-mark service (the only key without an address to infer it from).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// AF_INET.
    V4,
    /// AF_INET6.
    V6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: IpAddr) -> Self {
        if addr.is_ipv4() { Self::V4 } else { Self::V6 }
    }
}

/// What identifies a virtual service in the kernel: protocol + address + port, or a firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// A TCP virtual service.
    Tcp(IpAddr, u16),
    /// A UDP virtual service.
    Udp(IpAddr, u16),
    /// An SCTP virtual service.
    Sctp(IpAddr, u16),
    /// A firewall-mark service (`ipvsadm -f`): packets carrying this mark, of this family.
    Fwmark(u32, Family),
}

impl ServiceKey {
    /// The address family the kernel files this service under.
    pub fn family(&self) -> Family {
        match *self {
            Self::Tcp(a, _) | Self::Udp(a, _) | Self::Sctp(a, _) => Family::of(a),
            Self::Fwmark(_, f) => f,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (proto, addr, port) = match *self {
            Self::Tcp(a, p) => ("tcp", a, p),
            Self::Udp(a, p) => ("udp", a, p),
            Self::Sctp(a, p) => ("sctp", a, p),
            Self::Fwmark(m, fam) => return write!(f, "fwmark {m} ({fam:?})"),
        };
        match addr {
            IpAddr::V4(a) => write!(f, "{proto} {a}:{port}"),
            IpAddr::V6(a) => write!(f, "{proto} [{a}]:{port}"),
        }
    }
}

/// An IPVS scheduler (kernel module `ip_vs_<name>`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections (the kernel's default).
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing (flags: [`ServiceFlags::SH_FALLBACK`], [`ServiceFlags::SH_PORT`]).
    Sh,
    /// Maglev hashing (flags: [`ServiceFlags::MH_FALLBACK`], [`ServiceFlags::MH_PORT`]).
    Mh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Weighted random twos choice.
    Twos,
    /// A scheduler vigil does not know by name (read back from a service someone else made, or an
    /// out-of-tree module). Kept verbatim so it round-trips.
    Other(String),
}

impl Scheduler {
    /// The kernel's name for the scheduler.
    pub fn name(&self) -> &str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Mh => "mh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Twos => "twos",
            Self::Other(name) => name,
        }
    }
}

impl FromStr for Scheduler {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "rr" => Self::Rr,
            "wrr" => Self::Wrr,
            "lc" => Self::Lc,
            "wlc" => Self::Wlc,
            "lblc" => Self::Lblc,
            "lblcr" => Self::Lblcr,
            "dh" => Self::Dh,
            "sh" => Self::Sh,
            "mh" => Self::Mh,
            "sed" => Self::Sed,
            "nq" => Self::Nq,
            "fo" => Self::Fo,
            "ovf" => Self::Ovf,
            "twos" => Self::Twos,
            other => Self::Other(other.to_owned()),
        })
    }
}

/// The user-settable service flags (`IP_VS_SVC_F_*`). Persistence is not here: it is
/// [`Service::persistence`], and the codec derives `IP_VS_SVC_F_PERSISTENT` from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ServiceFlags(u32);

impl ServiceFlags {
    /// One-packet scheduling (`ops`): schedule every UDP datagram independently.
    pub const ONE_PACKET: Self = Self(0x0004);
    /// Scheduler flag 1.
    pub const SCHED1: Self = Self(0x0008);
    /// Scheduler flag 2.
    pub const SCHED2: Self = Self(0x0010);
    /// Scheduler flag 3.
    pub const SCHED3: Self = Self(0x0020);
    /// `sh`: fall back to another server when the hashed one is unavailable.
    pub const SH_FALLBACK: Self = Self::SCHED1;
    /// `sh`: hash the source port as well as the address.
    pub const SH_PORT: Self = Self::SCHED2;
    /// `mh`: fall back to another server when the hashed one is unavailable.
    pub const MH_FALLBACK: Self = Self::SCHED1;
    /// `mh`: hash the source port as well as the address.
    pub const MH_PORT: Self = Self::SCHED2;
    /// Every bit this type may carry; the kernel's other bits (PERSISTENT, HASHED) are not flags
    /// a config sets directly.
    const SETTABLE: u32 = 0x0004 | 0x0008 | 0x0010 | 0x0020;

    /// No flags.
    pub const fn empty() -> Self {
        Self(0)
    }

    /// The settable bits of a raw kernel flags word; other bits are dropped.
    pub const fn from_bits_truncate(bits: u32) -> Self {
        Self(bits & Self::SETTABLE)
    }

    /// The raw bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    /// Whether every bit of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }
}

impl std::ops::BitOr for ServiceFlags {
    type Output = Self;
    fn bitor(self, rhs: Self) -> Self {
        Self(self.0 | rhs.0)
    }
}

/// Persistence: connections from one client (network) go to the same real server while idle for
/// less than `timeout_s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Idle timeout in seconds (`ipvsadm -p`); the kernel requires it to be non-zero.
    pub timeout_s: u32,
    /// Client grouping as a prefix length (`ipvsadm -M`): /32 or /128 means per client address.
    /// The kernel stores IPv4 masks as a dotted mask and IPv6 ones as a prefix length; the codec
    /// converts (a non-contiguous IPv4 mask read back is reduced to its leading ones).
    pub netmask_prefix: u8,
}

/// A virtual service's configuration: what `ipvsadm -A`/`-E` sets.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// The key the kernel files the service under.
    pub key: ServiceKey,
    /// The scheduler.
    pub scheduler: Scheduler,
    /// Scheduler and one-packet flags.
    pub flags: ServiceFlags,
    /// `None`: not persistent.
    pub persistence: Option<Persistence>,
    /// Persistence engine (`sip`), if any.
    pub pe_name: Option<String>,
}

impl Service {
    /// A non-persistent service with no flags.
    pub fn new(key: ServiceKey, scheduler: Scheduler) -> Self {
        Self {
            key,
            scheduler,
            flags: ServiceFlags::empty(),
            persistence: None,
            pe_name: None,
        }
    }
}

/// How packets reach a real server (`IP_VS_CONN_F_*` forwarding methods).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forwarding {
    /// Masquerading (NAT), `-m`.
    Nat,
    /// The real server is this host (the kernel picks this itself for local addresses).
    Local,
    /// IP-in-IP / GUE / GRE tunnelling, `-i`.
    Tunnel,
    /// Direct routing (gatewaying), `-g`.
    DirectRoute,
    /// Cache bypass (not settable by ipvsadm; read-back only).
    Bypass,
}

/// Tunnel encapsulation of a [`Forwarding::Tunnel`] destination (kernel ≥ 5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TunnelType {
    /// Plain IP-in-IP (the default, and the only kind older kernels know).
    #[default]
    Ipip,
    /// Generic UDP encapsulation, to this UDP port.
    Gue {
        /// The GUE destination port.
        port: u16,
        /// `IP_VS_TUNNEL_ENCAP_FLAG_*` (checksum, remote checksum offload).
        flags: u16,
    },
    /// GRE.
    Gre {
        /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
        flags: u16,
    },
}

/// What identifies a destination within its service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestKey {
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port (0 for fwmark services forwarding every port).
    pub port: u16,
}

/// A destination's configuration: what `ipvsadm -a`/`-e` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Address and port.
    pub key: DestKey,
    /// Weight; 0 means "no new connections" (what `inhibit_on_failure` uses).
    pub weight: u32,
    /// Forwarding method.
    pub fwd: Forwarding,
    /// Stop sending new connections above this many (0 = no limit).
    pub upper_threshold: u32,
    /// Resume below this many after hitting the upper threshold.
    pub lower_threshold: u32,
    /// Encapsulation when `fwd` is [`Forwarding::Tunnel`]; ignored otherwise.
    pub tunnel: TunnelType,
}

impl Destination {
    /// A destination with no thresholds and IP-in-IP encapsulation if tunnelled.
    pub fn new(addr: IpAddr, port: u16, weight: u32, fwd: Forwarding) -> Self {
        Self {
            key: DestKey { addr, port },
            weight,
            fwd,
            upper_threshold: 0,
            lower_threshold: 0,
            tunnel: TunnelType::Ipip,
        }
    }
}

/// A desired virtual server: the service and the exact set of destinations it should have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualServer {
    /// The service configuration.
    pub service: Service,
    /// The destinations; keys must be unique (the last one wins otherwise).
    pub dests: Vec<Destination>,
}

/// Traffic counters the kernel keeps per service and per destination (`IPVS_STATS_ATTR_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Current connection rate (per second).
    pub cps: u64,
    /// Current incoming packet rate.
    pub inpps: u64,
    /// Current outgoing packet rate.
    pub outpps: u64,
    /// Current incoming byte rate.
    pub inbps: u64,
    /// Current outgoing byte rate.
    pub outbps: u64,
}

/// A destination as read back from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObservedDest {
    /// Its configuration.
    pub dest: Destination,
    /// Established connections.
    pub active_conns: u32,
    /// Other connections.
    pub inactive_conns: u32,
    /// Persistence templates.
    pub persist_conns: u32,
    /// Counters.
    pub stats: Stats,
}

impl From<Destination> for ObservedDest {
    fn from(dest: Destination) -> Self {
        Self {
            dest,
            active_conns: 0,
            inactive_conns: 0,
            persist_conns: 0,
            stats: Stats::default(),
        }
    }
}

/// A service as read back from the kernel, with its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedService {
    /// Its configuration.
    pub service: Service,
    /// Counters.
    pub stats: Stats,
    /// Destinations by key.
    pub dests: BTreeMap<DestKey, ObservedDest>,
}

impl From<Service> for ObservedService {
    fn from(service: Service) -> Self {
        Self {
            service,
            stats: Stats::default(),
            dests: BTreeMap::new(),
        }
    }
}

/// The kernel's whole IPVS table (all owners), keyed for deterministic iteration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Table {
    /// Services by key.
    pub services: BTreeMap<ServiceKey, ObservedService>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduler_names_round_trip_and_unknown_is_kept() {
        for name in [
            "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf",
            "twos", "weird",
        ] {
            let s: Scheduler = name.parse().unwrap();
            assert_eq!(s.name(), name);
        }
        assert_eq!("twos".parse::<Scheduler>(), Ok(Scheduler::Twos));
        assert_eq!("x".parse::<Scheduler>(), Ok(Scheduler::Other("x".into())));
    }

    #[test]
    fn flags_drop_kernel_internal_bits() {
        // PERSISTENT (1) and HASHED (2) are not settable flags.
        let f = ServiceFlags::from_bits_truncate(0x1 | 0x2 | 0x8 | 0x40);
        assert_eq!(f, ServiceFlags::SH_FALLBACK);
        assert!((ServiceFlags::MH_PORT | ServiceFlags::MH_FALLBACK).contains(ServiceFlags::SCHED2));
    }

    #[test]
    fn key_family_and_display() {
        let k = ServiceKey::Tcp("2001:db8::1".parse().unwrap(), 80);
        assert_eq!(k.family(), Family::V6);
        assert_eq!(k.to_string(), "tcp [2001:db8::1]:80");
        assert_eq!(ServiceKey::Fwmark(7, Family::V4).family(), Family::V4);
        assert_eq!(
            ServiceKey::Udp([10, 0, 0, 1].into(), 53).to_string(),
            "udp 10.0.0.1:53"
        );
    }
}

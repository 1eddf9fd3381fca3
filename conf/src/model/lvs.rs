//! LVS virtual servers and their real servers.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::{AddressFamily, Check};

/// One `[[virtual_server]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct VirtualServer {
    /// What clients connect to: address/port/protocol or a firewall mark.
    pub service: VsKey,
    /// Health-check group name that VRRP instances can track; unique.
    pub group: Option<String>,
    /// IPVS scheduler. Default wlc.
    pub scheduler: Scheduler,
    /// Scheduler flags (sh/mh only).
    pub sched_flags: SchedFlags,
    /// Packet forwarding method. Default dr (as `ipvsadm`).
    pub forwarding: Forwarding,
    /// Client → real server stickiness; `None` for none.
    pub persistence: Option<Persistence>,
    /// Minimum total weight of healthy real servers for the service to be up. Default 1.
    pub quorum: u32,
    /// Hysteresis around `quorum`. Default 0; less than `quorum`.
    pub hysteresis: u32,
    /// Added with weight 1 when the quorum is lost.
    pub sorry_server: Option<SocketAddr>,
    /// Keep failed real servers with weight 0 instead of removing them. Default false.
    pub inhibit_on_failure: bool,
    /// Start real servers as down until their first check passes. Default false.
    pub alpha: bool,
    /// Remove real servers from the kernel when vigild stops. Default false.
    pub omega: bool,
    /// Real servers, in file order; (address, port) unique.
    pub real_servers: Vec<RealServer>,
}

impl VirtualServer {
    /// The unique key of this virtual server (for diffs and the kernel table).
    pub fn key(&self) -> &VsKey {
        &self.service
    }

    /// Address family of the service.
    pub fn family(&self) -> AddressFamily {
        self.service.family()
    }
}

/// Identity of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VsKey {
    /// `address = "ip:port"` + `protocol`.
    Addr {
        /// Virtual address and port.
        addr: SocketAddr,
        /// Transport protocol.
        protocol: Protocol,
    },
    /// `fwmark = N` + `family`.
    Fwmark {
        /// Firewall mark, non-zero.
        mark: u32,
        /// Family of the marked traffic.
        family: AddressFamily,
    },
}

impl VsKey {
    /// Address family of the service.
    pub fn family(&self) -> AddressFamily {
        match self {
            Self::Addr { addr, .. } => AddressFamily::of(&addr.ip()),
            Self::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for VsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Addr { addr, protocol } => write!(f, "{addr}/{protocol}"),
            Self::Fwmark {
                mark,
                family: AddressFamily::Ipv4,
            } => write!(f, "fwmark:{mark}"),
            Self::Fwmark {
                mark,
                family: AddressFamily::Ipv6,
            } => write!(f, "fwmark6:{mark}"),
        }
    }
}

/// Transport protocol of a virtual server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum Protocol {
    /// TCP.
    #[default]
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        })
    }
}

/// IPVS schedulers (names as in `ipvsadm -s`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    #[default]
    Wlc,
    /// Locality-based least connections.
    Lblc,
    /// Locality-based least connections with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl Scheduler {
    /// The kernel module's name (`ip_vs_<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Lblc => "lblc",
            Self::Lblcr => "lblcr",
            Self::Dh => "dh",
            Self::Sh => "sh",
            Self::Sed => "sed",
            Self::Nq => "nq",
            Self::Fo => "fo",
            Self::Ovf => "ovf",
            Self::Mh => "mh",
            Self::Twos => "twos",
        }
    }
}

/// Flags of the hashing schedulers (`sh`, `mh`): IP_VS_SVC_F_SCHED1 and SCHED2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SchedFlags {
    /// `sh-fallback`/`mh-fallback`: pick another server when the hashed one is unavailable.
    pub fallback: bool,
    /// `sh-port`/`mh-port`: include the source port in the hash.
    pub port: bool,
}

/// LVS forwarding method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Forwarding {
    /// Direct routing (gatewaying).
    #[default]
    Dr,
    /// Masquerading.
    Nat,
    /// IP-in-IP tunnelling.
    Tun,
}

impl fmt::Display for Forwarding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dr => "dr",
            Self::Nat => "nat",
            Self::Tun => "tun",
        })
    }
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Persistence settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Persistence {
    /// How long a client sticks to its real server.
    pub timeout: Duration,
    /// Clients are grouped by this source prefix length. Default /32 or /128.
    pub prefix_len: u8,
}

/// One `[[virtual_server.real_server]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealServer {
    /// Real server address; same family as the virtual server except with tun.
    pub addr: IpAddr,
    /// Port; default the virtual server's port (0 for fwmark services).
    pub port: u16,
    /// IPVS weight 0..=65535. Default 1.
    pub weight: u32,
    /// Connection limit above which the server gets no new connections; 0 (default) = none.
    pub upper_threshold: u32,
    /// Connections below which it is used again; 0 (default) = none. At most `upper_threshold`.
    pub lower_threshold: u32,
    /// Health checks; all must pass. Empty = always up.
    pub checks: Vec<Check>,
}

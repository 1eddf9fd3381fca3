//! VRRP instances, sync groups and track scripts.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

/// One `[[vrrp_instance]]`: a virtual router on one interface.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    /// Unique instance name; the key for reload diffs and the owner znode path.
    pub name: String,
    /// Interface the adverts are sent and received on.
    pub interface: String,
    /// Virtual router id, 1..=255; unique per (interface, family).
    pub vrid: u8,
    /// Priority 1..=255; 255 only for the address owner. Default 100.
    pub priority: u8,
    /// Advertisement interval. Default 1s. v2: whole seconds 1..=255;
    /// v3: multiple of 10ms in 10ms..=40.95s (RFC 5798 §5.2.7, 12-bit centiseconds).
    pub advert_interval: Duration,
    /// Protocol version. Default v3.
    pub version: VrrpVersion,
    /// Address family of the adverts and of every VIP. Default: the family of the first VIP.
    pub family: AddressFamily,
    /// Multicast (default) or unicast to listed peers.
    pub transport: Transport,
    /// Virtual addresses, at least one, all of `family`.
    pub vips: Vec<Vip>,
    /// Whether a higher-priority backup takes over from a lower-priority master. Default true.
    pub preempt: bool,
    /// Wait this long after start-up before preempting. Default 0.
    pub preempt_delay: Duration,
    /// Accept packets addressed to the VIPs when not the owner (RFC 5798 §6.1). Default false.
    pub accept_mode: bool,
    /// This router owns the VIPs (they are its real addresses); required for priority 255.
    pub address_owner: bool,
    /// Gratuitous ARP / unsolicited NA on becoming master.
    pub garp: Garp,
    /// v2 authentication; `None` for none. Never on v3 (RFC 5798 removed it).
    pub auth: Option<Auth>,
    /// Tracked objects that adjust priority or force fault.
    pub track: Track,
    /// Scripts run on transitions.
    pub notify: Notify,
    /// Quorum-gated VIP ownership. Default: quorum when `[cluster]` exists, else off.
    pub fencing: Fencing,
    /// VRRPv3-over-IPv4 checksum convention. Only meaningful for v3 over IPv4.
    pub v3_checksum: V3Checksum,
    /// Use a virtual MAC (00-00-5E-00-01-{VRID}) via a macvlan interface. Default false.
    pub use_vmac: bool,
    /// Name of that macvlan interface (keepalived's `use_vmac <name>`); `None` for
    /// keepalived's default, see [`VrrpInstance::vmac_interface`]. Only with `use_vmac`.
    pub vmac_name: Option<String>,
}

impl VrrpInstance {
    /// The macvlan interface of a `use_vmac` instance: `vmac_name`, else keepalived's default
    /// `vrrp.<vrid>` (IPv4) or `vrrp6.<vrid>` (IPv6). `None` without `use_vmac`.
    pub fn vmac_interface(&self) -> Option<String> {
        if !self.use_vmac {
            return None;
        }
        Some(self.vmac_name.clone().unwrap_or_else(|| match self.family {
            AddressFamily::Ipv4 => format!("vrrp.{}", self.vrid),
            AddressFamily::Ipv6 => format!("vrrp6.{}", self.vrid),
        }))
    }

    /// The interface `vip` is configured on: its own `dev`, else the vmac (with `use_vmac`, so
    /// that the vmac answers ARP for it with the virtual MAC), else the instance's interface,
    /// as in keepalived.
    pub fn vip_interface(&self, vip: &Vip) -> String {
        vip.dev
            .clone()
            .or_else(|| self.vmac_interface())
            .unwrap_or_else(|| self.interface.clone())
    }
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VrrpVersion {
    /// RFC 3768; IPv4 only.
    V2,
    /// RFC 5798 / RFC 9568.
    #[default]
    V3,
}

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AddressFamily {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

impl std::fmt::Display for AddressFamily {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Ipv4 => "IPv4",
            Self::Ipv6 => "IPv6",
        })
    }
}

impl AddressFamily {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Self {
        if addr.is_ipv4() {
            Self::Ipv4
        } else {
            Self::Ipv6
        }
    }

    /// Largest prefix length for this family.
    pub fn max_prefix(self) -> u8 {
        match self {
            Self::Ipv4 => 32,
            Self::Ipv6 => 128,
        }
    }
}

/// How adverts travel.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Transport {
    /// To 224.0.0.18 / ff02::12.
    #[default]
    Multicast,
    /// To each listed peer; for networks without multicast.
    Unicast {
        /// Source address of adverts; `None` uses the interface's primary address.
        source: Option<IpAddr>,
        /// At least one peer, all of the instance's family.
        peers: Vec<IpAddr>,
    },
}

/// One virtual IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    /// The address.
    pub addr: IpAddr,
    /// Prefix length. Default /32 or /128.
    pub prefix_len: u8,
    /// Interface label (IPv4 only, e.g. `eth0:vip`).
    pub label: Option<String>,
    /// Device to put the VIP on, if not the instance's interface.
    pub dev: Option<String>,
}

/// Gratuitous ARP / unsolicited neighbour advertisement settings (keepalived's model).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Garp {
    /// Messages per VIP in each burst (keepalived `garp_master_repeat`). Default 5.
    pub count: u32,
    /// A second burst this long after becoming master, for switches slow to learn the first
    /// (keepalived `garp_master_delay`). Default 5s; `garp_delay = "0s"` gives `None`.
    pub delay: Option<Duration>,
    /// Re-announce periodically while master (`garp_master_refresh`); `None` (default) for never.
    pub refresh: Option<Duration>,
    /// Messages per VIP in each refresh burst. Default 1.
    pub refresh_count: u32,
}

impl Default for Garp {
    fn default() -> Self {
        Self {
            count: 5,
            delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_count: 1,
        }
    }
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Interop only: the password travels in clear text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Simple text password, 1..=8 bytes.
    SimplePassword(String),
}

/// Tracked objects of one instance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Track {
    /// Interfaces whose link state is watched.
    pub interfaces: Vec<TrackInterface>,
    /// `[[track_script]]`s by name.
    pub scripts: Vec<TrackRef>,
    /// Files holding an integer.
    pub files: Vec<TrackFile>,
    /// Health-check groups (`group` of virtual servers) by name.
    pub groups: Vec<TrackRef>,
}

/// A tracked interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    /// Interface name.
    pub name: String,
    /// Priority change while down; 0 (default) puts the instance in fault.
    pub weight: i32,
}

/// A tracked script or check group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackRef {
    /// Name of the referenced object (validated to exist).
    pub name: String,
    /// Priority change while failing, -254..=254; 0 means fault. For scripts `None` uses the
    /// script's own default weight; for groups `None` means 0.
    pub weight: Option<i32>,
}

/// A tracked file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackFile {
    /// File holding an integer n.
    pub path: PathBuf,
    /// The priority changes by n × weight; 0 (default) means any non-zero n is a fault.
    pub weight: i32,
}

/// Notify scripts; each is an argv. Per-state scripts run before the generic `any` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    /// On becoming master.
    pub master: Option<Vec<String>>,
    /// On becoming backup.
    pub backup: Option<Vec<String>>,
    /// On entering fault.
    pub fault: Option<Vec<String>>,
    /// On stopping the instance.
    pub stop: Option<Vec<String>>,
    /// On every transition (gets the new state as an argument).
    pub any: Option<Vec<String>>,
    /// Kill a script still running after this. Default 10s.
    pub timeout: Duration,
}

impl Default for Notify {
    fn default() -> Self {
        Self {
            master: None,
            backup: None,
            fault: None,
            stop: None,
            any: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Split-brain protection mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fencing {
    /// VIP only while owning `/vigil/vrrp/<instance>/owner` in the quorum.
    Quorum,
    /// Plain VRRP.
    Off,
}

/// How the VRRPv3 checksum over IPv4 is computed (RFC 9568 §5.2.8 vs keepalived).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum V3Checksum {
    /// Include the IPv4 pseudo-header (keepalived's default, RFC 5798 reading).
    #[default]
    WithPseudoHeader,
    /// VRRP message only (RFC 9568 reading).
    WithoutPseudoHeader,
    /// Send with pseudo-header, accept either (for mixed fleets during migration).
    AcceptBoth,
}

/// One `[[vrrp_sync_group]]`: instances that change state together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncGroup {
    /// Unique group name.
    pub name: String,
    /// Member instance names; each exists and belongs to no other group.
    pub instances: Vec<String>,
}

/// One `[[track_script]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    /// Unique name referenced by `track_scripts`.
    pub name: String,
    /// argv; run without a shell.
    pub command: Vec<String>,
    /// Run every. Default 2s.
    pub interval: Duration,
    /// Kill and count as failure after. Default 1s.
    pub timeout: Duration,
    /// Successes needed to count as up. Default 1.
    pub rise: u32,
    /// Failures needed to count as down. Default 1.
    pub fall: u32,
    /// Default weight for instances tracking it, -254..=254; 0 (default) means fault.
    pub weight: i32,
}

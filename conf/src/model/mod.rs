//! The validated configuration model: typed, defaulted, cross-checked. Code that receives a
//! [`Config`] never re-validates it.

mod check;
mod cluster;
mod lvs;
mod vrrp;

pub use check::{
    Check, CheckKind, Digest, DnsCheck, DnsType, HttpCheck, StatusRange, TlsOptions, UdpCheck,
};
pub use cluster::{Cluster, ClusterPeer, FencingParams, TlsFiles};
pub use lvs::{
    Forwarding, Persistence, Protocol, RealServer, SchedFlags, Scheduler, VirtualServer, VsKey,
};
pub use vrrp::{
    AddressFamily, Auth, Fencing, Garp, Notify, SyncGroup, Track, TrackFile, TrackInterface,
    TrackRef, TrackScript, Transport, V3Checksum, Vip, VrrpInstance, VrrpVersion,
};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Default `[api] listen`: loopback only, port 7400 (vigil's port block is 7400–7402).
pub const DEFAULT_API_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7400);

/// Default `[global] vrrp_rt_priority`: a low `SCHED_RR` priority, above every normally
/// scheduled task (so a CPU hog cannot delay adverts and timers) and below the kernel's threaded
/// interrupt handlers (50), which deliver the adverts the VRRP threads wait for.
pub const DEFAULT_VRRP_RT_PRIORITY: u8 = 10;

/// Default `[global] vrrp_rlimit_rtime`: `RLIMIT_RTTIME`, the CPU time a real-time VRRP thread
/// may use without blocking before the kernel kills vigild. A VRRP thread sleeps after every
/// event (microseconds of work), so only a runaway loop reaches it; 10 times keepalived's 10 ms
/// leaves room for a long page-reclaim stall without a false kill of a master.
pub const DEFAULT_VRRP_RLIMIT_RTIME: Duration = Duration::from_millis(100);

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// `[global]`.
    pub global: Global,
    /// `[api]`: the local control API that `vigilctl` talks to.
    pub api: Api,
    /// `[metrics]`.
    pub metrics: Metrics,
    /// `[[vrrp_instance]]`, in file order; names are unique.
    pub vrrp_instances: Vec<VrrpInstance>,
    /// `[[vrrp_sync_group]]`; every member names an existing instance, at most one group each.
    pub sync_groups: Vec<SyncGroup>,
    /// `[[track_script]]`; names are unique.
    pub track_scripts: Vec<TrackScript>,
    /// `[[virtual_server]]`; keys ([`VirtualServer::key`]) are unique.
    pub virtual_servers: Vec<VirtualServer>,
    /// `[cluster]`: the coordination quorum; `None` runs without one (plain VRRP).
    pub cluster: Option<Cluster>,
}

impl Config {
    /// The instance called `name`.
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp_instances.iter().find(|i| i.name == name)
    }

    /// The track script called `name`.
    pub fn track_script(&self, name: &str) -> Option<&TrackScript> {
        self.track_scripts.iter().find(|s| s.name == name)
    }

    /// The virtual servers whose health feeds the check group `group`.
    pub fn check_group(&self, group: &str) -> impl Iterator<Item = &VirtualServer> {
        self.virtual_servers
            .iter()
            .filter(move |vs| vs.group.as_deref() == Some(group))
    }
}

/// `[global]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Global {
    /// This node's name, used in logs, membership znodes and notify environments.
    /// Default: the host name (`/proc/sys/kernel/hostname`), else `"vigil"`.
    pub node_name: String,
    /// Identifies this router in logs and notifications (keepalived's `router_id`).
    /// Default: `node_name`.
    pub router_id: String,
    /// Unprivileged user that notify and track scripts run as. Default `"nobody"`: scripts never
    /// run as root unless the operator says so explicitly.
    pub script_user: String,
    /// Group for scripts; `None` uses `script_user`'s primary group.
    pub script_group: Option<String>,
    /// How log lines are written. Default plain.
    pub log_format: LogFormat,
    /// Where vigild keeps runtime state (e.g. the last known VRRP state). Default `/var/lib/vigil`.
    pub state_dir: PathBuf,
    /// Real-time priority (`SCHED_RR`, 1..=99) of the VRRP threads, keepalived's
    /// `vrrp_rt_priority`: adverts and timers keep their pace on a starved CPU. Needs
    /// `RLIMIT_RTPRIO` (systemd's `LimitRTPRIO=`) or `CAP_SYS_NICE`; refused, the threads run
    /// with normal scheduling. Default [`DEFAULT_VRRP_RT_PRIORITY`]; `0` in the file (`None`)
    /// turns it off, as keepalived's default is.
    pub vrrp_rt_priority: Option<u8>,
    /// `RLIMIT_RTTIME` while the VRRP threads are real-time, keepalived's `vrrp_rlimit_rtime`
    /// (there in microseconds): a real-time thread that runs this long without blocking gets
    /// vigild killed (`SIGKILL`) instead of starving the CPU. Default
    /// [`DEFAULT_VRRP_RLIMIT_RTIME`].
    pub vrrp_rlimit_rtime: Duration,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Plain,
    /// One JSON object per line.
    Json,
}

/// `[api]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Api {
    /// Where the control API listens. Default [`DEFAULT_API_LISTEN`] (127.0.0.1:7400).
    pub listen: SocketAddr,
    /// File holding the bearer token; no auth when absent (only sane on loopback).
    pub token_file: Option<PathBuf>,
}

/// `[metrics]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    /// Where Prometheus metrics are served; off when absent (the default).
    pub listen: Option<SocketAddr>,
}

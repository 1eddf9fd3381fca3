//! The JSON view of the load balancer: `GET /v1/lvs` and `vigilctl lvs --json`. Shared by the
//! daemon and `vigilctl`, so both sides agree by construction. Adding a field is compatible;
//! renaming or removing one is not.

use serde::{Deserialize, Serialize};

/// The whole load-balancer state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LbStatus {
    /// The kernel side: `ok`, `unavailable: <reason>` (no IPVS; the desired table is still
    /// computed and shown), `error: <last convergence error>`, or `unused: …` while no virtual
    /// server was ever configured (IPVS is not even opened).
    pub ipvs: String,
    /// Seconds since the kernel table was last converged successfully, if ever.
    pub last_sync_secs_ago: Option<u64>,
    /// Virtual servers, in config order.
    pub virtual_servers: Vec<VsStatus>,
}

impl LbStatus {
    /// Counts for `/v1/status`: virtual servers, those with quorum, real servers, those up.
    pub fn summary(&self) -> LbSummary {
        let reals = self.virtual_servers.iter().flat_map(|v| &v.real_servers);
        LbSummary {
            ipvs: self.ipvs.clone(),
            virtual_servers: self.virtual_servers.len(),
            virtual_servers_up: self.virtual_servers.iter().filter(|v| v.quorum_up).count(),
            real_servers: reals.clone().count(),
            real_servers_up: reals.filter(|r| r.up).count(),
        }
    }
}

/// One line of `/v1/status` about the load balancer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LbSummary {
    /// As [`LbStatus::ipvs`].
    pub ipvs: String,
    /// Configured virtual servers.
    pub virtual_servers: usize,
    /// Virtual servers whose quorum holds.
    pub virtual_servers_up: usize,
    /// Configured real servers (all virtual servers).
    pub real_servers: usize,
    /// Real servers whose checks all pass.
    pub real_servers_up: usize,
}

/// One virtual server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VsStatus {
    /// `ip:port/proto` or `fwmark:N`.
    pub key: String,
    /// Check group that VRRP may track.
    pub group: Option<String>,
    /// IPVS scheduler name.
    pub scheduler: String,
    /// `dr`, `nat` or `tun`.
    pub forwarding: String,
    /// Configured quorum (minimum alive weight).
    pub quorum: u32,
    /// Whether the quorum holds.
    pub quorum_up: bool,
    /// Sum of the weights of alive real servers.
    pub alive_weight: u64,
    /// Configured sorry server, `addr:port`.
    pub sorry_server: Option<String>,
    /// Whether the sorry server is in the table (quorum lost).
    pub sorry_active: bool,
    /// Real servers, in config order.
    pub real_servers: Vec<RsStatus>,
    /// The destinations the kernel should have now (what the reconciler converges on).
    pub desired: Vec<DesiredDest>,
}

/// One destination of the desired kernel table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DesiredDest {
    /// `addr:port`.
    pub addr: String,
    /// IPVS weight; 0 for an inhibited (failed) server.
    pub weight: u32,
}

/// One real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RsStatus {
    /// `addr:port`.
    pub addr: String,
    /// Configured weight.
    pub weight: u32,
    /// Weight in the desired table; `None` when it is not in the table.
    pub desired_weight: Option<u32>,
    /// Whether every check passes.
    pub up: bool,
    /// Seconds since `up` last changed (or since the server was configured).
    pub since_secs_ago: u64,
    /// Its checks, in config order.
    pub checks: Vec<CheckView>,
}

/// One check of a real server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckView {
    /// `tcp`, `http`, `https`, `script`, `dns`, `udp` or `smtp`.
    pub kind: String,
    /// The probed `addr:port`.
    pub target: String,
    /// The check's verdict (after rise/fall).
    pub up: bool,
    /// Whether the last attempt succeeded; `None` before the first one.
    pub last_ok: Option<bool>,
    /// What the last attempt said (status code, error).
    pub last_detail: Option<String>,
    /// How long the last attempt took.
    pub latency_ms: Option<f64>,
    /// Seconds since the verdict last changed.
    pub since_secs_ago: u64,
}

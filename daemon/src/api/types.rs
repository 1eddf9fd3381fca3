//! The API's JSON bodies, shared by the server and `vigilctl` so both sides agree by
//! construction. Adding a field is compatible; renaming or removing one is not.

use serde::{Deserialize, Serialize};

use crate::coord::CoordStatus;
use crate::lb::LbSummary;
use crate::reload::ReloadReport;
use crate::vrrp::InstanceStatus;

/// `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusResponse {
    /// `[global] node_name` of the running config.
    pub node_name: String,
    /// The vigild version.
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    /// Seconds since the daemon started.
    pub uptime_secs: u64,
    /// When the daemon started, in seconds since the Unix epoch.
    pub started_at_unix_secs: u64,
    /// The config file the daemon reloads from.
    pub config_path: String,
    /// 1 for the config loaded at start, +1 for each applied reload.
    pub config_generation: u64,
    /// The most recent reload, if any, with its errors when it was rejected.
    pub last_reload: Option<ReloadReport>,
    /// Health checks and LVS in brief; `None` before the load balancer runs. The details are at
    /// `GET /v1/lvs`.
    #[serde(default)]
    pub lvs: Option<LbSummary>,
    /// Every VRRP instance (`GET /v1/vrrp` has the same list).
    #[serde(default)]
    pub vrrp: Vec<InstanceStatus>,
    /// The coordination node, when `[cluster]` is configured.
    #[serde(default)]
    pub coord: Option<CoordStatus>,
    /// Which shared-config fragments this node runs (or refused), with `[cluster]`.
    #[serde(default)]
    pub shared_config: Option<crate::shared_config::SharedConfigStatus>,
    /// Every node of the cluster, up or down, as published in the coordination tree (see
    /// [`crate::members`]); `None` without `[cluster]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterView>,
}

/// The cluster part of `GET /v1/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterView {
    /// Every node ever registered, sorted by name; empty when the tree could not be read.
    pub members: Vec<crate::members::MemberView>,
    /// Why the tree could not be read (no quorum, coordination API unreachable), if so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `GET /v1/vrrp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpResponse {
    /// Every VRRP instance, sorted by name.
    pub instances: Vec<InstanceStatus>,
}

/// The body of every error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable machine-readable code, e.g. `unauthorized`.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
}

//! Quorum fencing in vigild: the I/O shell around `vigil-fence`'s [`Lease`](vigil_fence::Lease)
//! and [`Claim`](vigil_fence::Claim)s (the safety argument is in that crate's docs).
//!
//! ```text
//!  VRRP unit (per fenced instance) ── want(bool) ──┐
//!                                                  v
//!  CoordNode: session, keep-alives, owner znodes <──> fencing task ──> VIPs over rtnetlink
//!             subscribe(): owner deletions ───────────^     │           (with kernel lifetimes)
//!                                                           v
//!                     watch<FenceStatus> per instance ──> VRRP: `quorum` tracked, weight 0
//! ```
//!
//! One task per daemon owns the coordination session and every fenced instance's claim. A
//! fenced VRRP instance does not touch its VIPs itself: becoming master it says it *wants*
//! them, and the task adds them once the owner znode `/vigil/vrrp/<instance>/owner` is ours
//! and the lease is valid, with a kernel lifetime inside the lease; it removes them at the
//! lease deadline at the latest. While there is no valid lease the instance's `quorum`
//! tracked object is down (weight 0: fault), so a master cut off from the quorum gives up
//! mastership (priority 0) and the peer takes over once our session expired at the quorum.
//!
//! Keep-alives are session-bound `sync` writes every third of the session timeout; see
//! `requests.rs` for why not `CoordNode::heartbeat`.
//!
//! # Layout
//!
//! - `mod.rs`: [`FenceRuntime`], [`FenceHandle`], [`FenceMember`], [`FenceStatus`].
//! - `task.rs`: the fencing task: timers, outcomes, watch events, executing the cores' actions.
//! - `requests.rs`: the coordination requests. `vips.rs`: the kernel side.

pub(crate) mod requests;
mod task;
#[cfg(test)]
mod tests;
mod vips;

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use vigil_conf as conf;
use vigil_coord::node::CoordNode;
use vigil_fence::{ClaimConfig, LeaseConfig};

use crate::watchdog::Beacon;

pub use requests::owner_path;

/// The name of the tracked object a fenced VRRP instance gets (weight 0, down while this node
/// has no valid lease).
pub const QUORUM_TRACK: &str = "quorum";

/// How long a clean stop waits for the session close that hands the VIPs over.
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(3);

/// Fencing parameters.
#[derive(Debug, Clone)]
pub struct FenceSettings {
    /// This node's name, written into the owner znodes it creates.
    pub node_name: String,
    /// The session timeout to ask the cluster for (it may grant another within its bounds).
    pub session_timeout: Duration,
    /// Clock-drift bound and margin of the lease.
    pub lease: LeaseConfig,
    /// Kernel lifetime slack and retry interval of the claims.
    pub claim: ClaimConfig,
}

impl FenceSettings {
    /// The defaults (500 ppm drift, 200 ms margin, keep-alives every 250 ms, 1 s kernel slack)
    /// for `node_name`.
    pub fn new(node_name: impl Into<String>, session_timeout: Duration) -> FenceSettings {
        FenceSettings {
            node_name: node_name.into(),
            session_timeout,
            lease: LeaseConfig::default(),
            claim: ClaimConfig::default(),
        }
    }

    /// `[cluster.fencing]`: the session timeout, keep-alive interval and safety parameters, for
    /// `node_name`.
    pub fn from_cluster(node_name: impl Into<String>, cluster: &conf::Cluster) -> FenceSettings {
        let params = cluster.fencing;
        FenceSettings {
            node_name: node_name.into(),
            session_timeout: params.session_timeout,
            lease: LeaseConfig {
                max_drift_ppm: params.max_clock_drift_ppm,
                margin: params.margin,
                keepalive_interval: params.keepalive_interval,
            },
            claim: ClaimConfig {
                kernel_slack: params.kernel_slack,
                ..ClaimConfig::default()
            },
        }
    }
}

/// One instance's fencing state, as the status API and `vigilctl status` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FenceStatus {
    /// Whether this node holds a valid lease on its coordination session.
    pub quorum: bool,
    /// The node owning `/vigil/vrrp/<instance>/owner`, as last seen (this node's name when
    /// it is ours).
    pub owner: Option<String>,
    /// The owner's fencing token (the znode's czxid), as last seen.
    pub token: Option<u64>,
    /// Whether this node holds the VIPs, under `token`.
    pub holding: bool,
    /// The last error (coordination or kernel), if any.
    pub last_error: Option<String>,
}

/// A request to the fencing task.
#[derive(Debug)]
enum Request {
    Register {
        instance: Box<conf::VrrpInstance>,
        status: watch::Sender<FenceStatus>,
    },
    Want {
        instance: String,
        want: bool,
    },
    Unregister {
        instance: String,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// The running fencing task.
#[derive(Debug)]
pub struct FenceRuntime {
    tx: mpsc::UnboundedSender<Request>,
    task: JoinHandle<()>,
    /// Beaten by the task's loop; the systemd watchdog judges it.
    liveness: Beacon,
}

/// What VRRP units register their fenced instances with. Cheap to clone.
#[derive(Debug, Clone)]
pub struct FenceHandle {
    tx: mpsc::UnboundedSender<Request>,
}

impl FenceRuntime {
    /// Starts the fencing task on `node`. Must run inside the tokio runtime, in the daemon's
    /// network namespace (it opens a netlink socket).
    pub fn start(
        node: CoordNode,
        settings: FenceSettings,
    ) -> Result<FenceRuntime, vigil_net::NetError> {
        let rtnl = vigil_net::Rtnl::connect()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let liveness = Beacon::new();
        let task = tokio::spawn(task::run(node, settings, rtnl, rx, liveness.clone()));
        Ok(FenceRuntime { tx, task, liveness })
    }

    /// Beaten each time the task's loop comes round (at least every
    /// [`BEAT_EVERY`](crate::watchdog::BEAT_EVERY)); silent while it is stuck, e.g. in a VIP
    /// change that netlink never answers.
    pub fn liveness(&self) -> Beacon {
        self.liveness.clone()
    }

    /// A handle for registering instances.
    pub fn handle(&self) -> FenceHandle {
        FenceHandle {
            tx: self.tx.clone(),
        }
    }

    /// Removes every VIP still held and closes the session (which deletes our owner znodes,
    /// so successors claim at once), within a time limit.
    pub async fn shutdown(self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Request::Shutdown { done }).is_ok() {
            let _ = tokio::time::timeout(SHUTDOWN_LIMIT, finished).await;
        }
        self.task.abort();
    }
}

impl FenceHandle {
    /// Puts `instance`'s VIPs under fencing. Dropping the returned member releases the claim.
    pub fn register(&self, instance: &conf::VrrpInstance) -> FenceMember {
        let (status_tx, status) = watch::channel(FenceStatus::default());
        let _ = self.tx.send(Request::Register {
            instance: Box::new(instance.clone()),
            status: status_tx,
        });
        FenceMember {
            instance: instance.name.clone(),
            tx: self.tx.clone(),
            status,
        }
    }
}

/// One fenced instance's end of the fencing task.
#[derive(Debug)]
pub struct FenceMember {
    instance: String,
    tx: mpsc::UnboundedSender<Request>,
    status: watch::Receiver<FenceStatus>,
}

impl FenceMember {
    /// VRRP is (`true`) or is no longer master: the VIPs are claimed or released.
    pub fn want(&self, want: bool) {
        let _ = self.tx.send(Request::Want {
            instance: self.instance.clone(),
            want,
        });
    }

    /// The instance's fencing state, following changes.
    pub fn status(&self) -> watch::Receiver<FenceStatus> {
        self.status.clone()
    }

    /// The current fencing state.
    pub fn current(&self) -> FenceStatus {
        self.status.borrow().clone()
    }
}

impl Drop for FenceMember {
    fn drop(&mut self) {
        let _ = self.tx.send(Request::Unregister {
            instance: self.instance.clone(),
        });
    }
}

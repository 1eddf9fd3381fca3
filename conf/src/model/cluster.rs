//! The coordination quorum: `[cluster]`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `[cluster]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// This node's Raft id, ≥ 1, unique in the cluster.
    pub node_id: u64,
    /// The other members; ids unique and different from `node_id`.
    pub peers: Vec<ClusterPeer>,
    /// Raft log and snapshots. Default `<state_dir>/coord`.
    pub data_dir: PathBuf,
    /// Default session timeout granted to clients that ask for none, and the timeout of this
    /// node's membership session. Default 10s. (VIP claims use
    /// [`FencingParams::session_timeout`].)
    pub session_timeout: Duration,
    /// Smallest session timeout a client may ask for. Default 2s.
    pub session_timeout_min: Duration,
    /// Largest session timeout a client may ask for. Default 60s.
    pub session_timeout_max: Duration,
    /// Raft leader heartbeat. Default 100ms; below `election_timeout_min`.
    pub heartbeat_interval: Duration,
    /// Raft election timeout, lower bound. Default 500ms.
    pub election_timeout_min: Duration,
    /// Raft election timeout, upper bound. Default 1s; above the lower bound.
    pub election_timeout_max: Duration,
    /// Where peers reach this node's Raft service. Default 0.0.0.0:7401.
    pub raft_listen: SocketAddr,
    /// Where clients reach the coordination API. Default 127.0.0.1:7402.
    pub client_listen: SocketAddr,
    /// Mutual TLS between peers; `None` runs in clear (only on a trusted network).
    pub tls: Option<TlsFiles>,
    /// Coordination only: a witness runs no VRRP instances or virtual servers.
    pub witness: bool,
    /// `[cluster.fencing]`: the safety parameters of quorum fencing.
    pub fencing: FencingParams,
}

/// `[cluster.fencing]`: the session that carries this node's VIP claims, and what quorum
/// fencing assumes about clocks, the daemon and the kernel. The lease of a session with timeout
/// `T` ends `T·(1 − max_clock_drift) − margin` after the send time of its last committed
/// keep-alive; fenced VIPs carry a kernel lifetime of whole seconds ending `kernel_slack` before
/// that (the safety argument is in `vigil-fence`'s docs).
///
/// `session_timeout` is what a crash costs: the quorum expires a crashed owner's session
/// between `T − keepalive_interval` and `T` after the crash, and only then may a successor
/// claim. So it is short by default (3 s, against VRRP's own 3–3.6 s detection at 1 s
/// adverts), with frequent keep-alives (each a committed write) to keep the lease full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FencingParams {
    /// Timeout of the coordination session holding this node's owner znodes. Default 3s;
    /// within `[cluster] session_timeout_min..=session_timeout_max`.
    pub session_timeout: Duration,
    /// How often that session is renewed by a committed keep-alive. Default 250ms; at most a
    /// third of `session_timeout`.
    pub keepalive_interval: Duration,
    /// Bound on how much slower this node's monotonic clock may run than any coordination
    /// leader's, in parts per million. Default 500 (crystals are within 100 ppm of true time;
    /// two at opposite ends are 200 apart).
    pub max_clock_drift_ppm: u32,
    /// Taken off every lease deadline for the daemon's own latency (a late wake-up, the time
    /// removing the VIPs takes). Default 200ms.
    pub margin: Duration,
    /// How late the kernel may remove an address whose lifetime ran out. Linux checks address
    /// lifetimes from a timer rounded up to whole seconds. Default 1s.
    pub kernel_slack: Duration,
}

impl FencingParams {
    /// Largest accepted `max_clock_drift_ppm` (10 %: anything near it is broken hardware).
    pub const MAX_CLOCK_DRIFT_PPM: u32 = 100_000;

    /// How long a lease lasts past its keep-alive's send time with session timeout `timeout`:
    /// `timeout·(1 − max_clock_drift) − margin`, `None` when nothing is left.
    pub fn lease_budget(&self, timeout: Duration) -> Option<Duration> {
        let ppm = u128::from(1_000_000 - self.max_clock_drift_ppm.min(Self::MAX_CLOCK_DRIFT_PPM));
        let nanos = timeout.as_nanos() * ppm / 1_000_000;
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
            .checked_sub(self.margin)
            .filter(|b| !b.is_zero())
    }

    /// The keep-alive interval used with session timeout `timeout`: `keepalive_interval`, but
    /// never more than a third of the timeout (two lost keep-alives must not end the session).
    pub fn keepalive_for(&self, timeout: Duration) -> Duration {
        self.keepalive_interval.min(timeout / 3)
    }

    /// Whether fenced VIPs work with session timeout `timeout`: their kernel lifetime, at least
    /// one whole second plus `kernel_slack` of lateness, must fit in the lease and outlast the
    /// keep-alive interval, or they are never added or flap between refreshes.
    pub fn timeout_fits(&self, timeout: Duration) -> bool {
        self.lease_budget(timeout).is_some_and(|b| {
            b >= self.kernel_slack + Duration::from_secs(1) + self.keepalive_for(timeout)
        })
    }

    /// The shortest session timeout (whole milliseconds) for which [`Self::timeout_fits`]
    /// holds, `None` if none does below an hour.
    pub fn min_session_timeout(&self) -> Option<Duration> {
        // timeout_fits is monotonic in the timeout: bisect over milliseconds.
        let (mut lo, mut hi) = (0_u64, 3_600_000_u64);
        if !self.timeout_fits(Duration::from_millis(hi)) {
            return None;
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            if self.timeout_fits(Duration::from_millis(mid)) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        Some(Duration::from_millis(hi))
    }
}

impl Default for FencingParams {
    fn default() -> Self {
        FencingParams {
            session_timeout: Duration::from_secs(3),
            keepalive_interval: Duration::from_millis(250),
            max_clock_drift_ppm: 500,
            margin: Duration::from_millis(200),
            kernel_slack: Duration::from_secs(1),
        }
    }
}

/// One other cluster member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPeer {
    /// Its Raft id.
    pub id: u64,
    /// Its Raft address.
    pub address: SocketAddr,
}

/// PEM files for peer TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA bundle that peer certificates must chain to.
    pub ca: PathBuf,
    /// This node's certificate.
    pub cert: PathBuf,
    /// This node's private key.
    pub key: PathBuf,
}

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
    /// Default session timeout granted to clients. Default 10s.
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

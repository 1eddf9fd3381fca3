//! [`CoordConfig`]: what a [`super::CoordNode`] needs. The daemon maps vigil-conf's `[cluster]`
//! section onto it; this crate does not depend on vigil-conf.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::raft::LogOptions;
use crate::raft::network::TlsConfig;
use crate::session::SessionConfig;

/// Configuration of one coordination node.
#[derive(Debug, Clone)]
pub struct CoordConfig {
    /// This node's Raft id (unique in the cluster, never reused).
    pub node_id: u64,
    /// Where the peer server listens.
    pub listen: SocketAddr,
    /// Root of this node's state: `log/` (the Raft log) and `snapshot/`.
    pub data_dir: PathBuf,
    /// Leader heartbeat period; also openraft's `AppendEntries` timeout.
    pub heartbeat_interval: Duration,
    /// Lower bound of the randomized election timeout.
    pub election_timeout_min: Duration,
    /// Upper bound of the randomized election timeout.
    pub election_timeout_max: Duration,
    /// Voters (id → address) of a brand-new cluster. Used once: only when the log is empty, and
    /// only by the lowest id listed (or by a node with `bootstrap` set). Hazard: a lowest-id
    /// node whose data directory was wiped would bootstrap a second, empty cluster; once the
    /// cluster exists the daemon should stop passing this (or re-add such a node as a learner).
    pub initial_members: BTreeMap<u64, String>,
    /// Initialize the cluster from `initial_members` even if this is not the lowest id.
    pub bootstrap: bool,
    /// Bounds of negotiated session timeouts.
    pub sessions: SessionConfig,
    /// Build a snapshot after this many commands since the last one (a batch entry counts each
    /// of its commands; openraft's entry-count policy stays as a backstop). Default 100,000, as
    /// ZooKeeper's `snapCount` and etcd's `snapshot-count`: a snapshot encodes the whole tree
    /// (38 MB and ~95 ms of the node's thread for 1M znodes), and at 10,000 a large tree under
    /// load spent much of its time re-encoding itself (bench/README.md: 1M creates at 18.8k/s
    /// and 230 MiB, against 24.6–26.2k/s and 178 MiB); the price is up to 100,000 commands of
    /// log replay on restart (0.61 → 0.81 s with 1M znodes).
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot (so a briefly lagging follower needs no snapshot).
    pub keep_after_snapshot: u64,
    /// Size of one snapshot chunk on the wire. Each chunk is one RPC bounded by
    /// `install_snapshot_timeout`, so it must cross the network well within it.
    pub snapshot_chunk_bytes: u64,
    /// Deadline of one snapshot chunk RPC; the last chunk includes restoring the tree.
    pub install_snapshot_timeout: Duration,
    /// Deadline of a client write or linearizable read, forwarding included.
    pub request_timeout: Duration,
    /// How often the leader looks for containers and TTL nodes to remove.
    pub reap_interval: Duration,
    /// How many applied-entry events a slow subscriber may fall behind before it lags.
    pub event_capacity: usize,
    /// Log segment tuning.
    pub log: LogOptions,
    /// Mutual TLS between peers; plain TCP when `None`.
    pub tls: Option<TlsConfig>,
    /// Source address of connections to peers; the routing table's choice when `None`.
    pub peer_source: Option<std::net::IpAddr>,
}

impl CoordConfig {
    /// A config with production defaults for node `node_id` listening on `listen`.
    pub fn new(node_id: u64, listen: SocketAddr, data_dir: impl Into<PathBuf>) -> CoordConfig {
        CoordConfig {
            node_id,
            listen,
            data_dir: data_dir.into(),
            heartbeat_interval: Duration::from_millis(100),
            election_timeout_min: Duration::from_millis(400),
            election_timeout_max: Duration::from_millis(800),
            initial_members: BTreeMap::new(),
            bootstrap: false,
            sessions: SessionConfig::default(),
            snapshot_every: 100_000,
            keep_after_snapshot: 1_000,
            snapshot_chunk_bytes: 1 << 20,
            install_snapshot_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(5),
            reap_interval: Duration::from_secs(1),
            event_capacity: 4096,
            // openraft bounds an AppendEntries RPC by the heartbeat interval: 1 MiB batches
            // cross a 100 Mbit/s link within the default 100 ms.
            log: LogOptions {
                max_read_bytes: 1 << 20,
                ..LogOptions::default()
            },
            tls: None,
            peer_source: None,
        }
    }

    /// openraft's config derived from this one.
    pub(crate) fn raft_config(&self) -> Result<openraft::Config, String> {
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        openraft::Config {
            cluster_name: "vigil".into(),
            heartbeat_interval: ms(self.heartbeat_interval),
            election_timeout_min: ms(self.election_timeout_min),
            election_timeout_max: ms(self.election_timeout_max),
            install_snapshot_timeout: ms(self.install_snapshot_timeout),
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            max_in_snapshot_log_to_keep: self.keep_after_snapshot,
            snapshot_max_chunk_size: self.snapshot_chunk_bytes,
            // A lagging follower is caught up by snapshot once it is this far behind.
            replication_lag_threshold: self.snapshot_every.saturating_add(self.keep_after_snapshot),
            max_payload_entries: MAX_PAYLOAD_ENTRIES,
            ..openraft::Config::default()
        }
        .validate()
        .map_err(|e| e.to_string())
    }
}

/// Entries per AppendEntries message. One entry is a batch of at most
/// [`write_batch::MAX_BYTES`](super::write_batch::MAX_BYTES) of payload, or a single command of
/// at most one API request body (~1.4 MiB by default); openraft's default of 300 such entries
/// could exceed the peer transport's frame limit, and a message that cannot be sent would stall
/// replication to that follower for good. 16 keeps the worst case under half the limit, and a
/// lagging follower still gets up to 16,384 batched commands per round trip.
pub(crate) const MAX_PAYLOAD_ENTRIES: u64 = 16;

#[cfg(test)]
mod payload_tests {
    use super::MAX_PAYLOAD_ENTRIES;
    use crate::api::ApiConfig;
    use crate::raft::network::MAX_FRAME;

    #[test]
    fn a_full_append_entries_message_fits_a_frame() {
        let largest_entry = ApiConfig::default()
            .body_limit
            .max(super::super::write_batch::MAX_BYTES);
        let worst = usize::try_from(MAX_PAYLOAD_ENTRIES).expect("small") * largest_entry;
        assert!(
            worst * 2 <= MAX_FRAME,
            "{worst} bytes of entries in one message against a {MAX_FRAME}-byte frame"
        );
    }
}

//! Coordination-node metrics: Raft term, role, leader, indexes, replication lag, fsync latency,
//! sessions, watches and znodes.
//!
//! The daemon renders them only when it runs a coordination node: whatever owns the node hands
//! the API a [`CoordMetrics`] (an `Arc<dyn CoordMetrics>`), and each scrape takes one
//! [`CoordSnapshot`] from it. The snapshot is plain data so that the rendering is tested
//! without a Raft cluster, and so that this module does not depend on how the node is wired.

use super::expo::{Exposition, Kind};
use super::histogram::HistogramSnapshot;

/// A source of coordination metrics (implemented for the daemon's coordination node).
pub trait CoordMetrics: Send + Sync + std::fmt::Debug {
    /// The node's numbers now; cheap (reads openraft's metrics and counters, no Raft round).
    fn coord_snapshot(&self) -> CoordSnapshot;
}

/// Roles as `vigil_raft_role` labels them.
pub const ROLES: [&str; 5] = ["leader", "follower", "candidate", "learner", "shutdown"];

/// One scrape's worth of coordination metrics.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CoordSnapshot {
    /// This node's Raft id.
    pub id: u64,
    /// One of [`ROLES`].
    pub role: &'static str,
    /// Current term.
    pub term: u64,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// Last index in the local log.
    pub last_log_index: Option<u64>,
    /// Highest index known committed (the leader computes it from its followers' matches).
    pub commit_index: Option<u64>,
    /// Last index applied to the tree.
    pub applied_index: Option<u64>,
    /// Index covered by the latest snapshot.
    pub snapshot_index: Option<u64>,
    /// On the leader: entries each follower is behind the leader's log, by follower id.
    pub replication_lag: Vec<(u64, u64)>,
    /// Open client sessions.
    pub sessions: Option<u64>,
    /// Registered watches.
    pub watches: Option<u64>,
    /// Znodes in the tree.
    pub znodes: Option<u64>,
    /// Latency of the Raft log's fsyncs.
    pub fsync: Option<HistogramSnapshot>,
}

/// Writes the `vigil_raft_*` and `vigil_coord_*` families.
pub(crate) fn write(e: &mut Exposition, s: &CoordSnapshot) {
    let id = s.id.to_string();
    let node = [("node_id", id.as_str())];
    e.family("vigil_raft_term", Kind::Gauge, "Current Raft term.");
    e.sample_u64("vigil_raft_term", &node, s.term);
    e.family(
        "vigil_raft_role",
        Kind::Gauge,
        "1 for the role this node has now (leader, follower, candidate, learner, shutdown), 0 for the others.",
    );
    for role in ROLES {
        e.sample_u64(
            "vigil_raft_role",
            &[("node_id", &id), ("role", role)],
            u64::from(s.role == role),
        );
    }
    e.family(
        "vigil_raft_has_leader",
        Kind::Gauge,
        "1 when this node knows a leader, else 0.",
    );
    e.sample_u64(
        "vigil_raft_has_leader",
        &node,
        u64::from(s.leader.is_some()),
    );
    if let Some(leader) = s.leader {
        e.family(
            "vigil_raft_leader_id",
            Kind::Gauge,
            "Raft id of the leader this node knows.",
        );
        e.sample_u64("vigil_raft_leader_id", &node, leader);
    }
    let indexes = [
        (
            "vigil_raft_last_log_index",
            "Last index in this node's Raft log.",
            s.last_log_index,
        ),
        (
            "vigil_raft_commit_index",
            "Highest Raft index known committed (exported by the leader).",
            s.commit_index,
        ),
        (
            "vigil_raft_applied_index",
            "Last Raft index applied to this node's tree.",
            s.applied_index,
        ),
        (
            "vigil_raft_snapshot_index",
            "Last Raft index covered by this node's snapshot.",
            s.snapshot_index,
        ),
    ];
    for (name, help, value) in indexes {
        if let Some(value) = value {
            e.family(name, Kind::Gauge, help);
            e.sample_u64(name, &node, value);
        }
    }
    if !s.replication_lag.is_empty() {
        e.family(
            "vigil_raft_replication_lag_entries",
            Kind::Gauge,
            "On the leader: how many log entries each follower is behind.",
        );
        for (follower, lag) in &s.replication_lag {
            let follower = follower.to_string();
            e.sample_u64(
                "vigil_raft_replication_lag_entries",
                &[("node_id", &id), ("follower", &follower)],
                *lag,
            );
        }
    }
    if let Some(fsync) = &s.fsync {
        e.family(
            "vigil_raft_log_fsync_seconds",
            Kind::Histogram,
            "Latency of the Raft log's fsync, one per appended batch.",
        );
        e.histogram(&node, fsync);
    }
    let counts = [
        (
            "vigil_coord_sessions",
            "Open coordination sessions.",
            s.sessions,
        ),
        (
            "vigil_coord_watches",
            "Registered coordination watches.",
            s.watches,
        ),
        (
            "vigil_coord_znodes",
            "Znodes in the coordination tree.",
            s.znodes,
        ),
    ];
    for (name, help, value) in counts {
        if let Some(value) = value {
            e.family(name, Kind::Gauge, help);
            e.sample_u64(name, &node, value);
        }
    }
}

/// The commit index a leader can prove: the highest index a majority of voters has, given
/// each voter's matched index (the leader's own last log index included).
pub fn quorum_index(mut matched: Vec<u64>) -> Option<u64> {
    if matched.is_empty() {
        return None;
    }
    matched.sort_unstable_by(|a, b| b.cmp(a));
    // With n voters, the (n/2 + 1)-th highest match is on a majority.
    matched.get(matched.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_decides_the_commit_index() {
        assert_eq!(quorum_index(vec![]), None);
        assert_eq!(quorum_index(vec![7]), Some(7));
        assert_eq!(quorum_index(vec![10, 4, 9]), Some(9));
        assert_eq!(quorum_index(vec![10, 4, 9, 3]), Some(4));
        assert_eq!(quorum_index(vec![10, 10, 2, 1, 1]), Some(2));
    }

    #[test]
    fn leader_metrics_render_with_node_labels() {
        let mut e = Exposition::new();
        write(
            &mut e,
            &CoordSnapshot {
                id: 1,
                role: "leader",
                term: 7,
                leader: Some(1),
                last_log_index: Some(42),
                commit_index: Some(41),
                applied_index: Some(41),
                replication_lag: vec![(2, 0), (3, 5)],
                sessions: Some(3),
                znodes: Some(12),
                ..CoordSnapshot::default()
            },
        );
        let text = e.finish();
        for line in [
            "# TYPE vigil_raft_term gauge\nvigil_raft_term{node_id=\"1\"} 7\n",
            "vigil_raft_role{node_id=\"1\",role=\"leader\"} 1\n",
            "vigil_raft_role{node_id=\"1\",role=\"follower\"} 0\n",
            "vigil_raft_leader_id{node_id=\"1\"} 1\n",
            "vigil_raft_commit_index{node_id=\"1\"} 41\n",
            "vigil_raft_replication_lag_entries{node_id=\"1\",follower=\"3\"} 5\n",
            "vigil_coord_sessions{node_id=\"1\"} 3\n",
            "vigil_coord_znodes{node_id=\"1\"} 12\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        // Unknown values are absent rather than made up.
        assert!(!text.contains("vigil_coord_watches"), "{text}");
        assert!(!text.contains("vigil_raft_snapshot_index"), "{text}");
    }
}

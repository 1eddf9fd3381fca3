//! [`CoordMetrics`] for the daemon's coordination node, and the liveness probe the watchdog
//! judges it by.

use std::time::Duration;

use vigil_coord::node::{CoordNode, Role};
use vigil_coord::raft::FSYNC_LATENCY;

use super::coord::{CoordMetrics, CoordSnapshot, quorum_index};
use super::histogram::HistogramSnapshot;
use crate::watchdog::{BEAT_EVERY, Beacon};

/// How long one liveness round trip through the Raft core may take before it counts as stuck.
const PROBE_LIMIT: Duration = Duration::from_secs(2);

impl CoordMetrics for CoordNode {
    fn coord_snapshot(&self) -> CoordSnapshot {
        snapshot(self)
    }
}

/// The node's numbers plus the watches of its client API, which the node alone cannot see.
impl CoordMetrics for crate::coord::CoordRuntime {
    fn coord_snapshot(&self) -> CoordSnapshot {
        CoordSnapshot {
            watches: Some(self.watches()),
            ..snapshot(self.node())
        }
    }
}

/// The node's numbers from openraft's metrics, the tree and the log's fsync histogram.
pub fn snapshot(node: &CoordNode) -> CoordSnapshot {
    let status = node.status();
    let role = match status.role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
    };
    // Only the leader has replication metrics: each target's matched log id.
    let replication = node.raft().metrics().borrow().replication.clone();
    let last = status.last_log_index;
    let mut replication_lag = Vec::new();
    let mut commit_index = None;
    if let (Some(replication), Some(last)) = (&replication, last) {
        let matched = |id: u64| {
            if id == status.id {
                Some(last)
            } else {
                replication
                    .get(&id)
                    .and_then(|l| l.as_ref().map(|l| l.index))
            }
        };
        for id in replication.keys().copied().filter(|id| *id != status.id) {
            // A follower that matched nothing yet is behind by the whole log.
            let behind = matched(id).map_or(last + 1, |i| last.saturating_sub(i));
            replication_lag.push((id, behind));
        }
        let voters: Vec<u64> = status
            .voters
            .keys()
            .map(|id| matched(*id).unwrap_or(0))
            .collect();
        commit_index = quorum_index(voters);
    }
    let (sessions, znodes) =
        node.read_stale(|sm| (sm.sessions().count() as u64, sm.tree().len() as u64));
    let (buckets, count, sum) = FSYNC_LATENCY.snapshot();
    CoordSnapshot {
        id: status.id,
        role,
        term: status.term,
        leader: status.leader,
        last_log_index: last,
        commit_index,
        applied_index: status.applied_index,
        snapshot_index: status.snapshot_index,
        replication_lag,
        sessions: Some(sessions),
        // Watches live in the client API's hub, which the node does not see (see the
        // `CoordRuntime` impl above).
        watches: None,
        znodes: Some(znodes),
        fsync: Some(HistogramSnapshot::from_cumulative(buckets, count, sum)),
    }
}

/// Beats `beacon` after every round trip through the node's Raft core (a message its main
/// loop must answer), at most every [`BEAT_EVERY`]; a core that is wedged, or stuck behind a
/// storage call, stops the beats and with them the watchdog's pings. Runs until aborted (the
/// supervisor stops the watchdog before the node) or until the core reports a fatal error,
/// after which the beats stay stopped: a dead coordination node is a failed daemon.
pub async fn probe_liveness(node: CoordNode, beacon: Beacon) {
    let mut tick = tokio::time::interval(BEAT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match tokio::time::timeout(PROBE_LIMIT, node.raft().with_raft_state(|_| ())).await {
            Ok(Ok(())) => beacon.beat(),
            Ok(Err(fatal)) => {
                tracing::error!(error = %fatal, "coordination node's Raft core has stopped");
                return;
            }
            Err(_) => tracing::warn!(
                limit_ms = PROBE_LIMIT.as_millis() as u64,
                "coordination node's Raft core did not answer a liveness probe"
            ),
        }
    }
}

//! [`CoordStatus`]: the coordination node as `GET /v1/status` and `vigilctl status` show it.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use vigil_coord::node::{NodeStatus, Role};

/// The node's own view of the cluster. Indexes are `None` before the node holds any entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordStatus {
    /// This node's Raft id.
    pub node_id: u64,
    /// `leader`, `follower`, `candidate`, `learner` or `shutdown`; an uninitialized node
    /// reports `learner` (openraft's state before any membership).
    pub role: String,
    /// Coordination only (no VRRP, no virtual servers).
    pub witness: bool,
    /// The leader this node follows, if it knows one.
    pub leader: Option<u64>,
    /// Current Raft term.
    pub term: u64,
    /// Last index in the local log.
    pub last_log_index: Option<u64>,
    /// Last index applied to the tree (every applied entry is committed).
    pub applied_index: Option<u64>,
    /// Last index the latest snapshot covers.
    pub snapshot_index: Option<u64>,
    /// Voters, id → Raft address.
    pub voters: BTreeMap<u64, String>,
    /// Learners (replicating, not voting), id → Raft address.
    pub learners: BTreeMap<u64, String>,
    /// `[cluster] raft_listen`.
    pub raft_listen: SocketAddr,
    /// `[cluster] client_listen`.
    pub client_listen: SocketAddr,
    /// Why the node is not a cluster member yet (bootstrap pending, waiting to be added).
    #[serde(default)]
    pub waiting: Option<String>,
}

impl CoordStatus {
    /// Builds the status from the node's.
    pub fn new(
        node: &NodeStatus,
        witness: bool,
        raft_listen: SocketAddr,
        client_listen: SocketAddr,
        waiting: Option<String>,
    ) -> Self {
        Self {
            node_id: node.id,
            role: role_name(node.role).to_owned(),
            witness,
            leader: node.leader,
            term: node.term,
            last_log_index: node.last_log_index,
            applied_index: node.applied_index,
            snapshot_index: node.snapshot_index,
            voters: node.voters.clone(),
            learners: node.learners.clone(),
            raft_listen,
            client_listen,
            waiting,
        }
    }
}

/// The lower-case name of a role.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Leader => "leader",
        Role::Follower => "follower",
        Role::Candidate => "candidate",
        Role::Learner => "learner",
        Role::Shutdown => "shutdown",
    }
}

/// One line for `vigilctl status`: `node 1 leader, term 3, leader 1, applied 42 of 42, voters
/// 1 2 3, learners 4`.
pub fn summary(s: &CoordStatus) -> String {
    let ids =
        |m: &BTreeMap<u64, String>| m.keys().map(u64::to_string).collect::<Vec<_>>().join(" ");
    let index = |i: Option<u64>| i.map_or_else(|| "-".to_owned(), |i| i.to_string());
    let mut line = format!(
        "node {} {}{}, term {}, leader {}, applied {} of {}, voters {}",
        s.node_id,
        s.role,
        if s.witness { " (witness)" } else { "" },
        s.term,
        s.leader
            .map_or_else(|| "none".to_owned(), |l| l.to_string()),
        index(s.applied_index),
        index(s.last_log_index),
        if s.voters.is_empty() {
            "none".to_owned()
        } else {
            ids(&s.voters)
        },
    );
    if !s.learners.is_empty() {
        line.push_str(", learners ");
        line.push_str(&ids(&s.learners));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_role_leader_indexes_and_members() {
        let node = NodeStatus {
            id: 3,
            role: Role::Follower,
            leader: Some(1),
            term: 4,
            last_log_index: Some(42),
            applied_index: Some(41),
            snapshot_index: None,
            voters: BTreeMap::from([(1, "a".into()), (2, "b".into()), (3, "c".into())]),
            learners: BTreeMap::from([(4, "d".into())]),
        };
        let s = CoordStatus::new(
            &node,
            true,
            "10.0.0.3:7401".parse().unwrap(),
            "127.0.0.1:7402".parse().unwrap(),
            None,
        );
        assert_eq!(
            summary(&s),
            "node 3 follower (witness), term 4, leader 1, applied 41 of 42, voters 1 2 3, learners 4"
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["role"], "follower");
        assert_eq!(json["voters"]["2"], "b");
    }
}

//! Membership changes, snapshots and the node's status.
//!
//! Membership changes must run on the leader; elsewhere they fail with `NotLeader` naming it
//! (the admin tool retries there). They wait for the change to commit.

use std::collections::{BTreeMap, BTreeSet};

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, ChangeMembers, ServerState};
use serde::{Deserialize, Serialize};

use super::{CoordError, CoordNode};

/// A node's role as it sees itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    /// Accepts writes.
    Leader,
    /// Voter following a leader.
    Follower,
    /// Campaigning.
    Candidate,
    /// Non-voting member.
    Learner,
    /// Stopped.
    Shutdown,
}

/// What a node knows about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node.
    pub id: u64,
    /// Its role.
    pub role: Role,
    /// The leader it follows, if known.
    pub leader: Option<u64>,
    /// Current term.
    pub term: u64,
    /// Last index in its log.
    pub last_log_index: Option<u64>,
    /// Last index applied to its tree (every applied entry was committed).
    pub applied_index: Option<u64>,
    /// Index covered by its latest snapshot.
    pub snapshot_index: Option<u64>,
    /// Voters, id → address.
    pub voters: BTreeMap<u64, String>,
    /// Learners, id → address.
    pub learners: BTreeMap<u64, String>,
}

fn membership_error(e: RaftError<u64, ClientWriteError<u64, BasicNode>>) -> CoordError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => CoordError::NotLeader {
            leader: f.leader_id,
        },
        RaftError::APIError(e) => CoordError::Unavailable(e.to_string()),
        RaftError::Fatal(e) => CoordError::Stopped(e.to_string()),
    }
}

impl CoordNode {
    /// The node's view of the cluster.
    pub fn status(&self) -> NodeStatus {
        let m = self.raft().metrics().borrow().clone();
        let membership = m.membership_config.membership();
        let voter_ids: BTreeSet<u64> = membership.voter_ids().collect();
        let mut voters = BTreeMap::new();
        let mut learners = BTreeMap::new();
        for (id, node) in membership.nodes() {
            if voter_ids.contains(id) {
                voters.insert(*id, node.addr.clone());
            } else {
                learners.insert(*id, node.addr.clone());
            }
        }
        let role = match m.state {
            ServerState::Leader => Role::Leader,
            ServerState::Follower => Role::Follower,
            ServerState::Candidate => Role::Candidate,
            ServerState::Learner => Role::Learner,
            ServerState::Shutdown => Role::Shutdown,
        };
        NodeStatus {
            id: m.id,
            role,
            leader: m.current_leader,
            term: m.current_term,
            last_log_index: m.last_log_index,
            applied_index: m.last_applied.map(|l| l.index),
            snapshot_index: m.snapshot.map(|l| l.index),
            voters,
            learners,
        }
    }

    /// Whether this node holds Raft state (it has voted or has log entries).
    pub async fn is_initialized(&self) -> Result<bool, CoordError> {
        self.raft()
            .is_initialized()
            .await
            .map_err(|e| CoordError::Stopped(e.to_string()))
    }

    /// Initializes a brand-new cluster whose voters are `members` (id → Raft address). Returns
    /// `false`, doing nothing, when this node already holds Raft state. The caller decides when
    /// this is safe: see the hazard on [`super::CoordConfig::initial_members`].
    pub async fn initialize(&self, members: &BTreeMap<u64, String>) -> Result<bool, CoordError> {
        let nodes: BTreeMap<u64, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        match self.raft().initialize(nodes).await {
            Ok(()) => Ok(true),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(false),
            Err(e) => Err(CoordError::Config(e.to_string())),
        }
    }

    /// Adds node `id` at `addr` as a learner and waits until it has caught up (by log or by
    /// snapshot).
    pub async fn add_learner(&self, id: u64, addr: &str) -> Result<(), CoordError> {
        self.raft()
            .add_learner(id, BasicNode::new(addr), true)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Turns learner `id` into a voter.
    pub async fn promote(&self, id: u64) -> Result<(), CoordError> {
        let change: ChangeMembers<u64, BasicNode> =
            ChangeMembers::AddVoterIds(BTreeSet::from([id]));
        self.raft()
            .change_membership(change, false)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Removes voter or learner `id` from the cluster.
    pub async fn remove(&self, id: u64) -> Result<(), CoordError> {
        let is_voter = self.status().voters.contains_key(&id);
        let change: ChangeMembers<u64, BasicNode> = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        self.raft()
            .change_membership(change, false)
            .await
            .map(drop)
            .map_err(membership_error)
    }

    /// Builds a snapshot now and waits (up to the request timeout) until it covers everything
    /// applied when called; then purges the log up to it (and waits for that too), so lagging
    /// peers can only be caught up by the snapshot. Returns the snapshot's last index.
    pub async fn snapshot_and_purge(&self) -> Result<u64, CoordError> {
        let raft = self.raft();
        let applied = raft.metrics().borrow().last_applied.map_or(0, |l| l.index);
        raft.trigger()
            .snapshot()
            .await
            .map_err(|e| CoordError::Stopped(e.to_string()))?;
        let timeout = self.inner.config.request_timeout;
        let m = raft
            .wait(Some(timeout))
            .metrics(
                |m| m.snapshot.is_some_and(|s| s.index >= applied),
                "snapshot built",
            )
            .await
            .map_err(|_| CoordError::Timeout(timeout))?;
        let upto = m.snapshot.map_or(0, |s| s.index);
        raft.trigger()
            .purge_log(upto)
            .await
            .map_err(|e| CoordError::Stopped(e.to_string()))?;
        // openraft purges asynchronously (after in-flight replication of those entries).
        raft.wait(Some(timeout))
            .metrics(|m| m.purged.is_some_and(|p| p.index >= upto), "log purged")
            .await
            .map_err(|_| CoordError::Timeout(timeout))?;
        Ok(upto)
    }
}

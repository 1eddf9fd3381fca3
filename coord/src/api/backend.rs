//! The seam between the client API and whatever holds the tree: [`Backend`].
//!
//! The HTTP layer ([`super::v1`]) only talks to a `dyn Backend`. Two implementations exist:
//! [`super::LocalBackend`] (one in-process state machine, for tests and single-node use) and the
//! replicated `CoordNode` (openraft), which must provide the same contract:
//!
//! - **`write`**: propose the command through the Raft log and return the [`Response`] that
//!   *this* command's apply produced (not a re-read). A follower forwards to the leader or fails
//!   with [`ApiError::NotLeader`]; the client then tries another address with the same request
//!   id, so a write must be applied at most once per `(session, request_id)` — the state
//!   machine's dedupe window already guarantees that.
//! - **reads**: [`Consistency::Linearizable`] reads must observe every write committed before the
//!   read started (openraft `ensure_linearizable` / read-index, then wait until applied);
//!   [`Consistency::Stale`] reads serve the local tree as is.
//! - **`heartbeat`**: leader-local (`SessionTracker::touch`); a follower forwards it or returns
//!   `NotLeader`. Unknown or expiring sessions are [`crate::Error::SessionExpired`]; a
//!   [`crate::Liveness::CommittedWrites`] session's heartbeat is refused as
//!   [`ApiError::BadRequest`] (only its committed writes renew it).
//! - **`subscribe_events`**: every applied entry, in log order, as [`BackendEvent::Applied`]
//!   (with the entry's index even when it produced no watch event, so the API knows how far the
//!   node has applied), and [`BackendEvent::SnapshotInstalled`] when the state machine was
//!   replaced by a snapshot. Sent from the apply path, so ordering is the log's.
//! - **`status`** and the membership operations map onto openraft's metrics and
//!   `add_learner` / `change_membership`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use super::ApiError;
use crate::request::{Command, Response};
use crate::session::SessionId;
use crate::tree::Stat;
use crate::watch::WatchEvent;

/// How fresh a read must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Sees every write committed before the read began (the default).
    #[default]
    Linearizable,
    /// Whatever the serving node has applied; may lag the leader.
    Stale,
}

/// One item of the applied-entry stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendEvent {
    /// The entry at `index` was applied and produced `events` (possibly none).
    Applied {
        /// Log index of the entry (its events carry their own zxids, see [`crate::zxid`]).
        index: u64,
        /// Its watch events, in order.
        events: Vec<WatchEvent>,
    },
    /// The state machine was replaced by a snapshot covering everything up to `index`; events
    /// before it are unknown to this node.
    SnapshotInstalled {
        /// Last index the snapshot covers.
        index: u64,
    },
}

/// A node's role in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Accepts writes.
    Leader,
    /// Voting member, not leader.
    Follower,
    /// Campaigning.
    Candidate,
    /// Replicates but does not vote.
    Learner,
}

/// One member of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// Raft node id.
    pub id: u64,
    /// Address of its API/Raft endpoint.
    pub addr: String,
    /// Its role as this node sees it.
    pub role: Role,
}

/// What `GET /v1/cluster` reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterStatus {
    /// Id of the node answering.
    pub node_id: u64,
    /// Current leader, if known.
    pub leader: Option<u64>,
    /// Current Raft term.
    pub term: u64,
    /// Highest committed log index.
    pub commit_index: u64,
    /// Highest applied log index.
    pub applied_index: u64,
    /// Every member and learner.
    pub members: Vec<Member>,
}

/// A membership change (`POST /v1/cluster/members`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum MembershipChange {
    /// Start replicating to a new node as a non-voter.
    AddLearner {
        /// Its node id.
        id: u64,
        /// Its address.
        addr: String,
    },
    /// Turn a caught-up learner into a voter.
    Promote {
        /// Its node id.
        id: u64,
    },
    /// Remove a voter or learner.
    Remove {
        /// Its node id.
        id: u64,
    },
}

/// Where the tree lives. Object-safe: the API holds an `Arc<dyn Backend>`. See the module docs
/// for the contract every implementation (including the Raft `CoordNode`) must keep.
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Replicates and applies `cmd`; the response of its own apply.
    async fn write(&self, cmd: Command) -> Result<Response, ApiError>;

    /// Data and stat of `path`.
    async fn get(&self, consistency: Consistency, path: &str) -> Result<(Vec<u8>, Stat), ApiError>;

    /// Stat of `path`, `None` if absent.
    async fn exists(&self, consistency: Consistency, path: &str) -> Result<Option<Stat>, ApiError>;

    /// Sorted child names of `path` and its stat.
    async fn children(
        &self,
        consistency: Consistency,
        path: &str,
    ) -> Result<(Vec<String>, Stat), ApiError>;

    /// Every node in the subtree at `path` (itself included), parents before children, at most
    /// `limit` of them; `Ok(None)` when the subtree is larger.
    async fn subtree(
        &self,
        consistency: Consistency,
        path: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, ApiError>;

    /// The session is alive (leader-local, not replicated).
    async fn heartbeat(&self, session: SessionId) -> Result<(), ApiError>;

    /// The applied-entry stream, starting after `applied_index()` at the moment of the call.
    fn subscribe_events(&self) -> broadcast::Receiver<BackendEvent>;

    /// Last index applied by this node's state machine.
    fn applied_index(&self) -> u64;

    /// Cluster view of this node.
    async fn status(&self) -> Result<ClusterStatus, ApiError>;

    /// Applies a membership change.
    async fn change_membership(&self, change: MembershipChange) -> Result<ClusterStatus, ApiError>;
}

/// A shared backend.
pub type SharedBackend = Arc<dyn Backend>;

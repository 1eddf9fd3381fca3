//! The openraft type configuration of vigil's coordination tree.
//!
//! A log entry carries a [`Proposal`]: the [`VersionedCommand`] and the leader's wall-clock time
//! when it proposed it, because [`crate::StateMachine::apply`] must not read a clock (every
//! replica has to compute the same `ctime`/`mtime` and TTL decisions).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::request::{Command, Response, VersionedCommand};

openraft::declare_raft_types!(
    /// vigil's Raft types: [`Proposal`] in, [`Response`] out, `u64` node ids, peers addressed
    /// by `host:port` ([`openraft::BasicNode`]), snapshots streamed from files.
    pub TypeConfig:
        D = Proposal,
        R = Response,
        NodeId = u64,
        Node = openraft::BasicNode,
        SnapshotData = tokio::fs::File,
);

/// A node id in the coordination cluster.
pub type NodeId = u64;

/// A peer's address record, as kept in the Raft membership.
pub type Node = openraft::BasicNode;

/// The payload of a normal Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The proposing leader's clock, in ms since the Unix epoch.
    pub leader_time_ms: u64,
    /// The replicated command, in its versioned log format.
    pub command: VersionedCommand,
}

impl Proposal {
    /// A proposal of `command` (a batch of one) stamped with `leader_time_ms`.
    pub fn new(leader_time_ms: u64, command: Command) -> Proposal {
        Proposal {
            leader_time_ms,
            command: command.into(),
        }
    }

    /// A proposal of `commands` as one batch entry stamped with `leader_time_ms`; the state
    /// machine answers with one [`Response::Batch`] holding a response per command.
    pub fn batch(leader_time_ms: u64, commands: Vec<Command>) -> Proposal {
        Proposal {
            leader_time_ms,
            command: VersionedCommand::batch(commands),
        }
    }
}

impl fmt::Display for Proposal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", self.command, self.leader_time_ms)
    }
}

/// openraft's error types specialised to [`TypeConfig`].
pub mod typ {
    use super::{Node, NodeId, TypeConfig};

    /// A Raft error with API error `E`.
    pub type RaftError<E = openraft::error::Infallible> = openraft::error::RaftError<NodeId, E>;
    /// A transport error with remote error `E`.
    pub type RpcError<E = openraft::error::Infallible> =
        openraft::error::RPCError<NodeId, Node, RaftError<E>>;
    /// Why `client_write` failed.
    pub type ClientWriteError = openraft::error::ClientWriteError<NodeId, Node>;
    /// Why a linearizable read could not be confirmed.
    pub type CheckIsLeaderError = openraft::error::CheckIsLeaderError<NodeId, Node>;
    /// Why a membership change failed.
    pub type ForwardToLeader = openraft::error::ForwardToLeader<NodeId, Node>;
    /// A storage error.
    pub type StorageError = openraft::StorageError<NodeId>;
    /// A log entry.
    pub type Entry = openraft::Entry<TypeConfig>;
    /// A snapshot's metadata.
    pub type SnapshotMeta = openraft::SnapshotMeta<NodeId, Node>;
    /// The membership as stored by the state machine.
    pub type StoredMembership = openraft::StoredMembership<NodeId, Node>;
    /// A log id.
    pub type LogId = openraft::LogId<NodeId>;
    /// A snapshot.
    pub type Snapshot = openraft::Snapshot<TypeConfig>;
    /// The Raft handle.
    pub type Raft = openraft::Raft<TypeConfig>;
}

//! What peers say to each other: Raft RPCs, plus the client requests a follower forwards to the
//! leader. Every frame is an [`Envelope`]; responses carry the id of their request, so requests
//! on one connection are pipelined and answered in any order.

use openraft::error::InstallSnapshotError;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};

use super::super::types::typ::RaftError;
use super::super::types::{NodeId, TypeConfig};
use crate::request::{Command, Response};
use crate::session::SessionId;

/// A request or response with its id.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct Envelope<T> {
    pub(crate) id: u64,
    pub(crate) body: T,
}

/// A request from a peer.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerRequest {
    /// Raft log replication or heartbeat.
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    /// Raft election.
    Vote(VoteRequest<NodeId>),
    /// One chunk of a snapshot.
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A client write forwarded to the leader.
    ClientWrite(Command),
    /// A session heartbeat forwarded to the leader.
    Heartbeat(SessionId),
    /// A follower asks the leader for a read index (the index every linearizable read must
    /// wait for, confirmed by a quorum).
    ReadIndex,
    /// What Raft state the receiver holds: a node about to bootstrap a cluster asks its peers
    /// first, so that it never starts a second cluster beside an existing one.
    Probe,
    /// Client writes forwarded to the leader together: each is handled like a
    /// [`PeerRequest::ClientWrite`] of its own, queued in this order. Last, so that the other
    /// variants keep their postcard encoding. A peer that cannot decode a request
    /// whose id it can read answers [`PeerResponse::Refused`]; a follower refused a batch
    /// sends that leader single `ClientWrite`s for a while. (A leader from before that rule
    /// drops the connection instead, and writes through upgraded followers fail until it is
    /// upgraded too.)
    ClientWrites(Vec<Command>),
}

/// The answer to [`PeerRequest::Probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerProbe {
    /// The node has voted or holds log entries: it is (or was) a member of a cluster.
    pub initialized: bool,
    /// Its current term.
    pub term: u64,
    /// The leader it follows, if any.
    pub leader: Option<NodeId>,
}

/// Why a forwarded request failed at the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardError {
    /// The receiver is not the leader; it knows this one (if any).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader it knows.
        leader: Option<NodeId>,
    },
    /// The session is unknown or being expired.
    #[error("session expired")]
    SessionExpired,
    /// The leader could not complete the request.
    #[error("leader failed: {0}")]
    Failed(String),
    /// A heartbeat for a session only its committed writes renew. Last, so that the other
    /// variants keep their postcard encoding.
    #[error("session is renewed by its committed writes only, not by heartbeats")]
    RenewedByWrites,
}

/// The answer to a [`PeerRequest`] of the same kind.
#[derive(Debug, Serialize, Deserialize)]
pub enum PeerResponse {
    /// See [`PeerRequest::AppendEntries`].
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError>),
    /// See [`PeerRequest::Vote`].
    Vote(Result<VoteResponse<NodeId>, RaftError>),
    /// See [`PeerRequest::InstallSnapshot`].
    InstallSnapshot(Result<InstallSnapshotResponse<NodeId>, RaftError<InstallSnapshotError>>),
    /// See [`PeerRequest::ClientWrite`].
    ClientWrite(Result<Response, ForwardError>),
    /// See [`PeerRequest::Heartbeat`].
    Heartbeat(Result<(), ForwardError>),
    /// See [`PeerRequest::ReadIndex`].
    ReadIndex(Result<u64, ForwardError>),
    /// See [`PeerRequest::Probe`].
    Probe(PeerProbe),
    /// The request could not be decoded or handled at all.
    Refused(String),
    /// See [`PeerRequest::ClientWrites`]: one result per command, in order.
    ClientWrites(Vec<Result<Response, ForwardError>>),
}

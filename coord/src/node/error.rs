//! [`CoordError`]: why a node operation failed.

use std::time::Duration;

use crate::raft::network::{ForwardError, TlsError};
use crate::raft::{LogError, SnapshotFileError};

/// Why a [`super::CoordNode`] operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    /// This node cannot serve the request and no leader could do it for it; `leader` is the
    /// leader it knows, if any (a client may retry there).
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader this node knows of.
        leader: Option<u64>,
    },
    /// The session is unknown or being expired.
    #[error("session expired")]
    SessionExpired,
    /// A heartbeat for a [`crate::Liveness::CommittedWrites`] session, which only its committed
    /// writes renew: refused, so that a client relying on heartbeats learns at once.
    #[error("session is renewed by its committed writes only, not by heartbeats")]
    RenewedByWrites,
    /// No outcome in time. For a write this is ambiguous: it may still commit, so a client
    /// retries with the same request id (the dedupe window makes that safe).
    #[error("no outcome within {0:?}")]
    Timeout(Duration),
    /// The request could not be carried out (no quorum, peer unreachable, …); it was not
    /// applied.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The connection to the leader broke while it had the request: like [`Self::Timeout`],
    /// the outcome is unknown.
    #[error("connection to the leader lost: {0}")]
    ConnectionLost(String),
    /// The Raft log could not be opened or written.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The snapshot could not be read.
    #[error(transparent)]
    Snapshot(#[from] SnapshotFileError),
    /// The TLS material could not be loaded.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The configuration is invalid.
    #[error("invalid coordination config: {0}")]
    Config(String),
    /// A socket operation failed.
    #[error("{op}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Raft stopped (shutdown or a fatal storage error).
    #[error("raft stopped: {0}")]
    Stopped(String),
}

impl From<ForwardError> for CoordError {
    fn from(e: ForwardError) -> Self {
        match e {
            ForwardError::NotLeader { leader } => CoordError::NotLeader { leader },
            ForwardError::SessionExpired => CoordError::SessionExpired,
            ForwardError::RenewedByWrites => CoordError::RenewedByWrites,
            ForwardError::Failed(why) => CoordError::Unavailable(why),
        }
    }
}

impl CoordError {
    /// A copy of a batched round's error for each request of the batch (read-index rounds and
    /// write proposals). `CoordError` is not `Clone` because it carries I/O errors, which such a
    /// round never returns; anything else becomes `Unavailable` with the same text.
    pub(crate) fn for_each_waiter(&self) -> CoordError {
        match self {
            CoordError::NotLeader { leader } => CoordError::NotLeader { leader: *leader },
            CoordError::Timeout(d) => CoordError::Timeout(*d),
            CoordError::Unavailable(s) => CoordError::Unavailable(s.clone()),
            CoordError::ConnectionLost(s) => CoordError::ConnectionLost(s.clone()),
            CoordError::Stopped(s) => CoordError::Stopped(s.clone()),
            other => CoordError::Unavailable(other.to_string()),
        }
    }

    /// The form sent back to a follower that forwarded the request.
    pub(crate) fn to_forward(&self) -> ForwardError {
        match self {
            CoordError::NotLeader { leader } => ForwardError::NotLeader { leader: *leader },
            CoordError::SessionExpired => ForwardError::SessionExpired,
            CoordError::RenewedByWrites => ForwardError::RenewedByWrites,
            other => ForwardError::Failed(other.to_string()),
        }
    }
}

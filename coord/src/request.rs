//! The replicated commands (what a Raft log entry carries) and their responses.
//!
//! Reads (`get`, `children`, `exists`) are not here: a node serves them from its local tree (after
//! a read-index round for linearizable reads); only writes go through the log.
//!
//! Compatibility: log entries outlive binaries, so the log stores [`VersionedCommand`]. Changing
//! [`Command`] in place would make old entries undecodable; a change adds a `V2` variant holding
//! the new shape, with a conversion from `V1`.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::session::{Liveness, SessionConfig, SessionId};
use crate::tree::Stat;

/// What a log entry stores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VersionedCommand {
    /// The first format: one command per entry, whose zxid is the entry's log index. Only
    /// read back from logs written before batching; leaders no longer write it.
    V1(Command),
    /// The commands a leader collected while its previous write was in flight, in proposal
    /// order (at most [`crate::zxid::MAX_BATCH`]). Each is applied as its own transaction with
    /// its own zxid, response and dedupe record; one failing leaves the others alone (unlike
    /// [`Request::Multi`]). See [`crate::zxid`].
    V2(Vec<Command>),
}

impl VersionedCommand {
    /// A batch of commands, in the current format.
    pub fn batch(commands: Vec<Command>) -> VersionedCommand {
        VersionedCommand::V2(commands)
    }
}

impl From<Command> for VersionedCommand {
    /// A batch of one: the current format, so its zxid is composite like every other new one.
    fn from(cmd: Command) -> Self {
        VersionedCommand::V2(vec![cmd])
    }
}

/// A replicated write. The leader builds it; every replica applies it identically.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Open a [`Liveness::Heartbeat`] session. Its id is the index of this entry. The timeout is
    /// already negotiated (see [`Command::create_session`]) so that apply does not depend on any
    /// node's config.
    CreateSession {
        /// Negotiated session timeout.
        timeout_ms: u32,
    },
    /// The client closes its session: its ephemerals are deleted. Not deduplicated: a retry
    /// after the close was applied gets `SessionExpired`, which the client reads as "closed".
    CloseSession {
        /// The session to close.
        session: SessionId,
    },
    /// The leader's [`crate::session::SessionTracker`] decided the session timed out.
    ExpireSession {
        /// The session to expire.
        session: SessionId,
    },
    /// A client write, deduplicated by (`session`, `request_id`).
    Write {
        /// The client's session; the write fails with `SessionExpired` if it is gone.
        session: SessionId,
        /// Client-chosen, increasing per session; a retry reuses the id of the original.
        request_id: u64,
        /// What to do.
        request: Request,
    },
    /// Leader-driven cleanup of empty containers and expired TTL nodes, as listed by
    /// [`crate::tree::DataTree::reapable`]. Apply checks each path again against the entry's
    /// time and skips those that no longer qualify (a child was added meanwhile, …).
    Reap {
        /// Candidate paths.
        paths: Vec<String>,
    },
    /// Like [`Command::CreateSession`], with the session's [`Liveness`]. A new variant rather
    /// than a field of `CreateSession`, because entries are postcard (no field defaults) and old
    /// ones must still decode; [`Command::create_session_with`] writes `CreateSession` for
    /// heartbeat sessions, so members not yet upgraded still apply those. A member older than
    /// this variant cannot decode it: as for batched entries (see [`crate::zxid`]), upgrade
    /// every member before creating committed-writes sessions.
    CreateSessionWith {
        /// Negotiated session timeout.
        timeout_ms: u32,
        /// What keeps the session alive.
        liveness: Liveness,
    },
}

impl Command {
    /// A `CreateSession` with the client's requested timeout clamped to the configured bounds.
    pub fn create_session(requested_timeout_ms: u32, config: &SessionConfig) -> Command {
        Command::create_session_with(requested_timeout_ms, Liveness::Heartbeat, config)
    }

    /// A session creation with the given liveness and the requested timeout clamped to the
    /// configured bounds: `CreateSession` for a heartbeat session, `CreateSessionWith` otherwise.
    pub fn create_session_with(
        requested_timeout_ms: u32,
        liveness: Liveness,
        config: &SessionConfig,
    ) -> Command {
        let timeout_ms = config.clamp(requested_timeout_ms);
        match liveness {
            Liveness::Heartbeat => Command::CreateSession { timeout_ms },
            Liveness::CommittedWrites => Command::CreateSessionWith {
                timeout_ms,
                liveness,
            },
        }
    }
}

/// A client write request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// One operation.
    Single(Op),
    /// Several operations applied atomically: all or none.
    Multi(Vec<Op>),
    /// ZooKeeper's `sync`: a no-op through the log, so that once it returns the serving node has
    /// applied every write committed before it.
    Sync,
}

/// One write operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// Create a node.
    Create {
        /// Path of the node, or its prefix if `sequential`.
        path: String,
        /// Initial data, at most [`crate::tree::MAX_DATA_LEN`] bytes.
        data: Vec<u8>,
        /// The kind of node.
        mode: CreateMode,
        /// Append a 10-digit suffix taken from the parent's `cversion`.
        sequential: bool,
    },
    /// Delete a node without children.
    Delete {
        /// The node.
        path: String,
        /// Expected version; `None` is ZooKeeper's -1 (any).
        version: Option<i32>,
    },
    /// Replace a node's data.
    SetData {
        /// The node.
        path: String,
        /// New data.
        data: Vec<u8>,
        /// Expected version; `None` is ZooKeeper's -1 (any).
        version: Option<i32>,
    },
    /// Fail the transaction unless the node exists with this version.
    Check {
        /// The node.
        path: String,
        /// Expected version; `None` only checks existence.
        version: Option<i32>,
    },
}

/// The kind of node to create (ZooKeeper's `CreateMode` minus the sequential flag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CreateMode {
    /// A normal node.
    Persistent,
    /// Owned by the writing session, deleted when it ends.
    Ephemeral,
    /// Removed by cleanup once its last child is gone; cannot be sequential.
    Container,
    /// Removed by cleanup when childless and unmodified for this many ms (1..=2^40-1).
    Ttl(u64),
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpResult {
    /// The node was created; `path` includes the sequential suffix if any.
    Created {
        /// Actual path.
        path: String,
        /// Stat of the new node.
        stat: Stat,
    },
    /// The node was deleted.
    Deleted,
    /// The data was replaced.
    DataSet {
        /// Stat after the change.
        stat: Stat,
    },
    /// The check passed.
    Checked,
    /// In a failed multi: this operation succeeded but was rolled back with the rest
    /// (ZooKeeper: `ErrorResult` with code 0).
    RolledBack,
    /// The operation failed, or (`RuntimeInconsistency`) was not tried because an earlier one of
    /// the same multi failed.
    Error(Error),
}

/// What applying a [`Command`] returned; sent back to the client that proposed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// A new session.
    SessionCreated {
        /// Its id (the log index of the `CreateSession` entry).
        session: SessionId,
        /// Its timeout.
        timeout_ms: u32,
    },
    /// The session was closed or expired and its ephemerals deleted.
    SessionClosed,
    /// A single operation succeeded.
    Op(OpResult),
    /// A multi ran; on failure every result is `RolledBack` or an `Error`.
    Multi(Vec<OpResult>),
    /// The sync went through the log.
    Synced,
    /// The nodes a `Reap` actually deleted.
    Reaped {
        /// Deleted paths.
        paths: Vec<String>,
    },
    /// The command failed as a whole.
    Error(Error),
    /// The responses to a [`VersionedCommand::V2`] entry's commands, in order. Only between
    /// the state machine and the leader that proposed the batch; clients never see it.
    Batch(Vec<Response>),
}

impl Response {
    /// The error the client should see, if any: the command's error, or for a failed multi the
    /// error of the operation that failed (as ZooKeeper's `multi` throws).
    pub fn error(&self) -> Option<Error> {
        match self {
            Response::Error(e) | Response::Op(OpResult::Error(e)) => Some(*e),
            Response::Multi(results) => results.iter().find_map(|r| match r {
                OpResult::Error(e) if *e != Error::RuntimeInconsistency => Some(*e),
                _ => None,
            }),
            _ => None,
        }
    }
}

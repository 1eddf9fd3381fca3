//! The harness error type.

use std::io;

/// Anything that stops a benchmark phase.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Socket, file or process I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: io::Error,
    },
    /// A ZooKeeper reply could not be decoded.
    #[error("zookeeper protocol: {0}")]
    Jute(#[from] crate::zk::jute::DecodeError),
    /// ZooKeeper answered with an error code.
    #[error("zookeeper {op} {path}: error code {code}")]
    ZkError {
        /// Operation name.
        op: &'static str,
        /// Node path.
        path: String,
        /// `KeeperException.Code`.
        code: i32,
    },
    /// The server refused or dropped the session or connection.
    #[error("{0}: connection closed")]
    Closed(&'static str),
    /// etcd's HTTP gateway answered unexpectedly.
    #[error("etcd {op}: {detail}")]
    Etcd {
        /// Endpoint path.
        op: &'static str,
        /// Status or decoding problem.
        detail: String,
    },
    /// vigil's `/v1` API answered with an error, or could not be reached.
    #[error("vigil {op}: {detail}")]
    Vigil {
        /// Operation name.
        op: &'static str,
        /// The client's error.
        detail: String,
    },
    /// A deadline passed.
    #[error("timed out: {0}")]
    Timeout(String),
    /// A cluster member misbehaved (exited, never served).
    #[error("cluster: {0}")]
    Cluster(String),
}

impl BenchError {
    /// Wraps an I/O error with what was being attempted.
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        BenchError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result alias for the harness.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

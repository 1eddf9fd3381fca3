//! [`ClientError`]: what a client call can fail with.

use crate::api::ErrorBody;
use crate::api::tree_error_name;
use crate::error::Error;

/// A failed client call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{} {}: {}", status, body.error, body.message)]
    Api {
        /// HTTP status.
        status: u16,
        /// The JSON error.
        body: Box<ErrorBody>,
    },
    /// No server could be reached (after trying every address); the last failure.
    #[error("no server reachable: {0}")]
    Transport(String),
    /// A server answered something that is not this API.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// A recipe's own node disappeared (its session expired): the lock or leadership is lost.
    #[error("lost: {0}")]
    Lost(String),
    /// The request could not be built (bad address, path, …).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl ClientError {
    /// The tree error, when the server reported one (`NoNode`, `NodeExists`, …).
    pub fn tree_error(&self) -> Option<Error> {
        match self {
            ClientError::Api { body, .. } => {
                Error::from_code(body.code).filter(|e| tree_error_name(*e) == body.error)
            }
            _ => None,
        }
    }

    /// Whether this is the tree error `e`.
    pub fn is(&self, e: Error) -> bool {
        self.tree_error() == Some(e)
    }
}

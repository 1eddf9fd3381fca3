//! Errors of tree operations, mirroring ZooKeeper's `KeeperException.Code` so that a ZooKeeper-wire
//! front-end can forward them unchanged.
//!
//! The errors are plain codes (no path, no message): they are part of the replicated state (a
//! retried request gets the cached response back, errors included), so they must be cheap to
//! store and compare. The caller knows which path it asked about.

use serde::{Deserialize, Serialize};

/// An error returned by a tree operation, with its ZooKeeper numeric code ([`Error::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, thiserror::Error)]
pub enum Error {
    /// An operation of a multi that was not run because an earlier operation failed (-2).
    #[error("runtime inconsistency: an earlier operation of the transaction failed")]
    RuntimeInconsistency,
    /// The operation is not implemented (-6).
    #[error("operation not implemented")]
    Unimplemented,
    /// Invalid path, data too large, bad TTL, bad session timeout, … (-8).
    #[error("bad arguments")]
    BadArguments,
    /// The node (or the parent of a node to create) does not exist (-101).
    #[error("node does not exist")]
    NoNode,
    /// The expected version does not match the node's version (-103).
    #[error("version does not match")]
    BadVersion,
    /// Ephemeral nodes cannot have children (-108).
    #[error("ephemeral nodes may not have children")]
    NoChildrenForEphemerals,
    /// The node already exists (-110).
    #[error("node already exists")]
    NodeExists,
    /// The node has children and cannot be deleted (-111).
    #[error("node has children")]
    NotEmpty,
    /// The session does not exist any more (expired or closed) (-112).
    #[error("session expired")]
    SessionExpired,
    /// No such watch registration to remove (-121).
    #[error("no such watcher")]
    NoWatcher,
    /// A retried request whose id is older than the deduplication window: it may or may not have
    /// been applied, so it is refused rather than applied twice. vigil-specific (-200), outside
    /// ZooKeeper's range.
    #[error("request id older than the deduplication window")]
    StaleRequest,
}

impl Error {
    /// Every variant, for exhaustive tests and code tables.
    pub const ALL: [Error; 11] = [
        Error::RuntimeInconsistency,
        Error::Unimplemented,
        Error::BadArguments,
        Error::NoNode,
        Error::BadVersion,
        Error::NoChildrenForEphemerals,
        Error::NodeExists,
        Error::NotEmpty,
        Error::SessionExpired,
        Error::NoWatcher,
        Error::StaleRequest,
    ];

    /// The numeric code ZooKeeper uses for this error (`KeeperException.Code.intValue()`).
    pub const fn code(self) -> i32 {
        match self {
            Error::RuntimeInconsistency => -2,
            Error::Unimplemented => -6,
            Error::BadArguments => -8,
            Error::NoNode => -101,
            Error::BadVersion => -103,
            Error::NoChildrenForEphemerals => -108,
            Error::NodeExists => -110,
            Error::NotEmpty => -111,
            Error::SessionExpired => -112,
            Error::NoWatcher => -121,
            Error::StaleRequest => -200,
        }
    }

    /// The error with ZooKeeper numeric code `code`, if it is one this crate produces.
    pub fn from_code(code: i32) -> Option<Error> {
        Error::ALL.into_iter().find(|e| e.code() == code)
    }
}

#[cfg(test)]
mod tests {
    use super::Error;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for e in Error::ALL {
            assert_eq!(Error::from_code(e.code()), Some(e));
        }
        let mut codes: Vec<i32> = Error::ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Error::ALL.len());
        assert_eq!(Error::from_code(0), None);
    }
}

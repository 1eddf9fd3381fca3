//! `Stat`: the metadata ZooKeeper returns with every node.

use serde::{Deserialize, Serialize};

/// A node's metadata, field for field ZooKeeper's `Stat`. Zxids are Raft log indexes; times are
/// milliseconds since the Unix epoch as stamped by the leader into the log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stat {
    /// Zxid of the write that created the node.
    pub czxid: u64,
    /// Zxid of the write that last changed the node's data (the creation counts).
    pub mzxid: u64,
    /// Zxid of the write that last added or removed a child (the creation counts).
    pub pzxid: u64,
    /// Creation time (leader's clock, ms since the epoch).
    pub ctime: u64,
    /// Time of the last data change (leader's clock, ms since the epoch).
    pub mtime: u64,
    /// Number of data changes.
    pub version: i32,
    /// Number of child changes (creations and deletions); also the next sequential suffix.
    pub cversion: i32,
    /// Number of ACL changes; always 0, vigil has no ACLs yet.
    pub aversion: i32,
    /// Session that owns an ephemeral node, 0 for every other kind. Unlike ZooKeeper, containers
    /// and TTL nodes do not overload this field; see [`crate::tree::NodeKind`].
    pub ephemeral_owner: u64,
    /// Length of the data in bytes.
    pub data_length: u32,
    /// Number of children.
    pub num_children: u32,
}

//! The znode tree: ZooKeeper's data model, stored compactly.
//!
//! Storage: one ordered index from full path to a slot in a chunked slab of nodes (`key.rs`
//! explains why a node's children are then a contiguous range of the index, so no node keeps a
//! child set), plus two small derived indexes that are rebuilt on restore rather than stored:
//! the paths of containers/TTL nodes (for the cleanup scan) and the ephemerals of each session
//! (for session expiry). Writes go through `txn.rs`, which records how to undo each change so
//! that a failed multi leaves no trace.
//!
//! Budget: about 230 MB for a million znodes with 20-byte paths and 32 bytes of data each
//! (measured, release build), about 70 bytes each in a snapshot.

mod cleanup;
mod key;
mod node;
pub mod path;
mod slab;
mod stat;
pub(crate) mod txn;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use self::key::PathKey;
pub(crate) use self::node::Node;
pub use self::node::{MAX_DATA_LEN, MAX_TTL_MS, NodeKind};
use self::slab::Slab;

/// Most nodes a tree may hold (slots are `u32`).
pub const MAX_NODES: usize = u32::MAX as usize;
pub use self::path::PathError;
pub use self::stat::Stat;
use crate::error::Error;
use crate::session::SessionId;

/// The tree of znodes. Reads are public; writes happen only through
/// [`crate::StateMachine::apply`], so that every replica stays identical.
///
/// Equality is logical (same paths, same nodes), whatever the slot layout.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// Path → slot. Every slot in use appears exactly once.
    index: BTreeMap<PathKey, u32>,
    slab: Slab,
    /// Containers and TTL nodes: the only candidates of the leader's cleanup scan.
    reapable: BTreeSet<Box<str>>,
    /// Ephemeral paths per owner, so that ending a session does not scan the tree.
    ephemerals: BTreeMap<SessionId, BTreeSet<Box<str>>>,
}

/// Why a snapshot could not be turned back into a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    /// The snapshot bytes do not decode.
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    /// The root node is missing.
    #[error("snapshot has no root node")]
    NoRoot,
    /// A node's parent is missing or is ephemeral.
    #[error("node {0} has no valid parent")]
    Orphan(String),
    /// A path appears twice.
    #[error("node {0} appears twice")]
    Duplicate(String),
    /// A stored child count disagrees with the nodes present.
    #[error("node {0} has a wrong child count")]
    ChildCount(String),
    /// A session-level invariant does not hold (unknown ephemeral owner, …).
    #[error("inconsistent session state: {0}")]
    Sessions(String),
}

impl Default for DataTree {
    fn default() -> Self {
        DataTree::new()
    }
}

impl DataTree {
    /// A tree holding only the root `/` (zxid 0, time 0).
    pub fn new() -> DataTree {
        let mut tree = DataTree {
            index: BTreeMap::new(),
            slab: Slab::default(),
            reapable: BTreeSet::new(),
            ephemerals: BTreeMap::new(),
        };
        tree.put("/", Node::new(Box::default(), NodeKind::Persistent, 0, 0));
        tree
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Always false: the root cannot be deleted.
    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The data and stat of `path` (ZooKeeper's `getData`).
    pub fn get(&self, path: &str) -> Result<(&[u8], Stat), Error> {
        path::validate(path, false)?;
        let node = self.node(path).ok_or(Error::NoNode)?;
        Ok((&node.data, node.stat()))
    }

    /// The stat of `path`, or `None` if it does not exist (ZooKeeper's `exists`).
    pub fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        path::validate(path, false)?;
        Ok(self.node(path).map(Node::stat))
    }

    /// The names of the children of `path`, sorted, and its stat (ZooKeeper's `getChildren2`).
    pub fn children(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        path::validate(path, false)?;
        let node = self.node(path).ok_or(Error::NoNode)?;
        let names = self
            .child_paths(path)
            .map(|p| path::name(p).to_owned())
            .collect();
        Ok((names, node.stat()))
    }

    /// The kind of node at `path`, if it exists.
    pub fn kind(&self, path: &str) -> Option<NodeKind> {
        self.node(path).map(|n| n.kind)
    }

    /// Paths of the ephemerals owned by `session`, sorted.
    pub fn ephemerals(&self, session: SessionId) -> impl Iterator<Item = &str> {
        self.ephemerals
            .get(&session)
            .into_iter()
            .flat_map(|set| set.iter().map(AsRef::as_ref))
    }

    /// Every path in the tree with its stat, parents before children (by depth, then path).
    pub fn iter(&self) -> impl Iterator<Item = (&str, &[u8], Stat)> {
        self.entries()
            .map(|(k, n)| (k.as_str(), &*n.data, n.stat()))
    }

    /// Index entries with their nodes, in key order.
    fn entries(&self) -> impl Iterator<Item = (&PathKey, &Node)> {
        self.index
            .iter()
            .filter_map(|(k, &slot)| Some((k, self.slab.get(slot)?)))
    }

    pub(crate) fn node(&self, path: &str) -> Option<&Node> {
        let slot = *self.index.get(&PathKey::new(path))?;
        self.slab.get(slot)
    }

    pub(crate) fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let slot = *self.index.get(&PathKey::new(path))?;
        self.slab.get_mut(slot)
    }

    /// Full paths of the children of `parent`: one range of the map (see [`key`]).
    fn child_paths<'a>(&'a self, parent: &str) -> impl Iterator<Item = &'a str> + 'a {
        let depth = path::depth(parent) + 1;
        let (lo, hi) = if parent == "/" {
            (PathKey::bound(depth, ""), PathKey::bound(depth + 1, ""))
        } else {
            // '0' is the byte after '/', so [parent/, parent0) holds exactly "parent/…".
            (
                PathKey::bound(depth, &format!("{parent}/")),
                PathKey::bound(depth, &format!("{parent}0")),
            )
        };
        self.index
            .range((Bound::Included(lo), Bound::Excluded(hi)))
            .map(|(k, _)| k.as_str())
    }

    /// Inserts a node that is not in the tree, keeping the derived indexes right.
    pub(crate) fn put(&mut self, path: &str, node: Node) {
        self.add_to_indexes(path, node.kind);
        let slot = self.slab.insert(node);
        if let Some(old) = self.index.insert(PathKey::new(path), slot) {
            // Callers check existence first; never leak the slot if one did not.
            self.slab.remove(old);
        }
    }

    /// Removes a node, keeping the derived indexes right.
    pub(crate) fn take(&mut self, path: &str) -> Option<Node> {
        let slot = self.index.remove(&PathKey::new(path))?;
        let node = self.slab.remove(slot)?;
        match node.kind {
            NodeKind::Ephemeral(owner) => {
                if let Some(set) = self.ephemerals.get_mut(&owner) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&owner);
                    }
                }
            }
            NodeKind::Container | NodeKind::Ttl(_) => {
                self.reapable.remove(path);
            }
            NodeKind::Persistent => {}
        }
        Some(node)
    }

    fn add_to_indexes(&mut self, path: &str, kind: NodeKind) {
        match kind {
            NodeKind::Ephemeral(owner) => {
                self.ephemerals
                    .entry(owner)
                    .or_default()
                    .insert(path.into());
            }
            NodeKind::Container | NodeKind::Ttl(_) => {
                self.reapable.insert(path.into());
            }
            NodeKind::Persistent => {}
        }
    }

    /// Sessions that own at least one ephemeral.
    pub(crate) fn ephemeral_owners(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.ephemerals.keys().copied()
    }

    /// Rebuilds a tree from decoded nodes (in any order), checking the invariants apply relies
    /// on.
    fn from_nodes(nodes: Vec<(PathKey, Node)>) -> Result<DataTree, RestoreError> {
        let mut slab = Slab::default();
        let mut entries = Vec::with_capacity(nodes.len());
        let mut reapable = BTreeSet::new();
        let mut ephemerals: BTreeMap<SessionId, BTreeSet<Box<str>>> = BTreeMap::new();
        for (key, node) in nodes {
            match node.kind {
                NodeKind::Ephemeral(owner) => {
                    ephemerals
                        .entry(owner)
                        .or_default()
                        .insert(key.as_str().into());
                }
                NodeKind::Container | NodeKind::Ttl(_) => {
                    reapable.insert(key.as_str().into());
                }
                NodeKind::Persistent => {}
            }
            entries.push((key, slab.insert(node)));
        }
        let n = entries.len();
        // Collecting sorted entries builds the B-tree in bulk with full nodes, denser than the
        // one-by-one inserts of live operation.
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        if let Some(w) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(RestoreError::Duplicate(w[0].0.as_str().to_owned()));
        }
        let index: BTreeMap<PathKey, u32> = entries.into_iter().collect();
        debug_assert_eq!(index.len(), n);
        let tree = DataTree {
            index,
            slab,
            reapable,
            ephemerals,
        };
        tree.check()?;
        Ok(tree)
    }

    /// Root present, every parent present and not ephemeral, child counts right.
    fn check(&self) -> Result<(), RestoreError> {
        if self.node("/").is_none() {
            return Err(RestoreError::NoRoot);
        }
        let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
        for (key, _) in self.entries() {
            let p = key.as_str();
            if p == "/" {
                continue;
            }
            let parent = path::parent(p);
            match self.node(parent) {
                Some(n) if !matches!(n.kind, NodeKind::Ephemeral(_)) => {}
                _ => return Err(RestoreError::Orphan(p.to_owned())),
            }
            *counts.entry(parent).or_default() += 1;
        }
        for (key, node) in self.entries() {
            if counts.get(key.as_str()).copied().unwrap_or(0) != node.num_children {
                return Err(RestoreError::ChildCount(key.as_str().to_owned()));
            }
        }
        Ok(())
    }
}

impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.entries().eq(other.entries())
    }
}

impl Eq for DataTree {}

/// Only (path, node) pairs are written, in path order; slots and indexes are derived data.
impl Serialize for DataTree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeSeq};
        // The length first: postcard (and other compact formats) need it up front.
        let mut seq = s.serialize_seq(Some(self.index.len()))?;
        for (key, &slot) in &self.index {
            let node = self
                .slab
                .get(slot)
                .ok_or_else(|| S::Error::custom("index points to an empty slot"))?;
            seq.serialize_element(&(key, node))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for DataTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let nodes = Vec::<(PathKey, Node)>::deserialize(d)?;
        DataTree::from_nodes(nodes).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{DataTree, Node, NodeKind, PathKey, RestoreError};
    use crate::session::SessionId;

    fn node(kind: NodeKind, children: u32) -> Node {
        let mut n = Node::new(Box::default(), kind, 1, 1);
        n.num_children = children;
        n
    }

    fn restore(nodes: Vec<(&str, Node)>) -> Result<DataTree, RestoreError> {
        let nodes = nodes
            .into_iter()
            .map(|(p, n)| (PathKey::new(p), n))
            .collect();
        DataTree::from_nodes(nodes)
    }

    #[test]
    fn restore_checks_invariants() {
        let p = NodeKind::Persistent;
        assert_eq!(restore(vec![("/a", node(p, 0))]), Err(RestoreError::NoRoot));
        assert_eq!(
            restore(vec![("/", node(p, 1)), ("/a/b", node(p, 0))]),
            Err(RestoreError::Orphan("/a/b".into()))
        );
        let eph = NodeKind::Ephemeral(SessionId(3));
        assert_eq!(
            restore(vec![
                ("/", node(p, 1)),
                ("/e", node(eph, 1)),
                ("/e/x", node(p, 0))
            ]),
            Err(RestoreError::Orphan("/e/x".into()))
        );
        assert_eq!(
            restore(vec![("/", node(p, 2)), ("/a", node(p, 0))]),
            Err(RestoreError::ChildCount("/".into()))
        );
        assert_eq!(
            restore(vec![
                ("/", node(p, 1)),
                ("/a", node(p, 0)),
                ("/a", node(p, 0))
            ]),
            Err(RestoreError::Duplicate("/a".into()))
        );
        // Any order is accepted, and the derived indexes are rebuilt.
        let tree = restore(vec![
            ("/c", node(NodeKind::Container, 0)),
            ("/e", node(eph, 0)),
            ("/", node(p, 2)),
        ])
        .expect("valid");
        assert_eq!(tree.ephemerals(SessionId(3)).collect::<Vec<_>>(), ["/e"]);
        assert_eq!(tree.reapable.len(), 1);
    }
}

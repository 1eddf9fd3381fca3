//! The znode tree: ZooKeeper's data model, stored compactly.
//!
//! Storage: the nodes live in a chunked slab addressed by `u32` slots; one ordered index maps
//! (parent slot, name) to a slot (`key.rs`), so a node's children are one range of the index,
//! each name is stored once and no full path is kept anywhere. A path is resolved by walking its
//! components from the root. Two small derived indexes are rebuilt on restore rather than
//! stored: the paths of containers/TTL nodes (for the cleanup scan) and the ephemerals of each
//! session (for session expiry). Writes go through `txn.rs`, which records how to undo each
//! change so that a failed multi leaves no trace.
//!
//! Snapshots (`snapshot.rs`) list the nodes breadth-first, each as (position of its parent in
//! the list, name, node), so a restore streams the records straight into the slab and the
//! index is built in one bulk pass from keys that arrive sorted.
//!
//! Budget, measured with `examples/tree_footprint.rs` (a million `/vb/m/<i>` with 10-byte
//! data): 151 bytes of RSS per znode when built by applies, 128 after a restore (a 96-byte slab
//! entry plus a 28-byte index entry and B-tree slack); 45 bytes per znode in a snapshot.

mod cleanup;
mod key;
mod node;
pub mod path;
mod slab;
mod snapshot;
mod stat;
pub(crate) mod txn;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Bound;

use self::key::{Child, ChildKey, Probe};
pub(crate) use self::node::{Data, Node};
pub use self::node::{MAX_DATA_LEN, MAX_TTL_MS, NodeKind};
use self::slab::Slab;
pub(crate) use self::snapshot::{LegacyTree, TreeIn};

/// Most nodes a tree may hold (slots are `u32`).
pub const MAX_NODES: usize = u32::MAX as usize;
pub use self::path::PathError;
pub use self::stat::Stat;
use crate::error::Error;
use crate::session::SessionId;

/// The root's slot: it is inserted first and can never be removed.
const ROOT: u32 = 0;

/// The tree of znodes. Reads are public; writes happen only through
/// [`crate::StateMachine::apply`], so that every replica stays identical.
///
/// Equality is logical (same paths, same nodes), whatever the slot layout.
#[derive(Debug, Clone)]
pub struct DataTree {
    /// (parent slot, name) → slot, for every node but the root.
    index: BTreeMap<ChildKey, u32>,
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
        let mut slab = Slab::default();
        let root = slab.insert(Node::new(Data::default(), NodeKind::Persistent, 0, 0));
        debug_assert_eq!(root, ROOT);
        DataTree {
            index: BTreeMap::new(),
            slab,
            reapable: BTreeSet::new(),
            ephemerals: BTreeMap::new(),
        }
    }

    /// Number of nodes, the root included.
    pub fn len(&self) -> usize {
        self.index.len() + 1
    }

    /// Always false: the root cannot be deleted.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The data and stat of `path` (ZooKeeper's `getData`).
    pub fn get(&self, path: &str) -> Result<(&[u8], Stat), Error> {
        path::validate(path, false)?;
        let node = self.node(path).ok_or(Error::NoNode)?;
        Ok((&*node.data, node.stat()))
    }

    /// The stat of `path`, or `None` if it does not exist (ZooKeeper's `exists`).
    pub fn exists(&self, path: &str) -> Result<Option<Stat>, Error> {
        path::validate(path, false)?;
        Ok(self.node(path).map(Node::stat))
    }

    /// The names of the children of `path`, sorted, and its stat (ZooKeeper's `getChildren2`).
    pub fn children(&self, path: &str) -> Result<(Vec<String>, Stat), Error> {
        path::validate(path, false)?;
        let slot = self.slot(path).ok_or(Error::NoNode)?;
        let node = self.slab.get(slot).ok_or(Error::NoNode)?;
        let names = self
            .children_of(slot)
            .map(|(k, _)| k.name().to_owned())
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

    /// Every path in the tree with its data and stat, parents before children (breadth-first,
    /// siblings by name). Builds each path, so it is meant for tests and tools, not hot paths.
    pub fn iter(&self) -> impl Iterator<Item = (String, &[u8], Stat)> {
        let mut paths: Vec<String> = Vec::new();
        self.walk().map(move |v| {
            let path = if v.position == 0 {
                "/".to_owned()
            } else {
                path::join(&paths[v.parent as usize], v.name)
            };
            paths.push(path.clone());
            (path, &*v.node.data, v.node.stat())
        })
    }

    /// Every node breadth-first from the root, siblings in name order: the snapshot order.
    fn walk(&self) -> Walk<'_> {
        Walk {
            tree: self,
            queue: vec![ROOT],
            parent: 0,
            children: None,
            started: false,
        }
    }

    /// The slot of `path`, one index probe per component.
    fn slot(&self, path: &str) -> Option<u32> {
        if path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        rest.split('/').try_fold(ROOT, |parent, name| {
            let probe = Probe {
                parent,
                name: name.as_bytes(),
            };
            self.index.get(&probe as &dyn Child).copied()
        })
    }

    pub(crate) fn node(&self, path: &str) -> Option<&Node> {
        self.slab.get(self.slot(path)?)
    }

    pub(crate) fn node_mut(&mut self, path: &str) -> Option<&mut Node> {
        let slot = self.slot(path)?;
        self.slab.get_mut(slot)
    }

    /// The index entries of the children of `slot`, by name: one range of the map.
    fn children_of(&self, slot: u32) -> std::collections::btree_map::Range<'_, ChildKey, u32> {
        let lo = Probe {
            parent: slot,
            name: b"",
        };
        let hi = slot
            .checked_add(1)
            .map(|parent| Probe { parent, name: b"" });
        let hi = match &hi {
            Some(p) => Bound::Excluded(p as &dyn Child),
            None => Bound::Unbounded,
        };
        self.index
            .range::<dyn Child, _>((Bound::Included(&lo as &dyn Child), hi))
    }

    /// Inserts a node that is not in the tree under an existing parent, keeping the derived
    /// indexes right.
    pub(crate) fn put(&mut self, path: &str, node: Node) {
        let Some(parent) = self.slot(path::parent(path)).filter(|_| path != "/") else {
            // Callers check the parent first; never store a node nothing can reach.
            debug_assert!(false, "put {path} without its parent");
            return;
        };
        self.add_to_indexes(path, node.kind);
        let slot = self.slab.insert(node);
        if let Some(old) = self
            .index
            .insert(ChildKey::new(parent, path::name(path)), slot)
        {
            // Callers check existence first; never leak the slot if one did not.
            self.slab.remove(old);
        }
    }

    /// Removes a childless node (callers check), keeping the derived indexes right.
    pub(crate) fn take(&mut self, path: &str) -> Option<Node> {
        if path == "/" {
            return None;
        }
        let parent = self.slot(path::parent(path))?;
        let probe = Probe {
            parent,
            name: path::name(path).as_bytes(),
        };
        let slot = self.index.remove(&probe as &dyn Child)?;
        let node = self.slab.remove(slot)?;
        // A removed parent's slot may be reused, which would adopt its orphans.
        debug_assert_eq!(node.num_children, 0, "take {path} with children");
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
}

/// One node met by [`DataTree::walk`].
struct Visit<'a> {
    /// Position in the walk (the root is 0).
    position: u32,
    /// Position of the parent (0 for the root itself).
    parent: u32,
    /// The node's name ("" for the root).
    name: &'a str,
    node: &'a Node,
}

/// Breadth-first walk: `queue` holds the slots met so far, in walk order, and `parent` is the
/// position whose children are being listed.
struct Walk<'a> {
    tree: &'a DataTree,
    queue: Vec<u32>,
    parent: usize,
    children: Option<std::collections::btree_map::Range<'a, ChildKey, u32>>,
    started: bool,
}

impl<'a> Iterator for Walk<'a> {
    type Item = Visit<'a>;

    fn next(&mut self) -> Option<Visit<'a>> {
        if !self.started {
            self.started = true;
            return Some(Visit {
                position: 0,
                parent: 0,
                name: "",
                node: self.tree.slab.get(ROOT)?,
            });
        }
        loop {
            if let Some((key, &slot)) = self.children.as_mut().and_then(Iterator::next) {
                let position = self.queue.len() as u32;
                self.queue.push(slot);
                return Some(Visit {
                    position,
                    parent: self.parent as u32 - 1,
                    name: key.name(),
                    node: self.tree.slab.get(slot)?,
                });
            }
            let &slot = self.queue.get(self.parent)?;
            self.parent += 1;
            // Most nodes are leaves: skip their (empty) range probe.
            let has_children = self.tree.slab.get(slot).is_some_and(|n| n.num_children > 0);
            self.children = has_children.then(|| self.tree.children_of(slot));
        }
    }
}

impl PartialEq for DataTree {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .walk()
                .map(|v| (v.parent, v.name, v.node))
                .eq(other.walk().map(|v| (v.parent, v.name, v.node)))
    }
}

impl Eq for DataTree {}

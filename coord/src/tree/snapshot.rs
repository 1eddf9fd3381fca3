//! The tree's part of a snapshot, and rebuilding a tree from one.
//!
//! Current format (the state machine's `V2`): a sequence of records in breadth-first order,
//! siblings by name, each `(parent, name, node)` where `parent` is the position of the parent's
//! record (the root comes first as `(0, "", root)`). Record `i` becomes slot `i`, so a restore
//! streams records straight into the slab, the keys (parent slot, name) arrive already sorted
//! and the index is built in one bulk pass; nothing else is allocated per node.
//!
//! Old format (`V1`, written before the name-keyed index): `(full path, node)` pairs in
//! (depth, path) order. Still read, through [`LegacyTree`], so an upgraded member restarts from
//! the snapshot its previous version wrote; it is never written.
//!
//! A restore checks every invariant apply relies on (root first, parents before children and
//! not ephemeral, no duplicates, child counts) and names the first node that breaks one.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::key::ChildKey;
use super::slab::Slab;
use super::{DataTree, MAX_NODES, Node, NodeKind, ROOT, RestoreError, path};
use crate::session::SessionId;

/// One record as written: borrowed from the live tree.
#[derive(Serialize)]
struct RecordOut<'a> {
    parent: u32,
    name: &'a str,
    node: &'a Node,
}

/// One record as read. The name is decoded straight into a key (inline when short).
#[derive(Deserialize)]
struct RecordIn {
    parent: u32,
    name: Name,
    node: Node,
}

/// A validated node name, already in key form (its parent is filled in afterwards).
struct Name(ChildKey);

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = Name;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a node name")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                // The root's record carries the empty name; every other is checked.
                if !v.is_empty() {
                    path::validate_name(v).map_err(|e| E::custom(format!("name {v:?}: {e}")))?;
                }
                Ok(Name(ChildKey::new(0, v)))
            }
        }
        d.deserialize_str(NameVisitor)
    }
}

/// Records in walk order; slots and the derived indexes are not written.
impl Serialize for DataTree {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        // The length first: postcard (and other compact formats) need it up front.
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for v in self.walk() {
            seq.serialize_element(&RecordOut {
                parent: v.parent,
                name: v.name,
                node: v.node,
            })?;
        }
        seq.end()
    }
}

/// Collects nodes in slot order and checks them; shared by both formats.
struct Builder {
    slab: Slab,
    /// Key of slot `i + 1` at `i` (the root has none).
    keys: Vec<(ChildKey, u32)>,
    /// Children seen so far, per slot.
    counts: Vec<u32>,
    /// Whether keys must arrive strictly ascending (the current format guarantees it).
    ordered: bool,
    reapable: BTreeSet<Box<str>>,
    ephemerals: BTreeMap<SessionId, BTreeSet<Box<str>>>,
}

impl Builder {
    fn new(ordered: bool, hint: usize) -> Builder {
        // A hostile length must not reserve gigabytes before the first record.
        let hint = hint.min(1 << 20);
        Builder {
            slab: Slab::default(),
            keys: Vec::with_capacity(hint),
            counts: Vec::with_capacity(hint),
            ordered,
            reapable: BTreeSet::new(),
            ephemerals: BTreeMap::new(),
        }
    }

    /// The path of `slot`, rebuilt from the keys (only for errors and the rare derived
    /// indexes).
    fn path_of(&self, slot: u32) -> String {
        let mut names = Vec::new();
        let mut at = slot;
        while at != ROOT {
            let Some((key, _)) = self.keys.get(at as usize - 1) else {
                break;
            };
            names.push(key.name());
            at = key.parent();
        }
        names.reverse();
        format!("/{}", names.join("/"))
    }

    fn root(&mut self, parent: u32, key: &ChildKey, node: Node) -> Result<(), RestoreError> {
        if parent != 0 || !key.name().is_empty() || !matches!(node.kind, NodeKind::Persistent) {
            return Err(RestoreError::NoRoot);
        }
        self.slab.insert(node);
        self.counts.push(0);
        Ok(())
    }

    /// Adds the node whose key is `key`; its slot is the next one.
    fn push(&mut self, key: ChildKey, node: Node) -> Result<(), RestoreError> {
        let slot = self.counts.len() as u32;
        let parent = key.parent();
        let child_path = |b: &Builder| {
            if parent < slot {
                path::join(&b.path_of(parent), key.name())
            } else {
                format!("(unknown parent #{parent})/{}", key.name())
            }
        };
        if self.counts.len() >= MAX_NODES {
            return Err(RestoreError::Decode("too many nodes".into()));
        }
        match self.slab.get(parent) {
            Some(p) if parent < slot && !matches!(p.kind, NodeKind::Ephemeral(_)) => {}
            _ => return Err(RestoreError::Orphan(child_path(self))),
        }
        if self.ordered
            && let Some((last, _)) = self.keys.last()
        {
            match last.cmp(&key) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => {
                    return Err(RestoreError::Duplicate(child_path(self)));
                }
                std::cmp::Ordering::Greater => {
                    return Err(RestoreError::Decode(format!(
                        "node {} is out of order",
                        child_path(self)
                    )));
                }
            }
        }
        if !matches!(node.kind, NodeKind::Persistent) {
            let path: Box<str> = child_path(self).into();
            match node.kind {
                NodeKind::Ephemeral(owner) => {
                    self.ephemerals.entry(owner).or_default().insert(path);
                }
                NodeKind::Container | NodeKind::Ttl(_) => {
                    self.reapable.insert(path);
                }
                NodeKind::Persistent => {}
            }
        }
        let got = self.slab.insert(node);
        debug_assert_eq!(got, slot);
        self.keys.push((key, slot));
        self.counts.push(0);
        self.counts[parent as usize] += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<DataTree, RestoreError> {
        if self.counts.is_empty() {
            return Err(RestoreError::NoRoot);
        }
        for (slot, &seen) in self.counts.iter().enumerate() {
            let stored = self.slab.get(slot as u32).map_or(0, |n| n.num_children);
            if stored != seen {
                return Err(RestoreError::ChildCount(self.path_of(slot as u32)));
            }
        }
        if !self.ordered {
            self.keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        }
        // Sorted input: `collect` builds the B-tree in bulk with full nodes, denser than the
        // one-by-one inserts of live operation.
        let index: BTreeMap<ChildKey, u32> = self.keys.into_iter().collect();
        Ok(DataTree {
            index,
            slab: self.slab,
            reapable: self.reapable,
            ephemerals: self.ephemerals,
        })
    }
}

/// A tree decoded from the current format, or the first invariant it breaks. Decoding goes on
/// after a broken invariant (the records are read and dropped) so that the error stays precise
/// instead of becoming the serializer's generic message.
pub(crate) struct TreeIn(pub(crate) Result<DataTree, RestoreError>);

impl<'de> Deserialize<'de> for TreeIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TreeVisitor;
        impl<'de> Visitor<'de> for TreeVisitor {
            type Value = TreeIn;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a sequence of node records")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TreeIn, A::Error> {
                let mut b = Builder::new(true, seq.size_hint().unwrap_or(0));
                let mut failed = None;
                while let Some(RecordIn { parent, name, node }) = seq.next_element()? {
                    if failed.is_some() {
                        continue;
                    }
                    let step = if b.counts.is_empty() {
                        b.root(parent, &name.0, node)
                    } else {
                        b.push(name.0.with_parent(parent), node)
                    };
                    failed = step.err();
                }
                Ok(TreeIn(match failed {
                    Some(e) => Err(e),
                    None => b.finish(),
                }))
            }
        }
        d.deserialize_seq(TreeVisitor)
    }
}

/// A tree decoded from the old `(path, node)` format (see the module docs).
pub(crate) struct LegacyTree(pub(crate) Result<DataTree, RestoreError>);

impl<'de> Deserialize<'de> for LegacyTree {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let nodes = Vec::<(String, Node)>::deserialize(d)?;
        Ok(LegacyTree(from_paths(nodes)))
    }
}

/// Rebuilds a tree from (path, node) pairs in any order.
pub(super) fn from_paths(nodes: Vec<(String, Node)>) -> Result<DataTree, RestoreError> {
    let mut nodes = nodes;
    for (p, _) in &nodes {
        path::validate(p, false).map_err(|e| RestoreError::Decode(format!("path {p:?}: {e}")))?;
    }
    nodes.sort_unstable_by(|a, b| {
        path::depth(&a.0)
            .cmp(&path::depth(&b.0))
            .then_with(|| a.0.cmp(&b.0))
    });
    if let Some(w) = nodes.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(RestoreError::Duplicate(w[0].0.clone()));
    }
    let (paths, nodes): (Vec<String>, Vec<Node>) = nodes.into_iter().unzip();
    if paths.first().map(String::as_str) != Some("/") {
        return Err(RestoreError::NoRoot);
    }
    let mut b = Builder::new(false, paths.len());
    let mut slots: HashMap<&str, u32> = HashMap::with_capacity(paths.len());
    for (i, (p, node)) in paths.iter().zip(nodes).enumerate() {
        if i == 0 {
            b.root(0, &ChildKey::new(0, ""), node)?;
        } else {
            let parent = *slots
                .get(path::parent(p))
                .ok_or_else(|| RestoreError::Orphan(p.clone()))?;
            b.push(ChildKey::new(parent, path::name(p)), node)?;
        }
        slots.insert(p, i as u32);
    }
    b.finish()
}

/// Builds a tree from records as the current format carries them (tests of the checks).
#[cfg(test)]
pub(super) fn from_records(records: &[(u32, &str, Node)]) -> Result<DataTree, RestoreError> {
    let mut b = Builder::new(true, records.len());
    for (i, (parent, name, node)) in records.iter().enumerate() {
        if i == 0 {
            b.root(*parent, &ChildKey::new(0, name), node.clone())?;
        } else {
            b.push(ChildKey::new(*parent, name), node.clone())?;
        }
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    use super::{from_paths, from_records};
    use crate::session::SessionId;
    use crate::tree::{Data, DataTree, Node, NodeKind, RestoreError};

    fn node(kind: NodeKind, children: u32) -> Node {
        let mut n = Node::new(Data::default(), kind, 1, 1);
        n.num_children = children;
        n
    }

    fn legacy(nodes: Vec<(&str, Node)>) -> Result<DataTree, RestoreError> {
        from_paths(nodes.into_iter().map(|(p, n)| (p.to_owned(), n)).collect())
    }

    #[test]
    fn legacy_restore_checks_invariants() {
        let p = NodeKind::Persistent;
        assert_eq!(legacy(vec![("/a", node(p, 0))]), Err(RestoreError::NoRoot));
        assert_eq!(
            legacy(vec![("/", node(p, 1)), ("/a/b", node(p, 0))]),
            Err(RestoreError::Orphan("/a/b".into()))
        );
        let eph = NodeKind::Ephemeral(SessionId(3));
        assert_eq!(
            legacy(vec![
                ("/", node(p, 1)),
                ("/e", node(eph, 1)),
                ("/e/x", node(p, 0))
            ]),
            Err(RestoreError::Orphan("/e/x".into()))
        );
        assert_eq!(
            legacy(vec![("/", node(p, 2)), ("/a", node(p, 0))]),
            Err(RestoreError::ChildCount("/".into()))
        );
        assert_eq!(
            legacy(vec![
                ("/", node(p, 1)),
                ("/a", node(p, 0)),
                ("/a", node(p, 0))
            ]),
            Err(RestoreError::Duplicate("/a".into()))
        );
        // Any order is accepted, and the derived indexes are rebuilt.
        let tree = legacy(vec![
            ("/c", node(NodeKind::Container, 0)),
            ("/e", node(eph, 0)),
            ("/", node(p, 2)),
        ])
        .expect("valid");
        assert_eq!(tree.ephemerals(SessionId(3)).collect::<Vec<_>>(), ["/e"]);
        assert_eq!(tree.reapable.len(), 1);
    }

    #[test]
    fn record_restore_checks_invariants() {
        let p = NodeKind::Persistent;
        let eph = NodeKind::Ephemeral(SessionId(3));
        assert_eq!(from_records(&[]), Err(RestoreError::NoRoot));
        assert_eq!(
            from_records(&[(0, "a", node(p, 0))]),
            Err(RestoreError::NoRoot),
            "the first record must be the root"
        );
        assert_eq!(
            from_records(&[(0, "", node(p, 1)), (1, "a", node(p, 0))]),
            Err(RestoreError::Orphan("(unknown parent #1)/a".into())),
            "a parent must come before its children"
        );
        assert_eq!(
            from_records(&[
                (0, "", node(p, 1)),
                (0, "e", node(eph, 1)),
                (1, "x", node(p, 0))
            ]),
            Err(RestoreError::Orphan("/e/x".into()))
        );
        assert_eq!(
            from_records(&[
                (0, "", node(p, 2)),
                (0, "a", node(p, 0)),
                (0, "a", node(p, 0))
            ]),
            Err(RestoreError::Duplicate("/a".into()))
        );
        assert!(matches!(
            from_records(&[
                (0, "", node(p, 2)),
                (0, "b", node(p, 0)),
                (0, "a", node(p, 0))
            ]),
            Err(RestoreError::Decode(_))
        ));
        assert_eq!(
            from_records(&[(0, "", node(p, 1)), (0, "a", node(p, 1))]),
            Err(RestoreError::ChildCount("/a".into()))
        );
        let tree = from_records(&[
            (0, "", node(p, 2)),
            (0, "a", node(p, 1)),
            (0, "c", node(NodeKind::Container, 0)),
            (1, "e", node(eph, 0)),
        ])
        .expect("valid");
        assert_eq!(tree.ephemerals(SessionId(3)).collect::<Vec<_>>(), ["/a/e"]);
        assert_eq!(
            tree.reapable
                .iter()
                .map(AsRef::as_ref)
                .collect::<Vec<&str>>(),
            ["/c"]
        );
        let paths: Vec<String> = tree.iter().map(|(p, _, _)| p).collect();
        assert_eq!(paths, ["/", "/a", "/c", "/a/e"]);
    }
}

//! `PathKey`: the tree's map key, ordered so that a node's children are contiguous.
//!
//! Keys sort by (depth, path). All children of `/a` have depth 2 and start with `/a/`, and among
//! the depth-2 paths those starting with `/a/` are exactly one lexicographic range, so listing
//! children is one range scan and the tree needs no per-node child set. This is what keeps a
//! million small znodes cheap: one path string per node, stored once.

use std::cmp::Ordering;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::path;

/// A full node path with its depth cached (counting slashes on every comparison would be slow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathKey {
    depth: u16,
    path: Box<str>,
}

impl PathKey {
    pub(crate) fn new(path: &str) -> PathKey {
        PathKey {
            depth: path::depth(path),
            path: path.into(),
        }
    }

    /// A key with an explicit depth, for range bounds that are not themselves valid paths.
    pub(crate) fn bound(depth: u16, path: &str) -> PathKey {
        PathKey {
            depth,
            path: path.into(),
        }
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.path
    }
}

impl Ord for PathKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.depth
            .cmp(&other.depth)
            .then_with(|| self.path.cmp(&other.path))
    }
}

impl PartialOrd for PathKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for PathKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.path)
    }
}

impl<'de> Deserialize<'de> for PathKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = String::deserialize(d)?;
        path::validate(&path, false).map_err(serde::de::Error::custom)?;
        Ok(PathKey {
            depth: path::depth(&path),
            path: path.into_boxed_str(),
        })
    }
}

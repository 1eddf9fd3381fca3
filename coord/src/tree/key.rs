//! `ChildKey`: the tree's map key, (parent slot, child name), so that a node's children are one
//! contiguous range of the map and every name is stored once, without its parent's path.
//!
//! A full path is never stored: lookups walk the components from the root (one map probe per
//! component), and the path of a node is rebuilt only when it is listed. Names of up to
//! [`INLINE`] bytes, which covers sequential suffixes, member ids and the like, live inside the
//! key itself, so a typical znode costs no separate allocation for its name.
//!
//! Lookups probe with a borrowed `(slot, &[u8])` through the [`Child`] trait object, so finding
//! a node allocates nothing.

use std::borrow::Borrow;
use std::cmp::Ordering;

/// Longest name stored inside the key.
pub(crate) const INLINE: usize = 18;

/// A child's place in the tree: its parent's slot and its name. Orders by parent, then by the
/// name's bytes (which is `str` order).
#[derive(Clone)]
pub(crate) enum ChildKey {
    Short {
        parent: u32,
        len: u8,
        bytes: [u8; INLINE],
    },
    Long {
        parent: u32,
        name: Box<str>,
    },
}

impl ChildKey {
    pub(crate) fn new(parent: u32, name: &str) -> ChildKey {
        if name.len() <= INLINE {
            let mut bytes = [0; INLINE];
            bytes[..name.len()].copy_from_slice(name.as_bytes());
            ChildKey::Short {
                parent,
                len: name.len() as u8,
                bytes,
            }
        } else {
            ChildKey::Long {
                parent,
                name: name.into(),
            }
        }
    }

    /// The same name under `parent`.
    pub(crate) fn with_parent(mut self, parent: u32) -> ChildKey {
        match &mut self {
            ChildKey::Short { parent: p, .. } | ChildKey::Long { parent: p, .. } => *p = parent,
        }
        self
    }

    pub(crate) fn parent(&self) -> u32 {
        match self {
            ChildKey::Short { parent, .. } | ChildKey::Long { parent, .. } => *parent,
        }
    }

    pub(crate) fn name(&self) -> &str {
        match self {
            // Built from a `&str` cut at a length that is a char boundary, so always valid.
            ChildKey::Short { len, bytes, .. } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            ChildKey::Long { name, .. } => name,
        }
    }

    fn name_bytes(&self) -> &[u8] {
        match self {
            ChildKey::Short { len, bytes, .. } => &bytes[..usize::from(*len)],
            ChildKey::Long { name, .. } => name.as_bytes(),
        }
    }
}

impl std::fmt::Debug for ChildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{:?}", self.parent(), self.name())
    }
}

/// What the map compares: an owned [`ChildKey`] or a borrowed [`Probe`].
pub(crate) trait Child {
    fn parent(&self) -> u32;
    fn name(&self) -> &[u8];
}

/// A borrowed key for lookups and range bounds.
pub(crate) struct Probe<'a> {
    pub(crate) parent: u32,
    pub(crate) name: &'a [u8],
}

impl Child for ChildKey {
    fn parent(&self) -> u32 {
        ChildKey::parent(self)
    }

    fn name(&self) -> &[u8] {
        self.name_bytes()
    }
}

impl Child for Probe<'_> {
    fn parent(&self) -> u32 {
        self.parent
    }

    fn name(&self) -> &[u8] {
        self.name
    }
}

impl<'a> Borrow<dyn Child + 'a> for ChildKey {
    fn borrow(&self) -> &(dyn Child + 'a) {
        self
    }
}

impl Ord for dyn Child + '_ {
    fn cmp(&self, other: &Self) -> Ordering {
        self.parent()
            .cmp(&other.parent())
            .then_with(|| self.name().cmp(other.name()))
    }
}

impl PartialOrd for dyn Child + '_ {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for dyn Child + '_ {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for dyn Child + '_ {}

impl Ord for ChildKey {
    /// The same order as `dyn Child`'s, without its virtual calls (a restore compares every
    /// key with its neighbour while building the index).
    fn cmp(&self, other: &Self) -> Ordering {
        self.parent()
            .cmp(&other.parent())
            .then_with(|| self.name_bytes().cmp(other.name_bytes()))
    }
}

impl PartialOrd for ChildKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for ChildKey {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for ChildKey {}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::{Child, ChildKey, INLINE, Probe};

    #[test]
    fn key_is_small_and_orders_by_parent_then_name() {
        assert!(std::mem::size_of::<ChildKey>() <= 24);
        let long = "x".repeat(INLINE + 1);
        let mut keys = vec![
            ChildKey::new(2, "a"),
            ChildKey::new(1, &long),
            ChildKey::new(1, "b"),
            ChildKey::new(1, ""),
            ChildKey::new(1, "a-b"),
            ChildKey::new(1, "a"),
        ];
        keys.sort();
        let shown: Vec<(u32, &str)> = keys.iter().map(|k| (k.parent(), k.name())).collect();
        assert_eq!(
            shown,
            [
                (1, ""),
                (1, "a"),
                (1, "a-b"),
                (1, "b"),
                (1, long.as_str()),
                (2, "a")
            ]
        );
        // Inline and boxed names compare by content, whatever the representation.
        let exact = "y".repeat(INLINE);
        assert!(ChildKey::new(1, &exact) < ChildKey::new(1, &format!("{exact}y")));
        let map: BTreeMap<ChildKey, u32> = keys.into_iter().zip(0..).collect();
        let probe = Probe {
            parent: 1,
            name: long.as_bytes(),
        };
        assert_eq!(map.get(&probe as &dyn Child), Some(&4));
        let probe = Probe {
            parent: 3,
            name: b"a",
        };
        assert_eq!(map.get(&probe as &dyn Child), None);
    }
}

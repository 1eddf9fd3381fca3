//! Which containers and TTL nodes are due for removal (ZooKeeper's `ContainerManager`).
//!
//! The leader calls [`DataTree::reapable`] on a timer with its own clock and proposes the result
//! as a [`crate::Command::Reap`]; apply calls [`DataTree::reap_due`] again with the entry's time,
//! so a node that gained a child or new data in between survives.

use super::{DataTree, NodeKind};

impl DataTree {
    /// Containers that had children and have none left, and TTL nodes without children whose
    /// data is older than their TTL at `now_ms` (leader's clock, ms since the epoch). Sorted.
    pub fn reapable(&self, now_ms: u64) -> Vec<String> {
        self.reapable
            .iter()
            .filter(|p| self.reap_due(p, now_ms))
            .map(ToString::to_string)
            .collect()
    }

    /// Whether the node at `path` should be removed at `now_ms`.
    pub fn reap_due(&self, path: &str, now_ms: u64) -> bool {
        let Some(node) = self.node(path) else {
            return false;
        };
        if node.num_children > 0 {
            return false;
        }
        match node.kind {
            // cversion > 0: it had a child once; a container never used is kept (ZooKeeper does
            // the same, or a recipe's container would vanish before its first child arrives).
            NodeKind::Container => node.cversion > 0,
            NodeKind::Ttl(ttl) => now_ms.saturating_sub(node.mtime) > ttl,
            NodeKind::Persistent | NodeKind::Ephemeral(_) => false,
        }
    }
}

//! `Slab`: node storage in fixed-size chunks, addressed by a `u32` slot.
//!
//! Keeping the 96-byte nodes out of the ordered path index makes the index's B-tree nodes small
//! (key + 4-byte slot): the B-tree is at most half full after ascending inserts, and that slack
//! now costs 28 bytes per entry instead of 124. Chunks never move or double, so growing past a
//! million nodes has no 2x reallocation spike.

use super::Node;

/// Slots per chunk: 4096 × 96 bytes = 384 KiB, big enough to amortise, small enough not to
/// waste much in the last, partly used chunk.
const CHUNK: usize = 4096;

#[derive(Debug, Clone, Default)]
pub(crate) struct Slab {
    chunks: Vec<Vec<Option<Node>>>,
    free: Vec<u32>,
}

impl Slab {
    pub(crate) fn get(&self, slot: u32) -> Option<&Node> {
        let slot = slot as usize;
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)?.as_ref()
    }

    pub(crate) fn get_mut(&mut self, slot: u32) -> Option<&mut Node> {
        let slot = slot as usize;
        self.chunks
            .get_mut(slot / CHUNK)?
            .get_mut(slot % CHUNK)?
            .as_mut()
    }

    /// Stores `node` in a free slot.
    pub(crate) fn insert(&mut self, node: Node) -> u32 {
        if let Some(slot) = self.free.pop() {
            let i = slot as usize;
            self.chunks[i / CHUNK][i % CHUNK] = Some(node);
            return slot;
        }
        if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
            self.chunks.push(Vec::with_capacity(CHUNK));
        }
        let n = self.chunks.len() - 1;
        let chunk = &mut self.chunks[n];
        chunk.push(Some(node));
        // Slot numbers stay below 2^32: a create fails once the tree holds `MAX_NODES`.
        (n * CHUNK + chunk.len() - 1) as u32
    }

    pub(crate) fn remove(&mut self, slot: u32) -> Option<Node> {
        let i = slot as usize;
        let node = self.chunks.get_mut(i / CHUNK)?.get_mut(i % CHUNK)?.take()?;
        self.free.push(slot);
        Some(node)
    }
}

#[cfg(test)]
mod tests {
    use super::{CHUNK, Slab};
    use crate::tree::{Data, Node, NodeKind};

    fn node(zxid: u64) -> Node {
        Node::new(Data::default(), NodeKind::Persistent, zxid, 0)
    }

    #[test]
    fn slots_cross_chunks_and_are_reused() {
        let mut slab = Slab::default();
        let slots: Vec<u32> = (0..CHUNK as u64 + 10)
            .map(|z| slab.insert(node(z)))
            .collect();
        assert_eq!(slots[CHUNK], CHUNK as u32);
        assert_eq!(
            slab.get(slots[CHUNK + 3]).map(|n| n.czxid),
            Some(CHUNK as u64 + 3)
        );
        assert_eq!(slab.remove(5).map(|n| n.czxid), Some(5));
        assert!(slab.get(5).is_none());
        assert!(slab.remove(5).is_none(), "double remove");
        assert_eq!(slab.insert(node(99)), 5, "freed slot reused");
        assert_eq!(slab.get_mut(5).map(|n| n.czxid), Some(99));
        assert!(slab.get(u32::MAX).is_none());
    }
}

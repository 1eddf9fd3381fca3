//! Zxids: the transaction ids of the tree (`czxid`, `mzxid`, `pzxid`, session ids, watch events).
//!
//! A leader proposes the client commands that arrive while a Raft write is in flight as one log
//! entry (a batch, [`crate::VersionedCommand::V2`]): openraft 0.9 appends, and fsyncs, one entry
//! per `client_write` and waits for that flush before the next, so one command per entry means
//! one fsync per client write. Each command of a batch is still its own ZooKeeper transaction
//! with its own zxid, so the zxid can no longer be the log index alone:
//!
//! ```text
//! zxid = log index << 16 | position in the entry      (position < 65,536)
//! ```
//!
//! Zxids are therefore unique and strictly increasing in apply order, across entries and
//! inside one, which is what fencing tokens (a lock node's czxid) and watch ordering need.
//! Entries written before batching existed ([`crate::VersionedCommand::V1`]) keep their old
//! zxid, the log index itself, so replaying an old log still builds the same tree as the
//! snapshot taken from it. Those zxids are all smaller than any composite one of a later entry
//! (`i < j << 16` for `i < j`), so monotonicity holds across the upgrade.
//!
//! This departs from DESIGN.md, which has zxid = Raft log index: that equality is what tied one
//! client write to one entry, and so to one fsync on the leader. ZooKeeper's own zxids are
//! composite too (epoch << 32 | counter); clients only rely on order and uniqueness.
//!
//! Upgrading: a binary from before batching cannot decode a batch entry, and if it led after a
//! batching leader its `V1` zxids (plain indexes) would fall below the batch zxids already
//! handed out. Upgrade every member before any upgraded member may lead (in practice: stop,
//! upgrade and restart the cluster as a whole).

/// Bits of a zxid that hold the position inside the entry.
pub const POSITION_BITS: u32 = 16;

/// The most commands one log entry may carry; later positions are refused at apply.
pub const MAX_BATCH: usize = 1 << POSITION_BITS;

/// The zxid of the command at `position` of the (batch) entry at log `index`. `position` must
/// be below [`MAX_BATCH`]; apply never calls it with more. Indexes at or above 2^48, which a
/// log cannot reach, would lose their top bits.
pub fn of(index: u64, position: usize) -> u64 {
    debug_assert!(
        position < MAX_BATCH,
        "batch position {position} out of range"
    );
    (index << POSITION_BITS) | (position as u64 & (MAX_BATCH as u64 - 1))
}

/// The highest zxid any entry up to log `index` can have assigned: a node that has applied
/// `index` has seen every event with a zxid at or below this, and none above. The watch hub
/// uses it to turn "applied through index" (a registration point, an installed snapshot) into
/// a zxid. Caveat: it assumes the entries after `index` are batch entries. On a log whose
/// tail still holds pre-batching entries after `index`, their (small) zxids fall below it,
/// so a watcher resynced at `index` would not be sent their events; that can only happen on
/// the first start after the upgrade, while such a tail is replayed.
pub fn through(index: u64) -> u64 {
    // Nothing applied yet: no zxid seen (openraft's index 0 is its initial membership).
    if index == 0 {
        0
    } else {
        of(index, MAX_BATCH - 1)
    }
}

/// The log index of a composite zxid.
pub fn index_of(zxid: u64) -> u64 {
    zxid >> POSITION_BITS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_order_by_index_then_position() {
        assert!(of(7, 0) < of(7, 1));
        assert!(of(7, MAX_BATCH - 1) < of(8, 0));
        assert_eq!(through(7), of(7, MAX_BATCH - 1));
        assert!(through(7) < of(8, 0));
        assert_eq!(through(0), 0);
        assert_eq!(index_of(of(123, 456)), 123);
        // A legacy zxid (the index itself) is below every composite zxid of a later entry.
        assert!(1_000 < of(1_001, 0));
    }
}

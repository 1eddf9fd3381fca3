//! openraft 0.9 storage and transport: the durable Raft log (`RaftLogStorage` v2, generic over
//! the type config), the znode state machine, and the peer network.
//!
//! [`LogStore::open`] gives a log store for `openraft::Raft::new`; [`ZnodeStore::open`] the
//! state machine; [`crate::node::CoordNode`] wires both with the network.
//!
//! # Layout
//!
//! - `types.rs`: the [`types::TypeConfig`] (entry payload [`types::Proposal`]: a command plus
//!   the leader's time).
//! - `state_machine.rs`: [`ZnodeStore`], `RaftStateMachine` + snapshot builder over
//!   [`crate::StateMachine`]; `snapshot.rs`: the checksummed snapshot file.
//! - `network/`: length-prefixed TCP transport, client and server (see its docs).
//! - `mod.rs`: this overview (the log's on-disk format, fsync policy, recovery rules).
//! - `log_store.rs`: [`LogStore`], the `RaftLogStorage` implementation, and [`LogOptions`].
//! - `reader.rs`: [`LogReader`] and the index shared with it; `tail.rs`: the latest entries'
//!   payloads in memory, so replication and apply read what was just appended without file I/O.
//! - `segments.rs`: the ordered segment files: recovery across files, append, truncate, purge.
//! - `segment.rs`: one segment file: header and recovery scan.
//! - `record.rs`: record framing. `crc.rs`: CRC-32C. `meta.rs`: atomically replaced files.
//! - `error.rs`: [`LogError`] and [`Corruption`].
//!
//! # On-disk format
//!
//! ```text
//! <dir>/
//!   00000000000000000001.seg   segment: records 1 ..= 4096       (sealed)
//!   00000000000000004097.seg   segment: records 4097 ..          (active, appended to)
//!   vote                       crc | postcard(Vote)              (atomically replaced)
//!   committed                  crc | postcard(Option<LogId>)     (replaced, not fsynced)
//!   purged                     crc | postcard(LogId)             (atomically replaced)
//!
//! segment file:
//!   +------------------------ 32-byte header -------------------------+
//!   | "VGRAFTL1" | first_index u64 | prev_last u64 | reserved | crc32c |
//!   +------------------------------------------------------------------+
//!   | len u32 | crc32c u32 | index u64 | payload (len bytes)           |  record
//!   | len u32 | crc32c u32 | index u64 | payload ...                   |  record
//!   ...
//! ```
//!
//! All integers are little-endian. A record's CRC-32C covers its length, index and payload; the
//! payload is the postcard encoding of `C::Entry`. Record `i` of a segment holds log index
//! `first_index + i`. `prev_last` is the last index the log held when the segment was started,
//! which chains each segment to its predecessor.
//!
//! # fsync policy
//!
//! - `append`: the whole batch is one positioned write, readable once `append` returns (as
//!   openraft requires). The active segment is kept zero-filled
//!   ([`LogOptions::prealloc_bytes`], 1 MiB by default) ahead of the appends, so that their
//!   `fdatasync` overwrites allocated blocks of a file whose size does not change and has no
//!   metadata to put through the file system's journal (ext4 on this project's test machine:
//!   0.15 ms instead of 0.25 ms per fsync, measured with 8 KiB writes). The `fdatasync` runs on the store's flusher thread (`flusher.rs`),
//!   which takes every batch queued so far, fsyncs each segment file they touched once (and
//!   the directory after a new segment), and only then invokes their `LogFlushed` callbacks,
//!   in order (group commit). So there is at most one fsync per `append` call, and fewer when
//!   appends arrive faster than the disk syncs. Everything else that changes the log
//!   (`truncate`, `purge`, `save_vote`) first waits for the queued flushes.
//! - `save_vote`, `purge`: the value is written to `<name>.tmp`, fsynced, renamed over
//!   `<name>`, and the directory is fsynced (two fsyncs).
//! - `save_committed`: the same write and rename, without the fsyncs. openraft calls it on every
//!   commit advance, and the value is only a hint for re-applying entries at startup; losing it
//!   costs time, never safety, because the entries it names were fsynced before it was written
//!   (it is written by the flusher thread, behind the flushes of earlier appends).
//!   An unreadable `committed` file is therefore ignored with a warning.
//! - `truncate`: newer segments are unlinked newest first (then the directory is fsynced), and
//!   the segment holding the truncation point is cut with `ftruncate` + `fdatasync`.
//! - `purge`: the purge point is made durable first, then whole segments holding only purged
//!   entries are unlinked, oldest first. Purged entries in a partly purged segment stay on disk
//!   but are never served. A purge past the last log id (a snapshot from a newer term) also
//!   truncates what follows the purge index: a tail of older terms that can never commit.
//! - After a failed write or fsync the store refuses all further writes ([`LogError::Failed`]):
//!   the kernel may have dropped the dirty pages, so only a restart that re-reads the disk is
//!   safe.
//!
//! # Recovery rules (on open)
//!
//! - Leftover `*.tmp` files are deleted (the old value is still in place).
//! - Every segment is scanned and every record's CRC and index checked.
//! - **Free space**: zeros after the last record of a segment are space preallocated for
//!   appends (see the fsync policy), in any segment, and are kept. Zeros cannot hide lost
//!   records of a sealed segment: the next segment's `prev_last` names its real end.
//! - **Torn tail**: in the *last* segment, what a crash during an unacknowledged `append`
//!   leaves is cut off with a warning: an incomplete record (running past the end of the
//!   file), a record with a bad CRC that ends exactly at end of file, or a record with a bad
//!   CRC that overlaps a sector of zeros (a disk writes a 512-byte sector whole or not at all,
//!   so a torn write into preallocated space leaves whole zero sectors; the same test etcd's
//!   WAL applies). A last segment left with no complete record (or a torn header) is removed.
//!   Bit rot in that very last record, or in a length field of the last segment, can look the
//!   same and is treated the same: a checksum cannot tell which bytes were acknowledged, and
//!   the warning says how many bytes were dropped. Bit rot that zeroes nothing in a record that
//!   does not end the file (as in a preallocated segment) is refused.
//! - **Corruption**: a bad CRC or a cut record anywhere else, a record whose index is not the one
//!   its position implies, a segment whose `prev_last` does not match the end of its predecessor
//!   (or, for the first one, the purge point), an empty segment that is not the last, or a log
//!   that ends before the recorded committed index: [`LogStore::open`] refuses with
//!   [`LogError::Corrupt`], naming the file and byte offset.
//! - Segments wholly covered by the purge point (a purge interrupted by a crash) are deleted
//!   unread, and a tail older than the purge point is truncated (see `purge` above).
//!
//! # Memory
//!
//! The index keeps eight bytes (a file offset) per present entry; payloads stay on disk and are
//! read with positioned reads, so recent entries are served from the page cache. There is no
//! entry cache of our own. `limited_get_log_entries`, which feeds replication, stops after
//! [`LogOptions::max_read_bytes`] of payload, so a far-behind follower cannot make the leader
//! load its whole backlog at once. Recovery reads one segment at a time
//! ([`LogOptions::max_segment_bytes`], 32 MiB by default).
//!
//! # Holes
//!
//! The log never has one: an append must start right after the last present or purged index
//! (only an empty, never purged log may start anywhere), and the entries of a batch must be
//! consecutive. Entries at or below the purge point are skipped, since a snapshot already covers
//! them (openraft's storage suite appends such entries after `get_initial_state` purged up to the
//! state machine's last applied id).

mod crc;
mod error;
mod flusher;
mod log_store;
mod meta;
pub mod network;
mod reader;
mod record;
mod segment;
mod segments;
mod snapshot;
mod state_machine;
mod tail;
pub mod types;

pub use error::{Corruption, LogError};
pub use log_store::{
    FSYNC_BUCKETS, FSYNC_LATENCY, FsyncCounter, FsyncHistogram, LogOptions, LogStore,
};
pub use reader::LogReader;
pub use snapshot::SnapshotFileError;
pub use state_machine::{SmEvent, ZnodeStore};

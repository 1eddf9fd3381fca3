//! [`LogStore`]: openraft's `RaftLogStorage` on top of the segment files.

use std::fmt::Debug;
use std::fs::File;
use std::io;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError,
    Vote,
};

use super::error::{Corruption, LogError, io_err};
use super::flusher::{Done, Flusher, Job};
use super::meta::{self, Durability};
use super::reader::{LogReader, Shared, blocking};
use super::record;
use super::segment;
use super::segments::{AppendTarget, Segments};

/// Upper bounds, in seconds, of [`FSYNC_LATENCY`]'s buckets: 100 µs (a write cache) to 2.5 s
/// (a disk in trouble, far past any election timeout).
pub const FSYNC_BUCKETS: [f64; 14] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Latency of the log's data fsyncs, one per group-commit round, for every [`LogStore`] in the
/// process (a daemon runs one). Process-wide so that reading it needs no handle on a store
/// openraft owns.
pub static FSYNC_LATENCY: FsyncHistogram = FsyncHistogram {
    counts: [const { AtomicU64::new(0) }; FSYNC_BUCKETS.len() + 1],
    sum_nanos: AtomicU64::new(0),
};

/// A fixed-bucket histogram on atomics: one fsync costs a bucket search and two relaxed adds.
#[derive(Debug)]
pub struct FsyncHistogram {
    /// Per bucket (not cumulative), the last one for everything above the largest bound.
    counts: [AtomicU64; FSYNC_BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl FsyncHistogram {
    pub(crate) fn observe(&self, took: std::time::Duration) {
        let secs = took.as_secs_f64();
        let bucket = FSYNC_BUCKETS.partition_point(|b| *b < secs);
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// `(upper bound in seconds, cumulative count)` per bucket of [`FSYNC_BUCKETS`], the total
    /// count (which `+Inf` equals) and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let mut cumulative = 0;
        let buckets = FSYNC_BUCKETS
            .iter()
            .zip(&self.counts)
            .map(|(bound, count)| {
                cumulative += count.load(Ordering::Relaxed);
                (*bound, cumulative)
            })
            .collect();
        let total = cumulative + self.counts[FSYNC_BUCKETS.len()].load(Ordering::Relaxed);
        let sum = std::time::Duration::from_nanos(self.sum_nanos.load(Ordering::Relaxed));
        (buckets, total, sum.as_secs_f64())
    }
}

/// Counts one log's data fsyncs (see [`LogStore::fsync_count`]); cheap to clone.
#[derive(Debug, Clone)]
pub struct FsyncCounter(Arc<super::flusher::FlushState>);

impl FsyncCounter {
    /// Data fsyncs issued on the log's segment files so far.
    pub fn get(&self) -> u64 {
        self.0.fsyncs.load(Ordering::Relaxed)
    }
}

const VOTE: &str = "vote";
const COMMITTED: &str = "committed";
const PURGED: &str = "purged";

/// Tuning of a [`LogStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOptions {
    /// A segment is closed and a new one started once an append would take it past this size.
    /// Purging frees space a whole segment at a time, so this bounds the space a compacted log
    /// keeps; a single batch larger than this still goes into one segment.
    pub max_segment_bytes: u64,
    /// `limited_get_log_entries`, which feeds replication, returns once it has read this many
    /// payload bytes (always at least one entry), bounding the leader's memory per request to
    /// a far-behind follower.
    pub max_read_bytes: usize,
    /// Zeros written ahead of the appends in the active segment, so that an append's fsync
    /// only overwrites allocated blocks and leaves the file size alone (no journal commit).
    /// 0 turns preallocation off.
    pub prealloc_bytes: u64,
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 32 << 20,
            max_read_bytes: 4 << 20,
            prealloc_bytes: 1 << 20,
        }
    }
}

/// A durable, file-backed Raft log for any openraft type config `C`.
///
/// Entries are serialized with postcard, framed with a CRC-32C and appended to segment files.
/// `append` writes its batch to the OS and makes it readable before returning; the fsync and
/// openraft's flush callback follow on a flusher thread of the store's own, which covers every
/// batch queued meanwhile with one fsync (group commit). The vote, the committed log id and the
/// purge point live in small files replaced atomically. See the [module docs](crate::raft) for
/// the format and recovery rules.
///
/// Its async methods need a tokio runtime: file I/O runs on `spawn_blocking`, so an fsync never
/// stalls a runtime worker.
pub struct LogStore<C: RaftTypeConfig> {
    shared: Arc<Shared>,
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    last_purged: Option<LogId<C::NodeId>>,
    last_log_id: Option<LogId<C::NodeId>>,
    /// Group commit, and the failed flag ([`LogError::Failed`]) it shares with the store.
    flusher: Flusher,
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.shared.dir)
            .field("vote", &self.vote)
            .field("committed", &self.committed)
            .field("last_purged", &self.last_purged)
            .field("last_log_id", &self.last_log_id)
            .field("failed", &self.is_failed())
            .finish_non_exhaustive()
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// Opens (or creates) the log in `dir`, recovering from a crash.
    ///
    /// A torn write at the very end of the log is cut off with a warning; any other damage
    /// returns [`LogError::Corrupt`] naming the file and offset. This blocks on file I/O: call
    /// it before starting the runtime or from `spawn_blocking`.
    pub fn open(dir: impl AsRef<Path>, options: LogOptions) -> Result<Self, LogError> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
        let last_purged: Option<LogId<C::NodeId>> = meta::load(dir, PURGED)?;
        let vote = meta::load(dir, VOTE)?;
        let committed: Option<LogId<C::NodeId>> =
            meta::load_hint::<Option<_>>(dir, COMMITTED)?.flatten();
        let segments = Segments::open(
            dir,
            last_purged.as_ref().map(|l| l.index),
            options.max_segment_bytes,
            options.prealloc_bytes,
        )?;
        let shared = Arc::new(Shared::new(
            dir.to_owned(),
            segments,
            options.max_read_bytes,
        ));
        let mut last_log_id = shared.last_present_blocking::<C>()?;
        if last_log_id < last_purged {
            // A purge past a stale tail (see `purge_upto`) was interrupted after the purge
            // point became durable: finish dropping the tail.
            if let Some(p) = &last_purged {
                tracing::warn!(purged = %p, "dropping stale log tail behind the purge point");
                shared.write()?.truncate(p.index.saturating_add(1))?;
            }
            last_log_id.clone_from(&last_purged);
        }

        // Appends are flushed before openraft can commit them here, so a committed index
        // beyond the end means the tail segment was lost, not that it was never written.
        if let Some(c) = &committed
            && last_log_id.as_ref().is_none_or(|l| l.index < c.index)
        {
            return Err(LogError::Corrupt {
                path: dir.to_owned(),
                offset: 0,
                kind: Corruption::MissingTail {
                    last: last_log_id.as_ref().map(|l| l.index),
                    committed: c.index,
                },
            });
        }
        let flusher = Flusher::start(dir)?;
        Ok(Self {
            shared,
            vote,
            committed,
            last_purged,
            last_log_id,
            flusher,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Data fsyncs issued on this log's segment files so far. Group commit makes this grow
    /// with the number of flush rounds, not of appends.
    pub fn fsync_count(&self) -> u64 {
        self.flusher.state.fsyncs.load(Ordering::Relaxed)
    }

    /// A handle on [`LogStore::fsync_count`] that outlives handing the store to openraft.
    pub fn fsync_counter(&self) -> FsyncCounter {
        FsyncCounter(Arc::clone(&self.flusher.state))
    }

    fn is_failed(&self) -> bool {
        self.flusher.state.failed.load(Ordering::SeqCst)
    }

    fn fail(&self) {
        self.flusher.state.failed.store(true, Ordering::SeqCst);
    }

    /// Serializes and writes one batch and makes it readable, then queues its fsync; `done`
    /// is called once the batch is durable (or with the error that kept it from being so).
    ///
    /// openraft 0.9.25 asks exactly this of `RaftLogStorage::append` (storage/v2.rs): "When
    /// this method returns, the entries must be readable, i.e., a `LogReader` can read these
    /// entries" and "When the `callback` is called, the entries must be persisted on disk".
    /// Replicating entries this node has not fsynced yet is safe: the leader counts its own
    /// copy towards a quorum only once the callback reports it flushed (the engine's local
    /// progress advances on `Notify::LocalIO`), and followers acknowledge only after their
    /// own callback. The write itself stays here, not on the flusher thread, because of the
    /// first rule: behind the flusher's fsync, `append` would stall the Raft core again.
    async fn append_batch(
        &mut self,
        entries: impl IntoIterator<Item = C::Entry>,
        done: Done,
    ) -> Result<(), LogError> {
        let written = if self.is_failed() {
            Err(LogError::Failed)
        } else {
            self.write_batch(entries).await
        };
        let (file, path, new_segment) = match written {
            Ok(Some(target)) => target,
            Ok(None) => (None, PathBuf::new(), false),
            Err(e) => {
                done(Err(io::Error::other(e.to_string())));
                return Err(e);
            }
        };
        self.flusher.send(Job::Flush {
            file,
            path,
            new_segment,
            done,
        })
    }

    /// Serializes and writes one batch and publishes it to readers, without fsyncing it.
    /// Returns the file written, for the flusher, or `None` if nothing needed writing.
    async fn write_batch(
        &mut self,
        entries: impl IntoIterator<Item = C::Entry>,
    ) -> Result<Option<(Option<Arc<File>>, PathBuf, bool)>, LogError> {
        let mut buf = Vec::new();
        let mut offsets = Vec::new();
        let mut first = None;
        let mut last: Option<LogId<C::NodeId>> = None;
        let purged = self.last_purged.as_ref().map(|l| l.index);
        for entry in entries {
            let log_id = entry.get_log_id().clone();
            // Entries at or below the purge point are already covered by a snapshot; keeping
            // them would put entries behind the log's start. openraft's suite appends such
            // entries after `get_initial_state` purges up to the state machine.
            if purged.is_some_and(|p| log_id.index <= p) {
                tracing::debug!(%log_id, "skipping append of an already purged entry");
                continue;
            }
            if let Some(prev) = &last
                && log_id.index != prev.index + 1
            {
                return Err(LogError::NotConsecutive {
                    expected: prev.index + 1,
                    found: log_id.index,
                });
            }
            offsets.push(buf.len());
            let encoded = record::encode(&mut buf, log_id.index, |b| {
                postcard::to_io(&entry, b).map(drop)
            })
            .map_err(|source| LogError::Codec {
                path: self.shared.dir.clone(),
                index: log_id.index,
                source,
            })?;
            if let Err(len) = encoded {
                return Err(LogError::TooLarge {
                    index: log_id.index,
                    len,
                    max: record::MAX_PAYLOAD,
                });
            }
            first.get_or_insert(log_id.index);
            last = Some(log_id);
        }
        let Some(first) = first else {
            return Ok(None);
        };

        let len = buf.len() as u64;
        // Shared with the tail (see `tail.rs`): the payloads readers get back without the files.
        let buf = Bytes::from(buf);
        let payloads = offsets
            .iter()
            .zip(offsets.iter().skip(1).chain([&buf.len()]))
            .zip(first..)
            .map(|((&start, &end), index)| {
                (index, buf.slice(start + record::RECORD_HEADER_LEN..end))
            })
            .collect();
        let target = self.shared.write()?.prepare_append(first, len)?;
        // Into the page cache only: readers see the batch from here on, and the flusher makes
        // it durable. A usual batch is copied in place: handing a few KiB to the blocking pool
        // and back would cost two thread wake-ups per append on a path the Raft core awaits
        // (openraft 0.9.25 waits for every append's flush before its next step). Large
        // batches and preallocation (up to 1 MiB of zeros) go to the blocking pool.
        let written = if target.zero_fill.is_none() && buf.len() <= INLINE_WRITE_MAX {
            write_out(target, &buf)
        } else {
            let buf = buf.clone();
            blocking(move || write_out(target, &buf)).await
        };
        let target = written.inspect_err(|_| self.fail())?;
        // The tail first: a reader must never find the index ahead of the tail, which it
        // takes for the end of the log (the entries are in the file already).
        self.shared.tail.extend(payloads);
        if let Err(e) = self.shared.write()?.publish(target.at, &offsets, len) {
            self.shared.tail.truncate(first);
            return Err(e);
        }
        self.last_log_id = last;
        Ok(Some((Some(target.file), target.path, target.new_segment)))
    }

    async fn truncate_from(&mut self, from: u64) -> Result<(), LogError> {
        if self.is_failed() {
            return Err(LogError::Failed);
        }
        // Not under a flush still in flight: its callback must not report entries durable
        // after they were cut, nor race the cut on the same file.
        self.flusher.drain().await?;
        // The copies go first: a reader must never get an entry the files no longer have.
        self.shared.tail.truncate(from);
        let shared = Arc::clone(&self.shared);
        let last = blocking(move || {
            shared.write()?.truncate(from)?;
            shared.last_present_blocking::<C>()
        })
        .await
        .inspect_err(|_| self.fail())?;
        self.last_log_id = last.or_else(|| self.last_purged.clone());
        Ok(())
    }

    async fn purge_upto(&mut self, log_id: LogId<C::NodeId>) -> Result<(), LogError> {
        if self.is_failed() {
            return Err(LogError::Failed);
        }
        if self.last_purged.as_ref() >= Some(&log_id) {
            return Ok(());
        }
        // Segments about to be deleted or cut may still have a flush queued.
        self.flusher.drain().await?;
        // The purge point goes to disk before any segment is deleted, so recovery never sees
        // a log whose start is missing without knowing it was purged.
        let shared = Arc::clone(&self.shared);
        let point = log_id.clone();
        // Purging past the last log id (a snapshot ahead of the log) makes whatever follows the
        // purge index a stale tail of older terms: it cannot be committed, and keeping it would
        // leave entries beyond the log's reported end.
        let drop_tail = self.last_log_id.as_ref() < Some(&log_id);
        if drop_tail {
            self.shared.tail.truncate(log_id.index.saturating_add(1));
        }
        self.shared.tail.purge(log_id.index);
        blocking(move || {
            meta::store(&shared.dir, PURGED, &point, Durability::Fsync)?;
            let mut segments = shared.write()?;
            // Tail first, so the purge below also deletes the segment the tail was cut from.
            if drop_tail {
                segments.truncate(point.index.saturating_add(1))?;
            }
            segments.purge(point.index)
        })
        .await
        .inspect_err(|_| self.fail())?;
        if self.last_log_id.as_ref() < Some(&log_id) {
            self.last_log_id = Some(log_id.clone());
        }
        self.last_purged = Some(log_id);
        Ok(())
    }

    async fn store_meta<T>(
        &mut self,
        name: &'static str,
        value: T,
        durability: Durability,
    ) -> Result<(), LogError>
    where
        T: serde::Serialize + Send + 'static,
    {
        if self.is_failed() {
            return Err(LogError::Failed);
        }
        let dir = self.shared.dir.clone();
        blocking(move || meta::store(&dir, name, &value, durability))
            .await
            .inspect_err(|_| self.fail())
    }
}

impl<C: RaftTypeConfig> LogStore<C> {
    /// A reader over the same shared state; reads never wait behind an fsync.
    fn reader(&self) -> LogReader<C> {
        LogReader {
            shared: Arc::clone(&self.shared),
            types: PhantomData,
        }
    }
}

// The store reads exactly like the readers it hands out: one implementation, in reader.rs.
impl<C: RaftTypeConfig> RaftLogReader<C> for LogStore<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader().try_get_log_entries(range).await
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.reader().limited_get_log_entries(start, end).await
    }
}

impl<C: RaftTypeConfig> RaftLogStorage<C> for LogStore<C> {
    type LogReader = LogReader<C>;

    async fn get_log_state(&mut self) -> Result<LogState<C>, StorageError<C::NodeId>> {
        Ok(LogState {
            last_purged_log_id: self.last_purged.clone(),
            last_log_id: self.last_log_id.clone(),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.reader()
    }

    async fn save_vote(&mut self, vote: &Vote<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        // In order with the appends before it, like every other change to the log's state:
        // a vote is rare (elections), so waiting for the queue costs nothing that matters.
        self.flusher
            .drain()
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.store_meta(VOTE, vote.clone(), Durability::Fsync)
            .await
            .map_err(|e| StorageIOError::write_vote(&e))?;
        self.vote = Some(vote.clone());
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.vote.clone())
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<C::NodeId>>,
    ) -> Result<(), StorageError<C::NodeId>> {
        if committed == self.committed {
            return Ok(());
        }
        // Lazy: openraft calls this on every commit advance, and the value is only a hint for
        // re-applying entries at startup. Losing the latest value costs a later re-apply, never
        // safety. It goes through the flusher so that it is written only once every entry
        // appended before it is durable: `open` treats a committed index past the end of the
        // log as a lost tail, and a follower may learn an index as committed while its own
        // copy still waits for the fsync. Not waiting keeps fsyncs off the Raft core's path.
        if self.is_failed() {
            return Err(StorageIOError::write(&LogError::Failed).into());
        }
        let dir = self.shared.dir.clone();
        let value = committed.clone();
        let state = Arc::clone(&self.flusher.state);
        // A hint: the flusher writes only the latest value, at most every `HINT_INTERVAL`,
        // instead of a create, write and rename (which ext4 turns into a block write) per
        // commit advance.
        self.flusher
            .send(Job::Hint(Box::new(move || {
                // After a failed fsync the entries it points at may not be on disk.
                if state.failed.load(Ordering::SeqCst) {
                    return;
                }
                if let Err(e) = meta::store(&dir, COMMITTED, &value, Durability::Lazy) {
                    tracing::warn!(error = %e, "could not record the committed log id");
                }
            })))
            .map_err(|e| StorageIOError::write(&e))?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(
        &mut self,
    ) -> Result<Option<LogId<C::NodeId>>, StorageError<C::NodeId>> {
        Ok(self.committed.clone())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<C>,
    ) -> Result<(), StorageError<C::NodeId>>
    where
        I: IntoIterator<Item = C::Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        // The callback is openraft's "persisted" signal: the flusher fires it after the fsync.
        let done: Done = Box::new(move |result| callback.log_io_completed(result));
        self.append_batch(entries, done)
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn truncate(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        tracing::debug!(%log_id, "truncating Raft log");
        self.truncate_from(log_id.index)
            .await
            .map_err(|e| StorageIOError::write_log_entry(log_id, &e).into())
    }

    async fn purge(&mut self, log_id: LogId<C::NodeId>) -> Result<(), StorageError<C::NodeId>> {
        tracing::debug!(%log_id, "purging Raft log");
        self.purge_upto(log_id.clone())
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

/// Largest batch [`LogStore::append`] writes on the calling task rather than the blocking pool.
const INLINE_WRITE_MAX: usize = 64 << 10;

/// Writes a serialized batch (and any zeros it reserved) where `target` says.
fn write_out(target: AppendTarget, buf: &[u8]) -> Result<AppendTarget, LogError> {
    target
        .file
        .write_all_at(buf, target.at)
        .map_err(io_err(&target.path, "write"))?;
    if let Some(zeros) = &target.zero_fill {
        segment::write_zeros(&target.file, zeros.clone())
            .map_err(io_err(&target.path, "preallocate"))?;
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use openraft::{CommittedLeaderId, Entry, EntryPayload, RaftLogReader};

    use super::*;
    use crate::raft::types::TypeConfig;

    fn blank(index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn blank_in(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn noop() -> Done {
        Box::new(|_| {})
    }

    /// Reads of fresh entries come from the in-memory tail; after a truncation and appends
    /// of a new term, and after a purge, they still agree with the files (a reopened store,
    /// which has no tail, reads the same).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tail_reads_what_the_files_hold() {
        let dir = std::env::temp_dir().join(format!("vigil-log-tail-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = LogStore::<TypeConfig>::open(&dir, LogOptions::default()).expect("open");
        store
            .append_batch((1..=6).map(|i| blank_in(1, i)), noop())
            .await
            .expect("append");
        store.truncate_from(4).await.expect("truncate");
        store
            .append_batch((4..=5).map(|i| blank_in(2, i)), noop())
            .await
            .expect("append");
        let ids = |v: Vec<Entry<TypeConfig>>| {
            v.iter()
                .map(|e| (e.log_id.leader_id.term, e.log_id.index))
                .collect::<Vec<_>>()
        };
        let want = vec![(1, 1), (1, 2), (1, 3), (2, 4), (2, 5)];
        assert!(store.shared.tail.read(1, u64::MAX, usize::MAX).is_some());
        let got = store.reader().try_get_log_entries(..).await.expect("read");
        assert_eq!(ids(got), want);
        store
            .purge_upto(LogId::new(CommittedLeaderId::new(1, 1), 2))
            .await
            .expect("purge");
        assert!(store.shared.tail.read(2, u64::MAX, usize::MAX).is_none());
        let got = store.reader().try_get_log_entries(3..).await.expect("read");
        assert_eq!(ids(got), want[2..]);
        store.flusher.drain().await.expect("drain");
        drop(store);
        let mut store = LogStore::<TypeConfig>::open(&dir, LogOptions::default()).expect("reopen");
        let got = store.try_get_log_entries(3..).await.expect("read back");
        assert_eq!(ids(got), want[2..]);
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A slow disk, made deterministic: while the flusher is held up (as if in a long fsync),
    /// appends still return and their entries are readable, no callback claims durability,
    /// and once it is released a single fsync covers every queued batch, in order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appends_queued_behind_a_flush_share_one_fsync() {
        let dir = std::env::temp_dir().join(format!("vigil-group-commit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = LogStore::<TypeConfig>::open(&dir, LogOptions::default()).expect("open");
        let (release, held) = mpsc::channel::<()>();
        store
            .flusher
            .send(Job::After(Box::new(move || {
                let _ = held.recv();
            })))
            .expect("hold the flusher");

        const APPENDS: u64 = 100;
        let (done_tx, done_rx) = mpsc::channel();
        for i in 1..=APPENDS {
            let done_tx = done_tx.clone();
            let done: Done = Box::new(move |r: io::Result<()>| {
                let _ = done_tx.send((i, r.is_ok()));
            });
            store.append_batch([blank(i)], done).await.expect("append");
        }
        let read = store.reader().try_get_log_entries(1..=APPENDS).await;
        assert_eq!(read.expect("read unflushed").len() as u64, APPENDS);
        assert!(
            done_rx.try_recv().is_err(),
            "a callback fired before any fsync"
        );
        assert_eq!(store.fsync_count(), 0);

        release.send(()).expect("release");
        let order: Vec<_> = (0..APPENDS)
            .map(|_| {
                done_rx
                    .recv_timeout(std::time::Duration::from_secs(10))
                    .expect("callback")
            })
            .collect();
        assert_eq!(order, (1..=APPENDS).map(|i| (i, true)).collect::<Vec<_>>());
        assert_eq!(
            store.fsync_count(),
            1,
            "one fsync for {APPENDS} queued appends"
        );

        // Truncation waits for queued flushes, then cuts what they wrote.
        store.truncate_from(51).await.expect("truncate");
        drop(store);
        let mut store = LogStore::<TypeConfig>::open(&dir, LogOptions::default()).expect("reopen");
        let all = store.try_get_log_entries(..).await.expect("read back");
        assert_eq!(all.last().map(|e| e.log_id.index), Some(50));
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

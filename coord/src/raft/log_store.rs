//! [`LogStore`]: openraft's `RaftLogStorage` on top of the segment files.

use std::fmt::Debug;
use std::io;
use std::marker::PhantomData;
use std::ops::RangeBounds;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{
    LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError,
    Vote,
};

use super::error::{Corruption, LogError, io_err};
use super::meta::{self, Durability, sync_dir};
use super::reader::{LogReader, Shared, blocking};
use super::record;
use super::segments::Segments;

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
}

impl Default for LogOptions {
    fn default() -> Self {
        Self {
            max_segment_bytes: 32 << 20,
            max_read_bytes: 4 << 20,
        }
    }
}

/// A durable, file-backed Raft log for any openraft type config `C`.
///
/// Entries are serialized with postcard, framed with a CRC-32C and appended to segment files;
/// every `append` call is one write and one fsync before openraft is told the entries are
/// flushed. The vote, the committed log id and the purge point live in small files replaced
/// atomically. See the [module docs](crate::raft) for the format and recovery rules.
///
/// Its async methods need a tokio runtime: file I/O runs on `spawn_blocking`, so an fsync never
/// stalls a runtime worker.
pub struct LogStore<C: RaftTypeConfig> {
    shared: Arc<Shared>,
    vote: Option<Vote<C::NodeId>>,
    committed: Option<LogId<C::NodeId>>,
    last_purged: Option<LogId<C::NodeId>>,
    last_log_id: Option<LogId<C::NodeId>>,
    /// Set after a failed write: see [`LogError::Failed`].
    failed: bool,
}

impl<C: RaftTypeConfig> Debug for LogStore<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogStore")
            .field("dir", &self.shared.dir)
            .field("vote", &self.vote)
            .field("committed", &self.committed)
            .field("last_purged", &self.last_purged)
            .field("last_log_id", &self.last_log_id)
            .field("failed", &self.failed)
            .finish()
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
        Ok(Self {
            shared,
            vote,
            committed,
            last_purged,
            last_log_id,
            failed: false,
        })
    }

    /// The directory this log lives in.
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// Serializes, writes and fsyncs one batch, then makes it readable.
    async fn append_batch(
        &mut self,
        entries: impl IntoIterator<Item = C::Entry>,
    ) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::Failed);
        }
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
            return Ok(());
        };

        let len = buf.len() as u64;
        let target = self.shared.write()?.prepare_append(first, len)?;
        let dir = self.shared.dir.clone();
        let written = blocking(move || {
            target
                .file
                .write_all_at(&buf, target.at)
                .map_err(io_err(&target.path, "write"))?;
            // One fsync per batch: this is what makes the callback's promise true.
            target
                .file
                .sync_data()
                .map_err(io_err(&target.path, "fsync"))?;
            if target.new_segment {
                sync_dir(&dir)?;
            }
            Ok(target.at)
        })
        .await;
        let at = written.inspect_err(|_| self.failed = true)?;
        self.shared.write()?.publish(at, &offsets, len)?;
        self.last_log_id = last;
        Ok(())
    }

    async fn truncate_from(&mut self, from: u64) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::Failed);
        }
        let shared = Arc::clone(&self.shared);
        let last = blocking(move || {
            shared.write()?.truncate(from)?;
            shared.last_present_blocking::<C>()
        })
        .await
        .inspect_err(|_| self.failed = true)?;
        self.last_log_id = last.or_else(|| self.last_purged.clone());
        Ok(())
    }

    async fn purge_upto(&mut self, log_id: LogId<C::NodeId>) -> Result<(), LogError> {
        if self.failed {
            return Err(LogError::Failed);
        }
        if self.last_purged.as_ref() >= Some(&log_id) {
            return Ok(());
        }
        // The purge point goes to disk before any segment is deleted, so recovery never sees
        // a log whose start is missing without knowing it was purged.
        let shared = Arc::clone(&self.shared);
        let point = log_id.clone();
        // Purging past the last log id (a snapshot ahead of the log) makes whatever follows the
        // purge index a stale tail of older terms: it cannot be committed, and keeping it would
        // leave entries beyond the log's reported end.
        let drop_tail = self.last_log_id.as_ref() < Some(&log_id);
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
        .inspect_err(|_| self.failed = true)?;
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
        if self.failed {
            return Err(LogError::Failed);
        }
        let dir = self.shared.dir.clone();
        blocking(move || meta::store(&dir, name, &value, durability))
            .await
            .inspect_err(|_| self.failed = true)
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
        // safety: the entries it points at were fsynced before it was written.
        self.store_meta(COMMITTED, committed.clone(), Durability::Lazy)
            .await
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
        match self.append_batch(entries).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
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

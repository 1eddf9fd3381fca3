//! The read side shared by the store and its replication readers.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::ops::{Bound, ControlFlow, RangeBounds};
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use openraft::{
    LogId, OptionalSend, RaftLogId, RaftLogReader, RaftTypeConfig, StorageError, StorageIOError,
};

use super::error::{Corruption, LogError};
use super::segments::Segments;
use super::tail::{Tail, TailLimits};

/// State shared between the [`LogStore`](super::LogStore) (the only writer) and any number of
/// [`LogReader`]s.
///
/// Readers hold the read lock for their positioned reads; the writer takes the write lock only
/// to publish a batch it already wrote and fsynced, and for truncation and purge, so a
/// replication read never waits behind an fsync.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) dir: PathBuf,
    /// Payload bytes after which `limited_get_log_entries` stops.
    max_read_bytes: usize,
    segments: RwLock<Segments>,
    /// The latest entries' payloads, answering reads of them without the files; the writer
    /// updates it together with `segments` (see [`Tail`]).
    pub(crate) tail: Tail,
}

impl Shared {
    pub(crate) fn new(dir: PathBuf, segments: Segments, max_read_bytes: usize) -> Self {
        Self {
            dir,
            max_read_bytes,
            segments: RwLock::new(segments),
            tail: Tail::new(TailLimits::default()),
        }
    }

    pub(crate) fn read(&self) -> Result<RwLockReadGuard<'_, Segments>, LogError> {
        self.segments
            .read()
            .map_err(|_| LogError::Worker("log index lock poisoned".to_owned()))
    }

    pub(crate) fn write(&self) -> Result<RwLockWriteGuard<'_, Segments>, LogError> {
        self.segments
            .write()
            .map_err(|_| LogError::Worker("log index lock poisoned".to_owned()))
    }

    /// One entry's payload, checked to be the entry at `index`.
    fn decode<C: RaftTypeConfig>(
        path: &std::path::Path,
        index: u64,
        payload: &[u8],
    ) -> Result<C::Entry, LogError> {
        let entry: C::Entry = postcard::from_bytes(payload).map_err(|source| LogError::Codec {
            path: path.to_owned(),
            index,
            source,
        })?;
        let found = entry.get_log_id().index;
        if found != index {
            return Err(LogError::Corrupt {
                path: path.to_owned(),
                offset: 0,
                kind: Corruption::IndexGap {
                    expected: index,
                    found,
                },
            });
        }
        Ok(entry)
    }

    /// Reads and decodes the entries in `[start, end)`, blocking; absent entries are skipped.
    /// With `limited`, stops once `max_read_bytes` of payload are read (after one entry at
    /// least), so a far-behind follower does not make the leader load its whole backlog.
    pub(crate) fn entries_blocking<C: RaftTypeConfig>(
        &self,
        start: u64,
        end: u64,
        limited: bool,
    ) -> Result<Vec<C::Entry>, LogError> {
        let budget = if limited {
            self.max_read_bytes
        } else {
            usize::MAX
        };
        let mut bytes = 0usize;
        let mut out = Vec::new();
        self.read()?.read(start, end, |path, index, payload| {
            out.push(Self::decode::<C>(path, index, payload)?);
            bytes = bytes.saturating_add(payload.len());
            Ok(if bytes >= budget {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?;
        Ok(out)
    }

    /// Reads and decodes the entries in `[start, end)`: from the tail when it holds them,
    /// else from the files on the blocking pool.
    pub(crate) async fn entries<C: RaftTypeConfig>(
        self: &Arc<Self>,
        start: u64,
        end: u64,
        limited: bool,
    ) -> Result<Vec<C::Entry>, LogError> {
        let budget = if limited {
            self.max_read_bytes
        } else {
            usize::MAX
        };
        if let Some(payloads) = self.tail.read(start, end, budget) {
            return payloads
                .iter()
                .map(|(index, payload)| Self::decode::<C>(&self.dir, *index, payload))
                .collect();
        }
        let shared = Arc::clone(self);
        blocking(move || shared.entries_blocking::<C>(start, end, limited)).await
    }

    /// The log id of the last present entry, if any.
    pub(crate) fn last_present_blocking<C: RaftTypeConfig>(
        &self,
    ) -> Result<Option<LogId<C::NodeId>>, LogError> {
        let Some(last) = self.read()?.last_index() else {
            return Ok(None);
        };
        let entries = self.entries_blocking::<C>(last, last + 1, false)?;
        Ok(entries.last().map(|e| e.get_log_id().clone()))
    }
}

/// Runs file I/O on tokio's blocking pool so fsyncs never stall the runtime's workers.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, LogError> + Send + 'static,
) -> Result<T, LogError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| LogError::Worker(e.to_string()))?
}

/// Converts any range over log indexes to a half-open `[start, end)`.
pub(crate) fn half_open(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

/// A cheap, cloneable read handle on the log, for openraft's replication tasks.
pub struct LogReader<C> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) types: PhantomData<fn() -> C>,
}

impl<C> Clone for LogReader<C> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            types: PhantomData,
        }
    }
}

impl<C> Debug for LogReader<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogReader")
            .field("dir", &self.shared.dir)
            .finish()
    }
}

impl<C: RaftTypeConfig> RaftLogReader<C> for LogReader<C> {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        let (start, end) = half_open(&range);
        self.shared
            .entries::<C>(start, end, false)
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn limited_get_log_entries(
        &mut self,
        start: u64,
        end: u64,
    ) -> Result<Vec<C::Entry>, StorageError<C::NodeId>> {
        self.shared
            .entries::<C>(start, end, true)
            .await
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    use super::half_open;

    #[test]
    fn ranges_become_half_open() {
        assert_eq!(half_open(&(3..7)), (3, 7));
        assert_eq!(half_open(&(3..=7)), (3, 8));
        assert_eq!(half_open(&(3..)), (3, u64::MAX));
        assert_eq!(half_open(&(..)), (0, u64::MAX));
        assert_eq!(half_open(&(..=u64::MAX)), (0, u64::MAX));
    }
}

//! Shared fixtures: a scratch directory, the test type config and entry builders.

use std::fs;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use openraft::storage::RaftLogStorageExt;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
use vigil_coord::raft::{LogOptions, LogStore};

openraft::declare_raft_types!(
    /// A type config of openraft's defaults: `String` requests and responses, `u64` node ids.
    pub(super) TestConfig
);

/// A directory under Cargo's per-target scratch space (on the real disk, so fsync costs what it
/// costs in production), removed on drop.
#[derive(Debug)]
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("raftlog-{tag}-{}-{n}", std::process::id()));
        // A leftover from a crashed earlier run with the same pid must not leak into this test.
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test directory");
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(super) type Store = LogStore<TestConfig>;

pub(super) fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

/// A normal entry whose payload names its position, so reads can be checked byte for byte.
pub(super) fn entry(term: u64, index: u64) -> Entry<TestConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(format!("entry {index} of term {term}")),
    }
}

/// Options that put only a few entries in each segment, to exercise segment boundaries.
pub(super) fn small_segments() -> LogOptions {
    LogOptions {
        max_segment_bytes: 256,
        ..LogOptions::default()
    }
}

pub(super) fn open(dir: &TempDir, options: LogOptions) -> Store {
    Store::open(dir.path(), options).expect("open log store")
}

/// Appends `term`'s entries `range` in batches of `batch`, each durably acknowledged.
pub(super) async fn append_range(
    store: &mut Store,
    term: u64,
    range: std::ops::Range<u64>,
    batch: u64,
) {
    let mut start = range.start;
    while start < range.end {
        let end = (start + batch).min(range.end);
        store
            .blocking_append((start..end).map(|i| entry(term, i)))
            .await
            .expect("append");
        start = end;
    }
}

/// Segment files in `dir`, in log order.
pub(super) fn segments(dir: &TempDir) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.path())
        .expect("list log directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    files.sort();
    files
}

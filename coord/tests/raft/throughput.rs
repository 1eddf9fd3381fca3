//! Append throughput on this disk, printed rather than asserted (timing assertions flake on
//! shared CI machines). `VIGIL_RAFTLOG_BENCH_SCALE=10` runs ten times as many appends.

use std::time::Instant;

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{Entry, EntryPayload, RaftLogReader, Vote};
use vigil_coord::raft::LogOptions;

use super::support::{TempDir, TestConfig, log_id, open};

/// Payload size the numbers are quoted for.
const PAYLOAD: usize = 100;

fn payload_entry(index: u64) -> Entry<TestConfig> {
    Entry {
        log_id: log_id(1, index),
        payload: EntryPayload::Normal("x".repeat(PAYLOAD)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn append_throughput_report() {
    let scale: u64 = std::env::var("VIGIL_RAFTLOG_BENCH_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    for (batch, appends) in [(1u64, 200 * scale), (64, 50 * scale)] {
        let dir = TempDir::new("throughput");
        let mut store = open(&dir, LogOptions::default());
        let total = batch * appends;
        let batches: Vec<Vec<_>> = (0..appends)
            .map(|a| (a * batch..(a + 1) * batch).map(payload_entry).collect())
            .collect();

        let start = Instant::now();
        for b in batches {
            store.blocking_append(b).await.expect("append");
        }
        let secs = start.elapsed().as_secs_f64();

        eprintln!(
            "raftlog append, {PAYLOAD}-byte entries, batch {batch}: {:.0} entries/s, {:.0} fsyncs/s \
             ({total} entries, {appends} appends in {secs:.3} s)",
            total as f64 / secs,
            appends as f64 / secs,
        );

        // Everything acknowledged is there after a reopen.
        drop(store);
        let mut store = open(&dir, LogOptions::default());
        let read = store.try_get_log_entries(..).await.expect("read back");
        assert_eq!(read.len() as u64, total);
        assert_eq!(read.last().map(|e| e.log_id), Some(log_id(1, total - 1)));
    }
}

/// `save_committed` replaces a small file atomically but without fsync (it is a hint);
/// `save_vote` does the same with an fsync of the file and of the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_rate_report() {
    let dir = TempDir::new("meta-rate");
    let mut store = open(&dir, LogOptions::default());
    let n = 50;
    store
        .blocking_append((0..n).map(payload_entry))
        .await
        .expect("append");

    let start = Instant::now();
    for i in 0..n {
        store
            .save_committed(Some(log_id(1, i)))
            .await
            .expect("save committed");
    }
    let committed_secs = start.elapsed().as_secs_f64();
    let start = Instant::now();
    for term in 0..n {
        store
            .save_vote(&Vote::new(term, 1))
            .await
            .expect("save vote");
    }
    let vote_secs = start.elapsed().as_secs_f64();
    eprintln!(
        "raftlog metadata: save_committed {:.0} calls/s, save_vote {:.0} calls/s ({n} calls each)",
        n as f64 / committed_secs,
        n as f64 / vote_secs,
    );

    drop(store);
    let mut store = open(&dir, LogOptions::default());
    assert_eq!(
        store.read_committed().await.expect("read committed"),
        Some(log_id(1, n - 1))
    );
    assert_eq!(
        store.read_vote().await.expect("read vote"),
        Some(Vote::new(n - 1, 1))
    );
}

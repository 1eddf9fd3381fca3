//! What the store promises across a close and reopen, and its write-path contracts.

use openraft::storage::{RaftLogReaderExt, RaftLogStorage, RaftLogStorageExt};
use openraft::{CommittedLeaderId, LogId, RaftLogReader, Vote};
use vigil_coord::raft::LogOptions;

use super::support::{TempDir, append_range, entry, log_id, open, segments, small_segments};

#[tokio::test]
async fn entries_vote_and_committed_survive_reopen() {
    let dir = TempDir::new("reopen");
    {
        let mut store = open(&dir, LogOptions::default());
        append_range(&mut store, 1, 1..301, 7).await;
        store
            .save_vote(&Vote::new_committed(3, 2))
            .await
            .expect("save vote");
        store
            .save_committed(Some(log_id(1, 250)))
            .await
            .expect("save committed");
    }
    let mut store = open(&dir, LogOptions::default());
    assert_eq!(
        store.read_vote().await.expect("vote"),
        Some(Vote::new_committed(3, 2))
    );
    assert_eq!(
        store.read_committed().await.expect("committed"),
        Some(log_id(1, 250))
    );
    let state = store.get_log_state().await.expect("log state");
    assert_eq!(state.last_log_id, Some(log_id(1, 300)));
    assert_eq!(state.last_purged_log_id, None);
    let all = store.try_get_log_entries(..).await.expect("read");
    assert_eq!(all, (1..301).map(|i| entry(1, i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn truncate_is_durable_and_the_log_can_be_rewritten() {
    let dir = TempDir::new("truncate");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 0..40, 3).await;
        assert!(segments(&dir).len() > 4, "test needs several segments");
        store.truncate(log_id(1, 17)).await.expect("truncate");
        assert_eq!(
            store.get_log_state().await.expect("state").last_log_id,
            Some(log_id(1, 16))
        );
        assert_eq!(
            store.try_get_log_entries(15..).await.expect("read").len(),
            2
        );
    }
    {
        let mut store = open(&dir, small_segments());
        assert_eq!(
            store.get_log_state().await.expect("state").last_log_id,
            Some(log_id(1, 16))
        );
        // A new leader's entries replace the truncated ones.
        append_range(&mut store, 2, 17..25, 5).await;
    }
    let mut store = open(&dir, small_segments());
    let all = store.try_get_log_entries(..).await.expect("read");
    let expected: Vec<_> = (0..17)
        .map(|i| entry(1, i))
        .chain((17..25).map(|i| entry(2, i)))
        .collect();
    assert_eq!(all, expected);

    store
        .truncate(log_id(1, 0))
        .await
        .expect("truncate everything");
    assert_eq!(
        store.get_log_state().await.expect("state").last_log_id,
        None
    );
    assert!(
        segments(&dir).is_empty(),
        "truncating everything removes every segment"
    );
}

#[tokio::test]
async fn purge_removes_whole_segments_and_survives_reopen() {
    let dir = TempDir::new("purge");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..61, 2).await;
        let before = segments(&dir);
        store.purge(log_id(1, 30)).await.expect("purge");
        let after = segments(&dir);
        assert!(after.len() < before.len(), "purge must delete old segments");
        // Exactly the segments newer than the purge point survive: the first one left may
        // still hold purged records, none before it may hold an unpurged one.
        assert_eq!(before[before.len() - after.len()..], after[..]);
        assert!(store.try_get_log_entry(30).await.expect("read").is_none());
    }
    let mut store = open(&dir, small_segments());
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 30)));
    assert_eq!(state.last_log_id, Some(log_id(1, 60)));
    let rest = store.try_get_log_entries(0..100).await.expect("read");
    assert_eq!(rest, (31..61).map(|i| entry(1, i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn purge_past_the_end_then_append_after_a_snapshot() {
    let dir = TempDir::new("purge-past-end");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..21, 4).await;
        // Installing a snapshot ahead of the log purges past its end.
        store.purge(log_id(3, 50)).await.expect("purge");
        assert!(segments(&dir).is_empty());
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(3, 50)));
        append_range(&mut store, 3, 51..56, 2).await;
    }
    let mut store = open(&dir, small_segments());
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 50)));
    assert_eq!(state.last_log_id, Some(log_id(3, 55)));
    let all = store.try_get_log_entries(..).await.expect("read");
    assert_eq!(all, (51..56).map(|i| entry(3, i)).collect::<Vec<_>>());
}

#[tokio::test]
async fn an_append_that_would_leave_a_hole_is_refused() {
    let dir = TempDir::new("hole");
    let mut store = open(&dir, LogOptions::default());
    append_range(&mut store, 1, 1..3, 2).await;
    let hole = store.blocking_append([entry(1, 4)]).await;
    assert!(hole.is_err(), "index 3 is missing");
    store
        .purge(log_id(1, 10))
        .await
        .expect("purge past the end");
    let hole = store.blocking_append([entry(1, 12)]).await;
    assert!(hole.is_err(), "index 11 is missing");
    append_range(&mut store, 1, 11..13, 2).await;
    assert_eq!(
        store.try_get_log_entries(..).await.expect("read"),
        vec![entry(1, 11), entry(1, 12)]
    );
}

/// A purge ahead of the log (a snapshot from a newer leader) drops the stale tail behind it,
/// and entries at or below the purge point are skipped rather than stored behind the start.
#[tokio::test]
async fn purge_ahead_of_a_stale_tail_drops_it() {
    let dir = TempDir::new("stale-tail");
    let mut store = open(&dir, LogOptions::default());
    append_range(&mut store, 1, 1..6, 5).await;
    // Term 3's snapshot covers index 3; our entries 4 and 5 of term 1 can never commit.
    store.purge(log_id(3, 3)).await.expect("purge");
    assert!(
        segments(&dir).is_empty(),
        "nothing on disk is newer than the purge point"
    );
    assert_eq!(
        store.get_log_state().await.expect("state").last_log_id,
        Some(log_id(3, 3))
    );
    assert!(
        store
            .try_get_log_entries(..)
            .await
            .expect("read")
            .is_empty()
    );
    store
        .blocking_append([entry(3, 2), entry(3, 3), entry(3, 4)])
        .await
        .expect("append across the purge point");
    drop(store);
    let mut store = open(&dir, LogOptions::default());
    assert_eq!(
        store.try_get_log_entries(..).await.expect("read"),
        vec![entry(3, 4)]
    );
    assert_eq!(
        store.get_log_state().await.expect("state").last_log_id,
        Some(log_id(3, 4))
    );
}

#[tokio::test]
async fn limited_reads_stop_at_the_byte_budget_but_return_at_least_one_entry() {
    let dir = TempDir::new("limited");
    let options = LogOptions {
        max_read_bytes: 100,
        ..small_segments()
    };
    let mut store = open(&dir, options);
    append_range(&mut store, 1, 0..50, 10).await;
    let mut reader = store.get_log_reader().await;
    let some = reader.limited_get_log_entries(5, 50).await.expect("read");
    // Each entry's payload is about 20 bytes: a 100-byte budget stops after a handful.
    assert!((2..10).contains(&some.len()), "{} entries", some.len());
    assert_eq!(
        some,
        (5..5 + some.len() as u64)
            .map(|i| entry(1, i))
            .collect::<Vec<_>>()
    );
    drop(store);

    let mut store = open(
        &dir,
        LogOptions {
            max_read_bytes: 0,
            ..small_segments()
        },
    );
    assert_eq!(
        store.limited_get_log_entries(7, 50).await.expect("read"),
        vec![entry(1, 7)]
    );
    assert_eq!(
        store.try_get_log_entries(7..50).await.expect("read").len(),
        43
    );
}

#[tokio::test]
async fn readers_see_appends_and_truncations() {
    let dir = TempDir::new("reader");
    let mut store = open(&dir, small_segments());
    let mut reader = store.get_log_reader().await;
    append_range(&mut store, 1, 0..10, 10).await;
    assert_eq!(
        reader.try_get_log_entries(8..).await.expect("read").len(),
        2
    );
    store.truncate(log_id(1, 5)).await.expect("truncate");
    assert_eq!(
        reader.try_get_log_entries(..).await.expect("read"),
        (0..5).map(|i| entry(1, i)).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn overlapping_or_non_consecutive_appends_are_refused() {
    let dir = TempDir::new("overlap");
    let mut store = open(&dir, LogOptions::default());
    append_range(&mut store, 1, 0..5, 5).await;
    let overlap = store.blocking_append([entry(2, 4)]).await;
    assert!(overlap.is_err(), "overwriting without truncate must fail");
    let gap_in_batch = store.blocking_append([entry(1, 5), entry(1, 7)]).await;
    assert!(gap_in_batch.is_err(), "a batch with a hole must fail");
    // Neither failure damaged the log: it still ends at 4 and accepts 5.
    let last: Option<LogId<u64>> = store.get_log_state().await.expect("state").last_log_id;
    assert_eq!(last, Some(log_id(1, 4)));
    store
        .blocking_append([entry(1, 5)])
        .await
        .expect("append after refusal");
    drop(store);
    let mut store = open(&dir, LogOptions::default());
    assert_eq!(store.try_get_log_entries(..).await.expect("read").len(), 6);
    assert_eq!(
        store.get_log_state().await.expect("state").last_log_id,
        Some(LogId::new(CommittedLeaderId::new(1, 1), 5))
    );
}

/// A replication reader racing the writer (appends, truncations, purges across segment
/// boundaries) always sees a run of consecutive, intact entries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_readers_see_consistent_runs() {
    let dir = TempDir::new("concurrent");
    let mut store = open(&dir, small_segments());
    append_range(&mut store, 1, 0..10, 5).await;
    let mut reader = store.get_log_reader().await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reading = {
        let stop = std::sync::Arc::clone(&stop);
        tokio::spawn(async move {
            let mut reads = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let got = reader.try_get_log_entries(..).await.expect("read");
                for pair in got.windows(2) {
                    assert_eq!(pair[1].log_id.index, pair[0].log_id.index + 1);
                }
                for e in &got {
                    assert_eq!(*e, entry(e.log_id.leader_id.term, e.log_id.index));
                }
                reads += 1;
            }
            reads
        })
    };
    let mut term = 1;
    for round in 0..20u64 {
        let last = store.get_log_state().await.expect("state").last_log_id;
        let next = last.map_or(0, |l| l.index + 1);
        append_range(&mut store, term, next..next + 12, 4).await;
        // A new leader overwrites the last few entries.
        term += 1;
        store
            .truncate(log_id(term - 1, next + 8))
            .await
            .expect("truncate");
        append_range(&mut store, term, next + 8..next + 10, 2).await;
        if round % 5 == 4 {
            store
                .purge(log_id(term - 1, next + 5))
                .await
                .expect("purge");
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let reads = reading.await.expect("reader task");
    assert!(reads > 0);
}

#[tokio::test]
async fn every_appended_batch_is_one_timed_fsync() {
    let dir = TempDir::new("fsync-histogram");
    let mut store = open(&dir, LogOptions::default());
    let (_, before, sum_before) = vigil_coord::raft::FSYNC_LATENCY.snapshot();
    // 25 entries in batches of 10: three appends, three fsyncs.
    append_range(&mut store, 1, 1..26, 10).await;
    let (buckets, after, sum_after) = vigil_coord::raft::FSYNC_LATENCY.snapshot();
    // Other tests in this binary append concurrently: at least ours were counted.
    assert!(after >= before + 3, "{before} -> {after}");
    assert!(sum_after > sum_before, "fsyncs take time");
    assert_eq!(buckets.len(), vigil_coord::raft::FSYNC_BUCKETS.len());
    assert!(
        buckets
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
        "bounds ascend and counts are cumulative: {buckets:?}"
    );
    assert!(buckets.last().is_some_and(|(_, n)| *n <= after));
}

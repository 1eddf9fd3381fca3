//! Crash recovery: damage a written log on disk, reopen, and check the store either repairs a
//! torn tail or refuses with the file and offset of the damage.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use openraft::storage::{RaftLogStorage, RaftLogStorageExt};
use openraft::{RaftLogReader, Vote};
use vigil_coord::raft::{Corruption, LogError, LogOptions};

use super::support::{Store, TempDir, append_range, entry, log_id, open, segments, small_segments};

/// Size of the segment header, from the documented on-disk format.
const HEADER: usize = 32;

/// Start offsets of the records of a segment and the end of the last one, by walking the
/// documented framing (`len u32 | crc u32 | index u64 | payload`) up to the end of the file
/// or the preallocated zeros after the records.
fn records(path: &Path) -> (Vec<usize>, usize) {
    let bytes = fs::read(path).expect("read segment");
    let mut offsets = Vec::new();
    let mut at = HEADER;
    while at + 16 <= bytes.len() && bytes[at..at + 8] != [0; 8] {
        offsets.push(at);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
        at += 16 + len as usize;
    }
    (offsets, at)
}

fn record_offsets(path: &Path) -> Vec<usize> {
    records(path).0
}

fn data_end(path: &Path) -> usize {
    records(path).1
}

/// The log without preallocation: each segment file ends where its last record does.
fn unpadded() -> LogOptions {
    LogOptions {
        prealloc_bytes: 0,
        ..LogOptions::default()
    }
}

/// Both on-disk shapes a log can have, for the rules that hold for either.
fn both_layouts() -> [LogOptions; 2] {
    [LogOptions::default(), unpadded()]
}

fn write_at(path: &Path, offset: usize, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.write_all_at(bytes, offset as u64))
        .expect("write");
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = fs::read(path).expect("read");
    bytes[offset] ^= 0x5A;
    fs::write(path, bytes).expect("write");
}

fn set_len(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.set_len(len))
        .expect("resize");
}

fn len(path: &Path) -> u64 {
    fs::metadata(path).expect("stat").len()
}

/// A single-segment log of entries 1..=20.
async fn twenty_entries(dir: &TempDir, options: LogOptions) -> PathBuf {
    let mut store = open(dir, options);
    append_range(&mut store, 1, 1..21, 4).await;
    let segs = segments(dir);
    assert_eq!(segs.len(), 1);
    segs[0].clone()
}

async fn assert_entries(dir: &TempDir, range: std::ops::Range<u64>) {
    let mut store = open(dir, LogOptions::default());
    let all = store.try_get_log_entries(..).await.expect("read");
    assert_eq!(all, range.clone().map(|i| entry(1, i)).collect::<Vec<_>>());
    let last = store.get_log_state().await.expect("state").last_log_id;
    assert_eq!(last, range.last().map(|i| log_id(1, i)));
}

/// The repaired log takes the entries `range` and reopens with every entry up to them.
async fn takes_appends(dir: &TempDir, options: LogOptions, range: std::ops::Range<u64>) {
    let mut store = open(dir, options);
    append_range(&mut store, 1, range.clone(), 3).await;
    drop(store);
    assert_entries(dir, 1..range.end).await;
}

fn open_err(dir: &TempDir, options: LogOptions) -> (PathBuf, u64, Corruption, String) {
    match Store::open(dir.path(), options) {
        Err(e @ LogError::Corrupt { .. }) => {
            let msg = e.to_string();
            let LogError::Corrupt { path, offset, kind } = e else {
                unreachable!()
            };
            (path, offset, kind, msg)
        }
        other => panic!("expected a corruption error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_partial_last_record_is_cut_off() {
    let dir = TempDir::new("torn-partial");
    let seg = twenty_entries(&dir, unpadded()).await;
    let last = *record_offsets(&seg).last().expect("records");
    set_len(&seg, len(&seg) - 5);
    assert_entries(&dir, 1..20).await;
    assert_eq!(len(&seg), last as u64, "the torn record is gone from disk");

    takes_appends(&dir, LogOptions::default(), 20..23).await;
}

#[tokio::test]
async fn a_bad_checksum_in_the_very_last_record_is_a_torn_write() {
    let dir = TempDir::new("torn-crc");
    let seg = twenty_entries(&dir, unpadded()).await;
    let last = *record_offsets(&seg).last().expect("records");
    flip_byte(&seg, last + 20);
    assert_entries(&dir, 1..20).await;
}

#[tokio::test]
async fn zeros_after_the_last_record_are_free_space() {
    for (n, options) in both_layouts().into_iter().enumerate() {
        let dir = TempDir::new(&format!("zero-tail-{n}"));
        let seg = twenty_entries(&dir, options).await;
        let end = data_end(&seg);
        // What a crash leaves when the file size was extended but no record reached the disk.
        let mut f = OpenOptions::new().append(true).open(&seg).expect("open");
        f.write_all(&[0u8; 4096]).expect("append zeros");
        drop(f);
        let size = len(&seg);
        assert_entries(&dir, 1..21).await;
        assert_eq!(len(&seg), size, "free space is kept, not cut");

        // Appends overwrite the zeros.
        takes_appends(&dir, options, 21..24).await;
        assert_eq!(record_offsets(&seg)[20], end);
    }
}

#[tokio::test]
async fn appends_are_written_into_preallocated_space() {
    let dir = TempDir::new("prealloc");
    let seg = twenty_entries(&dir, LogOptions::default()).await;
    let prealloc = LogOptions::default().prealloc_bytes;
    let (end, size) = (data_end(&seg) as u64, len(&seg));
    assert!(
        size >= end + prealloc - 1024 && size <= end + prealloc,
        "the file ({size} bytes) reaches about {prealloc} bytes past the records ({end})"
    );
    // The next appends land inside that space: the file does not grow.
    let mut store = open(&dir, LogOptions::default());
    append_range(&mut store, 1, 21..41, 5).await;
    drop(store);
    assert_eq!(len(&seg), size);
    assert_entries(&dir, 1..41).await;
}

/// A big record, so that one record spans several disk sectors.
fn big_entry(index: u64) -> openraft::Entry<super::support::TestConfig> {
    openraft::Entry {
        log_id: log_id(1, index),
        payload: openraft::EntryPayload::Normal("x".repeat(3000)),
    }
}

async fn twenty_entries_then_a_big_one(dir: &TempDir) -> (PathBuf, usize) {
    let seg = twenty_entries(dir, LogOptions::default()).await;
    let mut store = open(dir, LogOptions::default());
    store
        .blocking_append([big_entry(21)])
        .await
        .expect("append");
    drop(store);
    let big = record_offsets(&seg)[20];
    (seg, big)
}

#[tokio::test]
async fn a_torn_write_into_preallocated_space_is_cut_off() {
    let dir = TempDir::new("torn-sector");
    let (seg, big) = twenty_entries_then_a_big_one(&dir).await;
    // The crash kept one whole sector inside the record from reaching the disk.
    let sector = (big / 512 + 2) * 512;
    write_at(&seg, sector, &[0u8; 512]);
    assert_entries(&dir, 1..21).await;
    assert_eq!(
        len(&seg),
        big as u64,
        "the torn record and the space after it are cut"
    );
    takes_appends(&dir, LogOptions::default(), 21..23).await;
}

#[tokio::test]
async fn bit_rot_in_the_last_record_of_a_preallocated_segment_is_refused() {
    let dir = TempDir::new("rot-last");
    let (seg, big) = twenty_entries_then_a_big_one(&dir).await;
    flip_byte(&seg, big + 1500);
    let (path, offset, kind, _) = open_err(&dir, LogOptions::default());
    assert_eq!(
        (path, offset, kind),
        (seg, big as u64, Corruption::BadChecksum)
    );
}

#[tokio::test]
async fn a_new_segment_with_a_torn_header_is_removed() {
    let dir = TempDir::new("torn-header");
    let seg = twenty_entries(&dir, LogOptions::default()).await;
    let next = seg.with_file_name("00000000000000000021.seg");
    fs::write(&next, [0x56, 0x47, 0x52]).expect("write torn header");
    assert_entries(&dir, 1..21).await;
    assert!(!next.exists());
}

#[tokio::test]
async fn a_bad_checksum_before_the_end_is_refused_with_file_and_offset() {
    for (n, options) in both_layouts().into_iter().enumerate() {
        let dir = TempDir::new(&format!("corrupt-middle-{n}"));
        let seg = twenty_entries(&dir, options).await;
        let tenth = record_offsets(&seg)[9];
        flip_byte(&seg, tenth + 18);
        let (path, offset, kind, msg) = open_err(&dir, options);
        assert_eq!(
            (path.as_path(), offset, kind),
            (seg.as_path(), tenth as u64, Corruption::BadChecksum)
        );
        assert!(msg.contains(&seg.display().to_string()), "{msg}");
        assert!(msg.contains(&format!("offset {tenth}")), "{msg}");
        // Refusing must not have "repaired" anything.
        assert_eq!(record_offsets(&seg).len(), 20);
    }
}

#[tokio::test]
async fn damage_at_the_end_of_a_sealed_segment_is_refused() {
    for (n, layout) in both_layouts().into_iter().enumerate() {
        let options = LogOptions {
            prealloc_bytes: layout.prealloc_bytes,
            ..small_segments()
        };
        let dir = TempDir::new(&format!("corrupt-sealed-{n}"));
        {
            let mut store = open(&dir, options);
            append_range(&mut store, 1, 1..31, 2).await;
        }
        let segs = segments(&dir);
        assert!(segs.len() >= 3);
        set_len(&segs[0], data_end(&segs[0]) as u64 - 3);
        let (path, _, kind, _) = open_err(&dir, options);
        assert_eq!((path, kind), (segs[0].clone(), Corruption::Truncated));
    }
}

#[tokio::test]
async fn a_missing_middle_segment_is_refused() {
    let dir = TempDir::new("missing-middle");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..31, 2).await;
    }
    let segs = segments(&dir);
    assert!(segs.len() >= 3);
    fs::remove_file(&segs[1]).expect("remove");
    let (path, _, kind, _) = open_err(&dir, small_segments());
    assert_eq!(path, segs[2]);
    assert!(
        matches!(kind, Corruption::MissingSegment { .. }),
        "{kind:?}"
    );
}

#[tokio::test]
async fn a_missing_first_segment_is_refused() {
    let dir = TempDir::new("missing-first");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..31, 2).await;
    }
    let segs = segments(&dir);
    fs::remove_file(&segs[0]).expect("remove");
    let (path, _, kind, _) = open_err(&dir, small_segments());
    assert_eq!(path, segs[1]);
    assert!(
        matches!(
            kind,
            Corruption::MissingSegment {
                found_prev: None,
                ..
            }
        ),
        "{kind:?}"
    );
}

#[tokio::test]
async fn a_lost_tail_segment_below_the_committed_index_is_refused() {
    let dir = TempDir::new("missing-tail");
    {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..31, 2).await;
        store
            .save_committed(Some(log_id(1, 30)))
            .await
            .expect("save committed");
    }
    let segs = segments(&dir);
    fs::remove_file(segs.last().expect("segments")).expect("remove");
    let (_, _, kind, _) = open_err(&dir, small_segments());
    assert!(
        matches!(kind, Corruption::MissingTail { committed: 30, .. }),
        "{kind:?}"
    );
}

#[tokio::test]
async fn a_record_with_a_valid_checksum_but_the_wrong_index_is_a_gap() {
    for (n, options) in both_layouts().into_iter().enumerate() {
        let dir = TempDir::new(&format!("index-gap-{n}"));
        let seg = twenty_entries(&dir, options).await;
        let (offsets, end) = records(&seg);
        let last = *offsets.last().expect("records");
        let bytes = fs::read(&seg).expect("read");
        // Replay the last record: intact framing, but it claims index 20 where 21 belongs.
        write_at(&seg, end, &bytes[last..end]);
        let (path, offset, kind, _) = open_err(&dir, options);
        assert_eq!(path, seg);
        assert_eq!(offset, end as u64);
        assert_eq!(
            kind,
            Corruption::IndexGap {
                expected: 21,
                found: 20
            }
        );
    }
}

#[tokio::test]
async fn a_damaged_vote_file_is_refused() {
    let dir = TempDir::new("bad-vote");
    {
        let mut store = open(&dir, LogOptions::default());
        store.save_vote(&Vote::new(4, 1)).await.expect("save vote");
    }
    flip_byte(&dir.path().join("vote"), 5);
    let (path, _, kind, _) = open_err(&dir, LogOptions::default());
    assert_eq!(
        (path, kind),
        (dir.path().join("vote"), Corruption::BadMetadata)
    );
}

/// A crash between making a purge point durable and dropping the stale tail behind it (a
/// snapshot from a newer term, ahead of our log) is finished on open.
#[tokio::test]
async fn an_interrupted_purge_past_a_stale_tail_is_completed() {
    let dir = TempDir::new("stale-tail-crash");
    {
        let mut store = open(&dir, LogOptions::default());
        append_range(&mut store, 1, 1..6, 5).await;
    }
    // Borrow a `purged` file recording (term 3, index 3) from another log: that is the state
    // right after the purge point was written.
    let other = TempDir::new("stale-tail-donor");
    {
        let mut store = open(&other, LogOptions::default());
        store.purge(log_id(3, 3)).await.expect("purge");
    }
    fs::copy(other.path().join("purged"), dir.path().join("purged")).expect("copy purge point");

    let mut store = open(&dir, LogOptions::default());
    let state = store.get_log_state().await.expect("state");
    assert_eq!(state.last_purged_log_id, Some(log_id(3, 3)));
    assert_eq!(state.last_log_id, Some(log_id(3, 3)));
    assert!(
        store
            .try_get_log_entries(..)
            .await
            .expect("read")
            .is_empty()
    );
}

/// The committed id is written without fsync, so a crash may leave it unreadable: that is not
/// corruption, it only means there is nothing to re-apply at startup.
#[tokio::test]
async fn an_unreadable_committed_hint_is_ignored() {
    let dir = TempDir::new("bad-committed");
    {
        let mut store = open(&dir, LogOptions::default());
        append_range(&mut store, 1, 1..4, 3).await;
        store
            .save_committed(Some(log_id(1, 3)))
            .await
            .expect("save committed");
    }
    fs::write(dir.path().join("committed"), b"").expect("empty the file");
    let mut store = open(&dir, LogOptions::default());
    assert_eq!(store.read_committed().await.expect("committed"), None);
    assert_eq!(store.try_get_log_entries(..).await.expect("read").len(), 3);
}

#[tokio::test]
async fn segments_left_by_an_interrupted_purge_are_removed() {
    let dir = TempDir::new("interrupted-purge");
    let kept = {
        let mut store = open(&dir, small_segments());
        append_range(&mut store, 1, 1..31, 2).await;
        let before = segments(&dir);
        store.purge(log_id(1, 20)).await.expect("purge");
        let after = segments(&dir);
        // Put back a purged segment, as if the crash came between the purge point being
        // written and the unlink.
        let restored = &before[before.len() - after.len() - 1];
        fs::write(restored, b"stale bytes that must not even be parsed").expect("restore");
        after
    };
    let mut store = open(&dir, small_segments());
    assert_eq!(segments(&dir), kept);
    let rest = store.try_get_log_entries(..).await.expect("read");
    assert_eq!(rest, (21..31).map(|i| entry(1, i)).collect::<Vec<_>>());
}

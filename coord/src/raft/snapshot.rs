//! The snapshot file: the tree's state plus the Raft metadata it covers, checksummed.
//!
//! ```text
//! +------------+-------------+------------------------+---------------------------+-------------+
//! | "VGSNAP01" | meta_len u32| postcard(SnapshotMeta) | StateMachine::write_snapshot | crc32c u32 |
//! +------------+-------------+------------------------+---------------------------+-------------+
//! ```
//!
//! Integers are little-endian; the CRC-32C covers every byte before it. The same bytes are what
//! a leader streams to a follower (openraft's `SnapshotData` is this file), so the last applied
//! log id and the last membership travel inside the snapshot and a follower can check them
//! against the metadata openraft sends alongside.
//!
//! Files in the snapshot directory: `current` (the latest snapshot) and `current.tmp` while one
//! is being written; a leftover `.tmp` is simply overwritten by the next write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use super::crc::Crc32c;
use super::types::typ::SnapshotMeta;
use crate::state_machine::StateMachine;

const MAGIC: &[u8; 8] = b"VGSNAP01";
const CURRENT: &str = "current";
const TMP: &str = "current.tmp";

/// Why a snapshot file could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotFileError {
    /// A system call failed.
    #[error("{path}: {op}: {source}", path = .path.display())]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The kernel's error.
        #[source]
        source: io::Error,
    },
    /// The bytes are not a valid snapshot.
    #[error("invalid snapshot: {0}")]
    Invalid(String),
}

fn io_err(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> SnapshotFileError {
    let path = path.to_owned();
    move |source| SnapshotFileError::Io { path, op, source }
}

/// Path of the current snapshot in `dir`.
pub(crate) fn current_path(dir: &Path) -> PathBuf {
    dir.join(CURRENT)
}

/// A writer that sums what passes through it, and remembers the last I/O error (postcard's
/// `to_io` reports any write failure as its own error, losing the kernel's).
struct CrcWriter<W> {
    inner: W,
    crc: Crc32c,
    failed: Option<io::Error>,
}

impl<W: Write> Write for CrcWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.write(buf) {
            Ok(n) => {
                self.crc = self.crc.update(&buf[..n]);
                Ok(n)
            }
            Err(e) => {
                self.failed = Some(io::Error::new(e.kind(), e.to_string()));
                Err(e)
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes `meta` and `sm` as the new current snapshot of `dir`, durably (fsync of the file,
/// atomic rename, fsync of the directory). Blocking.
#[cfg(test)]
pub(crate) fn write(
    dir: &Path,
    meta: &SnapshotMeta,
    sm: &StateMachine,
) -> Result<(), SnapshotFileError> {
    write_with(dir, meta, |w| {
        sm.write_snapshot(w).map_err(|e| e.to_string())
    })
}

/// Like [`write`] with the state machine's part already encoded
/// ([`StateMachine::write_snapshot`] output): the snapshot builder encodes under the state lock
/// and writes the file outside it.
pub(crate) fn write_encoded(
    dir: &Path,
    meta: &SnapshotMeta,
    state: &[u8],
) -> Result<(), SnapshotFileError> {
    // A failed write is recorded by the `CrcWriter` and reported with the kernel's error.
    write_with(dir, meta, |w| w.write_all(state).map_err(|e| e.to_string()))
}

fn write_with(
    dir: &Path,
    meta: &SnapshotMeta,
    body: impl FnOnce(&mut CrcWriter<BufWriter<File>>) -> Result<(), String>,
) -> Result<(), SnapshotFileError> {
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    let tmp = dir.join(TMP);
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp, "create"))?;
    let mut w = CrcWriter {
        inner: BufWriter::with_capacity(1 << 20, file),
        crc: Crc32c::new(),
        failed: None,
    };
    let meta_bytes =
        postcard::to_allocvec(meta).map_err(|e| SnapshotFileError::Invalid(e.to_string()))?;
    let meta_len = u32::try_from(meta_bytes.len())
        .map_err(|_| SnapshotFileError::Invalid("metadata too large".into()))?;
    w.write_all(MAGIC).map_err(io_err(&tmp, "write"))?;
    w.write_all(&meta_len.to_le_bytes())
        .map_err(io_err(&tmp, "write"))?;
    w.write_all(&meta_bytes).map_err(io_err(&tmp, "write"))?;
    if let Err(e) = body(&mut w) {
        return Err(match w.failed.take() {
            Some(source) => SnapshotFileError::Io {
                path: tmp,
                op: "write",
                source,
            },
            None => SnapshotFileError::Invalid(e),
        });
    }
    let crc = w.crc.finish();
    let mut inner = w.inner;
    inner
        .write_all(&crc.to_le_bytes())
        .map_err(io_err(&tmp, "write"))?;
    let file = inner.into_inner().map_err(|e| SnapshotFileError::Io {
        path: tmp.clone(),
        op: "write",
        source: e.into_error(),
    })?;
    commit(dir, &tmp, &file)
}

/// Replaces the current snapshot of `dir` with `bytes` (already checked by [`decode`]).
pub(crate) fn write_bytes(dir: &Path, bytes: &[u8]) -> Result<(), SnapshotFileError> {
    fs::create_dir_all(dir).map_err(io_err(dir, "create directory"))?;
    let tmp = dir.join(TMP);
    let mut file = File::create(&tmp).map_err(io_err(&tmp, "create"))?;
    file.write_all(bytes).map_err(io_err(&tmp, "write"))?;
    commit(dir, &tmp, &file)
}

fn commit(dir: &Path, tmp: &Path, file: &File) -> Result<(), SnapshotFileError> {
    file.sync_all().map_err(io_err(tmp, "fsync"))?;
    let current = current_path(dir);
    fs::rename(tmp, &current).map_err(io_err(&current, "rename"))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))
}

/// Checks and decodes snapshot bytes.
pub(crate) fn decode(bytes: &[u8]) -> Result<(SnapshotMeta, StateMachine), SnapshotFileError> {
    let invalid = |why: &str| SnapshotFileError::Invalid(why.to_owned());
    let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
        return Err(invalid("too short"));
    };
    if Crc32c::new().update(body).finish() != u32::from_le_bytes(*crc) {
        return Err(invalid("checksum mismatch"));
    }
    let Some(rest) = body.strip_prefix(MAGIC.as_slice()) else {
        return Err(invalid("bad magic"));
    };
    let Some((len, rest)) = rest.split_first_chunk::<4>() else {
        return Err(invalid("truncated header"));
    };
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err(invalid("truncated metadata"));
    }
    let (meta, state) = rest.split_at(len);
    let meta: SnapshotMeta =
        postcard::from_bytes(meta).map_err(|e| SnapshotFileError::Invalid(e.to_string()))?;
    let sm = StateMachine::restore(state).map_err(|e| SnapshotFileError::Invalid(e.to_string()))?;
    let expected = meta.last_log_id.as_ref().map_or(0, |l| l.index);
    if sm.last_applied() > expected {
        return Err(invalid("state is newer than its metadata"));
    }
    Ok((meta, sm))
}

/// Reads the current snapshot of `dir`, if there is one. Blocking.
pub(crate) fn read(dir: &Path) -> Result<Option<(SnapshotMeta, StateMachine)>, SnapshotFileError> {
    let path = current_path(dir);
    match fs::read(&path) {
        Ok(bytes) => decode(&bytes).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err(&path, "read")(e)),
    }
}

#[cfg(test)]
mod tests {
    use openraft::{CommittedLeaderId, LogId, Membership, StoredMembership};

    use super::{SnapshotFileError, current_path, read, write};
    use crate::raft::types::typ::SnapshotMeta;
    use crate::request::Command;
    use crate::state_machine::StateMachine;

    #[test]
    fn round_trips_and_refuses_damage() {
        let dir = std::env::temp_dir().join(format!("vigil-snapshot-unit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut sm = StateMachine::new();
        sm.apply(3, 10, Command::CreateSession { timeout_ms: 5000 });
        let log_id = LogId::new(CommittedLeaderId::new(2, 1), 4);
        let membership = Membership::new(vec![[1u64, 2, 3].into()], None);
        let meta = SnapshotMeta {
            last_log_id: Some(log_id),
            last_membership: StoredMembership::new(Some(log_id), membership),
            snapshot_id: "2-4-1".into(),
        };
        assert!(read(&dir).expect("no snapshot yet").is_none());
        write(&dir, &meta, &sm).expect("write");
        let (got_meta, got_sm) = read(&dir).expect("read").expect("present");
        assert_eq!(got_meta, meta);
        assert_eq!(got_sm, sm);

        let path = current_path(&dir);
        let mut bytes = std::fs::read(&path).expect("bytes");
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0x40;
        std::fs::write(&path, &bytes).expect("damage");
        assert!(matches!(read(&dir), Err(SnapshotFileError::Invalid(_))));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Small metadata files (`vote`, `committed`, `purged`), replaced atomically.
//!
//! ```text
//!  +-------+---------------------------+
//!  |  crc  |  postcard(value)          |      crc: u32 LE CRC-32C of the rest
//!  +-------+---------------------------+
//! ```
//!
//! A write goes to `<name>.tmp`, is fsynced, renamed over `<name>`, and the directory is
//! fsynced, so after a crash the file holds either the old or the new value, never a mix.
//! [`Durability::Lazy`] skips both fsyncs for values that are only hints.

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::crc::crc32c;
use super::error::{Corruption, LogError, io_err};

/// Suffix of in-flight writes; leftovers are deleted on open.
pub(crate) const TMP_SUFFIX: &str = ".tmp";

/// How hard [`store`] works to make a value survive a crash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Durability {
    /// fsync the file and the directory: the value survives any crash once `store` returns.
    Fsync,
    /// Atomic rename only: after a crash the file holds the old value, the new one, or (on
    /// filesystems that do not order the rename after the data) nothing readable. For hints
    /// whose loss only costs time, where three fsyncs per update would cost more.
    Lazy,
}

/// Replaces `dir/name` with `value`, atomically, and durably if `durability` says so.
pub(crate) fn store<T: Serialize>(
    dir: &Path,
    name: &str,
    value: &T,
    durability: Durability,
) -> Result<(), LogError> {
    let path = dir.join(name);
    let payload = postcard::to_allocvec(value).map_err(|source| LogError::Codec {
        path: path.clone(),
        index: 0,
        source,
    })?;
    let mut bytes = Vec::with_capacity(4 + payload.len());
    bytes.extend_from_slice(&crc32c(&payload).to_le_bytes());
    bytes.extend_from_slice(&payload);

    let tmp = dir.join(format!("{name}{TMP_SUFFIX}"));
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp, "create"))?;
    file.write_all(&bytes).map_err(io_err(&tmp, "write"))?;
    if durability == Durability::Fsync {
        file.sync_all().map_err(io_err(&tmp, "fsync"))?;
    }
    drop(file);
    fs::rename(&tmp, &path).map_err(io_err(&path, "rename"))?;
    if durability == Durability::Fsync {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Reads `dir/name`; `None` if it was never written.
pub(crate) fn load<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<Option<T>, LogError> {
    let path = dir.join(name);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&path, "read")(e)),
    };
    let corrupt = || LogError::Corrupt {
        path: path.clone(),
        offset: 0,
        kind: Corruption::BadMetadata,
    };
    let (crc, payload) = bytes.split_at_checked(4).ok_or_else(corrupt)?;
    if crc32c(payload).to_le_bytes() != crc {
        return Err(corrupt());
    }
    postcard::from_bytes(payload)
        .map(Some)
        .map_err(|source| LogError::Codec {
            path: path.clone(),
            index: 0,
            source,
        })
}

/// Like [`load`], for values written with [`Durability::Lazy`]: an unreadable file is what a
/// crash may leave, so it counts as never written.
pub(crate) fn load_hint<T: DeserializeOwned>(
    dir: &Path,
    name: &str,
) -> Result<Option<T>, LogError> {
    match load(dir, name) {
        Err(e @ (LogError::Corrupt { .. } | LogError::Codec { .. })) => {
            tracing::warn!(error = %e, "ignoring unreadable hint file");
            Ok(None)
        }
        other => other,
    }
}

/// Makes creations, renames and deletions in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), LogError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir, "fsync directory"))
}

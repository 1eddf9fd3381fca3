//! Errors of the durable Raft log.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why the log store failed or refused to open.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// A system call on a log file failed.
    #[error("{path}: {op}: {source}", path = .path.display())]
    Io {
        /// The file or directory the call was about.
        path: PathBuf,
        /// What the store was doing, e.g. `"fsync"`.
        op: &'static str,
        /// The error from the kernel.
        #[source]
        source: io::Error,
    },

    /// The log on disk is damaged somewhere a crash cannot explain, so the store refuses to
    /// serve it: answering from a damaged log could make this node vote or acknowledge against
    /// what it promised before, which breaks Raft's safety.
    #[error(
        "{path} at offset {offset}: corrupt Raft log: {kind}; refusing to open \
         (restore this node from a peer, e.g. by wiping its data directory)",
        path = .path.display()
    )]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage inside `path`.
        offset: u64,
        /// What is wrong.
        kind: Corruption,
    },

    /// An entry or a metadata value could not be (de)serialized.
    #[error("{path}: entry {index}: serialization: {source}", path = .path.display())]
    Codec {
        /// The file the bytes came from or were bound for.
        path: PathBuf,
        /// The log index concerned, or 0 for metadata.
        index: u64,
        /// The serializer's error.
        #[source]
        source: postcard::Error,
    },

    /// `append` was asked to overwrite entries without a `truncate` first; openraft never does
    /// this, so it means a caller bug, and refusing keeps the log free of duplicates.
    #[error("append starts at index {first} but the log already holds index {last}")]
    Overlap {
        /// First index of the rejected batch.
        first: u64,
        /// Last index present in the log.
        last: u64,
    },

    /// `append` would leave a hole after the end of the log, which openraft forbids because it
    /// only looks at the last log id to judge a log.
    #[error("append starts at index {first} but the log ends at index {last}: that leaves a hole")]
    Hole {
        /// First index of the rejected batch.
        first: u64,
        /// Last index of the log (present or purged).
        last: u64,
    },

    /// The entries of one `append` call do not have consecutive indexes.
    #[error("entries of one append are not consecutive: expected index {expected}, found {found}")]
    NotConsecutive {
        /// The index that should have come next.
        expected: u64,
        /// The index that came.
        found: u64,
    },

    /// A single entry is larger than a record may be.
    #[error("entry {index} is {len} bytes, more than the {max}-byte record limit")]
    TooLarge {
        /// Log index of the entry.
        index: u64,
        /// Serialized length.
        len: usize,
        /// The limit.
        max: usize,
    },

    /// An earlier write failed; the store stops accepting writes because after a failed fsync
    /// the kernel may already have dropped the dirty pages, so nothing written since is
    /// trustworthy until the process restarts and recovers from disk.
    #[error("the log store failed earlier and no longer accepts writes")]
    Failed,

    /// A blocking I/O task panicked or was cancelled, or a lock was poisoned by a panic.
    #[error("log store worker failed: {0}")]
    Worker(String),
}

/// The kinds of damage [`LogError::Corrupt`] reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Corruption {
    /// A record's CRC-32C does not match, and it is not the torn end of the last segment.
    BadChecksum,
    /// A record is cut short, and it is not at the end of the last segment.
    Truncated,
    /// A record carries a different log index than its position says.
    IndexGap {
        /// The index its position implies.
        expected: u64,
        /// The index it carries.
        found: u64,
    },
    /// A segment header is unreadable or does not match the file name.
    BadHeader,
    /// A segment other than the last holds no records.
    EmptySegment,
    /// A segment's predecessor is not the one it was written after: a segment file is missing
    /// or was cut.
    MissingSegment {
        /// Last index the segment header says precedes it.
        expected_prev: Option<u64>,
        /// Last index actually found before it.
        found_prev: Option<u64>,
    },
    /// The log ends before the durably recorded commit index: its tail was lost.
    MissingTail {
        /// The last index present.
        last: Option<u64>,
        /// The committed index recorded in the `committed` file.
        committed: u64,
    },
    /// The `vote` or `purged` file fails its checksum.
    BadMetadata,
}

impl fmt::Display for Corruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadChecksum => f.write_str("record checksum mismatch"),
            Self::Truncated => f.write_str("record cut short before the end of the log"),
            Self::IndexGap { expected, found } => {
                write!(
                    f,
                    "gap in log indexes: expected index {expected}, found {found}"
                )
            }
            Self::BadHeader => f.write_str("bad segment header"),
            Self::EmptySegment => f.write_str("segment holds no records but is not the last"),
            Self::MissingSegment {
                expected_prev,
                found_prev,
            } => write!(
                f,
                "missing segment: header says the previous segment ends at {} but it ends at {}",
                show(*expected_prev),
                show(*found_prev)
            ),
            Self::MissingTail { last, committed } => write!(
                f,
                "log ends at index {} but index {committed} was recorded as committed",
                show(*last)
            ),
            Self::BadMetadata => f.write_str("metadata file checksum mismatch"),
        }
    }
}

fn show(index: Option<u64>) -> String {
    index.map_or_else(|| "<none>".to_owned(), |i| i.to_string())
}

/// Attaches a path and an operation to an `io::Error`.
pub(crate) fn io_err(
    path: impl Into<PathBuf>,
    op: &'static str,
) -> impl FnOnce(io::Error) -> LogError {
    let path = path.into();
    move |source| LogError::Io { path, op, source }
}

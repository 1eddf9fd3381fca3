//! One append-only segment file: header, record offsets, recovery scan.
//!
//! ```text
//!  0          8             16            24         28      32
//!  +----------+-------------+-------------+----------+-------+---------+---------+--
//!  |  magic   | first_index |  prev_last  | reserved |  crc  | record  | record  | ..
//!  +----------+-------------+-------------+----------+-------+---------+---------+--
//!  magic       b"VGRAFTL1"
//!  first_index u64 LE  index of the first record; also the file name, zero-padded
//!  prev_last   u64 LE  last index the log held when this segment was started
//!                      (u64::MAX = none); recovery checks it against the predecessor,
//!                      which is how a missing segment file is noticed
//!  crc         u32 LE  CRC-32C of bytes 0..28
//! ```

use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::crc::crc32c;
use super::error::{Corruption, LogError, io_err};
use super::record::{self, Parsed};

/// Bytes of the segment header.
pub(crate) const HEADER_LEN: usize = 32;

const MAGIC: [u8; 8] = *b"VGRAFTL1";
const NO_PREV: u64 = u64::MAX;
const SUFFIX: &str = ".seg";

/// The fixed header at the start of every segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) first_index: u64,
    pub(crate) prev_last: Option<u64>,
}

impl Header {
    pub(crate) fn encode(self) -> [u8; HEADER_LEN] {
        let mut buf = [0u8; HEADER_LEN];
        buf[0..8].copy_from_slice(&MAGIC);
        buf[8..16].copy_from_slice(&self.first_index.to_le_bytes());
        buf[16..24].copy_from_slice(&self.prev_last.unwrap_or(NO_PREV).to_le_bytes());
        let crc = crc32c(&buf[..28]);
        buf[28..32].copy_from_slice(&crc.to_le_bytes());
        buf
    }

    pub(crate) fn decode(buf: &[u8]) -> Option<Self> {
        let buf = buf.get(..HEADER_LEN)?;
        let u64_at = |at: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            u64::from_le_bytes(b)
        };
        let crc = u32::from_le_bytes([buf[28], buf[29], buf[30], buf[31]]);
        if buf[0..8] != MAGIC || crc32c(&buf[..28]) != crc {
            return None;
        }
        let prev = u64_at(16);
        Some(Self {
            first_index: u64_at(8),
            prev_last: (prev != NO_PREV).then_some(prev),
        })
    }
}

/// File name of the segment starting at `first_index`; zero-padded so names sort like indexes.
pub(crate) fn file_name(first_index: u64) -> String {
    format!("{first_index:020}{SUFFIX}")
}

/// The first index encoded in a segment file name, or `None` for other files.
pub(crate) fn parse_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(SUFFIX)?;
    if digits.len() != 20 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// An open segment and the offsets of its records.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) header: Header,
    /// Shared with readers, which use positioned reads so no cursor is shared.
    pub(crate) file: Arc<File>,
    /// Start offset of each record; record `i` holds index `first_index + i`. Eight bytes per
    /// entry is the whole in-memory cost of the log: payloads stay on disk (in the page cache).
    pub(crate) offsets: Vec<u64>,
    /// End of the last durable record; appends go here.
    pub(crate) end: u64,
    /// Length of the file: records, then zeros written ahead of the appends (see
    /// [`Segments::prepare_append`](super::segments::Segments::prepare_append)).
    pub(crate) filled: u64,
}

/// How recovery left a segment.
#[derive(Debug)]
pub(crate) enum Recovered {
    /// The segment is usable (its torn tail, if any, was cut off).
    Segment(Segment),
    /// The last segment held nothing durable (a torn header or no whole record) and was removed.
    Removed,
}

impl Segment {
    /// Creates a new segment file holding only its header. The caller fsyncs the file together
    /// with its first records and then the directory.
    pub(crate) fn create(dir: &Path, header: Header) -> Result<Self, LogError> {
        let path = dir.join(file_name(header.first_index));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path, "create segment"))?;
        file.write_all_at(&header.encode(), 0)
            .map_err(io_err(&path, "write segment header"))?;
        Ok(Self {
            path,
            header,
            file: Arc::new(file),
            offsets: Vec::new(),
            end: HEADER_LEN as u64,
            filled: HEADER_LEN as u64,
        })
    }

    /// Index of the last record, if any.
    pub(crate) fn last_index(&self) -> Option<u64> {
        let n = self.offsets.len() as u64;
        (n > 0).then(|| self.header.first_index + n - 1)
    }

    /// Byte range of the records `[from, to)` (positions inside this segment). Callers only
    /// pass `from < to <= offsets.len()`, which keeps the index in bounds.
    pub(crate) fn span(&self, from: usize, to: usize) -> (u64, u64) {
        let end = self.offsets.get(to).copied().unwrap_or(self.end);
        (self.offsets[from], end)
    }

    /// Opens and scans an existing segment.
    ///
    /// Damage at the end of the last segment is what a crash during an append leaves behind
    /// (the batch was never acknowledged), so it is cut off with a warning. The same damage
    /// anywhere else cannot come from a crash and is refused.
    pub(crate) fn recover(
        path: PathBuf,
        name_index: u64,
        is_last: bool,
    ) -> Result<Recovered, LogError> {
        let bytes = fs::read(&path).map_err(io_err(&path, "read segment"))?;
        let corrupt = |offset: usize, kind| LogError::Corrupt {
            path: path.clone(),
            offset: offset as u64,
            kind,
        };
        let header = match Header::decode(&bytes) {
            Some(h) if h.first_index == name_index => h,
            None if is_last && (bytes.len() <= HEADER_LEN || all_zero(&bytes)) => {
                tracing::warn!(
                    path = %path.display(),
                    len = bytes.len(),
                    "removing segment with a torn header left by a crash"
                );
                fs::remove_file(&path).map_err(io_err(&path, "remove torn segment"))?;
                return Ok(Recovered::Removed);
            }
            _ => return Err(corrupt(0, Corruption::BadHeader)),
        };

        let mut offsets = Vec::new();
        let mut at = HEADER_LEN;
        let mut torn = false;
        while at < bytes.len() {
            let expected = header.first_index + offsets.len() as u64;
            let (damaged_end, kind) = match record::parse(&bytes, at) {
                Parsed::Record { index, end, .. } => {
                    if index != expected {
                        return Err(corrupt(
                            at,
                            Corruption::IndexGap {
                                expected,
                                found: index,
                            },
                        ));
                    }
                    offsets.push(at as u64);
                    at = end;
                    continue;
                }
                Parsed::Incomplete => (bytes.len(), Corruption::Truncated),
                Parsed::BadChecksum { end } => (end, Corruption::BadChecksum),
            };
            // Zeros from here on are space preallocated for appends, in any segment: data
            // lost from the end of an older segment is caught by the chain check instead.
            if all_zero(&bytes[at..]) {
                break;
            }
            let torn_here =
                is_last && (damaged_end == bytes.len() || has_zero_sector(&bytes, at, damaged_end));
            if !torn_here {
                return Err(corrupt(at, kind));
            }
            torn = true;
            break;
        }

        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path, "open segment"))?;
        if torn {
            tracing::warn!(
                path = %path.display(),
                offset = at,
                dropped_bytes = bytes.len() - at,
                "truncating torn write at the end of the Raft log"
            );
            file.set_len(at as u64)
                .map_err(io_err(&path, "truncate torn tail"))?;
            file.sync_all().map_err(io_err(&path, "fsync"))?;
        }
        if offsets.is_empty() {
            if is_last {
                tracing::warn!(path = %path.display(), "removing last segment: no complete record");
                drop(file);
                fs::remove_file(&path).map_err(io_err(&path, "remove empty segment"))?;
                return Ok(Recovered::Removed);
            }
            return Err(corrupt(HEADER_LEN, Corruption::EmptySegment));
        }
        let filled = if torn { at } else { bytes.len() } as u64;
        Ok(Recovered::Segment(Self {
            path,
            header,
            file: Arc::new(file),
            offsets,
            end: at as u64,
            filled,
        }))
    }

    /// Drops the records from position `keep` on, durably.
    pub(crate) fn cut(&mut self, keep: usize) -> Result<(), LogError> {
        let at = self.offsets.get(keep).copied().unwrap_or(self.end);
        self.file
            .set_len(at)
            .map_err(io_err(&self.path, "truncate segment"))?;
        self.file.sync_data().map_err(io_err(&self.path, "fsync"))?;
        self.offsets.truncate(keep);
        self.end = at;
        self.filled = at;
        Ok(())
    }
}

fn all_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Writes zeros over `range` of `file` (the space [`Segments::prepare_append`] preallocates).
///
/// [`Segments::prepare_append`]: super::segments::Segments::prepare_append
pub(crate) fn write_zeros(file: &File, range: Range<u64>) -> io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = range.start;
    while at < range.end {
        let n = (range.end - at).min(ZEROS.len() as u64) as usize;
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

/// Sector size assumed for torn-write detection: a disk writes a sector whole or not at all.
const SECTOR: usize = 512;

/// Whether a sector overlapping the damaged record `bytes[start..end]` was never written: all
/// zeros from `start` (or the sector's start, if later) to the sector's end (or the end of the
/// file). A batch written into preallocated space and torn by a crash leaves such a sector
/// behind, since a disk writes a sector whole or not at all; bit rot in a written record does
/// not zero a sector. The part of the sector past the record counts too: it holds the next
/// records of the same write or more zeros, so a record that merely ends in zero bytes just
/// past a boundary is not mistaken for a torn one (unless it is the very last record).
fn has_zero_sector(bytes: &[u8], start: usize, end: usize) -> bool {
    let end = end.min(bytes.len());
    let mut sector = start / SECTOR * SECTOR;
    while sector < end {
        let from = sector.max(start);
        let to = (sector + SECTOR).min(bytes.len());
        if all_zero(&bytes[from..to]) {
            return true;
        }
        sector += SECTOR;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        for prev_last in [None, Some(0), Some(41)] {
            let h = Header {
                first_index: 42,
                prev_last,
            };
            assert_eq!(Header::decode(&h.encode()), Some(h));
        }
    }

    #[test]
    fn damaged_header_is_rejected() {
        let mut buf = Header {
            first_index: 9,
            prev_last: None,
        }
        .encode();
        buf[10] ^= 0x40;
        assert_eq!(Header::decode(&buf), None);
        assert_eq!(Header::decode(&buf[..HEADER_LEN - 1]), None);
    }

    #[test]
    fn file_names_sort_by_index_and_parse_back() {
        assert_eq!(file_name(7), "00000000000000000007.seg");
        assert_eq!(
            parse_file_name(&file_name(u64::MAX - 1)),
            Some(u64::MAX - 1)
        );
        assert!(file_name(9) < file_name(10));
        assert_eq!(parse_file_name("vote"), None);
        assert_eq!(parse_file_name("0000000000000000000x.seg"), None);
        assert_eq!(parse_file_name("7.seg"), None);
    }

    #[test]
    fn only_an_unwritten_sector_marks_a_torn_record() {
        let mut file = vec![7u8; 4 * SECTOR];
        // A record over bytes 100..1300 with its middle sector never written.
        file[SECTOR..2 * SECTOR].fill(0);
        assert!(has_zero_sector(&file, 100, 1300));
        // Zeros ending the record just past a boundary, followed by the next record's bytes:
        // payload, not a torn write.
        let mut file = vec![7u8; 4 * SECTOR];
        file[2 * SECTOR..2 * SECTOR + 4].fill(0);
        assert!(!has_zero_sector(&file, 100, 2 * SECTOR + 4));
        // The same record as the last one, followed by preallocated zeros, cannot be told
        // from a torn write.
        file[2 * SECTOR..].fill(0);
        assert!(has_zero_sector(&file, 100, 2 * SECTOR + 4));
        // A flipped byte leaves no zero sector.
        let mut file = vec![7u8; 4 * SECTOR];
        file[700] ^= 0x5a;
        assert!(!has_zero_sector(&file, 100, 1300));
        // The sector holding the record's start counts from the record's start only: the
        // earlier records in it were written before.
        let mut file = vec![7u8; 2 * SECTOR];
        file[300..].fill(0);
        assert!(has_zero_sector(&file, 300, 400));
        assert!(!has_zero_sector(&file, 200, 400));
    }
}

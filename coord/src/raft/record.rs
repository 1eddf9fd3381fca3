//! Record framing inside a segment: `len | crc | index | payload`.
//!
//! ```text
//!  0       4       8               16            16+len
//!  +-------+-------+---------------+---------------+
//!  |  len  |  crc  |     index     |    payload    |
//!  +-------+-------+---------------+---------------+
//!  len   u32 LE  payload length in bytes
//!  crc   u32 LE  CRC-32C of len, index and payload (everything but itself)
//!  index u64 LE  Raft log index of the entry, checked against the record's position
//! ```

use std::ops::Range;

use super::crc::Crc32c;

/// Bytes before the payload.
pub(crate) const RECORD_HEADER_LEN: usize = 16;

/// Largest payload a record may carry. Znode data is capped at 1 MiB and a `multi` holds a
/// bounded number of operations, so anything far beyond is a caller bug, not data.
pub(crate) const MAX_PAYLOAD: usize = 64 << 20;

/// What [`parse`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Parsed {
    /// A whole record with a good checksum.
    Record {
        index: u64,
        payload: Range<usize>,
        end: usize,
    },
    /// The buffer ends before the record does.
    Incomplete,
    /// The record is complete but its checksum is wrong; `end` is where it would end.
    BadChecksum { end: usize },
}

/// Reserves a record header, lets `write_payload` append the payload after it, then fills in
/// length and checksum, so the payload is serialized straight into the batch buffer.
pub(crate) fn encode<E>(
    buf: &mut Vec<u8>,
    index: u64,
    write_payload: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Result<(), usize>, E> {
    let start = buf.len();
    buf.resize(start + RECORD_HEADER_LEN, 0);
    write_payload(buf)?;
    let len = buf.len() - start - RECORD_HEADER_LEN;
    if len > MAX_PAYLOAD {
        buf.truncate(start);
        return Ok(Err(len));
    }
    let len_bytes = (len as u32).to_le_bytes();
    let index_bytes = index.to_le_bytes();
    let crc = Crc32c::new()
        .update(&len_bytes)
        .update(&index_bytes)
        .update(&buf[start + RECORD_HEADER_LEN..])
        .finish();
    buf[start..start + 4].copy_from_slice(&len_bytes);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
    buf[start + 8..start + 16].copy_from_slice(&index_bytes);
    Ok(Ok(()))
}

/// Parses the record starting at `at` in `buf`.
pub(crate) fn parse(buf: &[u8], at: usize) -> Parsed {
    let Some(header) = buf.get(at..at + RECORD_HEADER_LEN) else {
        return Parsed::Incomplete;
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let mut index_bytes = [0u8; 8];
    index_bytes.copy_from_slice(&header[8..16]);
    let payload_start = at + RECORD_HEADER_LEN;
    // A length beyond the limit cannot have been written by us; treat it like a record that
    // runs off the end so the caller's tail rules decide whether it is a torn write.
    if len > MAX_PAYLOAD || buf.len() - payload_start < len {
        return Parsed::Incomplete;
    }
    let end = payload_start + len;
    let payload = &buf[payload_start..end];
    let actual = Crc32c::new()
        .update(&header[0..4])
        .update(&index_bytes)
        .update(payload)
        .finish();
    if actual != crc {
        return Parsed::BadChecksum { end };
    }
    Parsed::Record {
        index: u64::from_le_bytes(index_bytes),
        payload: payload_start..end,
        end,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use super::*;

    fn record(index: u64, payload: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        let res = encode::<Infallible>(&mut buf, index, |b| {
            b.extend_from_slice(payload);
            Ok(())
        });
        assert_eq!(res, Ok(Ok(())));
        buf
    }

    #[test]
    fn round_trip_and_layout() {
        let buf = record(7, b"hello");
        assert_eq!(buf.len(), RECORD_HEADER_LEN + 5);
        assert_eq!(&buf[0..4], &5u32.to_le_bytes());
        assert_eq!(&buf[8..16], &7u64.to_le_bytes());
        assert_eq!(
            parse(&buf, 0),
            Parsed::Record {
                index: 7,
                payload: 16..21,
                end: 21
            }
        );
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let buf = record(42, b"payload bytes");
        for byte in 0..buf.len() {
            for bit in 0..8 {
                let mut damaged = buf.clone();
                damaged[byte] ^= 1 << bit;
                assert!(
                    !matches!(parse(&damaged, 0), Parsed::Record { .. }),
                    "flip of byte {byte} bit {bit} went unnoticed"
                );
            }
        }
    }

    #[test]
    fn short_buffers_are_incomplete() {
        let buf = record(1, b"abc");
        for cut in 0..buf.len() {
            assert_eq!(parse(&buf[..cut], 0), Parsed::Incomplete, "cut at {cut}");
        }
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut buf = Vec::new();
        let res = encode::<Infallible>(&mut buf, 1, |b| {
            b.resize(b.len() + MAX_PAYLOAD + 1, 0);
            Ok(())
        });
        assert_eq!(res, Ok(Err(MAX_PAYLOAD + 1)));
        assert!(buf.is_empty());
    }
}

//! Netlink attributes (`struct nlattr`): a writer that appends TLVs to a buffer and a reader that
//! walks them without trusting the lengths it is given.
//!
//! ```text
//!  0               2               4
//! +---------------+---------------+------------------------+---------+
//! | nla_len (u16) | nla_type (u16)| payload (nla_len - 4)  | pad → 4 |
//! +---------------+---------------+------------------------+---------+
//! ```
//!
//! Lengths and types are in host byte order; payload byte order is per attribute (ports are
//! big-endian, most integers host order).

use super::DecodeError;
use super::consts::{NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK};

/// Rounds up to the 4-byte netlink alignment.
pub(crate) const fn align(len: usize) -> usize {
    (len + 3) & !3
}

/// Appends attributes to a message buffer.
pub(crate) struct AttrWriter<'a> {
    buf: &'a mut Vec<u8>,
}

impl<'a> AttrWriter<'a> {
    pub(crate) fn new(buf: &'a mut Vec<u8>) -> Self {
        Self { buf }
    }

    /// One attribute with a raw payload, padded.
    pub(crate) fn bytes(&mut self, ty: u16, payload: &[u8]) {
        // Payloads here are at most a few dozen bytes; u16 overflow would be a bug in this crate.
        let len = (NLA_HDRLEN + payload.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
    }

    pub(crate) fn u8(&mut self, ty: u16, v: u8) {
        self.bytes(ty, &[v]);
    }

    pub(crate) fn u16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_ne_bytes());
    }

    pub(crate) fn be16(&mut self, ty: u16, v: u16) {
        self.bytes(ty, &v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_ne_bytes());
    }

    /// A NUL-terminated string (`NLA_NUL_STRING`).
    pub(crate) fn string(&mut self, ty: u16, s: &str) {
        let mut payload = Vec::with_capacity(s.len() + 1);
        payload.extend_from_slice(s.as_bytes());
        payload.push(0);
        self.bytes(ty, &payload);
    }

    /// A nested attribute whose children `fill` writes. Sets `NLA_F_NESTED`, which the kernel's
    /// IPVS parser (liberal validation) accepts and strict parsers require.
    pub(crate) fn nested(&mut self, ty: u16, fill: impl FnOnce(&mut AttrWriter<'_>)) {
        let start = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        fill(&mut AttrWriter::new(self.buf));
        let len = (self.buf.len() - start) as u16;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
    }

    fn pad(&mut self) {
        let padded = align(self.buf.len());
        self.buf.resize(padded, 0);
    }
}

/// One attribute read from a buffer: its type (flag bits removed) and payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attr<'a> {
    pub(crate) ty: u16,
    pub(crate) payload: &'a [u8],
}

impl<'a> Attr<'a> {
    /// The children of a nested attribute.
    pub(crate) fn nested(&self) -> Attrs<'a> {
        Attrs::new(self.payload)
    }

    pub(crate) fn u8(&self) -> Result<u8, DecodeError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u16(&self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_ne_bytes)
    }

    pub(crate) fn be16(&self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_be_bytes)
    }

    pub(crate) fn u32(&self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_ne_bytes)
    }

    pub(crate) fn u64(&self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_ne_bytes)
    }

    /// A string, with the trailing NUL (and anything after it) dropped.
    pub(crate) fn string(&self) -> Result<String, DecodeError> {
        let end = self
            .payload
            .iter()
            .position(|&b| b == 0)
            .unwrap_or(self.payload.len());
        std::str::from_utf8(&self.payload[..end])
            .map(str::to_owned)
            .map_err(|_| DecodeError::BadString { attr: self.ty })
    }

    /// The first `N` bytes; the kernel may send a longer payload (e.g. 16-byte addresses), but
    /// never a shorter one for a fixed-size type.
    pub(crate) fn array<const N: usize>(&self) -> Result<[u8; N], DecodeError> {
        self.payload
            .get(..N)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::BadLength {
                attr: self.ty,
                len: self.payload.len(),
            })
    }
}

/// An iterator over a run of attributes; yields an error (then stops) on a malformed length.
#[derive(Debug, Clone)]
pub(crate) struct Attrs<'a> {
    rest: &'a [u8],
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Self { rest: buf }
    }
}

impl<'a> Iterator for Attrs<'a> {
    type Item = Result<Attr<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let header: Option<[u8; 4]> = self.rest.get(..NLA_HDRLEN).and_then(|h| h.try_into().ok());
        let Some(header) = header else {
            self.rest = &[];
            return Some(Err(DecodeError::Truncated {
                what: "attribute header",
            }));
        };
        let len = usize::from(u16::from_ne_bytes([header[0], header[1]]));
        let ty = u16::from_ne_bytes([header[2], header[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(DecodeError::BadLength { attr: ty, len }));
        }
        let payload = &self.rest[NLA_HDRLEN..len];
        // The last attribute may omit its padding.
        self.rest = self.rest.get(align(len)..).unwrap_or(&[]);
        Some(Ok(Attr { ty, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writer_pads_and_nests() {
        let mut buf = Vec::new();
        let mut w = AttrWriter::new(&mut buf);
        w.u8(1, 0xaa);
        w.nested(2, |w| {
            w.be16(3, 0x1234);
            w.string(4, "rr");
        });
        let mut expected = vec![5, 0, 1, 0, 0xaa, 0, 0, 0];
        expected.extend_from_slice(&[20, 0, 2, 0x80]);
        expected.extend_from_slice(&[6, 0, 3, 0, 0x12, 0x34, 0, 0]);
        expected.extend_from_slice(&[7, 0, 4, 0, b'r', b'r', 0, 0]);
        #[cfg(target_endian = "little")]
        assert_eq!(buf, expected);

        let attrs: Vec<_> = Attrs::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(attrs.len(), 2);
        assert_eq!(attrs[0].u8().unwrap(), 0xaa);
        assert_eq!(attrs[1].ty, 2, "NLA_F_NESTED is masked off");
        let inner: Vec<_> = attrs[1].nested().collect::<Result<_, _>>().unwrap();
        assert_eq!(inner[0].be16().unwrap(), 0x1234);
        assert_eq!(inner[1].string().unwrap(), "rr");
    }

    #[test]
    fn reader_rejects_bad_lengths_without_panicking() {
        // nla_len 3 < header, nla_len beyond buffer, short header, short fixed-size payload.
        for buf in [&[3u8, 0, 1, 0][..], &[9, 0, 1, 0, 1, 2, 3, 4], &[4, 0]] {
            let mut it = Attrs::new(buf);
            assert!(matches!(it.next(), Some(Err(_))), "{buf:?}");
            assert!(it.next().is_none(), "stops after an error");
        }
        let short = Attr {
            ty: 9,
            payload: &[1, 2],
        };
        assert_eq!(short.u32(), Err(DecodeError::BadLength { attr: 9, len: 2 }));
        let unpadded = [5u8, 0, 1, 0, 7];
        let a: Vec<_> = Attrs::new(&unpadded).collect::<Result<_, _>>().unwrap();
        assert_eq!(a[0].u8().unwrap(), 7);
    }
}

//! The Internet checksum (RFC 1071) and the pseudo-headers VRRP sums over.
//!
//! VRRPv2 sums the VRRP message alone (RFC 3768 §5.3.8). VRRPv3 adds the IPv6 pseudo-header of
//! RFC 8200 §8.1 (RFC 5798 §5.2.8). Over IPv4, RFC 5798 says the IPv4 pseudo-header is included
//! too; RFC 9568 §5.2.8 drops it. keepalived and FRR include it, hence
//! [`ChecksumMode`](super::ChecksumMode).

use std::net::IpAddr;

/// IANA protocol number of VRRP, the "next header" in both pseudo-headers.
const PROTO_VRRP: u8 = 112;

/// Running ones' complement sum over a byte stream that may be fed in pieces.
///
/// Pieces are summed as if they were one concatenated buffer, so an odd-length piece does not
/// shift the 16-bit alignment of the next one.
#[derive(Debug, Default, Clone)]
pub(crate) struct Checksum {
    sum: u64,
    /// High byte of a 16-bit word whose low byte has not arrived yet.
    pending: Option<u8>,
}

impl Checksum {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn add(&mut self, mut bytes: &[u8]) -> &mut Self {
        if let Some(hi) = self.pending.take() {
            let Some((&lo, rest)) = bytes.split_first() else {
                self.pending = Some(hi);
                return self;
            };
            self.sum += u64::from(u16::from_be_bytes([hi, lo]));
            bytes = rest;
        }
        let mut words = bytes.chunks_exact(2);
        for w in &mut words {
            self.sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        self.pending = words.remainder().first().copied();
        self
    }

    /// The ones' complement sum folded to 16 bits (not yet complemented).
    fn folded(&self) -> u16 {
        let mut sum = self.sum;
        if let Some(hi) = self.pending {
            // RFC 1071: an odd trailing byte is padded with a zero low byte.
            sum += u64::from(u16::from_be_bytes([hi, 0]));
        }
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        sum as u16
    }

    /// The value to write into a checksum field that was zero while summing.
    pub(crate) fn finish(&self) -> u16 {
        !self.folded()
    }

    /// True when the data summed *including* its checksum field verifies.
    ///
    /// Summing the field itself (rather than comparing against a recomputed value) accepts both
    /// encodings of ones' complement zero, 0x0000 and 0xffff, as RFC 1071 receivers must.
    pub(crate) fn verifies(&self) -> bool {
        self.folded() == 0xffff
    }
}

/// Adds the pseudo-header for a VRRP message of `len` bytes between `src` and `dst`.
///
/// Mixed families cannot reach here: the codec rejects them before summing.
pub(crate) fn add_pseudo_header(ck: &mut Checksum, src: IpAddr, dst: IpAddr, len: usize) {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            // RFC 768-style: src, dst, zero, protocol, 16-bit length.
            ck.add(&s.octets()).add(&d.octets()).add(&[0, PROTO_VRRP]);
            ck.add(&(len as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            // RFC 8200 §8.1: src, dst, 32-bit length, 24 zero bits, next header.
            ck.add(&s.octets()).add(&d.octets());
            ck.add(&(len as u32).to_be_bytes())
                .add(&[0, 0, 0, PROTO_VRRP]);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        let mut ck = Checksum::new();
        ck.add(&data);
        assert_eq!(ck.folded(), 0xddf2);
        assert_eq!(ck.finish(), !0xddf2);
    }

    #[test]
    fn split_at_odd_boundaries_matches_contiguous() {
        let data: Vec<u8> = (0u8..=40).map(|b| b.wrapping_mul(37)).collect();
        let mut whole = Checksum::new();
        whole.add(&data);
        for cut in 0..data.len() {
            let (a, b) = data.split_at(cut);
            let mut parts = Checksum::new();
            parts.add(a).add(&[]).add(b);
            assert_eq!(parts.finish(), whole.finish(), "cut at {cut}");
        }
    }

    #[test]
    fn odd_trailing_byte_is_padded_with_zero() {
        let mut odd = Checksum::new();
        odd.add(&[0x12, 0x34, 0x56]);
        let mut even = Checksum::new();
        even.add(&[0x12, 0x34, 0x56, 0x00]);
        assert_eq!(odd.finish(), even.finish());
    }

    #[test]
    fn writing_the_result_makes_the_data_verify() {
        let mut data = vec![
            0x31, 0x3a, 0x96, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x0a, 0x4d, 0, 0xc8,
        ];
        let mut ck = Checksum::new();
        ck.add(&data);
        data[6..8].copy_from_slice(&ck.finish().to_be_bytes());
        let mut check = Checksum::new();
        check.add(&data);
        assert!(check.verifies());
        data[0] ^= 1;
        let mut broken = Checksum::new();
        broken.add(&data);
        assert!(!broken.verifies());
    }
}

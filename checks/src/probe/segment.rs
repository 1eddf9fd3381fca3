//! The TCP segments of the half-open check, built and read by hand: the SYN a raw socket sends
//! and the answers (SYN-ACK or reset) it reads back, for IPv4 and IPv6. Pure functions, no I/O,
//! so that every length and checksum rule is tested without a raw socket.
//!
//! A raw IPv4 socket delivers the IP header with the segment; a raw IPv6 socket delivers the
//! segment alone and the source in the address it returns (RFC 3542 §3), hence two readers.

use std::net::{IpAddr, Ipv4Addr};

use socket2::SockFilter;

/// FIN flag.
pub const FIN: u8 = 0x01;
/// SYN flag.
pub const SYN: u8 = 0x02;
/// RST flag.
pub const RST: u8 = 0x04;
/// ACK flag.
pub const ACK: u8 = 0x10;
/// A SYN's length: the 20-byte header plus the MSS option, as every real stack sends one
/// (a SYN without options is what scanners send and what some middleboxes drop).
pub const SYN_LEN: usize = 24;
/// Bytes of an answer a socket filter keeps: the longest IPv4 header plus the TCP header up to
/// its flags. An IPv6 socket gets the segment only, so this keeps more than it needs there.
pub const SNAP_LEN: u32 = 60 + 14;
const IPPROTO_TCP: u8 = 6;

/// The SYN from `src:sport` to `dst:dport` with initial sequence number `seq`; `None` when
/// the two addresses are not of one family.
pub fn syn(src: IpAddr, sport: u16, dst: IpAddr, dport: u16, seq: u32) -> Option<[u8; SYN_LEN]> {
    let mut s = [0u8; SYN_LEN];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dport.to_be_bytes());
    s[4..8].copy_from_slice(&seq.to_be_bytes());
    // Acknowledgement number 0; data offset in 32-bit words.
    s[12] = ((SYN_LEN / 4) as u8) << 4;
    s[13] = SYN;
    s[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    // Checksum (16..18) and urgent pointer (18..20) stay zero; then MSS 1460 (1440 for IPv6
    // would be exact, but the server only uses it as a ceiling and sends nothing anyway).
    s[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let sum = checksum(src, dst, &s)?;
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    Some(s)
}

/// The TCP checksum of `segment` between `src` and `dst` over the pseudo-header (RFC 9293
/// §3.1 for IPv4, RFC 8200 §8.1 for IPv6): with the checksum field zero, the value to put
/// there; with a correct one in place, zero. `None` for mixed families.
pub fn checksum(src: IpAddr, dst: IpAddr, segment: &[u8]) -> Option<u16> {
    let len = segment.len() as u32;
    let acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut pseudo = [0u8; 12];
            pseudo[0..4].copy_from_slice(&s.octets());
            pseudo[4..8].copy_from_slice(&d.octets());
            pseudo[9] = IPPROTO_TCP;
            pseudo[10..12].copy_from_slice(&(len as u16).to_be_bytes());
            sum_words(0, &pseudo)
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut pseudo = [0u8; 40];
            pseudo[0..16].copy_from_slice(&s.octets());
            pseudo[16..32].copy_from_slice(&d.octets());
            pseudo[32..36].copy_from_slice(&len.to_be_bytes());
            pseudo[39] = IPPROTO_TCP;
            sum_words(0, &pseudo)
        }
        _ => return None,
    };
    Some(finish(sum_words(acc, segment)))
}

/// The ones' complement sum of `bytes` as 16-bit big-endian words (RFC 1071), added to `acc`.
fn sum_words(mut acc: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries back in and complements: the Internet checksum of a sum.
fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// A server's answer to a SYN, as far as the probe cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The server's port.
    pub from_port: u16,
    /// Our port.
    pub to_port: u16,
    /// Our sequence number plus one, if this answers our SYN.
    pub ack: u32,
    /// SYN-ACK (something listens) rather than a reset (nothing does).
    pub accepting: bool,
}

/// Reads an IPv4 packet as a raw IPv4 socket delivers it: the sender and the answer, or `None`
/// for anything but a SYN-ACK or a reset that acknowledges something. Never trusts a length it
/// has not checked.
pub fn parse_v4(packet: &[u8]) -> Option<(Ipv4Addr, Answer)> {
    let (&first, _) = packet.split_first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || *packet.get(9)? != IPPROTO_TCP {
        return None;
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(packet.get(12..16)?).ok()?);
    Some((src, parse_tcp(packet.get(header_len..)?)?))
}

/// Reads a TCP segment from its first byte (as a raw IPv6 socket delivers it).
pub fn parse_tcp(segment: &[u8]) -> Option<Answer> {
    let tcp = segment.get(..14)?;
    let accepting = match tcp[13] & (FIN | SYN | RST | ACK) {
        f if f == SYN | ACK => true,
        f if f == RST | ACK => false,
        _ => return None,
    };
    Some(Answer {
        from_port: u16::from_be_bytes([tcp[0], tcp[1]]),
        to_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        accepting,
    })
}

// Classic BPF opcodes, from linux/filter.h.
/// `BPF_LDX | BPF_B | BPF_MSH`: X = 4 * (P[k] & 0xf).
const LDX_B_MSH: u16 = 0xb1;
/// `BPF_LD | BPF_H | BPF_IND`: A = P[X + k], 16 bits.
const LD_H_IND: u16 = 0x48;
/// `BPF_LD | BPF_H | BPF_ABS`: A = P[k], 16 bits.
const LD_H_ABS: u16 = 0x28;
/// `BPF_JMP | BPF_JEQ | BPF_K`.
const JEQ_K: u16 = 0x15;
/// `BPF_RET | BPF_K`.
const RET_K: u16 = 0x06;

/// A socket filter for a raw IPv4 socket (packets start at the IP header): keep TCP segments to
/// `port`, cut to [`SNAP_LEN`] bytes; drop the rest. Without it the socket would be handed a
/// copy of every TCP packet the host receives.
pub fn port_filter_v4(port: u16) -> [SockFilter; 5] {
    [
        SockFilter::new(LDX_B_MSH, 0, 0, 0), // X = IP header length
        SockFilter::new(LD_H_IND, 0, 0, 2),  // A = TCP destination port
        SockFilter::new(JEQ_K, 0, 1, u32::from(port)),
        SockFilter::new(RET_K, 0, 0, SNAP_LEN),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// [`port_filter_v4`] for a raw IPv6 socket, whose packets start at the TCP header.
pub fn port_filter_v6(port: u16) -> [SockFilter; 4] {
    [
        SockFilter::new(LD_H_ABS, 0, 0, 2), // A = TCP destination port
        SockFilter::new(JEQ_K, 0, 1, u32::from(port)),
        SockFilter::new(RET_K, 0, 0, SNAP_LEN),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

#[cfg(test)]
mod tests {
    use std::net::Ipv6Addr;

    use super::*;

    #[test]
    fn the_checksum_is_rfc_1071s() {
        // RFC 1071 §3's worked example: the sum is ddf2, the checksum its complement.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum_words(0, &bytes)), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(finish(sum_words(0, &[0xab])), !0xab00);
        assert_eq!(finish(sum_words(0, &[0xff; 16_000])), 0);
    }

    #[test]
    fn a_syn_carries_our_ports_sequence_and_a_valid_checksum() {
        let cases = [
            (
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(127, 1, 0, 7)),
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)),
            ),
            (
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V6("fd00::7".parse().expect("addr")),
                IpAddr::V6("fd00::8".parse().expect("addr")),
            ),
        ];
        for (src, dst, other) in cases {
            let s = syn(src, 40_123, dst, 20_042, 0xdead_beef).expect("one family");
            assert_eq!(u16::from_be_bytes([s[0], s[1]]), 40_123);
            assert_eq!(u16::from_be_bytes([s[2], s[3]]), 20_042);
            assert_eq!(u32::from_be_bytes([s[4], s[5], s[6], s[7]]), 0xdead_beef);
            assert_eq!(&s[8..12], &[0; 4]);
            assert_eq!(s[12] >> 4, 6, "data offset covers the MSS option");
            assert_eq!(s[13], SYN);
            assert_eq!(&s[20..24], &[2, 4, 0x05, 0xb4]);
            // Summed with its checksum in place, a correct segment gives zero...
            assert_eq!(checksum(src, dst, &s), Some(0), "{dst}");
            // ...and not between other addresses, or with a bit flipped.
            assert_ne!(checksum(other, dst, &s), Some(0));
            let mut flipped = s;
            flipped[5] ^= 0x10;
            assert_ne!(checksum(src, dst, &flipped), Some(0));
        }
        let v6 = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(syn(IpAddr::V4(Ipv4Addr::LOCALHOST), 1, v6, 1, 1), None);
    }

    /// A TCP header from `from_port` to `to_port` acknowledging `ack` with `flags`.
    fn tcp(from_port: u16, to_port: u16, ack: u32, flags: u8) -> [u8; 20] {
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&from_port.to_be_bytes());
        tcp[2..4].copy_from_slice(&to_port.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        tcp
    }

    /// An IPv4 packet from `from` to 127.0.0.1 with `options` bytes of IP options.
    fn packet(from: Ipv4Addr, segment: &[u8], options: usize) -> Vec<u8> {
        let mut p = vec![0u8; 20 + options];
        p[0] = 0x40 | ((20 + options) / 4) as u8;
        p[9] = IPPROTO_TCP;
        p[12..16].copy_from_slice(&from.octets());
        p[16..20].copy_from_slice(&[127, 0, 0, 1]);
        p.extend_from_slice(segment);
        p
    }

    #[test]
    fn syn_acks_and_resets_are_told_apart_and_nothing_else_is_an_answer() {
        let from = Ipv4Addr::new(127, 1, 0, 3);
        let up = Answer {
            from_port: 20_001,
            to_port: 40_000,
            ack: 7,
            accepting: true,
        };
        for options in [0, 4, 40] {
            let p = packet(from, &tcp(20_001, 40_000, 7, SYN | ACK), options);
            assert_eq!(parse_v4(&p), Some((from, up)));
            let p = packet(from, &tcp(20_001, 40_000, 7, RST | ACK), options);
            let down = parse_v4(&p).expect("a reset").1;
            assert!(!down.accepting);
        }
        assert_eq!(parse_tcp(&tcp(20_001, 40_000, 7, SYN | ACK)), Some(up));
        // ECN bits on a SYN-ACK do not matter.
        assert!(parse_tcp(&tcp(1, 1, 1, SYN | ACK | 0x40)).is_some_and(|r| r.accepting));
        for flags in [ACK, SYN, RST, FIN | ACK, SYN | RST | ACK, SYN | ACK | FIN] {
            assert_eq!(parse_tcp(&tcp(1, 1, 1, flags)), None, "{flags:#x}");
        }
        let mut v6 = packet(from, &tcp(1, 1, 1, SYN | ACK), 0);
        v6[0] = 0x65;
        assert_eq!(parse_v4(&v6), None);
        let mut udp = packet(from, &tcp(1, 1, 1, SYN | ACK), 0);
        udp[9] = 17;
        assert_eq!(parse_v4(&udp), None);
    }

    #[test]
    fn truncated_or_lying_packets_are_not_answers_and_do_not_panic() {
        let from = Ipv4Addr::new(127, 1, 0, 3);
        let whole = packet(from, &tcp(20_001, 40_000, 7, SYN | ACK), 8);
        for n in 0..whole.len() {
            let expected = (n >= 28 + 14).then_some(());
            assert_eq!(parse_v4(&whole[..n]).map(|_| ()), expected, "{n} bytes");
        }
        // A header length beyond the packet, and one below the minimum.
        for ihl in [0x4f, 0x44] {
            let mut p = whole.clone();
            p[0] = ihl;
            assert_eq!(parse_v4(&p), None);
        }
        let segment = tcp(20_001, 40_000, 7, SYN | ACK);
        for n in 0..14 {
            assert_eq!(parse_tcp(&segment[..n]), None, "{n} bytes");
        }
    }
}

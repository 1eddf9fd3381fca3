//! The IP layer around a VRRP message, for the raw-socket shell, captures and tests.
//!
//! A raw IPv4 socket for protocol 112 hands over whole datagrams, header included:
//! [`parse_ipv4`] validates that header and yields the addresses, the TTL (which RFC 5798 §7.1
//! says must be 255; the caller checks, so it can count the drop) and the VRRP message. With
//! `IP_HDRINCL` the shell builds the header itself with [`Ipv4Header::encode`]. A raw IPv6
//! socket strips the fixed header (the hop limit comes from `IPV6_HOPLIMIT` ancillary data);
//! [`parse_ipv6`] serves packet captures. [`parse_ah`] unwraps keepalived's IPsec-AH extension
//! so that its inner VRRPv2 message can be decoded; the ICV is exposed but never verified.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::packet::checksum::Checksum;

/// IANA protocol number of VRRP.
pub const PROTO_VRRP: u8 = 112;
/// IANA protocol number of the IPsec Authentication Header (RFC 4302).
pub const PROTO_AH: u8 = 51;
/// TTL / hop limit VRRP sends with and requires on receipt (RFC 5798 §5.1.1.3, §7.1).
pub const VRRP_TTL: u8 = 255;
/// Type of service keepalived sends with: DSCP CS6 (network control), not ECN-capable.
pub const VRRP_TOS: u8 = 0xc0;
/// The VRRP IPv4 multicast group (RFC 5798 §5.1.1.2).
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The VRRP IPv6 multicast group (RFC 5798 §5.1.2.2).
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);

const IPV4_MIN_HEADER: usize = 20;
const IPV6_HEADER: usize = 40;
const AH_FIXED: usize = 12;
/// More-fragments flag and fragment offset bits of the IPv4 flags/offset word.
const IPV4_FRAGMENT_BITS: u16 = 0x3fff;

/// Why an IP header (or AH header) around a VRRP message was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IpError {
    /// Fewer bytes than the header needs.
    #[error("{len} bytes is shorter than the {needed}-byte header")]
    TooShort {
        /// Bytes received.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The version nibble is not the expected 4 or 6.
    #[error("IP version {0} where {1} was expected")]
    BadVersion(u8, u8),
    /// IPv4 IHL below 5 words or beyond the datagram.
    #[error("IPv4 header length {0} words is invalid")]
    BadHeaderLength(u8),
    /// The length field disagrees with the bytes received (more is allowed: link padding).
    #[error("length field says {claimed} bytes but {received} were received")]
    BadLength {
        /// Bytes the header claims.
        claimed: usize,
        /// Bytes received.
        received: usize,
    },
    /// A fragment: VRRP messages are small and never fragmented on a sane link.
    #[error("IPv4 fragment (flags/offset {0:#06x})")]
    Fragment(u16),
    /// The IPv4 header checksum does not verify.
    #[error("bad IPv4 header checksum")]
    BadHeaderChecksum,
    /// The protocol / next header is not the one asked for.
    #[error("IP protocol {found} where {expected} was expected")]
    Protocol {
        /// Protocol in the packet.
        found: u8,
        /// Protocol the caller asked for.
        expected: u8,
    },
    /// The payload does not fit a 16-bit length field.
    #[error("payload of {0} bytes is too large for one datagram")]
    PayloadTooLarge(usize),
}

/// The IPv4 header fields VRRP cares about (no options).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Header {
    /// Source address (the primary address of the sending interface).
    pub src: Ipv4Addr,
    /// Destination: [`VRRP_GROUP_V4`] or a unicast peer.
    pub dst: Ipv4Addr,
    /// Time to live.
    pub ttl: u8,
    /// Type of service / DSCP+ECN octet.
    pub tos: u8,
    /// Identification.
    pub id: u16,
    /// Protocol of the payload.
    pub protocol: u8,
}

/// An IPv4 datagram split into its header and payload (trimmed to the total length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Datagram<'a> {
    /// The parsed header; options, if any, are skipped.
    pub header: Ipv4Header,
    /// The bytes after the header, up to the total length.
    pub payload: &'a [u8],
}

impl Ipv4Header {
    /// The header keepalived sends VRRP with: TTL 255, TOS 0xc0, protocol 112, no fragments.
    pub fn vrrp(src: Ipv4Addr, dst: Ipv4Addr, id: u16) -> Self {
        Self {
            src,
            dst,
            ttl: VRRP_TTL,
            tos: VRRP_TOS,
            id,
            protocol: PROTO_VRRP,
        }
    }

    /// The complete datagram: a 20-byte header (with its checksum) followed by `payload`.
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, IpError> {
        let total = u16::try_from(IPV4_MIN_HEADER + payload.len())
            .map_err(|_| IpError::PayloadTooLarge(payload.len()))?;
        let mut buf = Vec::with_capacity(usize::from(total));
        buf.extend_from_slice(&[0x45, self.tos]);
        buf.extend_from_slice(&total.to_be_bytes());
        buf.extend_from_slice(&self.id.to_be_bytes());
        buf.extend_from_slice(&[0, 0, self.ttl, self.protocol, 0, 0]);
        buf.extend_from_slice(&self.src.octets());
        buf.extend_from_slice(&self.dst.octets());
        let sum = Checksum::new().add(&buf).finish();
        buf[10..12].copy_from_slice(&sum.to_be_bytes());
        buf.extend_from_slice(payload);
        Ok(buf)
    }
}

/// Parses an IPv4 datagram as a raw socket returns it and requires `protocol` (usually
/// [`PROTO_VRRP`]). Checks version, IHL, total length, fragmentation and header checksum.
pub fn parse_ipv4(datagram: &[u8], protocol: u8) -> Result<Ipv4Datagram<'_>, IpError> {
    let len = datagram.len();
    if len < IPV4_MIN_HEADER {
        return Err(IpError::TooShort {
            len,
            needed: IPV4_MIN_HEADER,
        });
    }
    let version = datagram[0] >> 4;
    if version != 4 {
        return Err(IpError::BadVersion(version, 4));
    }
    let ihl = datagram[0] & 0x0f;
    let header_len = usize::from(ihl) * 4;
    if header_len < IPV4_MIN_HEADER || header_len > len {
        return Err(IpError::BadHeaderLength(ihl));
    }
    let total = usize::from(u16::from_be_bytes([datagram[2], datagram[3]]));
    if total < header_len || total > len {
        return Err(IpError::BadLength {
            claimed: total,
            received: len,
        });
    }
    let frag = u16::from_be_bytes([datagram[6], datagram[7]]);
    if frag & IPV4_FRAGMENT_BITS != 0 {
        return Err(IpError::Fragment(frag));
    }
    if !Checksum::new().add(&datagram[..header_len]).verifies() {
        return Err(IpError::BadHeaderChecksum);
    }
    if datagram[9] != protocol {
        return Err(IpError::Protocol {
            found: datagram[9],
            expected: protocol,
        });
    }
    let header = Ipv4Header {
        src: Ipv4Addr::new(datagram[12], datagram[13], datagram[14], datagram[15]),
        dst: Ipv4Addr::new(datagram[16], datagram[17], datagram[18], datagram[19]),
        ttl: datagram[8],
        tos: datagram[1],
        id: u16::from_be_bytes([datagram[4], datagram[5]]),
        protocol: datagram[9],
    };
    Ok(Ipv4Datagram {
        header,
        payload: &datagram[header_len..total],
    })
}

/// The IPv6 fixed header (RFC 8200 §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Header {
    /// Source address (link-local for VRRP, RFC 5798 §5.1.2.1).
    pub src: Ipv6Addr,
    /// Destination: [`VRRP_GROUP_V6`] or a unicast peer.
    pub dst: Ipv6Addr,
    /// Hop limit.
    pub hop_limit: u8,
    /// Traffic class (DSCP+ECN).
    pub traffic_class: u8,
    /// Flow label (20 bits).
    pub flow_label: u32,
    /// Next header; no extension headers are parsed.
    pub next_header: u8,
}

/// An IPv6 packet split into its fixed header and payload (trimmed to the payload length).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Datagram<'a> {
    /// The fixed header.
    pub header: Ipv6Header,
    /// The bytes after the fixed header, up to the payload length.
    pub payload: &'a [u8],
}

impl Ipv6Header {
    /// The complete packet: the fixed header followed by `payload`.
    pub fn encode(&self, payload: &[u8]) -> Result<Vec<u8>, IpError> {
        let plen =
            u16::try_from(payload.len()).map_err(|_| IpError::PayloadTooLarge(payload.len()))?;
        let word =
            (6u32 << 28) | (u32::from(self.traffic_class) << 20) | (self.flow_label & 0xfffff);
        let mut buf = Vec::with_capacity(IPV6_HEADER + payload.len());
        buf.extend_from_slice(&word.to_be_bytes());
        buf.extend_from_slice(&plen.to_be_bytes());
        buf.extend_from_slice(&[self.next_header, self.hop_limit]);
        buf.extend_from_slice(&self.src.octets());
        buf.extend_from_slice(&self.dst.octets());
        buf.extend_from_slice(payload);
        Ok(buf)
    }
}

/// Parses an IPv6 packet (fixed header only) and requires `next_header` to follow directly.
pub fn parse_ipv6(packet: &[u8], next_header: u8) -> Result<Ipv6Datagram<'_>, IpError> {
    let len = packet.len();
    if len < IPV6_HEADER {
        return Err(IpError::TooShort {
            len,
            needed: IPV6_HEADER,
        });
    }
    let word = u32::from_be_bytes([packet[0], packet[1], packet[2], packet[3]]);
    let version = (word >> 28) as u8;
    if version != 6 {
        return Err(IpError::BadVersion(version, 6));
    }
    let claimed = IPV6_HEADER + usize::from(u16::from_be_bytes([packet[4], packet[5]]));
    if claimed > len {
        return Err(IpError::BadLength {
            claimed,
            received: len,
        });
    }
    if packet[6] != next_header {
        return Err(IpError::Protocol {
            found: packet[6],
            expected: next_header,
        });
    }
    let addr = |at: usize| {
        let mut octets = [0; 16];
        octets.copy_from_slice(&packet[at..at + 16]);
        Ipv6Addr::from(octets)
    };
    let header = Ipv6Header {
        src: addr(8),
        dst: addr(24),
        hop_limit: packet[7],
        traffic_class: (word >> 20) as u8,
        flow_label: word & 0xfffff,
        next_header: packet[6],
    };
    Ok(Ipv6Datagram {
        header,
        payload: &packet[IPV6_HEADER..claimed],
    })
}

/// An IPsec Authentication Header (RFC 4302 §2) as keepalived's VRRPv2 AH extension sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AhHeader<'a> {
    /// Protocol of the protected payload (112 for VRRP).
    pub next_header: u8,
    /// Security parameters index.
    pub spi: u32,
    /// Anti-replay sequence number.
    pub sequence: u32,
    /// Integrity check value. Carried for logging only: vigil never verifies AH.
    pub icv: &'a [u8],
}

/// Splits an AH header off `data`; returns it and the protected payload.
pub fn parse_ah(data: &[u8]) -> Result<(AhHeader<'_>, &[u8]), IpError> {
    let len = data.len();
    if len < AH_FIXED {
        return Err(IpError::TooShort {
            len,
            needed: AH_FIXED,
        });
    }
    // RFC 4302 §2.2: Payload Len is the AH length in 32-bit words, minus 2.
    let ah_len = (usize::from(data[1]) + 2) * 4;
    if ah_len < AH_FIXED || ah_len > len {
        return Err(IpError::BadLength {
            claimed: ah_len,
            received: len,
        });
    }
    let word = |at: usize| u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
    let header = AhHeader {
        next_header: data[0],
        spi: word(4),
        sequence: word(8),
        icv: &data[AH_FIXED..ah_len],
    };
    Ok((header, &data[ah_len..]))
}

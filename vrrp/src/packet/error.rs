//! Why an advertisement could not be decoded or encoded.
//!
//! Decode errors come from the network, so they are ordinary values: the receive path counts them
//! (by [`DecodeErrorKind::label`], a bounded set fit for a metric label) and drops the packet.
//! Encode errors mean our own configuration cannot be put on the wire with the chosen version.

use std::fmt;
use std::net::IpAddr;

use super::Version;

/// A received VRRP message was rejected; carries where it came from for the log line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("VRRP packet from {src}{}: {kind}", VridSuffix(*.vrid))]
pub struct DecodeError {
    /// IP source of the rejected packet.
    pub src: IpAddr,
    /// The virtual router id, when the packet was long enough to carry one.
    pub vrid: Option<u8>,
    /// What was wrong.
    pub kind: DecodeErrorKind,
}

/// The specific check a received message failed (RFC 3768 §7.1, RFC 5798 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// Fewer bytes than the fixed 8-byte header.
    #[error("{len} bytes is shorter than the 8-byte VRRP header")]
    TooShort {
        /// Bytes received.
        len: usize,
    },
    /// The version nibble is neither 2 nor 3.
    #[error("unsupported VRRP version {0}")]
    BadVersion(u8),
    /// The type nibble is not 1 (advertisement), the only type VRRP defines.
    #[error("unknown VRRP packet type {0}")]
    BadType(u8),
    /// VRID 0 is not a valid virtual router (RFC 5798 §5.2.3: 1..255).
    #[error("virtual router id 0 is invalid")]
    ZeroVrid,
    /// An advertisement interval of zero would make every backup time out at once.
    #[error("advertisement interval is zero")]
    ZeroInterval,
    /// VRRPv2 authentication type other than 0, 1 or 2.
    #[error("unknown VRRPv2 authentication type {0}")]
    BadAuthType(u8),
    /// The IP source and destination are of different families.
    #[error("destination {dst} is not of the same address family as the source")]
    FamilyMismatch {
        /// IP destination of the packet.
        dst: IpAddr,
    },
    /// VRRPv2 is defined for IPv4 only (RFC 3768 §1).
    #[error("VRRPv2 is IPv4-only but the packet came over IPv6")]
    V2OverIpv6,
    /// The length does not match what the address count implies (RFC 5798 §7.1 requires
    /// the count and the length to agree).
    #[error("{count} addresses need {expected} bytes but the message has {len}")]
    LengthMismatch {
        /// The "Count IPvX Addrs" field.
        count: u8,
        /// Bytes received.
        len: usize,
        /// Bytes the header and count imply.
        expected: usize,
    },
    /// The checksum does not verify under the configured [`ChecksumMode`](super::ChecksumMode).
    #[error("bad checksum {found:#06x}, expected {expected:#06x}")]
    BadChecksum {
        /// The value in the packet.
        found: u16,
        /// The value the configured mode computes (its preferred form when it accepts two).
        expected: u16,
    },
}

impl DecodeErrorKind {
    /// A stable, bounded name for metrics and structured logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "too_short",
            Self::BadVersion(_) => "bad_version",
            Self::BadType(_) => "bad_type",
            Self::ZeroVrid => "zero_vrid",
            Self::ZeroInterval => "zero_interval",
            Self::BadAuthType(_) => "bad_auth_type",
            Self::FamilyMismatch { .. } => "family_mismatch",
            Self::V2OverIpv6 => "v2_over_ipv6",
            Self::LengthMismatch { .. } => "length_mismatch",
            Self::BadChecksum { .. } => "bad_checksum",
        }
    }
}

/// An [`Advertisement`](super::Advertisement) that cannot be put on the wire as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// VRID 0 is not a valid virtual router.
    #[error("virtual router id 0 is invalid")]
    ZeroVrid,
    /// VRRPv2 cannot be sent over IPv6.
    #[error("VRRPv2 is IPv4-only; cannot send from {src}")]
    V2OverIpv6 {
        /// The requested IP source.
        src: IpAddr,
    },
    /// The IP source and destination are of different families.
    #[error("source {src} and destination {dst} are of different address families")]
    FamilyMismatch {
        /// The requested IP source.
        src: IpAddr,
        /// The requested IP destination.
        dst: IpAddr,
    },
    /// A virtual address is not of the family the packet is sent over.
    #[error("virtual address {addr} is not of the packet's address family")]
    AddressFamily {
        /// The offending address.
        addr: IpAddr,
    },
    /// The count field is one octet.
    #[error("{0} virtual addresses do not fit the 8-bit count field (max 255)")]
    TooManyAddresses(usize),
    /// The interval is zero or too large for the version's field (v2: 1..=255 s, v3: 1..=4095 cs).
    #[error("advertisement interval {centis} cs is out of range for {version:?}")]
    IntervalOutOfRange {
        /// The requested interval.
        centis: u16,
        /// The version being encoded.
        version: Version,
    },
    /// VRRPv2 carries whole seconds; rounding silently would change the timers peers compute.
    #[error("advertisement interval {centis} cs is not a whole number of seconds (VRRPv2)")]
    IntervalNotWholeSeconds {
        /// The requested interval.
        centis: u16,
    },
    /// VRRPv3 removed authentication (RFC 5798 §9); only [`Auth::None`](super::Auth::None) fits.
    #[error("VRRPv3 has no authentication field")]
    AuthInV3,
}

/// Formats `Option<u8>` as " (vrid N)" or nothing, for the one-line error message.
struct VridSuffix(Option<u8>);

impl fmt::Display for VridSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(vrid) => write!(f, " (vrid {vrid})"),
            None => Ok(()),
        }
    }
}

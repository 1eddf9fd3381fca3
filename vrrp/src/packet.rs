//! VRRP advertisement: the decoded form shared by the codec and the state machine.
//!
//! CONTRACT (skeleton): the codec issue adds `decode`/`encode` and the error types in this
//! module; the state machine consumes [`Advertisement`] values. Keep these field names.

use std::net::IpAddr;

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in whole seconds, optional authentication.
    V2,
    /// RFC 5798 / RFC 9568: IPv4 and IPv6, interval in centiseconds.
    V3,
}

/// VRRPv2 authentication (RFC 3768 §5.3.6). Interop only: simple text is no security.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// Type 0.
    None,
    /// Type 1: up to 8 octets of clear text, zero padded on the wire.
    SimpleText([u8; 8]),
    /// Type 2 (keepalived's IPsec-AH extension); carried, never verified.
    Ah,
}

/// One decoded advertisement, independent of the wire layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertisement {
    /// Protocol version the packet was (or will be) encoded with.
    pub version: Version,
    /// Virtual router id, 1..=255.
    pub vrid: u8,
    /// Sender priority; 0 = the master is leaving, 255 = address owner.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 seconds are converted: 1 s = 100 cs).
    pub max_advert_int: u16,
    /// v2 authentication; always [`Auth::None`] for v3.
    pub auth: Auth,
    /// The virtual addresses, all of one family.
    pub addresses: Vec<IpAddr>,
}

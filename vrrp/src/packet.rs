//! VRRP advertisement: the decoded form shared by the codec and the state machine, and the
//! codec itself.
//!
//! [`Advertisement::decode`] takes the VRRP message (the IP payload) plus the IP addresses it
//! travelled between, because VRRPv3 checksums include them and because the address family of
//! the IP header decides how wide the virtual addresses are. [`Advertisement::encode`] is its
//! inverse. Checking TTL / hop limit 255 and matching the advertisement against the local
//! instance (RFC 5798 §7.1) are the caller's job; [`crate::ip`] helps with the IP layer.
//!
//! ```
//! use std::net::{IpAddr, Ipv4Addr};
//! use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, Version};
//!
//! let src = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11));
//! let dst = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
//! let advert = Advertisement {
//!     version: Version::V3,
//!     vrid: 51,
//!     priority: 150,
//!     max_advert_int: 100, // centiseconds: 1 s
//!     auth: Auth::None,
//!     addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 77, 0, 200))],
//! };
//! let wire = advert.encode(src, dst, ChecksumMode::default())?;
//! assert_eq!(wire, [0x31, 51, 150, 1, 0x00, 0x64, 0x42, 0x6b, 10, 77, 0, 200]);
//! assert_eq!(Advertisement::decode(&wire, src, dst, ChecksumMode::default())?, advert);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub(crate) mod checksum;
mod error;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use self::checksum::{Checksum, add_pseudo_header};
pub use self::error::{DecodeError, DecodeErrorKind, EncodeError};

/// Length of the fixed part shared by v2 and v3 (version/type through checksum).
pub const HEADER_LEN: usize = 8;
/// Length of the VRRPv2 authentication data trailer (RFC 3768 §5.3.10).
pub const V2_AUTH_LEN: usize = 8;
/// The only packet type VRRP defines (RFC 3768 §5.3.2, RFC 5798 §5.2.2).
const TYPE_ADVERTISEMENT: u8 = 1;
/// VRRPv3 Max Adver Int is a 12-bit field (RFC 5798 §5.2.7).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;
/// Centiseconds per second, the unit change between VRRPv2 and [`Advertisement::max_advert_int`].
const CS_PER_SEC: u16 = 100;

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

impl Auth {
    /// Type 1 authentication for `password`, zero padded; `None` if it exceeds the 8-octet
    /// field. Anyone on the link can read it: this exists to interoperate, not to protect.
    pub fn simple_text(password: &[u8]) -> Option<Self> {
        let mut field = [0; V2_AUTH_LEN];
        field.get_mut(..password.len())?.copy_from_slice(password);
        Some(Self::SimpleText(field))
    }

    /// The on-wire "Auth Type" octet.
    pub fn type_code(&self) -> u8 {
        match self {
            Self::None => 0,
            Self::SimpleText(_) => 1,
            Self::Ah => 2,
        }
    }
}

/// How the VRRPv3-over-IPv4 checksum treats the IPv4 pseudo-header (configurable per instance).
///
/// Only VRRPv3 over IPv4 is affected: VRRPv2 never includes a pseudo-header and VRRPv3 over IPv6
/// always does. RFC 5798 §5.2.8 includes it; RFC 9568 §5.2.8 excludes it; keepalived and FRR
/// include it, so that is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// Include the IPv4 pseudo-header (RFC 5798, keepalived, FRR).
    #[default]
    WithPseudoHeader,
    /// Sum the VRRP message alone (RFC 9568).
    WithoutPseudoHeader,
    /// Receive: accept either form, for mixed deployments during a migration. Send: as
    /// [`ChecksumMode::WithPseudoHeader`].
    AcceptEither,
}

/// One decoded advertisement, independent of the wire layout.
///
/// VRRPv2 (RFC 3768 §5.1):
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |   Auth Type   |   Adver Int   |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (1)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                            .                                  |
/// |                            .                                  |
/// |                            .                                  |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                         IP Address (n)                        |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (1)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                     Authentication Data (2)                   |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
///
/// VRRPv3 (RFC 5798 §5.1, RFC 9568 §5.1); the addresses are 4 or 16 octets as the IP header's
/// family says:
///
/// ```text
///  0                   1                   2                   3
///  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |Version| Type  | Virtual Rtr ID|   Priority    |Count IPvX Addr|
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |(rsvd) |     Max Adver Int     |          Checksum             |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// |                                                               |
/// +                                                               +
/// |                       IPvX Address(es)                        |
/// +                                                               +
/// +                                                               +
/// +                                                               +
/// +                                                               +
/// |                                                               |
/// +                                                               +
/// |                                                               |
/// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
/// ```
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

/// A VRRPv2 "Adver Int" (whole seconds) as centiseconds for [`Advertisement::max_advert_int`].
pub const fn v2_interval_to_centis(secs: u8) -> u16 {
    secs as u16 * CS_PER_SEC
}

/// The VRRPv2 "Adver Int" for an interval in centiseconds.
///
/// Refuses rather than rounds: peers derive their master-down timer from the value we send, so a
/// silently rounded interval would desynchronise the routers' timers.
pub fn v2_interval_from_centis(centis: u16) -> Result<u8, EncodeError> {
    if !centis.is_multiple_of(CS_PER_SEC) {
        return Err(EncodeError::IntervalNotWholeSeconds { centis });
    }
    match u8::try_from(centis / CS_PER_SEC) {
        Ok(secs) if secs > 0 => Ok(secs),
        _ => Err(EncodeError::IntervalOutOfRange {
            centis,
            version: Version::V2,
        }),
    }
}

impl Advertisement {
    /// Decodes the VRRP message `payload` received from `src` to `dst` (the IP header's
    /// addresses), verifying the checksum under `mode`.
    ///
    /// Strict: the version, type, VRID, address count vs. length, address family, v2 auth type,
    /// interval and checksum are all checked (RFC 3768 §7.1, RFC 5798 §7.1). The v3 reserved
    /// nibble and the v2 authentication data of types 0 and 2 are ignored on reception, as the
    /// RFCs require.
    pub fn decode(
        payload: &[u8],
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Self, DecodeError> {
        let fail = |kind| DecodeError {
            src,
            vrid: payload.get(1).copied(),
            kind,
        };
        if payload.len() < HEADER_LEN {
            return Err(fail(DecodeErrorKind::TooShort { len: payload.len() }));
        }
        let version = match payload[0] >> 4 {
            2 => Version::V2,
            3 => Version::V3,
            v => return Err(fail(DecodeErrorKind::BadVersion(v))),
        };
        let kind = payload[0] & 0x0f;
        if kind != TYPE_ADVERTISEMENT {
            return Err(fail(DecodeErrorKind::BadType(kind)));
        }
        let addr_len = match (src, dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => 4,
            (IpAddr::V6(_), IpAddr::V6(_)) if version == Version::V2 => {
                return Err(fail(DecodeErrorKind::V2OverIpv6));
            }
            (IpAddr::V6(_), IpAddr::V6(_)) => 16,
            _ => return Err(fail(DecodeErrorKind::FamilyMismatch { dst })),
        };
        let vrid = payload[1];
        if vrid == 0 {
            return Err(fail(DecodeErrorKind::ZeroVrid));
        }
        let count = payload[3];
        let addrs_end = HEADER_LEN + usize::from(count) * addr_len;
        let expected = addrs_end + trailer_len(version);
        if payload.len() != expected {
            let len = payload.len();
            return Err(fail(DecodeErrorKind::LengthMismatch {
                count,
                len,
                expected,
            }));
        }
        verify_checksum(payload, version, src, dst, mode).map_err(fail)?;

        let (auth_type, max_advert_int) = match version {
            Version::V2 => (payload[4], v2_interval_to_centis(payload[5])),
            Version::V3 => {
                let field = u16::from_be_bytes([payload[4], payload[5]]);
                (0, field & V3_MAX_INTERVAL_CS)
            }
        };
        if max_advert_int == 0 {
            return Err(fail(DecodeErrorKind::ZeroInterval));
        }
        let auth = match auth_type {
            0 => Auth::None,
            1 => {
                let mut text = [0; V2_AUTH_LEN];
                text.copy_from_slice(&payload[addrs_end..]);
                Auth::SimpleText(text)
            }
            2 => Auth::Ah,
            other => return Err(fail(DecodeErrorKind::BadAuthType(other))),
        };
        let addresses = payload[HEADER_LEN..addrs_end]
            .chunks_exact(addr_len)
            .map(|raw| match <[u8; 16]>::try_from(raw) {
                Ok(v6) => IpAddr::V6(Ipv6Addr::from(v6)),
                // Not 16 octets, so 4: the family check above fixed addr_len to 4 or 16.
                Err(_) => IpAddr::V4(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3])),
            })
            .collect();
        Ok(Self {
            version,
            vrid,
            priority: payload[2],
            max_advert_int,
            auth,
            addresses,
        })
    }

    /// The VRRP message for sending from `src` to `dst`, checksummed under `mode`.
    pub fn encode(
        &self,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<Vec<u8>, EncodeError> {
        let mut buf = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut buf, src, dst, mode)?;
        Ok(buf)
    }

    /// Like [`Advertisement::encode`] but appends to `buf` (after an IP header, say). On error
    /// `buf` is left unchanged.
    pub fn encode_into(
        &self,
        buf: &mut Vec<u8>,
        src: IpAddr,
        dst: IpAddr,
        mode: ChecksumMode,
    ) -> Result<(), EncodeError> {
        let (count, interval_field) = self.validate(src, dst)?;
        let start = buf.len();
        buf.push((self.version_nibble() << 4) | TYPE_ADVERTISEMENT);
        buf.extend_from_slice(&[self.vrid, self.priority, count]);
        buf.extend_from_slice(&interval_field);
        buf.extend_from_slice(&[0, 0]);
        for addr in &self.addresses {
            match addr {
                IpAddr::V4(a) => buf.extend_from_slice(&a.octets()),
                IpAddr::V6(a) => buf.extend_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            match &self.auth {
                Auth::SimpleText(text) => buf.extend_from_slice(text),
                // RFC 3768 §5.3.10: zero on transmission for the other types.
                Auth::None | Auth::Ah => buf.extend_from_slice(&[0; V2_AUTH_LEN]),
            }
        }
        let message = &mut buf[start..];
        let sum = checksum_of(message, self.version, src, dst, mode).finish();
        message[6..HEADER_LEN].copy_from_slice(&sum.to_be_bytes());
        Ok(())
    }

    /// Bytes [`Advertisement::encode`] produces (whatever the family, for well-formed values).
    pub fn encoded_len(&self) -> usize {
        let addrs: usize = self
            .addresses
            .iter()
            .map(|a| if a.is_ipv4() { 4 } else { 16 })
            .sum();
        HEADER_LEN + addrs + trailer_len(self.version)
    }

    fn version_nibble(&self) -> u8 {
        match self.version {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }

    /// Checks everything the wire format cannot express; returns the count octet and the
    /// second header word's first two octets (v2: auth type + seconds, v3: interval).
    fn validate(&self, src: IpAddr, dst: IpAddr) -> Result<(u8, [u8; 2]), EncodeError> {
        if self.vrid == 0 {
            return Err(EncodeError::ZeroVrid);
        }
        if src.is_ipv4() != dst.is_ipv4() {
            return Err(EncodeError::FamilyMismatch { src, dst });
        }
        if self.version == Version::V2 && src.is_ipv6() {
            return Err(EncodeError::V2OverIpv6 { src });
        }
        if let Some(&addr) = self.addresses.iter().find(|a| a.is_ipv4() != src.is_ipv4()) {
            return Err(EncodeError::AddressFamily { addr });
        }
        let count = u8::try_from(self.addresses.len())
            .map_err(|_| EncodeError::TooManyAddresses(self.addresses.len()))?;
        let centis = self.max_advert_int;
        let second_word = match self.version {
            Version::V2 => [self.auth.type_code(), v2_interval_from_centis(centis)?],
            Version::V3 => {
                if self.auth != Auth::None {
                    return Err(EncodeError::AuthInV3);
                }
                if centis == 0 || centis > V3_MAX_INTERVAL_CS {
                    return Err(EncodeError::IntervalOutOfRange {
                        centis,
                        version: Version::V3,
                    });
                }
                centis.to_be_bytes()
            }
        };
        Ok((count, second_word))
    }
}

/// Bytes after the addresses: VRRPv2's authentication data; VRRPv3 has none.
fn trailer_len(version: Version) -> usize {
    match version {
        Version::V2 => V2_AUTH_LEN,
        Version::V3 => 0,
    }
}

/// Sums `message` (with its checksum field as it stands) and the pseudo-header `mode` asks for.
fn checksum_of(
    message: &[u8],
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    mode: ChecksumMode,
) -> Checksum {
    let mut ck = Checksum::new();
    let pseudo = match (version, src) {
        (Version::V2, _) => false,
        (Version::V3, IpAddr::V6(_)) => true,
        (Version::V3, IpAddr::V4(_)) => mode != ChecksumMode::WithoutPseudoHeader,
    };
    if pseudo {
        add_pseudo_header(&mut ck, src, dst, message.len());
    }
    ck.add(message);
    ck
}

fn verify_checksum(
    message: &[u8],
    version: Version,
    src: IpAddr,
    dst: IpAddr,
    mode: ChecksumMode,
) -> Result<(), DecodeErrorKind> {
    if checksum_of(message, version, src, dst, mode).verifies() {
        return Ok(());
    }
    let v3_over_v4 = version == Version::V3 && src.is_ipv4();
    if v3_over_v4 && mode == ChecksumMode::AcceptEither {
        let bare = checksum_of(
            message,
            version,
            src,
            dst,
            ChecksumMode::WithoutPseudoHeader,
        );
        if bare.verifies() {
            return Ok(());
        }
    }
    let found = u16::from_be_bytes([message[6], message[7]]);
    let mut zeroed = message.to_vec();
    zeroed[6..HEADER_LEN].fill(0);
    let expected = checksum_of(&zeroed, version, src, dst, mode).finish();
    Err(DecodeErrorKind::BadChecksum { found, expected })
}

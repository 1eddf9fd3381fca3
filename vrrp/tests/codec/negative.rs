//! Every decode error, each triggered by mutating a real keepalived packet.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv6Addr};

use vigil_vrrp::ip::{self, IpError, PROTO_AH, PROTO_VRRP};
use vigil_vrrp::packet::{Advertisement, ChecksumMode, DecodeErrorKind};

use crate::support::{VrrpFrame, fix_checksum, sample};

const V2: &str = "vrrpv2-ipv4-pass";
const V3_V4: &str = "vrrpv3-ipv4-3vips-10cs";
const V3_V6: &str = "vrrpv3-ipv6";

/// Decodes `f` after `mutate` (and, if `refresh`, a corrected checksum); returns the error kind.
fn reject(f: &VrrpFrame, refresh: bool, mutate: impl FnOnce(&mut Vec<u8>)) -> DecodeErrorKind {
    let mut payload = f.payload.clone();
    mutate(&mut payload);
    if refresh {
        fix_checksum(&mut payload, f.src, f.dst);
    }
    let err = Advertisement::decode(&payload, f.src, f.dst, ChecksumMode::WithPseudoHeader)
        .expect_err("mutated packet must be rejected");
    assert_eq!(err.src, f.src, "errors carry the sender");
    err.kind
}

#[test]
fn unmutated_samples_decode() {
    for name in [V2, V3_V4, V3_V6] {
        let f = sample(name);
        let mut payload = f.payload.clone();
        // The checksum oracle rewrites the very bytes keepalived sent.
        fix_checksum(&mut payload, f.src, f.dst);
        assert_eq!(payload, f.payload, "{name}");
        assert!(Advertisement::decode(&payload, f.src, f.dst, ChecksumMode::default()).is_ok());
    }
}

#[test]
fn too_short() {
    for name in [V2, V3_V4, V3_V6] {
        let f = sample(name);
        for len in 0..8 {
            let kind = reject(&f, false, |p| p.truncate(len));
            assert_eq!(kind, DecodeErrorKind::TooShort { len }, "{name}");
        }
    }
}

#[test]
fn bad_version() {
    for version in [0u8, 1, 4, 15] {
        let kind = reject(&sample(V3_V4), false, |p| p[0] = (version << 4) | 1);
        assert_eq!(kind, DecodeErrorKind::BadVersion(version));
    }
}

#[test]
fn bad_type() {
    for ty in [0u8, 2, 15] {
        let kind = reject(&sample(V2), false, |p| p[0] = 0x20 | ty);
        assert_eq!(kind, DecodeErrorKind::BadType(ty));
    }
}

#[test]
fn zero_vrid_names_no_vrid_but_others_do() {
    let f = sample(V3_V6);
    assert_eq!(reject(&f, true, |p| p[1] = 0), DecodeErrorKind::ZeroVrid);
    let mut payload = f.payload.clone();
    payload[2] ^= 1; // priority, so only the checksum is wrong
    let err = Advertisement::decode(&payload, f.src, f.dst, ChecksumMode::default())
        .expect_err("checksum");
    assert_eq!(err.vrid, Some(52));
    assert!(err.to_string().contains("(vrid 52)"), "{err}");
    assert!(err.to_string().contains("fe80::77:ff:fe00:11"), "{err}");
}

#[test]
fn zero_interval() {
    assert_eq!(
        reject(&sample(V2), true, |p| p[5] = 0),
        DecodeErrorKind::ZeroInterval
    );
    // v3: only the 12 interval bits count; a set reserved nibble does not make it non-zero.
    let kind = reject(&sample(V3_V4), true, |p| {
        p[4..6].copy_from_slice(&[0xf0, 0]);
    });
    assert_eq!(kind, DecodeErrorKind::ZeroInterval);
}

#[test]
fn bad_auth_type() {
    for ty in [3u8, 255] {
        assert_eq!(
            reject(&sample(V2), true, |p| p[4] = ty),
            DecodeErrorKind::BadAuthType(ty)
        );
    }
}

#[test]
fn family_mismatch() {
    let f = sample(V3_V4);
    let v6 = IpAddr::V6(ip::VRRP_GROUP_V6);
    let err = Advertisement::decode(&f.payload, f.src, v6, ChecksumMode::default())
        .expect_err("mixed families");
    assert_eq!(err.kind, DecodeErrorKind::FamilyMismatch { dst: v6 });
}

#[test]
fn v2_over_ipv6() {
    let f = sample(V2);
    let (src, dst) = (
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        IpAddr::V6(ip::VRRP_GROUP_V6),
    );
    let err = Advertisement::decode(&f.payload, src, dst, ChecksumMode::default())
        .expect_err("v2 is IPv4 only");
    assert_eq!(err.kind, DecodeErrorKind::V2OverIpv6);
}

#[test]
fn count_and_length_must_agree() {
    let f = sample(V3_V4); // 3 addresses, 20 bytes
    let kind = reject(&f, true, |p| p[3] = 4);
    assert_eq!(
        kind,
        DecodeErrorKind::LengthMismatch {
            count: 4,
            len: 20,
            expected: 24
        }
    );
    let kind = reject(&f, true, |p| p.truncate(19));
    assert_eq!(
        kind,
        DecodeErrorKind::LengthMismatch {
            count: 3,
            len: 19,
            expected: 20
        }
    );
    let kind = reject(&f, true, |p| p.extend_from_slice(&[0; 4]));
    assert_eq!(
        kind,
        DecodeErrorKind::LengthMismatch {
            count: 3,
            len: 24,
            expected: 20
        }
    );
    // v2 without its 8-byte authentication trailer.
    let kind = reject(&sample(V2), false, |p| p.truncate(12));
    assert_eq!(
        kind,
        DecodeErrorKind::LengthMismatch {
            count: 1,
            len: 12,
            expected: 20
        }
    );
}

/// An IPv4 advertisement read as if it came over IPv6 has 4-byte addresses where 16 belong.
#[test]
fn ipv4_addresses_under_an_ipv6_header_do_not_fit() {
    let v4 = sample(V3_V4);
    let v6 = sample(V3_V6);
    let err = Advertisement::decode(&v4.payload, v6.src, v6.dst, ChecksumMode::default())
        .expect_err("wrong width");
    assert_eq!(
        err.kind,
        DecodeErrorKind::LengthMismatch {
            count: 3,
            len: 20,
            expected: 56
        }
    );
}

#[test]
fn bad_checksum() {
    for name in [V2, V3_V4, V3_V6] {
        let f = sample(name);
        let good = u16::from_be_bytes([f.payload[6], f.payload[7]]);
        // Flip a bit in the last address octet: only the checksum can notice.
        let kind = reject(&f, false, |p| {
            let last = p.len() - 1 - if name == V2 { 8 } else { 0 };
            p[last] ^= 0x01;
        });
        let DecodeErrorKind::BadChecksum { found, expected } = kind else {
            panic!("{name}: {kind:?}");
        };
        assert_eq!(found, good, "{name}");
        assert_ne!(expected, good, "{name}");
    }
}

/// A sender that writes 0xffff for a computed 0x0000 (both ones' complement zero) is accepted.
#[test]
fn negative_zero_checksum_is_accepted() {
    let f = sample(V3_V6);
    let mut p = f.payload.clone();
    let last = p.len() - 2;
    // Sweeping one 16-bit word through every value hits every ones' complement residue, so
    // some value of the last address word makes the checksum compute to 0x0000.
    let hit = (0..=u16::MAX).any(|w| {
        p[last..].copy_from_slice(&w.to_be_bytes());
        fix_checksum(&mut p, f.src, f.dst);
        p[6..8] == [0, 0]
    });
    assert!(hit, "some address word makes the checksum zero");
    assert!(Advertisement::decode(&p, f.src, f.dst, ChecksumMode::default()).is_ok());
    p[6..8].copy_from_slice(&[0xff, 0xff]);
    assert!(Advertisement::decode(&p, f.src, f.dst, ChecksumMode::default()).is_ok());
}

#[test]
fn every_decode_error_kind_has_a_distinct_label() {
    let kinds = [
        DecodeErrorKind::TooShort { len: 0 },
        DecodeErrorKind::BadVersion(0),
        DecodeErrorKind::BadType(0),
        DecodeErrorKind::ZeroVrid,
        DecodeErrorKind::ZeroInterval,
        DecodeErrorKind::BadAuthType(0),
        DecodeErrorKind::FamilyMismatch {
            dst: IpAddr::V6(Ipv6Addr::LOCALHOST),
        },
        DecodeErrorKind::V2OverIpv6,
        DecodeErrorKind::LengthMismatch {
            count: 0,
            len: 0,
            expected: 0,
        },
        DecodeErrorKind::BadChecksum {
            found: 0,
            expected: 0,
        },
    ];
    let labels: HashSet<&str> = kinds.iter().map(DecodeErrorKind::label).collect();
    assert_eq!(labels.len(), kinds.len());
}

#[test]
fn ipv4_header_errors() {
    let f = sample(V3_V4);
    let parse = |mutate: &dyn Fn(&mut Vec<u8>), refresh: bool| {
        let mut dg = f.ip.clone();
        mutate(&mut dg);
        if refresh {
            dg[10..12].fill(0);
            let sum = crate::support::oracle_ip_header(&dg[..usize::from(dg[0] & 0xf) * 4]);
            dg[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        ip::parse_ipv4(&dg, PROTO_VRRP).expect_err("mutated header must be rejected")
    };
    assert_eq!(
        parse(&|d| d.truncate(19), false),
        IpError::TooShort {
            len: 19,
            needed: 20
        }
    );
    assert_eq!(parse(&|d| d[0] = 0x65, false), IpError::BadVersion(6, 4));
    assert_eq!(parse(&|d| d[0] = 0x44, false), IpError::BadHeaderLength(4));
    assert_eq!(parse(&|d| d[0] = 0x4f, false), IpError::BadHeaderLength(15));
    let len = f.ip.len();
    let claimed = len + 1;
    let grow = move |d: &mut Vec<u8>| d[2..4].copy_from_slice(&(claimed as u16).to_be_bytes());
    assert_eq!(
        parse(&grow, true),
        IpError::BadLength {
            claimed,
            received: len
        }
    );
    assert_eq!(parse(&|d| d[6] = 0x20, true), IpError::Fragment(0x2000));
    assert_eq!(parse(&|d| d[7] = 0x01, true), IpError::Fragment(0x0001));
    assert_eq!(parse(&|d| d[8] = 254, false), IpError::BadHeaderChecksum);
    let err = parse(&|d| d[9] = PROTO_AH, true);
    assert_eq!(
        err,
        IpError::Protocol {
            found: PROTO_AH,
            expected: PROTO_VRRP
        }
    );
    // Link-layer padding after the total length is trimmed, not rejected.
    let mut padded = f.ip.clone();
    padded.extend_from_slice(&[0; 6]);
    let dg = ip::parse_ipv4(&padded, PROTO_VRRP).expect("padding is fine");
    assert_eq!(dg.payload, &f.payload[..]);
}

#[test]
fn ipv6_and_ah_header_errors() {
    let f = sample(V3_V6);
    let err = ip::parse_ipv6(&f.ip[..39], PROTO_VRRP).expect_err("short");
    assert_eq!(
        err,
        IpError::TooShort {
            len: 39,
            needed: 40
        }
    );
    let err = ip::parse_ipv6(&f.ip[..f.ip.len() - 1], PROTO_VRRP).expect_err("truncated");
    assert_eq!(
        err,
        IpError::BadLength {
            claimed: f.ip.len(),
            received: f.ip.len() - 1
        }
    );
    let err = ip::parse_ipv6(&sample(V3_V4).ip, PROTO_VRRP).expect_err("v4");
    assert_eq!(err, IpError::BadVersion(4, 6));
    let err = ip::parse_ipv6(&f.ip, PROTO_AH).expect_err("next header");
    assert_eq!(
        err,
        IpError::Protocol {
            found: PROTO_VRRP,
            expected: PROTO_AH
        }
    );

    let ah = sample("vrrpv2-ipv4-ah");
    let dg = ip::parse_ipv4(&ah.ip, PROTO_AH).expect("AH datagram");
    let err = ip::parse_ah(&dg.payload[..11]).expect_err("short AH");
    assert_eq!(
        err,
        IpError::TooShort {
            len: 11,
            needed: 12
        }
    );
    let err = ip::parse_ah(&dg.payload[..23]).expect_err("AH longer than data");
    assert_eq!(
        err,
        IpError::BadLength {
            claimed: 24,
            received: 23
        }
    );
    let mut zero_len = dg.payload.to_vec();
    zero_len[1] = 0;
    let err = ip::parse_ah(&zero_len).expect_err("AH below its fixed part");
    assert_eq!(
        err,
        IpError::BadLength {
            claimed: 8,
            received: zero_len.len()
        }
    );
}

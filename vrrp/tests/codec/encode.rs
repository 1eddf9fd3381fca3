//! Encoder rules: what cannot be put on the wire, checksum modes and interval units.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use vigil_vrrp::packet::{
    Advertisement, Auth, ChecksumMode, DecodeErrorKind, EncodeError, Version,
    v2_interval_from_centis, v2_interval_to_centis,
};

use crate::support::oracle_checksum;

const SRC4: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 11));
const DST4: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
const SRC6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0x77, 0xff, 0xfe00, 0x11));
const DST6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));

fn v3() -> Advertisement {
    Advertisement {
        version: Version::V3,
        vrid: 51,
        priority: 150,
        max_advert_int: 100,
        auth: Auth::None,
        addresses: vec![IpAddr::V4(Ipv4Addr::new(10, 77, 0, 200))],
    }
}

fn v2() -> Advertisement {
    Advertisement {
        version: Version::V2,
        ..v3()
    }
}

fn encode_err(adv: &Advertisement, src: IpAddr, dst: IpAddr) -> EncodeError {
    adv.encode(src, dst, ChecksumMode::default())
        .expect_err("must not encode")
}

#[test]
fn v2_intervals_are_whole_seconds_never_rounded() {
    assert_eq!(v2_interval_to_centis(1), 100);
    assert_eq!(v2_interval_to_centis(255), 25_500);
    assert_eq!(v2_interval_from_centis(100), Ok(1));
    assert_eq!(v2_interval_from_centis(25_500), Ok(255));
    for centis in [1, 50, 150, 199] {
        assert_eq!(
            v2_interval_from_centis(centis),
            Err(EncodeError::IntervalNotWholeSeconds { centis })
        );
    }
    for centis in [0, 25_600, 60_000] {
        let want = EncodeError::IntervalOutOfRange {
            centis,
            version: Version::V2,
        };
        assert_eq!(v2_interval_from_centis(centis), Err(want));
    }
    let adv = Advertisement {
        max_advert_int: 150,
        ..v2()
    };
    let err = encode_err(&adv, SRC4, DST4);
    assert_eq!(err, EncodeError::IntervalNotWholeSeconds { centis: 150 });
    let adv = Advertisement {
        max_advert_int: 300,
        ..v2()
    };
    let bytes = adv
        .encode(SRC4, DST4, ChecksumMode::default())
        .expect("3 s");
    assert_eq!(bytes[5], 3, "Adver Int carries seconds");
}

#[test]
fn v3_interval_is_twelve_bits_and_non_zero() {
    for centis in [0, 4096, u16::MAX] {
        let adv = Advertisement {
            max_advert_int: centis,
            ..v3()
        };
        let want = EncodeError::IntervalOutOfRange {
            centis,
            version: Version::V3,
        };
        assert_eq!(encode_err(&adv, SRC4, DST4), want);
    }
    let adv = Advertisement {
        max_advert_int: 4095,
        ..v3()
    };
    let bytes = adv
        .encode(SRC4, DST4, ChecksumMode::default())
        .expect("max interval");
    assert_eq!(&bytes[4..6], &[0x0f, 0xff]);
}

#[test]
fn structural_encode_errors() {
    let adv = Advertisement { vrid: 0, ..v3() };
    assert_eq!(encode_err(&adv, SRC4, DST4), EncodeError::ZeroVrid);
    assert_eq!(
        encode_err(&v3(), SRC4, DST6),
        EncodeError::FamilyMismatch {
            src: SRC4,
            dst: DST6
        }
    );
    let v6_vip = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x200));
    let adv = Advertisement {
        addresses: vec![v6_vip],
        ..v2()
    };
    assert_eq!(
        encode_err(&adv, SRC6, DST6),
        EncodeError::V2OverIpv6 { src: SRC6 }
    );
    // One IPv6 address among IPv4 ones.
    let mut adv = v3();
    adv.addresses.push(v6_vip);
    assert_eq!(
        encode_err(&adv, SRC4, DST4),
        EncodeError::AddressFamily { addr: v6_vip }
    );
    let adv = Advertisement {
        auth: Auth::Ah,
        ..v3()
    };
    assert_eq!(encode_err(&adv, SRC4, DST4), EncodeError::AuthInV3);
    let many = (0..256u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    let adv = Advertisement {
        addresses: many,
        ..v3()
    };
    assert_eq!(
        encode_err(&adv, SRC4, DST4),
        EncodeError::TooManyAddresses(256)
    );
}

#[test]
fn failed_encode_into_leaves_the_buffer_alone() {
    let mut buf = vec![1, 2, 3];
    let adv = Advertisement { vrid: 0, ..v3() };
    assert!(
        adv.encode_into(&mut buf, SRC4, DST4, ChecksumMode::default())
            .is_err()
    );
    assert_eq!(buf, [1, 2, 3]);
    v3().encode_into(&mut buf, SRC4, DST4, ChecksumMode::default())
        .expect("encode");
    assert_eq!(&buf[..3], &[1, 2, 3]);
    let appended = &buf[3..];
    assert_eq!(
        Advertisement::decode(appended, SRC4, DST4, ChecksumMode::default()),
        Ok(v3())
    );
}

#[test]
fn limits_that_do_encode() {
    let all: Vec<IpAddr> = (0..255u32)
        .map(|i| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)))
        .collect();
    for adv in [
        Advertisement {
            addresses: all,
            vrid: 255,
            priority: 255,
            ..v3()
        },
        Advertisement {
            addresses: Vec::new(),
            priority: 0,
            ..v3()
        },
    ] {
        let bytes = adv
            .encode(SRC4, DST4, ChecksumMode::default())
            .expect("encodes");
        assert_eq!(bytes.len(), adv.encoded_len());
        let back = Advertisement::decode(&bytes, SRC4, DST4, ChecksumMode::default());
        assert_eq!(back, Ok(adv));
    }
}

/// RFC 9568 peers (no pseudo-header) and keepalived/FRR (pseudo-header) over IPv4.
#[test]
fn v3_ipv4_checksum_modes() {
    let with = v3()
        .encode(SRC4, DST4, ChecksumMode::WithPseudoHeader)
        .expect("with");
    let without = v3()
        .encode(SRC4, DST4, ChecksumMode::WithoutPseudoHeader)
        .expect("without");
    let either = v3()
        .encode(SRC4, DST4, ChecksumMode::AcceptEither)
        .expect("either");
    assert_eq!(either, with, "AcceptEither sends the keepalived form");
    assert_ne!(with, without);
    assert_eq!(
        with[6..8],
        oracle_checksum(&with, Some((SRC4, DST4))).to_be_bytes()
    );
    assert_eq!(without[6..8], oracle_checksum(&without, None).to_be_bytes());

    let decode = |bytes: &[u8], mode| Advertisement::decode(bytes, SRC4, DST4, mode);
    assert_eq!(
        decode(&without, ChecksumMode::WithoutPseudoHeader),
        Ok(v3())
    );
    assert_eq!(decode(&without, ChecksumMode::AcceptEither), Ok(v3()));
    assert_eq!(decode(&with, ChecksumMode::AcceptEither), Ok(v3()));
    let err = decode(&without, ChecksumMode::WithPseudoHeader).expect_err("strict");
    assert!(
        matches!(err.kind, DecodeErrorKind::BadChecksum { .. }),
        "{err}"
    );
    let err = decode(&with, ChecksumMode::WithoutPseudoHeader).expect_err("strict");
    assert!(
        matches!(err.kind, DecodeErrorKind::BadChecksum { .. }),
        "{err}"
    );
    // The pseudo-header binds the addresses: another destination breaks the checksum.
    let other = IpAddr::V4(Ipv4Addr::new(10, 77, 0, 12));
    assert!(Advertisement::decode(&with, SRC4, other, ChecksumMode::WithPseudoHeader).is_err());
    assert!(
        Advertisement::decode(&without, SRC4, other, ChecksumMode::WithoutPseudoHeader).is_ok()
    );
}

#[test]
fn ipv6_always_and_v2_never_use_the_pseudo_header() {
    let vip6 = IpAddr::V6(Ipv6Addr::new(0xfd77, 0, 0, 0, 0, 0, 0, 0x200));
    let adv6 = Advertisement {
        addresses: vec![vip6],
        ..v3()
    };
    let modes = [
        ChecksumMode::WithPseudoHeader,
        ChecksumMode::WithoutPseudoHeader,
        ChecksumMode::AcceptEither,
    ];
    for mode in modes {
        let bytes = adv6.encode(SRC6, DST6, mode).expect("v6");
        assert_eq!(
            bytes[6..8],
            oracle_checksum(&bytes, Some((SRC6, DST6))).to_be_bytes()
        );
        let bytes = v2().encode(SRC4, DST4, mode).expect("v2");
        assert_eq!(bytes[6..8], oracle_checksum(&bytes, None).to_be_bytes());
        for m in modes {
            assert_eq!(Advertisement::decode(&bytes, SRC4, DST4, m), Ok(v2()));
        }
    }
}

#[test]
fn simple_text_password_is_zero_padded_and_bounded() {
    assert_eq!(
        Auth::simple_text(b"secret12"),
        Some(Auth::SimpleText(*b"secret12"))
    );
    assert_eq!(
        Auth::simple_text(b"abc"),
        Some(Auth::SimpleText(*b"abc\0\0\0\0\0"))
    );
    assert_eq!(Auth::simple_text(b""), Some(Auth::SimpleText([0; 8])));
    assert_eq!(Auth::simple_text(b"secret123"), None);
    let adv = Advertisement {
        auth: Auth::simple_text(b"abc").expect("fits"),
        ..v2()
    };
    let bytes = adv
        .encode(SRC4, DST4, ChecksumMode::default())
        .expect("v2 pass");
    assert_eq!(bytes[4], 1);
    assert_eq!(&bytes[12..], b"abc\0\0\0\0\0");
    assert_eq!(
        Advertisement::decode(&bytes, SRC4, DST4, ChecksumMode::default()),
        Ok(adv)
    );
}

/// Types 0 and 2 carry no data we keep: whatever the trailer holds is ignored (RFC 3768
/// §5.3.10) and we send zeros.
#[test]
fn v2_auth_data_of_other_types_is_ignored_and_sent_as_zero() {
    for auth in [Auth::None, Auth::Ah] {
        let adv = Advertisement {
            auth: auth.clone(),
            ..v2()
        };
        let mut bytes = adv.encode(SRC4, DST4, ChecksumMode::default()).expect("v2");
        assert_eq!(&bytes[12..], &[0; 8]);
        bytes[12..].copy_from_slice(b"garbage!");
        crate::support::fix_checksum(&mut bytes, SRC4, DST4);
        assert_eq!(
            Advertisement::decode(&bytes, SRC4, DST4, ChecksumMode::default()),
            Ok(adv)
        );
    }
}

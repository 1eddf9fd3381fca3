//! Bounded fuzzing inside the normal test suite: random bytes and mutations of the real
//! captures at every decode entry point. Nothing may panic, and whatever decodes must encode to
//! bytes that decode to the same value. (`fuzz/` runs the same idea unbounded under libFuzzer.)

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::Index;
use vigil_vrrp::ip::{self, PROTO_AH, PROTO_VRRP};
use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, Version};

use crate::support::{CAPTURES, VrrpFrame, fix_checksum, oracle_checksum};

const CASES: u32 = 2_000;

fn frames() -> Vec<&'static VrrpFrame> {
    CAPTURES.iter().flat_map(|c| c.vrrp.iter()).collect()
}

fn mode() -> impl Strategy<Value = ChecksumMode> {
    prop_oneof![
        Just(ChecksumMode::WithPseudoHeader),
        Just(ChecksumMode::WithoutPseudoHeader),
        Just(ChecksumMode::AcceptEither),
    ]
}

/// Address pairs of either family, and mixed ones, which decode must refuse without panicking.
fn addr_pair() -> impl Strategy<Value = (IpAddr, IpAddr)> {
    let v4 = any::<[u8; 4]>().prop_map(|o| IpAddr::V4(Ipv4Addr::from(o)));
    let v6 = any::<[u8; 16]>().prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)));
    prop_oneof![(v4.clone(), v4.clone()), (v6.clone(), v6.clone()), (v4, v6),]
}

/// Overwrites a few bytes and maybe truncates: small edits keep most of the structure intact,
/// which reaches deeper checks than random bytes do.
fn mutate(data: &mut Vec<u8>, edits: &[(Index, u8)], cut: Option<Index>) {
    if data.is_empty() {
        return;
    }
    for (at, byte) in edits {
        let i = at.index(data.len());
        data[i] = *byte;
    }
    if let Some(cut) = cut {
        data.truncate(cut.index(data.len() + 1));
    }
}

/// The central property: decoding never panics and is a left inverse of encoding.
fn check_decode(payload: &[u8], src: IpAddr, dst: IpAddr, mode: ChecksumMode) {
    let Ok(adv) = Advertisement::decode(payload, src, dst, mode) else {
        return;
    };
    let bytes = adv
        .encode(src, dst, mode)
        .unwrap_or_else(|e| panic!("decoded {adv:?} but cannot encode it: {e}"));
    assert_eq!(
        bytes.len(),
        payload.len(),
        "strict decoding fixes the length"
    );
    assert_eq!(Advertisement::decode(&bytes, src, dst, mode), Ok(adv));
}

/// IP parsers: no panic, and a parsed header rebuilt around its payload parses the same.
fn check_ip(datagram: &[u8]) {
    for proto in [PROTO_VRRP, PROTO_AH] {
        if let Ok(dg) = ip::parse_ipv4(datagram, proto) {
            let rebuilt = dg.header.encode(dg.payload).expect("fits: it was parsed");
            assert_eq!(ip::parse_ipv4(&rebuilt, proto), Ok(dg));
            if proto == PROTO_AH {
                check_ah(dg.payload);
            }
        }
        if let Ok(dg) = ip::parse_ipv6(datagram, proto) {
            let rebuilt = dg.header.encode(dg.payload).expect("fits: it was parsed");
            assert_eq!(ip::parse_ipv6(&rebuilt, proto), Ok(dg));
        }
    }
    check_ah(datagram);
}

fn check_ah(data: &[u8]) {
    if let Ok((ah, inner)) = ip::parse_ah(data) {
        assert_eq!(12 + ah.icv.len() + inner.len(), data.len());
    }
}

fn advertisement() -> impl Strategy<Value = (Advertisement, IpAddr, IpAddr)> {
    let v2 = (
        1..=255u8,
        any::<u8>(),
        1..=255u8,
        0..3u8,
        any::<[u8; 8]>(),
        vec(any::<[u8; 4]>(), 0..20),
    )
        .prop_map(|(vrid, priority, secs, auth, text, addrs)| {
            let auth = match auth {
                0 => Auth::None,
                1 => Auth::SimpleText(text),
                _ => Auth::Ah,
            };
            let addresses = addrs.into_iter().map(|a| IpAddr::V4(a.into())).collect();
            let adv = Advertisement {
                version: Version::V2,
                vrid,
                priority,
                max_advert_int: u16::from(secs) * 100,
                auth,
                addresses,
            };
            (
                adv,
                IpAddr::V4([10, 0, 0, 1].into()),
                IpAddr::V4([224, 0, 0, 18].into()),
            )
        });
    let v3 = (
        1..=255u8,
        any::<u8>(),
        1..=4095u16,
        any::<bool>(),
        vec(any::<[u8; 16]>(), 0..20),
    )
        .prop_map(|(vrid, priority, max_advert_int, v6, addrs)| {
            let addresses = addrs
                .into_iter()
                .map(|a| {
                    if v6 {
                        IpAddr::V6(a.into())
                    } else {
                        IpAddr::V4([a[0], a[1], a[2], a[3]].into())
                    }
                })
                .collect();
            let adv = Advertisement {
                version: Version::V3,
                vrid,
                priority,
                max_advert_int,
                auth: Auth::None,
                addresses,
            };
            let (src, dst) = if v6 {
                (
                    IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
                    IpAddr::V6(ip::VRRP_GROUP_V6),
                )
            } else {
                (
                    IpAddr::V4([10, 0, 0, 1].into()),
                    IpAddr::V4(ip::VRRP_GROUP_V4),
                )
            };
            (adv, src, dst)
        });
    prop_oneof![v2, v3]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn random_bytes_never_panic(
        data in vec(any::<u8>(), 0..96),
        (src, dst) in addr_pair(),
        mode in mode(),
    ) {
        check_decode(&data, src, dst, mode);
        check_ip(&data);
    }

    #[test]
    fn random_bodies_behind_valid_headers(
        head in prop_oneof![Just(0x21u8), Just(0x31u8)],
        vrid in any::<u8>(),
        count in 0..4u8,
        body in vec(any::<u8>(), 0..72),
        fix in any::<bool>(),
        (src, dst) in addr_pair(),
        mode in mode(),
    ) {
        let mut data = vec![head, vrid, 100, count];
        data.extend_from_slice(&body);
        if fix && data.len() >= 8 && src.is_ipv4() == dst.is_ipv4() {
            fix_checksum(&mut data, src, dst);
        }
        check_decode(&data, src, dst, mode);
    }

    #[test]
    fn mutated_captures_never_panic(
        which in any::<Index>(),
        edits in vec((any::<Index>(), any::<u8>()), 0..4),
        cut in option::weighted(0.2, any::<Index>()),
        refresh in any::<bool>(),
        mode in mode(),
    ) {
        let all = frames();
        let f = which.get(&all);
        let mut payload = f.payload.clone();
        mutate(&mut payload, &edits, cut);
        if refresh && payload.len() >= 8 {
            fix_checksum(&mut payload, f.src, f.dst);
        }
        check_decode(&payload, f.src, f.dst, mode);
        let mut datagram = f.ip.clone();
        mutate(&mut datagram, &edits, cut);
        check_ip(&datagram);
    }

    #[test]
    fn valid_advertisements_round_trip((adv, src, dst) in advertisement(), mode in mode()) {
        let bytes = adv.encode(src, dst, mode).expect("valid by construction");
        prop_assert_eq!(bytes.len(), adv.encoded_len());
        let pseudo = (adv.version == Version::V3
            && (src.is_ipv6() || mode != ChecksumMode::WithoutPseudoHeader))
            .then_some((src, dst));
        prop_assert_eq!(&bytes[6..8], &oracle_checksum(&bytes, pseudo).to_be_bytes());
        prop_assert_eq!(Advertisement::decode(&bytes, src, dst, mode), Ok(adv));
    }
}

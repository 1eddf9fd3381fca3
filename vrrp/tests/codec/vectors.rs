//! Round trips over every VRRP frame keepalived 2.2.7 sent in `shared/vectors`.

use std::net::IpAddr;

use vigil_vrrp::ip::{self, Ipv4Header, PROTO_AH, PROTO_VRRP};
use vigil_vrrp::packet::{Advertisement, ChecksumMode};

use crate::support::{CAPTURES, Capture, VrrpFrame, oracle_checksum, read_pcap};

#[test]
fn every_capture_has_the_vrrp_frames_its_summary_lists() {
    for cap in CAPTURES.iter() {
        assert!(!cap.vrrp.is_empty(), "{}: no VRRP frames", cap.name);
        assert_eq!(cap.vrrp.len(), cap.expected.vrrp_frames, "{}", cap.name);
        // The pcap reader and tshark agree on the bytes of the first VRRP frame.
        assert_eq!(cap.vrrp[0].frame, cap.first_frame_hex, "{}", cap.name);
    }
}

#[test]
fn decode_matches_the_keepalived_config() {
    for cap in CAPTURES.iter() {
        let last = cap.vrrp.len() - 1;
        for (i, f) in cap.vrrp.iter().enumerate() {
            let adv = decode(cap, f, ChecksumMode::WithPseudoHeader);
            let want = &cap.expected;
            assert_eq!(adv.version, want.version, "{} #{i}", cap.name);
            assert_eq!(adv.vrid, want.vrid, "{} #{i}", cap.name);
            assert_eq!(adv.max_advert_int, want.interval_cs, "{} #{i}", cap.name);
            assert_eq!(adv.addresses, want.addresses, "{} #{i}", cap.name);
            assert_eq!(adv.auth, want.auth, "{} #{i}", cap.name);
            // keepalived was stopped at the end of each capture: its last advert says "leaving".
            let priority = if i == last { 0 } else { want.priority };
            assert_eq!(adv.priority, priority, "{} #{i}", cap.name);
        }
    }
}

#[test]
fn reencoding_reproduces_every_payload_byte_for_byte() {
    for cap in CAPTURES.iter() {
        for (i, f) in cap.vrrp.iter().enumerate() {
            let adv = decode(cap, f, ChecksumMode::WithPseudoHeader);
            let bytes = adv
                .encode(f.src, f.dst, ChecksumMode::WithPseudoHeader)
                .unwrap_or_else(|e| panic!("{} #{i}: {e}", cap.name));
            assert_eq!(bytes, f.payload, "{} #{i}", cap.name);
            assert_eq!(adv.encoded_len(), f.payload.len(), "{} #{i}", cap.name);
        }
    }
}

#[test]
fn checksums_agree_with_the_oracle() {
    for cap in CAPTURES.iter() {
        for f in &cap.vrrp {
            let pseudo = (f.payload[0] >> 4 == 3).then_some((f.src, f.dst));
            let found = u16::from_be_bytes([f.payload[6], f.payload[7]]);
            assert_eq!(oracle_checksum(&f.payload, pseudo), found, "{}", cap.name);
        }
    }
}

/// keepalived includes the IPv4 pseudo-header for VRRPv3; a strict RFC 9568 receiver would
/// reject it, a lenient one accepts it, and IPv6 / VRRPv2 ignore the setting.
#[test]
fn checksum_mode_decides_v3_over_ipv4_only() {
    for cap in CAPTURES.iter() {
        for f in &cap.vrrp {
            let v3_v4 = f.payload[0] >> 4 == 3 && f.src.is_ipv4();
            let bare =
                Advertisement::decode(&f.payload, f.src, f.dst, ChecksumMode::WithoutPseudoHeader);
            assert_eq!(bare.is_err(), v3_v4, "{}", cap.name);
            decode(cap, f, ChecksumMode::AcceptEither);
        }
    }
}

#[test]
fn ipv4_parser_agrees_with_fixed_offsets_and_the_builder_reproduces_keepalived() {
    for cap in CAPTURES.iter() {
        for f in cap.vrrp.iter().filter(|f| f.src.is_ipv4()) {
            let proto = if f.via_ah { PROTO_AH } else { PROTO_VRRP };
            let dg = ip::parse_ipv4(&f.ip, proto).unwrap_or_else(|e| panic!("{}: {e}", cap.name));
            assert_eq!(
                (IpAddr::V4(dg.header.src), IpAddr::V4(dg.header.dst)),
                (f.src, f.dst)
            );
            assert_eq!((dg.header.ttl, dg.header.tos), (255, 0xc0), "{}", cap.name);
            let vrrp = if f.via_ah {
                let (ah, inner) = ip::parse_ah(dg.payload).expect("AH header");
                assert_eq!(ah.next_header, PROTO_VRRP);
                assert_eq!(ah.icv.len(), 12, "HMAC-MD5-96");
                inner
            } else {
                dg.payload
            };
            assert_eq!(vrrp, &f.payload[..], "{}", cap.name);
            // Only the id varies between keepalived's datagrams; everything else is the default.
            let mut header = Ipv4Header::vrrp(dg.header.src, dg.header.dst, dg.header.id);
            header.protocol = proto;
            assert_eq!(
                header.encode(dg.payload).expect("encode"),
                f.ip,
                "{}",
                cap.name
            );
        }
    }
}

#[test]
fn ipv6_parser_agrees_with_fixed_offsets_and_round_trips() {
    let mut seen = 0;
    for cap in CAPTURES.iter() {
        for f in cap.vrrp.iter().filter(|f| f.src.is_ipv6()) {
            let dg = ip::parse_ipv6(&f.ip, PROTO_VRRP).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                (IpAddr::V6(dg.header.src), IpAddr::V6(dg.header.dst)),
                (f.src, f.dst)
            );
            assert_eq!(dg.header.hop_limit, 255);
            assert_eq!(dg.header.traffic_class, 0xc0);
            assert_eq!(dg.header.dst, ip::VRRP_GROUP_V6);
            assert_eq!(dg.payload, &f.payload[..]);
            let rebuilt = dg.header.encode(dg.payload).expect("encode");
            assert_eq!(rebuilt, f.ip);
            seen += 1;
        }
    }
    assert!(seen > 0, "the IPv6 capture has VRRP frames");
}

#[test]
fn pcap_reader_handles_big_endian_files() {
    let path = format!("{}/vrrpv3-ipv4.pcap", crate::support::VECTOR_DIR);
    let le = std::fs::read(path).expect("read");
    let mut be = le.clone();
    // Swap every 32-bit word of the global header's magic/link type and each record header;
    // the two 16-bit version words are swapped as such.
    be[0..4].reverse();
    be[4..6].reverse();
    be[6..8].reverse();
    for w in (8..24).step_by(4) {
        be[w..w + 4].reverse();
    }
    let mut at = 24;
    while at < be.len() {
        for w in (at..at + 16).step_by(4) {
            be[w..w + 4].reverse();
        }
        let incl = u32::from_be_bytes(be[at + 8..at + 12].try_into().expect("4 bytes"));
        at += 16 + incl as usize;
    }
    assert_ne!(le, be);
    assert_eq!(read_pcap(&be), read_pcap(&le));
}

fn decode(cap: &Capture, f: &VrrpFrame, mode: ChecksumMode) -> Advertisement {
    Advertisement::decode(&f.payload, f.src, f.dst, mode)
        .unwrap_or_else(|e| panic!("{}: {e} ({mode:?})", cap.name))
}

#[test]
fn ipv4_options_are_skipped() {
    let f = &CAPTURES[0].vrrp[0];
    let mut dg = f.ip[..20].to_vec();
    dg.extend_from_slice(&[0x94, 0x04, 0x00, 0x00]); // Router Alert, a common 4-byte option
    dg.extend_from_slice(&f.ip[20..]);
    dg[0] = 0x46;
    let total = dg.len() as u16;
    dg[2..4].copy_from_slice(&total.to_be_bytes());
    dg[10..12].fill(0);
    let sum = crate::support::oracle_ip_header(&dg[..24]);
    dg[10..12].copy_from_slice(&sum.to_be_bytes());
    let proto = if f.via_ah { PROTO_AH } else { PROTO_VRRP };
    let parsed = ip::parse_ipv4(&dg, proto).expect("options are legal");
    let plain = ip::parse_ipv4(&f.ip, proto).expect("capture parses");
    assert_eq!(parsed, plain);
}

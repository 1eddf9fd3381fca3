//! The raw-socket receive path: an IPv4 datagram (or an IPv6 packet) as the kernel or a capture
//! hands it over, through the IP parser, the AH unwrapper and the VRRP decoder.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vigil_vrrp::ip::{self, PROTO_AH, PROTO_VRRP};
use vigil_vrrp::packet::{Advertisement, ChecksumMode};

fn decode(payload: &[u8], src: IpAddr, dst: IpAddr) {
    let mode = ChecksumMode::AcceptEither;
    if let Ok(adv) = Advertisement::decode(payload, src, dst, mode) {
        let bytes = adv
            .encode(src, dst, mode)
            .expect("whatever decodes must encode");
        assert_eq!(Advertisement::decode(&bytes, src, dst, mode), Ok(adv));
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(dg) = ip::parse_ipv4(data, PROTO_VRRP) {
        let rebuilt = dg
            .header
            .encode(dg.payload)
            .expect("a parsed datagram fits");
        assert_eq!(ip::parse_ipv4(&rebuilt, PROTO_VRRP), Ok(dg));
        decode(dg.payload, dg.header.src.into(), dg.header.dst.into());
    }
    if let Ok(dg) = ip::parse_ipv4(data, PROTO_AH)
        && let Ok((ah, inner)) = ip::parse_ah(dg.payload)
        && ah.next_header == PROTO_VRRP
    {
        decode(inner, dg.header.src.into(), dg.header.dst.into());
    }
    if let Ok(dg) = ip::parse_ipv6(data, PROTO_VRRP) {
        let rebuilt = dg.header.encode(dg.payload).expect("a parsed packet fits");
        assert_eq!(ip::parse_ipv6(&rebuilt, PROTO_VRRP), Ok(dg));
        decode(dg.payload, dg.header.src.into(), dg.header.dst.into());
    }
});

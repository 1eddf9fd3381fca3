//! `Advertisement::decode` on arbitrary bytes, under every address family and checksum mode.
//!
//! Input layout (so seeds from real captures carry their real addresses and verify):
//! byte 0 bits 0-1 = checksum mode, bit 2 = IPv6; then source and destination address
//! (4 or 16 octets each); the rest is the VRRP message.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use vigil_vrrp::packet::{Advertisement, ChecksumMode};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let mode = match selector & 0b11 {
        0 => ChecksumMode::WithPseudoHeader,
        1 => ChecksumMode::WithoutPseudoHeader,
        _ => ChecksumMode::AcceptEither,
    };
    let width = if selector & 0b100 == 0 { 4 } else { 16 };
    if rest.len() < 2 * width {
        return;
    }
    let (addrs, payload) = rest.split_at(2 * width);
    let addr = |raw: &[u8]| match <[u8; 16]>::try_from(raw) {
        Ok(v6) => IpAddr::from(v6),
        Err(_) => IpAddr::from([raw[0], raw[1], raw[2], raw[3]]),
    };
    let (src, dst) = (addr(&addrs[..width]), addr(&addrs[width..]));
    if let Ok(adv) = Advertisement::decode(payload, src, dst, mode) {
        let bytes = adv
            .encode(src, dst, mode)
            .expect("whatever decodes must encode");
        assert_eq!(bytes.len(), payload.len());
        assert_eq!(Advertisement::decode(&bytes, src, dst, mode), Ok(adv));
    }
});

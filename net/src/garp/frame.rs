//! Ethernet frames announcing an address: gratuitous ARP (IPv4) and unsolicited Neighbor
//! Advertisement (IPv6). Pure functions, so the bytes can be checked without a network.
//!
//! Gratuitous ARP (RFC 5227 §3 "ARP Announcement", RFC 5798 §6.4.1), 60 bytes with padding:
//!
//! ```text
//! | dst ff:ff:ff:ff:ff:ff | src MAC | 0x0806 |
//! | htype 1 | ptype 0x0800 | hlen 6 | plen 4 | oper 1 (request) |
//! | sender MAC | sender IP = VIP | target MAC 00:..:00 | target IP = VIP | zero padding |
//! ```
//!
//! Unsolicited NA (RFC 4861 §4.4, §7.2.6; RFC 5798 §6.4.2: R set, S clear, O set), 86 bytes:
//!
//! ```text
//! | dst 33:33:00:00:00:01 | src MAC | 0x86dd |
//! | IPv6: payload 32, next header 58, hop limit 255, src = VIP, dst = ff02::1 |
//! | type 136 | code 0 | checksum | R S O reserved | target = VIP |
//! | option 2 (target link-layer address) | length 1 (8 octets) | MAC |
//! ```

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::iface::MacAddr;

/// EtherType of ARP.
pub const ETH_P_ARP: u16 = 0x0806;
/// EtherType of IPv6.
pub const ETH_P_IPV6: u16 = 0x86dd;
/// The Ethernet broadcast address, destination of gratuitous ARP.
pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
/// The Ethernet address of IPv6 all-nodes multicast ff02::1 (RFC 2464 §7).
pub const ALL_NODES_MAC: MacAddr = MacAddr([0x33, 0x33, 0, 0, 0, 1]);
/// IPv6 all-nodes multicast, destination of unsolicited NA.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Shortest Ethernet frame without FCS; shorter frames are padded so no switch drops them as
/// runts.
const MIN_FRAME: usize = 60;
const ICMPV6: u8 = 58;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const NA_ROUTER: u8 = 0x80;
const NA_OVERRIDE: u8 = 0x20;
const OPT_TARGET_LINK_ADDR: u8 = 2;
/// Hop limit required on every Neighbor Discovery message (RFC 4861 §7.1.2).
const ND_HOP_LIMIT: u8 = 255;

/// A gratuitous ARP request announcing that `vip` is at `mac`.
pub fn gratuitous_arp(mac: MacAddr, vip: Ipv4Addr) -> Vec<u8> {
    let mut frame = Vec::with_capacity(MIN_FRAME);
    ethernet_header(&mut frame, BROADCAST, mac, ETH_P_ARP);
    frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    frame.extend_from_slice(&mac.0);
    frame.extend_from_slice(&vip.octets());
    frame.extend_from_slice(&[0; 6]);
    frame.extend_from_slice(&vip.octets());
    frame.resize(MIN_FRAME, 0);
    frame
}

/// An unsolicited Neighbor Advertisement announcing that `vip` is at `mac`, with the override
/// flag set and the router flag set when `router`.
pub fn unsolicited_na(mac: MacAddr, vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    let flags = NA_OVERRIDE | if router { NA_ROUTER } else { 0 };
    icmp.extend_from_slice(&[NEIGHBOR_ADVERTISEMENT, 0, 0, 0, flags, 0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[OPT_TARGET_LINK_ADDR, 1]);
    icmp.extend_from_slice(&mac.0);
    let sum = icmpv6_checksum(vip, ALL_NODES, &icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());

    let mut frame = Vec::with_capacity(14 + 40 + icmp.len());
    ethernet_header(&mut frame, ALL_NODES_MAC, mac, ETH_P_IPV6);
    frame.extend_from_slice(&[0x60, 0, 0, 0]);
    // The ICMPv6 body is 32 bytes, far below the 16-bit payload length limit.
    frame.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    frame.extend_from_slice(&[ICMPV6, ND_HOP_LIMIT]);
    frame.extend_from_slice(&vip.octets());
    frame.extend_from_slice(&ALL_NODES.octets());
    frame.extend_from_slice(&icmp);
    frame
}

fn ethernet_header(frame: &mut Vec<u8>, dst: MacAddr, src: MacAddr, ethertype: u16) {
    frame.extend_from_slice(&dst.0);
    frame.extend_from_slice(&src.0);
    frame.extend_from_slice(&ethertype.to_be_bytes());
}

/// The ICMPv6 checksum of `message` (checksum field zero) with the IPv6 pseudo-header
/// (RFC 8200 §8.1).
pub fn icmpv6_checksum(src: Ipv6Addr, dst: Ipv6Addr, message: &[u8]) -> u16 {
    // `message` is an ND message of a few dozen bytes, far below 2^32.
    let len = message.len() as u32;
    let mut sum = ones_sum(0, &src.octets());
    sum = ones_sum(sum, &dst.octets());
    sum = ones_sum(sum, &len.to_be_bytes());
    sum = ones_sum(sum, &[0, 0, 0, ICMPV6]);
    sum = ones_sum(sum, message);
    !fold(sum)
}

fn ones_sum(mut sum: u32, bytes: &[u8]) -> u32 {
    let mut words = bytes.chunks_exact(2);
    for word in &mut words {
        sum += u32::from(u16::from_be_bytes([word[0], word[1]]));
        sum = u32::from(fold(sum));
    }
    if let [last] = words.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([0x02, 0x11, 0x22, 0x33, 0x44, 0x55]);

    #[test]
    fn gratuitous_arp_names_the_vip_as_sender_and_target() {
        let vip = Ipv4Addr::new(10, 0, 0, 100);
        let f = gratuitous_arp(MAC, vip);
        assert_eq!(f.len(), MIN_FRAME);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[6..12], &MAC.0);
        assert_eq!(&f[12..14], &[0x08, 0x06]);
        assert_eq!(&f[14..22], &[0, 1, 8, 0, 6, 4, 0, 1]);
        assert_eq!(&f[22..28], &MAC.0);
        assert_eq!(&f[28..32], &vip.octets());
        assert_eq!(&f[32..38], &[0; 6]);
        assert_eq!(&f[38..42], &vip.octets());
        assert!(f[42..].iter().all(|&b| b == 0));
    }

    #[test]
    fn neighbor_advertisement_has_flags_option_and_a_verifying_checksum() {
        let vip: Ipv6Addr = "fd00::100".parse().unwrap();
        let f = unsolicited_na(MAC, vip, true);
        assert_eq!(f.len(), 14 + 40 + 32);
        assert_eq!(&f[0..6], &ALL_NODES_MAC.0);
        assert_eq!(&f[12..14], &[0x86, 0xdd]);
        let (ip, icmp) = f[14..].split_at(40);
        assert_eq!(ip[0] >> 4, 6);
        assert_eq!(u16::from_be_bytes([ip[4], ip[5]]), 32);
        assert_eq!((ip[6], ip[7]), (58, 255));
        assert_eq!(&ip[8..24], &vip.octets());
        assert_eq!(&ip[24..40], &ALL_NODES.octets());
        assert_eq!((icmp[0], icmp[1]), (136, 0));
        assert_eq!(icmp[4], 0xa0, "router and override set, solicited clear");
        assert_eq!(&icmp[8..24], &vip.octets());
        assert_eq!(&icmp[24..26], &[2, 1]);
        assert_eq!(&icmp[26..32], &MAC.0);
        // A receiver sums the message including the checksum; the result must be zero.
        assert_eq!(icmpv6_checksum(vip, ALL_NODES, icmp), 0);
        assert_eq!(unsolicited_na(MAC, vip, false)[14 + 40 + 4], 0x20);
    }

    #[test]
    fn checksum_matches_a_hand_computed_value() {
        // RFC 1071 example words, as a message after an all-zero pseudo-header's fixed part.
        let sum = icmpv6_checksum(
            Ipv6Addr::UNSPECIFIED,
            Ipv6Addr::UNSPECIFIED,
            &[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7],
        );
        // 0x0001 + 0xf203 + 0xf4f5 + 0xf6f7 = 0x2ddf0 -> 0xddf2; plus length 8 and next header 58.
        assert_eq!(sum, !(0xddf2u16 + 8 + 58));
    }
}

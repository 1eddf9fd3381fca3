//! Test support: a tiny pcap reader, the capture metadata from the `.txt` files and an
//! independent checksum oracle.
//!
//! The VRRP payloads are cut out of the frames here with fixed offsets, deliberately without the
//! crate's `ip` module, so the tests can compare that module against a second opinion.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::LazyLock;

use vigil_vrrp::packet::{Auth, Version};

/// `shared/` sits beside the repository clone, both here and in CI.
pub(crate) const VECTOR_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/vectors");

/// Every capture in [`VECTOR_DIR`], loaded once per test binary.
pub(crate) static CAPTURES: LazyLock<Vec<Capture>> = LazyLock::new(load_all);

/// One `NAME.pcap` with what its `NAME.txt` says it contains.
#[derive(Debug)]
pub(crate) struct Capture {
    pub(crate) name: String,
    pub(crate) expected: Expected,
    /// Every VRRP frame, in capture order.
    pub(crate) vrrp: Vec<VrrpFrame>,
    /// The first VRRP frame as tshark printed it in the `.txt` hex dump.
    pub(crate) first_frame_hex: Vec<u8>,
}

/// What the keepalived config in the `.txt` file says the advertisements carry.
#[derive(Debug)]
pub(crate) struct Expected {
    pub(crate) version: Version,
    pub(crate) vrid: u8,
    pub(crate) priority: u8,
    pub(crate) interval_cs: u16,
    pub(crate) addresses: Vec<IpAddr>,
    pub(crate) auth: Auth,
    /// VRRP lines in the tshark one-line summary.
    pub(crate) vrrp_frames: usize,
}

/// A VRRP frame split by fixed offsets.
#[derive(Debug, Clone)]
pub(crate) struct VrrpFrame {
    /// The whole Ethernet frame.
    pub(crate) frame: Vec<u8>,
    /// The IP packet (Ethernet header and link padding removed).
    pub(crate) ip: Vec<u8>,
    pub(crate) src: IpAddr,
    pub(crate) dst: IpAddr,
    /// The VRRP message.
    pub(crate) payload: Vec<u8>,
    /// True when an IPsec AH header sat between IPv4 and VRRP.
    pub(crate) via_ah: bool,
}

fn load_all() -> Vec<Capture> {
    let mut names: Vec<String> = std::fs::read_dir(VECTOR_DIR)
        .unwrap_or_else(|e| panic!("test vectors expected in {VECTOR_DIR}: {e}"))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".pcap").map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(
        names.len() >= 8,
        "expected the 8 keepalived captures, found {names:?}"
    );
    names
        .iter()
        .map(|n| load(Path::new(VECTOR_DIR), n))
        .collect()
}

fn load(dir: &Path, name: &str) -> Capture {
    let pcap = std::fs::read(dir.join(format!("{name}.pcap"))).expect("read pcap");
    let txt = std::fs::read_to_string(dir.join(format!("{name}.txt"))).expect("read txt");
    let frames = read_pcap(&pcap);
    let vrrp = frames.iter().filter_map(|f| split_vrrp(f)).collect();
    Capture {
        name: name.to_owned(),
        expected: parse_expected(&txt),
        vrrp,
        first_frame_hex: parse_hex_dump(&txt),
    }
}

/// Reads a classic libpcap file of Ethernet frames, in either byte order, µs or ns stamps.
pub(crate) fn read_pcap(bytes: &[u8]) -> Vec<Vec<u8>> {
    let be = match bytes.get(..4) {
        Some([0xa1, 0xb2, 0xc3 | 0x3c, 0xd4 | 0x4d]) => true,
        Some([0xd4 | 0x4d, 0xc3 | 0x3c, 0xb2, 0xa1]) => false,
        other => panic!("not a pcap file (magic {other:?})"),
    };
    let u32_at = |at: usize| {
        let raw: [u8; 4] = bytes[at..at + 4].try_into().expect("4 bytes");
        if be {
            u32::from_be_bytes(raw)
        } else {
            u32::from_le_bytes(raw)
        }
    };
    assert_eq!(u32_at(20), 1, "link type must be Ethernet");
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let incl = u32_at(at + 8) as usize;
        frames.push(bytes[at + 16..at + 16 + incl].to_vec());
        at += 16 + incl;
    }
    frames
}

/// Cuts a VRRP message out of an Ethernet frame; `None` for ARP, NA and the like.
pub(crate) fn split_vrrp(frame: &[u8]) -> Option<VrrpFrame> {
    let (ethertype, ip) = (u16::from_be_bytes([frame[12], frame[13]]), &frame[14..]);
    let (ip, src, dst, payload, via_ah) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let ip = &ip[..usize::from(u16::from_be_bytes([ip[2], ip[3]]))];
            let src = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[12..16]).ok()?));
            let dst = IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(&ip[16..20]).ok()?));
            match ip[9] {
                112 => (ip, src, dst, &ip[ihl..], false),
                51 if ip[ihl] == 112 => {
                    let ah_len = (usize::from(ip[ihl + 1]) + 2) * 4;
                    (ip, src, dst, &ip[ihl + ah_len..], true)
                }
                _ => return None,
            }
        }
        0x86dd if ip[6] == 112 => {
            let ip = &ip[..40 + usize::from(u16::from_be_bytes([ip[4], ip[5]]))];
            let src = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).ok()?));
            let dst = IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).ok()?));
            (ip, src, dst, &ip[40..], false)
        }
        _ => return None,
    };
    Some(VrrpFrame {
        frame: frame.to_vec(),
        ip: ip.to_vec(),
        src,
        dst,
        payload: payload.to_vec(),
        via_ah,
    })
}

/// Reads the keepalived config quoted in a `.txt` file and counts the VRRP summary lines.
fn parse_expected(txt: &str) -> Expected {
    let config: Vec<&str> = txt
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(str::trim)
        .collect();
    let value = |key: &str| {
        config
            .iter()
            .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
            .map_or_else(|| panic!("`{key}` missing from the config"), str::trim)
    };
    let number = |key: &str| value(key).parse::<u8>().expect("numeric config value");
    let version = match number("version") {
        2 => Version::V2,
        3 => Version::V3,
        v => panic!("config version {v}"),
    };
    let seconds: f64 = value("advert_int").parse().expect("advert_int");
    let auth = match config.iter().any(|l| l.starts_with("auth_type")) {
        false => Auth::None,
        true if value("auth_type") == "AH" => Auth::Ah,
        true => Auth::simple_text(value("auth_pass").as_bytes()).expect("8-octet password"),
    };
    let addresses = config
        .iter()
        .skip_while(|l| !l.starts_with("virtual_ipaddress"))
        .skip(1)
        .take_while(|l| !l.starts_with('}'))
        .map(|l| {
            l.split('/')
                .next()
                .and_then(|a| a.parse().ok())
                .expect("VIP")
        })
        .collect();
    Expected {
        version,
        vrid: number("virtual_router_id"),
        priority: number("priority"),
        interval_cs: (seconds * 100.0).round() as u16,
        addresses,
        auth,
        vrrp_frames: txt.lines().filter(|l| l.contains("|VRRP|")).count(),
    }
}

/// Reads the tshark hex dump after the "# hex of the first VRRP frame:" line.
fn parse_hex_dump(txt: &str) -> Vec<u8> {
    txt.lines()
        .skip_while(|l| !l.starts_with("# hex of"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .flat_map(|l| {
            // "0010  00 28 ...   ascii": hex octets sit between the offset and a 3-space gap.
            let hex = l.split("   ").next().unwrap_or_default();
            hex.split_whitespace()
                .skip(1)
                .map(|h| u8::from_str_radix(h, 16).expect("hex octet"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// RFC 1071 sum written the slow, obvious way: the oracle the codec is checked against.
pub(crate) fn oracle_checksum(message: &[u8], pseudo: Option<(IpAddr, IpAddr)>) -> u16 {
    let mut data = Vec::new();
    match pseudo {
        Some((IpAddr::V4(s), IpAddr::V4(d))) => {
            data.extend_from_slice(&s.octets());
            data.extend_from_slice(&d.octets());
            data.extend_from_slice(&[0, 112]);
            data.extend_from_slice(&(message.len() as u16).to_be_bytes());
        }
        Some((IpAddr::V6(s), IpAddr::V6(d))) => {
            data.extend_from_slice(&s.octets());
            data.extend_from_slice(&d.octets());
            data.extend_from_slice(&(message.len() as u32).to_be_bytes());
            data.extend_from_slice(&[0, 0, 0, 112]);
        }
        Some(_) => panic!("mixed families"),
        None => {}
    }
    let mut zeroed = message.to_vec();
    zeroed[6] = 0;
    zeroed[7] = 0;
    data.extend_from_slice(&zeroed);
    oracle_sum(data)
}

/// The checksum of an IPv4 header whose checksum field the caller zeroed.
pub(crate) fn oracle_ip_header(header: &[u8]) -> u16 {
    oracle_sum(header.to_vec())
}

fn oracle_sum(mut data: Vec<u8>) -> u16 {
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let mut sum: u32 = data
        .chunks(2)
        .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Rewrites the checksum of a (possibly mutated) VRRP message so decoding gets past it.
pub(crate) fn fix_checksum(message: &mut [u8], src: IpAddr, dst: IpAddr) {
    let pseudo = (message[0] >> 4 == 3).then_some((src, dst));
    let sum = oracle_checksum(message, pseudo);
    message[6..8].copy_from_slice(&sum.to_be_bytes());
}

/// A real packet of each flavour, for tests that mutate one.
pub(crate) fn sample(name: &str) -> VrrpFrame {
    CAPTURES
        .iter()
        .find(|c| c.name == name)
        .and_then(|c| c.vrrp.first().cloned())
        .unwrap_or_else(|| panic!("no VRRP frame in capture {name}"))
}

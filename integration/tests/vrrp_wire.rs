//! vigild's adverts as an independent dissector sees them: tshark (Wireshark's VRRP dissector)
//! captures on a lab peer and must agree on every field, including the checksum, the TTL /
//! hop limit of 255 and the multicast group (root and `tshark`; `SKIPPED` otherwise).

use std::io::Write as _;
use std::path::Path;

use vigil_integration::{Host, Lab, root_available};

use crate::vrrp_support::{Daemon, Node, SETTLE, VIP4, VIP6, wait_owner};

/// The fields asked of tshark, in output order.
const FIELDS: [&str; 14] = [
    "ip.ttl",
    "ipv6.hlim",
    "ip.dst",
    "ipv6.dst",
    "vrrp.version",
    "vrrp.type",
    "vrrp.virt_rtr_id",
    "vrrp.prio",
    "vrrp.addr_count",
    "vrrp.checksum.status",
    "vrrp.ip_addr",
    "vrrp.ipv6_addr",
    "vrrp.short_adver_int",
    "vrrp.adver_int",
];

/// Wireshark's "checksum good" value of a `*.checksum.status` field.
const CHECKSUM_GOOD: &str = "1";

fn tshark() -> Option<&'static str> {
    ["/usr/bin/tshark", "/usr/local/bin/tshark"]
        .into_iter()
        .find(|p| Path::new(p).is_file())
}

fn available(test: &str) -> Option<&'static str> {
    if !root_available(test) {
        return None;
    }
    let found = tshark();
    if found.is_none() {
        let line = format!("SKIPPED (needs tshark; scripts/install-deps installs it): {test}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
    found
}

/// Captures up to `count` VRRP packets on `host`'s lab interface (bounded to 8 s) and returns
/// one field map per packet.
fn capture(bin: &str, host: &Host, count: usize) -> Vec<Vec<(String, String)>> {
    let mut argv: Vec<String> = [
        bin,
        "-n",
        "-i",
        host.iface(),
        "-a",
        "duration:8",
        "-c",
        &count.to_string(),
        "-f",
        "ip proto 112 or ip6 proto 112",
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for f in FIELDS {
        argv.extend(["-e".to_owned(), f.to_owned()]);
    }
    let out = host.run(&argv).expect("run tshark");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            FIELDS
                .iter()
                .map(|f| (*f).to_owned())
                .zip(l.split('|').map(str::to_owned))
                .collect()
        })
        .collect()
}

fn field<'a>(packet: &'a [(String, String)], name: &str) -> &'a str {
    packet
        .iter()
        .find(|(k, _)| k == name)
        .map_or("", |(_, v)| v.as_str())
}

/// Starts one vigild master with `node` on lb1, captures its adverts on lb2 and checks them.
fn dissect(test: &str, node: &Node, expect: &[(&str, &str)]) {
    let Some(bin) = available(test) else { return };
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let daemon = Daemon::start(&lb1, node);
    let vip = node.vips[0].split('/').next().expect("vip");
    wait_owner(vip, &lb1, &[&lb1, &lb2], &[&daemon]);
    daemon.wait_state("master", SETTLE);
    let packets = capture(bin, &lb2, 3);
    assert!(
        packets.len() >= 2,
        "tshark saw {} VRRP packets from a running master; log:\n{}",
        packets.len(),
        daemon.process.log()
    );
    for p in &packets {
        for (name, want) in expect {
            assert_eq!(field(p, name), *want, "{name} in {p:?}");
        }
        assert_eq!(
            field(p, "vrrp.checksum.status"),
            CHECKSUM_GOOD,
            "Wireshark disagrees with our checksum: {p:?}"
        );
    }
}

#[test]
fn vrrpv3_ipv4_adverts_dissect_cleanly() {
    dissect(
        "vrrpv3_ipv4_adverts_dissect_cleanly",
        &Node {
            extra: "version = 3\n".into(),
            ..Node::new(150)
        },
        &[
            ("ip.ttl", "255"),
            ("ip.dst", "224.0.0.18"),
            ("vrrp.version", "3"),
            ("vrrp.type", "1"),
            ("vrrp.virt_rtr_id", "51"),
            ("vrrp.prio", "150"),
            ("vrrp.addr_count", "1"),
            ("vrrp.ip_addr", VIP4),
            // 100 ms in centiseconds.
            ("vrrp.short_adver_int", "10"),
        ],
    );
}

#[test]
fn vrrpv2_ipv4_adverts_dissect_cleanly() {
    dissect(
        "vrrpv2_ipv4_adverts_dissect_cleanly",
        &Node {
            extra: "version = 2\n".into(),
            interval: "1s",
            ..Node::new(120)
        },
        &[
            ("ip.ttl", "255"),
            ("ip.dst", "224.0.0.18"),
            ("vrrp.version", "2"),
            ("vrrp.type", "1"),
            ("vrrp.virt_rtr_id", "51"),
            ("vrrp.prio", "120"),
            ("vrrp.addr_count", "1"),
            ("vrrp.ip_addr", VIP4),
            ("vrrp.adver_int", "1"),
        ],
    );
}

#[test]
fn vrrpv3_ipv6_adverts_dissect_cleanly() {
    dissect(
        "vrrpv3_ipv6_adverts_dissect_cleanly",
        &Node {
            extra: "version = 3\n".into(),
            vips: vec![format!("{VIP6}/64")],
            ..Node::new(200)
        },
        &[
            ("ipv6.hlim", "255"),
            ("ipv6.dst", "ff02::12"),
            ("vrrp.version", "3"),
            ("vrrp.virt_rtr_id", "51"),
            ("vrrp.prio", "200"),
            ("vrrp.addr_count", "1"),
            ("vrrp.ipv6_addr", VIP6),
        ],
    );
}

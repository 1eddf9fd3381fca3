//! Gratuitous ARP and unsolicited NA on a real bridge: what `client`'s neighbour table does
//! with them.

use std::net::IpAddr;
use std::time::Duration;

use vigil_integration::{Lab, root_available, wait_for};
use vigil_net::{Announcer, MacAddr, iface};

use crate::support::{PROMPT, SILENCE, block_on_in, neighbour_is};

const STALE_MAC: &str = "02:00:00:00:00:99";

fn announce(host: &vigil_integration::Host, mac: Option<MacAddr>, addrs: &[IpAddr]) -> MacAddr {
    block_on_in(host, || async {
        let announcer = Announcer::open("vnet0", mac).expect("packet socket");
        announcer
            .burst(addrs, 3, Duration::from_millis(50))
            .await
            .expect("burst");
        announcer.mac()
    })
}

#[test]
fn gratuitous_arp_moves_existing_entries_and_creates_new_ones_only_with_arp_accept() {
    if !root_available(
        "gratuitous_arp_moves_existing_entries_and_creates_new_ones_only_with_arp_accept",
    ) {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "client"]).expect("lab");
    let (lb1, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("client").expect("client"),
    );
    let lb1_mac = lb1
        .enter(|| iface::mac("vnet0"))
        .expect("enter")
        .expect("lb1 MAC");

    // An entry pointing at the old master's MAC, and one address the client never heard of.
    client
        .ip(&[
            "neigh",
            "replace",
            "10.0.0.100",
            "lladdr",
            STALE_MAC,
            "dev",
            "vnet0",
            "nud",
            "stale",
        ])
        .expect("seed neighbour");
    let addrs = ["10.0.0.100".parse().unwrap(), "10.0.0.101".parse().unwrap()];
    assert_eq!(
        announce(&lb1, None, &addrs),
        lb1_mac,
        "the interface MAC by default"
    );
    let mac = lb1_mac.to_string();
    wait_for("client follows the GARP", PROMPT, || {
        neighbour_is(&client, "10.0.0.100", &mac)
    })
    .expect("existing entry updated");
    std::thread::sleep(SILENCE);
    let unknown = client
        .ip(&["neigh", "show", "10.0.0.101"])
        .expect("ip neigh");
    assert!(
        unknown.trim().is_empty(),
        "arp_accept=0 must not create entries: {unknown}"
    );

    // With arp_accept=1 the kernel creates entries from gratuitous ARP; a virtual MAC is announced
    // as given.
    client
        .sysctl(&[
            ("net.ipv4.conf.all.arp_accept", "1"),
            ("net.ipv4.conf.vnet0.arp_accept", "1"),
        ])
        .expect("arp_accept");
    let vmac = MacAddr::vrrp_v4(42);
    announce(&lb1, Some(vmac), &addrs[1..]);
    wait_for("client learns the new address", PROMPT, || {
        neighbour_is(&client, "10.0.0.101", "00:00:5e:00:01:2a")
    })
    .expect("entry created with the virtual MAC");
}

#[test]
fn unsolicited_na_overrides_an_existing_neighbour_entry() {
    if !root_available("unsolicited_na_overrides_an_existing_neighbour_entry") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "client"]).expect("lab");
    let (lb1, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("client").expect("client"),
    );
    client
        .ip(&[
            "-6",
            "neigh",
            "replace",
            "fd00::100",
            "lladdr",
            STALE_MAC,
            "dev",
            "vnet0",
            "nud",
            "stale",
        ])
        .expect("seed neighbour");
    let mac = announce(&lb1, None, &["fd00::100".parse().unwrap()]).to_string();
    wait_for("client follows the NA", PROMPT, || {
        neighbour_is(&client, "fd00::100", &mac)
    })
    .expect("existing entry overridden (checksum, hop limit and flags accepted)");
    let shown = client
        .ip(&["-6", "neigh", "show", "fd00::100"])
        .expect("ip neigh");
    assert!(
        shown.contains("router"),
        "the R flag marks the VIP as a router: {shown}"
    );
}

//! VRRP virtual-MAC (macvlan) interfaces created over rtnetlink.

use std::net::IpAddr;

use tokio::time::timeout;
use vigil_integration::{Host, Lab, root_available};
use vigil_net::{Family, MacAddr, Rtnl, SocketConfig, VrrpSocket, iface, vmac_name};
use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, Version};

use crate::support::{PROMPT, block_on_in, link_local, open_in, runtime};

/// `net.<family>.conf.<interface>.<key>` inside `host`.
fn sysctl(host: &Host, family: &str, interface: &str, key: &str) -> String {
    let path = format!("/proc/sys/net/{family}/conf/{interface}/{key}");
    host.enter(move || std::fs::read_to_string(path).expect("read sysctl"))
        .expect("enter host")
        .trim()
        .to_owned()
}

#[test]
fn a_vmac_carries_the_vrrp_mac_sends_adverts_and_is_deleted_once() {
    if !root_available("a_vmac_carries_the_vrrp_mac_sends_adverts_and_is_deleted_once") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let name = vmac_name(42, false);
    // IPv6 stays enabled in the namespace: the vmac itself must not autoconfigure, so that it
    // sends nothing by itself (no DAD, no MLD) and the only frame from its MAC below is the
    // advert.
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let parent = iface::ifindex("vnet0").expect("vnet0");
        let index = rtnl
            .create_vmac(parent, &name, MacAddr::vrrp_v4(42), Family::V4)
            .await
            .expect("create");
        assert_eq!(iface::ifindex(&name).expect("vmac exists"), index);
        assert_eq!(iface::mac(&name).expect("vmac MAC"), MacAddr::vrrp_v4(42));
        assert_eq!(
            iface::addresses(&name).expect("addresses"),
            Vec::<IpAddr>::new()
        );
        let again = rtnl
            .create_vmac(parent, &name, MacAddr::vrrp_v4(42), Family::V4)
            .await;
        assert_eq!(
            again
                .as_ref()
                .err()
                .and_then(vigil_net::NetError::raw_os_error),
            Some(libc::EEXIST),
            "{again:?}"
        );
    });
    let details = lb1.ip(&["-d", "link", "show", &name]).expect("ip link");
    assert!(details.contains("macvlan mode private"), "{details}");
    assert!(
        details.contains("vnet0") && details.contains(",UP"),
        "{details}"
    );
    // keepalived's settings: the vmac answers ARP only for its own addresses and receives for
    // addresses routed via the parent.
    assert_eq!(sysctl(&lb1, "ipv4", &name, "arp_ignore"), "1");
    assert_eq!(sysctl(&lb1, "ipv4", &name, "accept_local"), "1");
    assert_eq!(sysctl(&lb1, "ipv4", &name, "rp_filter"), "0");
    assert_eq!(sysctl(&lb1, "ipv6", &name, "disable_ipv6"), "1");

    // keepalived's use_vmac: adverts leave through the vmac, which has no address of its own,
    // so the source is the parent's primary address, given explicitly.
    let rt = runtime();
    let via_vmac = SocketConfig {
        source: Some(IpAddr::V4(lb1.ipv4())),
        join_group: false,
        ..SocketConfig::multicast(&name, Family::V4)
    };
    let sender = open_in(&lb1, &rt, || VrrpSocket::open(&via_vmac)).expect("socket on the vmac");
    let receiver = open_in(&lb2, &rt, || {
        VrrpSocket::open(&SocketConfig::multicast("vnet0", Family::V4))
    })
    .expect("lb2 socket");
    let advert = Advertisement {
        version: Version::V3,
        vrid: 42,
        priority: 100,
        max_advert_int: 100,
        auth: Auth::None,
        addresses: vec!["10.0.0.100".parse().unwrap()],
    };
    let bridge_knows_vmac = || {
        let fdb = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.switch_netns(),
                "bridge",
                "fdb",
                "show",
            ])
            .output()
            .expect("bridge fdb");
        String::from_utf8_lossy(&fdb.stdout).contains("00:00:5e:00:01:2a")
    };
    assert!(
        !bridge_knows_vmac(),
        "the vmac sent something before the advert"
    );
    rt.block_on(async {
        let group = sender.group();
        let message = advert
            .encode(sender.source(), group, ChecksumMode::default())
            .unwrap();
        sender.send(group, &message).await.expect("send via vmac");
        let got = timeout(PROMPT, receiver.recv())
            .await
            .expect("advert")
            .expect("received");
        assert_eq!(got.src, IpAddr::V4(lb1.ipv4()));
        let decoded =
            Advertisement::decode(&got.payload, got.src, got.dst, ChecksumMode::default());
        assert_eq!(decoded, Ok(advert.clone()));
    });
    // The advert left with the virtual MAC as source: the lab's bridge learned it.
    assert!(
        bridge_knows_vmac(),
        "the advert did not come from the virtual MAC"
    );
    // Close the socket bound to the vmac before deleting the interface under it.
    drop(sender);
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        assert!(rtnl.delete_vmac(&name).await.expect("delete"));
        assert!(!rtnl.delete_vmac(&name).await.expect("delete again"));
        assert_eq!(rtnl.link_index(&name).await.expect("lookup"), None);
    });
}

#[test]
fn an_ipv6_vmac_sends_from_the_parents_link_local_address() {
    if !root_available("an_ipv6_vmac_sends_from_the_parents_link_local_address") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let (ll1, _) = (link_local(&lb1), link_local(&lb2));
    let name = vmac_name(7, true);
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let parent = iface::ifindex("vnet0").expect("vnet0");
        rtnl.create_vmac(parent, &name, MacAddr::vrrp_v6(7), Family::V6)
            .await
            .expect("create");
        // Only the parent's link-local address: nothing generated from the virtual MAC.
        assert_eq!(
            iface::addresses(&name).expect("addresses"),
            vec![IpAddr::V6(ll1)]
        );
    });
    assert_eq!(sysctl(&lb1, "ipv6", &name, "addr_gen_mode"), "1");
    let rt = runtime();
    let sender = open_in(&lb1, &rt, || {
        VrrpSocket::open(&SocketConfig {
            join_group: false,
            ..SocketConfig::multicast(&name, Family::V6)
        })
    })
    .expect("socket on the vmac");
    assert_eq!(sender.source(), IpAddr::V6(ll1));
    let receiver = open_in(&lb2, &rt, || {
        VrrpSocket::open(&SocketConfig::multicast("vnet0", Family::V6))
    })
    .expect("lb2 socket");
    let advert = Advertisement {
        version: Version::V3,
        vrid: 7,
        priority: 100,
        max_advert_int: 100,
        auth: Auth::None,
        addresses: vec!["fd00::7".parse().unwrap()],
    };
    rt.block_on(async {
        let group = sender.group();
        let message = advert
            .encode(sender.source(), group, ChecksumMode::default())
            .unwrap();
        sender.send(group, &message).await.expect("send via vmac");
        let got = timeout(PROMPT, receiver.recv())
            .await
            .expect("advert")
            .expect("received");
        assert_eq!(got.src, IpAddr::V6(ll1));
        let decoded =
            Advertisement::decode(&got.payload, got.src, got.dst, ChecksumMode::default());
        assert_eq!(decoded, Ok(advert.clone()));
    });
    drop(sender);
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        assert!(rtnl.delete_vmac(&name).await.expect("delete"));
    });
}

#[test]
fn only_a_leftover_macvlan_is_deleted_and_the_parents_arp_settings_come_back() {
    if !root_available("only_a_leftover_macvlan_is_deleted_and_the_parents_arp_settings_come_back")
    {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    lb1.ip(&["link", "add", "vrrp.9", "type", "bridge"])
        .expect("a bridge named like a vmac");
    lb1.ip(&[
        "link", "add", "vrrp.8", "link", "vnet0", "type", "macvlan", "mode", "private",
    ])
    .expect("macvlan");
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let refused = rtnl.delete_leftover_vmac("vrrp.9").await;
        assert!(
            refused
                .as_ref()
                .is_err_and(|e| e.to_string().contains("is not a macvlan")),
            "{refused:?}"
        );
        assert!(rtnl.link_index("vrrp.9").await.expect("lookup").is_some());
        assert!(rtnl.delete_leftover_vmac("vrrp.8").await.expect("delete"));
        assert_eq!(rtnl.link_index("vrrp.8").await.expect("lookup"), None);
        assert!(!rtnl.delete_leftover_vmac("vrrp.7").await.expect("none"));
    });
    // Distinctive starting values, so that a restore to defaults would not pass for a restore.
    lb1.sysctl(&[
        ("net.ipv4.conf.vnet0.arp_ignore", "2"),
        ("net.ipv4.conf.vnet0.arp_announce", "2"),
    ])
    .expect("sysctl in the lab");
    let arp_announce = sysctl(&lb1, "ipv4", "vnet0", "arp_announce");
    let before = (
        sysctl(&lb1, "ipv4", "vnet0", "arp_ignore"),
        sysctl(&lb1, "ipv4", "vnet0", "arp_filter"),
    );
    assert_eq!(before.0, "2");
    let saved = block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let parent = iface::ifindex("vnet0").expect("vnet0");
        rtnl.quiet_parent_arp(parent).await.expect("quiet")
    });
    assert_eq!(sysctl(&lb1, "ipv4", "vnet0", "arp_ignore"), "1");
    assert_eq!(sysctl(&lb1, "ipv4", "vnet0", "arp_filter"), "1");
    // Set over netlink, the settings must not disturb their neighbours in the kernel's table.
    assert_eq!(
        sysctl(&lb1, "ipv4", "vnet0", "arp_announce"),
        arp_announce,
        "only the two settings change"
    );
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let parent = iface::ifindex("vnet0").expect("vnet0");
        rtnl.restore_parent_arp(parent, saved)
            .await
            .expect("restore");
    });
    assert_eq!(
        (
            sysctl(&lb1, "ipv4", "vnet0", "arp_ignore"),
            sysctl(&lb1, "ipv4", "vnet0", "arp_filter"),
        ),
        before
    );
}

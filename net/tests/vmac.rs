//! VRRP virtual-MAC (macvlan) interfaces created over rtnetlink.

use std::net::IpAddr;

use tokio::time::timeout;
use vigil_integration::{Lab, root_available};
use vigil_net::{Family, MacAddr, Rtnl, SocketConfig, VrrpSocket, iface, vmac_name};
use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, Version};

use crate::support::{PROMPT, block_on_in, open_in, runtime};

#[test]
fn a_vmac_carries_the_vrrp_mac_sends_adverts_and_is_deleted_once() {
    if !root_available("a_vmac_carries_the_vrrp_mac_sends_adverts_and_is_deleted_once") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let name = vmac_name(42, false);
    // No IPv6 on the vmac, so that it sends nothing by itself (no DAD, no MLD): the only frame
    // from its MAC below is the advert.
    lb1.sysctl(&[("net.ipv6.conf.default.disable_ipv6", "1")])
        .expect("sysctl");
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let parent = iface::ifindex("vnet0").expect("vnet0");
        let index = rtnl
            .create_vmac(parent, &name, MacAddr::vrrp_v4(42))
            .await
            .expect("create");
        assert_eq!(iface::ifindex(&name).expect("vmac exists"), index);
        assert_eq!(iface::mac(&name).expect("vmac MAC"), MacAddr::vrrp_v4(42));
        let again = rtnl.create_vmac(parent, &name, MacAddr::vrrp_v4(42)).await;
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

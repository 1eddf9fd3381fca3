//! VIP management over rtnetlink against a real kernel: lifetimes the kernel enforces,
//! refresh, IPv6 without DAD, labels, idempotent add and remove, listing.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use vigil_integration::{Lab, root_available};
use vigil_net::{AddressInfo, Lifetime, Rtnl, Vip, iface};

use crate::support::block_on_in;

async fn find(rtnl: &Rtnl, ifindex: u32, addr: IpAddr) -> Option<AddressInfo> {
    rtnl.addresses(ifindex)
        .await
        .expect("list addresses")
        .into_iter()
        .find(|a| a.addr == addr)
}

#[test]
fn a_leased_vip_vanishes_by_itself_unless_refreshed() {
    if !root_available("a_leased_vip_vanishes_by_itself_unless_refreshed") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let (kept, left): (IpAddr, IpAddr) =
        ("10.0.0.100".parse().unwrap(), "fd00::100".parse().unwrap());
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let ifindex = iface::ifindex("vnet0").expect("vnet0");
        let lease = Lifetime::Lease(Duration::from_secs(2));
        let kept_vip = Vip {
            lifetime: lease,
            ..Vip::new(kept, 32)
        };
        let left_vip = Vip {
            lifetime: lease,
            ..Vip::new(left, 128)
        };
        rtnl.add_address(ifindex, &kept_vip).await.expect("add v4");
        rtnl.add_address(ifindex, &left_vip).await.expect("add v6");
        let info = find(&rtnl, ifindex, kept).await.expect("v4 VIP listed");
        assert!(
            info.valid_lft.is_some_and(|l| l <= Duration::from_secs(2)),
            "{info:?}"
        );

        // Refresh one of them every half second for four seconds, twice the lease.
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(4) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            rtnl.refresh_lifetime(ifindex, &kept_vip)
                .await
                .expect("refresh");
        }
        assert!(
            find(&rtnl, ifindex, kept).await.is_some(),
            "refreshed VIP expired"
        );
        assert!(
            find(&rtnl, ifindex, left).await.is_none(),
            "unrefreshed VIP outlived its lease"
        );

        // A lease can be turned back into a permanent address.
        rtnl.add_address(ifindex, &Vip::new(kept, 32))
            .await
            .expect("make permanent");
        let info = find(&rtnl, ifindex, kept).await.expect("still there");
        assert_eq!(info.valid_lft, None, "{info:?}");
    });
    // And the kernel really dropped it: `ip` agrees.
    assert!(!lb1.has_address(left).expect("ip addr"));
    assert!(lb1.has_address(kept).expect("ip addr"));
}

#[test]
fn ipv6_vips_skip_dad_and_ipv4_vips_carry_their_label() {
    if !root_available("ipv6_vips_skip_dad_and_ipv4_vips_carry_their_label") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let (v4, v6): (IpAddr, IpAddr) = ("10.0.0.100".parse().unwrap(), "fd00::100".parse().unwrap());
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let ifindex = iface::ifindex("vnet0").expect("vnet0");
        let labelled = Vip {
            label: Some("vnet0:vip".to_owned()),
            ..Vip::new(v4, 24)
        };
        rtnl.add_address(ifindex, &labelled).await.expect("add v4");
        rtnl.add_address(ifindex, &Vip::new(v6, 64))
            .await
            .expect("add v6");
        let info = find(&rtnl, ifindex, v4).await.expect("v4 listed");
        assert_eq!(
            (info.prefix_len, info.label.as_deref()),
            (24, Some("vnet0:vip"))
        );
        let info = find(&rtnl, ifindex, v6).await.expect("v6 listed");
        assert!(info.nodad && !info.tentative, "{info:?}");
        assert_eq!(info.prefix_len, 64);
    });
    let shown = lb1
        .ip(&["-o", "addr", "show", "dev", "vnet0"])
        .expect("ip addr");
    assert!(
        shown
            .lines()
            .any(|l| l.contains("10.0.0.100/24") && l.contains("vnet0:vip")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .any(|l| l.contains("fd00::100/64") && !l.contains("tentative")),
        "{shown}"
    );
}

#[test]
fn add_and_remove_are_idempotent_and_listing_shows_leftovers() {
    if !root_available("add_and_remove_are_idempotent_and_listing_shows_leftovers") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    // A VIP "left over from a crashed run", added behind our back.
    lb1.add_address("10.0.0.200/32").expect("ip addr add");
    let leftover: IpAddr = "10.0.0.200".parse().unwrap();
    let vip: IpAddr = "fd00::100".parse().unwrap();
    block_on_in(&lb1, || async {
        let rtnl = Rtnl::connect().expect("netlink");
        let ifindex = iface::ifindex("vnet0").expect("vnet0");
        let all = rtnl.addresses(ifindex).await.expect("list");
        let own = all
            .iter()
            .find(|a| a.addr == IpAddr::V4(lb1.ipv4()))
            .expect("own address listed");
        assert_eq!(own.prefix_len, 24);
        assert!(own.permanent && own.valid_lft.is_none(), "{own:?}");
        assert!(all.iter().any(|a| a.addr == leftover && a.prefix_len == 32));
        assert!(
            rtnl.link_local_v6(ifindex)
                .await
                .expect("link-local")
                .is_some_and(|ll| ll.is_unicast_link_local())
        );

        for _ in 0..2 {
            rtnl.add_address(ifindex, &Vip::new(vip, 128))
                .await
                .expect("add twice");
        }
        assert_eq!(
            rtnl.addresses(ifindex)
                .await
                .expect("list")
                .iter()
                .filter(|a| a.addr == vip)
                .count(),
            1
        );
        assert!(
            rtnl.remove_address(ifindex, vip, 128)
                .await
                .expect("remove")
        );
        assert!(
            !rtnl
                .remove_address(ifindex, vip, 128)
                .await
                .expect("remove again")
        );
        assert!(
            rtnl.remove_address(ifindex, leftover, 32)
                .await
                .expect("remove leftover")
        );
        assert!(
            !rtnl
                .remove_address(ifindex, leftover, 32)
                .await
                .expect("remove leftover again")
        );
        assert!(find(&rtnl, ifindex, leftover).await.is_none());
        // Errors that are not "already absent" still surface.
        let missing = rtnl.add_address(9999, &Vip::new(vip, 128)).await;
        assert!(missing.is_err(), "{missing:?}");
    });
    assert!(!lb1.has_address(leftover).expect("ip addr"));
}

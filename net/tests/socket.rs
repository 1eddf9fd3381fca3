//! Raw VRRP sockets with the codec: adverts cross a real bridge, multicast and unicast, IPv4
//! and IPv6, and arrive with TTL 255, the sender's address and a verifying checksum.

use std::net::{IpAddr, Ipv4Addr};

use tokio::time::timeout;
use vigil_integration::{Lab, root_available};
use vigil_net::{Family, SocketConfig, VrrpSocket};
use vigil_vrrp::ip::{VRRP_GROUP_V4, VRRP_GROUP_V6};
use vigil_vrrp::packet::{Advertisement, Auth, ChecksumMode, DecodeErrorKind, Version};

use crate::support::{PROMPT, SILENCE, link_local, open_in, runtime};

fn advert(vip: IpAddr) -> Advertisement {
    Advertisement {
        version: Version::V3,
        vrid: 42,
        priority: 150,
        max_advert_int: 100,
        auth: Auth::None,
        addresses: vec![vip],
    }
}

/// Receives one packet within [`PROMPT`] and checks what every VRRP receiver must see.
async fn expect_advert(socket: &VrrpSocket, src: IpAddr, dst: IpAddr, sent: &Advertisement) {
    let got = timeout(PROMPT, socket.recv())
        .await
        .expect("an advert within the deadline")
        .expect("a well-formed packet");
    assert_eq!((got.src, got.dst), (src, dst));
    assert_eq!(got.ttl_or_hop_limit, 255, "RFC 5798 §5.1.1.3 / §5.1.2.3");
    assert_eq!(got.ifindex, socket.ifindex());
    let decoded = Advertisement::decode(&got.payload, got.src, got.dst, ChecksumMode::default())
        .expect("the advert decodes with a verifying checksum");
    assert_eq!(&decoded, sent);
}

/// Sends `advert` to the group from `socket`'s source.
async fn send_from(socket: &VrrpSocket, advert: &Advertisement) {
    let group = socket.group();
    let message = advert
        .encode(socket.source(), group, ChecksumMode::default())
        .expect("encode");
    socket.send(group, &message).await.expect("send");
}

#[test]
fn ipv4_adverts_cross_by_multicast_and_unicast_but_never_come_back() {
    if !root_available("ipv4_adverts_cross_by_multicast_and_unicast_but_never_come_back") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let rt = runtime();
    let config = SocketConfig::multicast("vnet0", Family::V4);
    let s1 = open_in(&lb1, &rt, || VrrpSocket::open(&config)).expect("lb1 socket");
    let s2 = open_in(&lb2, &rt, || VrrpSocket::open(&config)).expect("lb2 socket");
    let unicast_only = SocketConfig {
        join_group: false,
        ..config.clone()
    };
    let u2 = open_in(&lb2, &rt, || VrrpSocket::open(&unicast_only)).expect("lb2 unicast socket");
    assert_eq!(
        s1.source(),
        IpAddr::V4(lb1.ipv4()),
        "primary address by default"
    );

    let group = IpAddr::V4(VRRP_GROUP_V4);
    let (src, peer) = (IpAddr::V4(lb1.ipv4()), IpAddr::V4(lb2.ipv4()));
    let sent = advert("10.0.0.100".parse().unwrap());
    rt.block_on(async {
        let multicast = sent.encode(src, group, ChecksumMode::default()).unwrap();
        s1.send(group, &multicast).await.expect("multicast send");
        expect_advert(&s2, src, group, &sent).await;
        // lb2 has joined the group (through s2), but u2 did not and must not hear it.
        assert!(
            timeout(SILENCE, u2.recv()).await.is_err(),
            "a unicast-only socket heard a multicast advert"
        );

        let unicast = sent.encode(src, peer, ChecksumMode::default()).unwrap();
        s1.send(peer, &unicast).await.expect("unicast send");
        expect_advert(&s2, src, peer, &sent).await;
        expect_advert(&u2, src, peer, &sent).await;

        // Multicast loop-back is off: the sender hears neither of its packets.
        assert!(
            timeout(SILENCE, s1.recv()).await.is_err(),
            "lb1 heard itself"
        );
    });
    assert_eq!(
        s1.own_dropped(),
        0,
        "loop-back off means nothing even reaches the filter"
    );
}

#[test]
fn ipv4_packets_from_our_own_address_are_dropped() {
    if !root_available("ipv4_packets_from_our_own_address_are_dropped") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    // The kernel itself drops packets claiming one of our addresses as martians unless
    // accept_local is on; turn it on so that the socket's own filter is what gets tested.
    lb1.sysctl(&[
        ("net.ipv4.conf.all.accept_local", "1"),
        ("net.ipv4.conf.vnet0.accept_local", "1"),
    ])
    .expect("accept_local");
    let rt = runtime();
    let multicast = SocketConfig::multicast("vnet0", Family::V4);
    let listener = open_in(&lb1, &rt, || VrrpSocket::open(&multicast)).expect("lb1 socket");
    // An address lb1 gains after the socket opened: unknown to the filter until a refresh.
    let later: Ipv4Addr = "10.0.0.50".parse().unwrap();
    lb1.add_address("10.0.0.50/24").expect("ip addr add");
    // lb2 forges lb1's addresses as source (IP_HDRINCL sends them as given).
    let forging = |addr| SocketConfig {
        source: Some(IpAddr::V4(addr)),
        ..multicast.clone()
    };
    let as_primary = open_in(&lb2, &rt, || VrrpSocket::open(&forging(lb1.ipv4()))).expect("forger");
    let as_later = open_in(&lb2, &rt, || VrrpSocket::open(&forging(later))).expect("forger");
    let honest = open_in(&lb2, &rt, || VrrpSocket::open(&multicast)).expect("lb2 socket");

    let group = IpAddr::V4(VRRP_GROUP_V4);
    let sent = advert("10.0.0.100".parse().unwrap());
    rt.block_on(async {
        send_from(&as_primary, &sent).await;
        send_from(&honest, &sent).await;
        expect_advert(&listener, IpAddr::V4(lb2.ipv4()), group, &sent).await;
        assert_eq!(
            listener.own_dropped(),
            1,
            "the forged packet was filtered, not lost"
        );

        send_from(&as_later, &sent).await;
        expect_advert(&listener, IpAddr::V4(later), group, &sent).await;
        lb1.enter(|| listener.refresh_own_addresses())
            .expect("enter lb1")
            .expect("refresh");
        send_from(&as_later, &sent).await;
        send_from(&honest, &sent).await;
        expect_advert(&listener, IpAddr::V4(lb2.ipv4()), group, &sent).await;
    });
    assert_eq!(
        listener.own_dropped(),
        2,
        "after the refresh the new address is ours"
    );
}

#[test]
fn ipv6_adverts_use_the_link_local_source_and_carry_hop_limit_255() {
    if !root_available("ipv6_adverts_use_the_link_local_source_and_carry_hop_limit_255") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let (ll1, ll2) = (link_local(&lb1), link_local(&lb2));
    let rt = runtime();
    let config = SocketConfig::multicast("vnet0", Family::V6);
    let s1 = open_in(&lb1, &rt, || VrrpSocket::open(&config)).expect("lb1 socket");
    let s2 = open_in(&lb2, &rt, || VrrpSocket::open(&config)).expect("lb2 socket");
    assert_eq!(
        s1.source(),
        IpAddr::V6(ll1),
        "RFC 5798 §5.1.2.1: link-local source"
    );

    let group = IpAddr::V6(VRRP_GROUP_V6);
    let src = IpAddr::V6(ll1);
    let sent = advert("fe80::100".parse().unwrap());
    rt.block_on(async {
        let multicast = sent.encode(src, group, ChecksumMode::default()).unwrap();
        s1.send(group, &multicast).await.expect("multicast send");
        expect_advert(&s2, src, group, &sent).await;

        // Unicast peers may be given by link-local or by global address.
        for peer in [IpAddr::V6(ll2), IpAddr::V6(lb2.ipv6())] {
            let unicast = sent.encode(src, peer, ChecksumMode::default()).unwrap();
            s1.send(peer, &unicast).await.expect("unicast send");
            expect_advert(&s2, src, peer, &sent).await;
        }

        // IPV6_CHECKSUM is off: a bad checksum reaches the daemon, which counts it (RFC 5798
        // §7.1), instead of the kernel dropping the packet unseen.
        let mut corrupt = sent.encode(src, group, ChecksumMode::default()).unwrap();
        corrupt[6] ^= 0xff;
        s1.send(group, &corrupt).await.expect("send corrupt");
        let got = timeout(PROMPT, s2.recv())
            .await
            .expect("delivered")
            .expect("received");
        let err = Advertisement::decode(&got.payload, got.src, got.dst, ChecksumMode::default())
            .expect_err("the checksum was corrupted");
        assert!(
            matches!(err.kind, DecodeErrorKind::BadChecksum { .. }),
            "{err}"
        );

        assert!(
            timeout(SILENCE, s1.recv()).await.is_err(),
            "lb1 heard itself"
        );
    });
    assert_eq!(
        s1.own_dropped(),
        0,
        "loop-back off means nothing even reaches the filter"
    );
}

#[test]
fn a_socket_on_a_missing_interface_is_an_error_not_a_panic() {
    if !root_available("a_socket_on_a_missing_interface_is_an_error_not_a_panic") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let rt = runtime();
    let result = open_in(&lb1, &rt, || {
        VrrpSocket::open(&SocketConfig::multicast("eth0", Family::V4))
    });
    assert!(
        matches!(result, Err(vigil_net::NetError::NoSuchInterface(ref name)) if name == "eth0"),
        "{result:?}"
    );
}

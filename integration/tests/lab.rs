//! The lab's network: connectivity, partitions, multicast, link failure, parallel labs.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::time::Duration;

use vigil_integration::{Host, Lab, root_available, wait_for};

use crate::support::{CUT, REACH, blocked, leftovers, reaches};

#[test]
fn three_hosts_exchange_packets_and_a_cut_host_heals() {
    if !root_available("three_hosts_exchange_packets_and_a_cut_host_heals") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
    let hosts = lab.hosts();
    let [lb1, lb2, witness] = &hosts[..] else {
        panic!("three hosts expected, got {hosts:?}");
    };
    assert_eq!(lb1.ipv4(), Ipv4Addr::new(10, 0, 0, 1));
    for (a, b) in [(lb1, lb2), (lb2, witness), (witness, lb1)] {
        assert!(reaches(&lab, a, b), "{} -> {}", a.name(), b.name());
        assert!(reaches(&lab, b, a), "{} -> {}", b.name(), a.name());
    }

    // IPv6 ULA addresses work at once (no DAD wait).
    assert!(lab.udp_exchange_v6(lb1, witness, REACH).expect("v6 probe"));

    lab.cut(witness).expect("cut");
    assert!(lab.is_cut(witness, lb1) && !lab.is_cut(lb1, lb2));
    assert!(blocked(&lab, witness, lb1), "witness still reaches lb1");
    assert!(blocked(&lab, witness, lb2), "witness still reaches lb2");
    assert!(reaches(&lab, lb1, lb2), "lb1 and lb2 were cut too");
    assert!(
        !lab.udp_exchange_v6(lb1, witness, CUT).expect("v6 probe"),
        "IPv6 crossed the cut"
    );
    // A cut is a filter, not a pulled cable: the host keeps its carrier.
    let link = witness
        .ip(&["-br", "link", "show", "vnet0"])
        .expect("ip link");
    assert!(link.contains("LOWER_UP"), "{link}");

    lab.heal(witness).expect("heal");
    assert!(reaches(&lab, witness, lb1), "witness -> lb1 after heal");
    assert!(reaches(&lab, lb2, witness), "lb2 -> witness after heal");
}

#[test]
fn pairwise_cut_keeps_both_sides_on_the_witness_multicast_included() {
    if !root_available("pairwise_cut_keeps_both_sides_on_the_witness_multicast_included") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let lb2 = lab.host("lb2").expect("lb2");
    let witness = lab.host("witness").expect("witness");

    lab.cut_between(&lb1, &lb2).expect("cut_between");
    assert!(blocked(&lab, &lb1, &lb2), "lb1 still reaches lb2");
    assert!(reaches(&lab, &lb1, &witness), "lb1 lost the witness");
    assert!(reaches(&lab, &witness, &lb2), "lb2 lost the witness");
    // VRRP's group: the bridge floods it to every port the cut allows.
    let heard = multicast_from(&lb1, &[&lb2, &witness]);
    assert_eq!(
        heard,
        [false, true],
        "224.0.0.18 from lb1 heard by [lb2, witness]"
    );

    lab.heal_between(&lb2, &lb1).expect("heal_between");
    assert!(reaches(&lab, &lb2, &lb1), "lb2 -> lb1 after heal");
    assert_eq!(multicast_from(&lb1, &[&lb2, &witness]), [true, true]);

    lab.cut(&lb2).expect("cut");
    lab.cut_between(&lb1, &witness).expect("cut_between");
    lab.heal_all().expect("heal_all");
    assert!(reaches(&lab, &lb2, &witness) && reaches(&lab, &witness, &lb1));
}

/// Sends UDP datagrams from `sender` to 224.0.0.18 and reports which listeners got one.
fn multicast_from(sender: &Host, listeners: &[&Host]) -> Vec<bool> {
    const GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
    let sockets: Vec<UdpSocket> = listeners
        .iter()
        .map(|host| {
            let socket = host
                .udp_socket(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 5018)))
                .expect("bind");
            socket
                .join_multicast_v4(&GROUP, &host.ipv4())
                .expect("join");
            socket.set_nonblocking(true).expect("nonblocking");
            socket
        })
        .collect();
    let tx = sender
        .udp_socket(SocketAddr::from((sender.ipv4(), 0)))
        .expect("bind tx");
    let mut heard = vec![false; sockets.len()];
    for _ in 0..20 {
        tx.send_to(b"advert", (GROUP, 5018))
            .expect("send to 224.0.0.18");
        std::thread::sleep(Duration::from_millis(20));
        for (socket, heard) in sockets.iter().zip(&mut heard) {
            let mut buf = [0u8; 16];
            *heard |= matches!(socket.recv_from(&mut buf), Ok((6, _)));
        }
    }
    heard
}

#[test]
fn link_down_takes_the_carrier_away_and_link_up_restores_it() {
    if !root_available("link_down_takes_the_carrier_away_and_link_up_restores_it") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    lab.link_down(&lb1).expect("link_down");
    wait_for("lb1 to lose carrier", REACH, || {
        lb1.ip(&["-br", "link", "show", "vnet0"])
            .is_ok_and(|out| out.contains("NO-CARRIER"))
    })
    .expect("carrier");
    assert!(blocked(&lab, &lb1, &lb2));
    lab.link_up(&lb1).expect("link_up");
    assert!(reaches(&lab, &lb1, &lb2));
}

#[test]
fn host_sysctls_are_explicit_and_the_real_server_helper_applies_lvs_dr_settings() {
    if !root_available(
        "host_sysctls_are_explicit_and_the_real_server_helper_applies_lvs_dr_settings",
    ) {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "rs1"]).expect("lab");
    let (lb1, rs1) = (lab.host("lb1").expect("lb1"), lab.host("rs1").expect("rs1"));
    let read = |host: &Host, key: &str| {
        host.run(&["sysctl", "-n", key])
            .expect("sysctl")
            .trim()
            .to_owned()
    };
    assert_eq!(read(&lb1, "net.ipv4.conf.vnet0.rp_filter"), "0");
    assert_eq!(read(&lb1, "net.ipv4.conf.all.arp_ignore"), "0");

    let vip = "10.0.0.100".parse().expect("vip");
    rs1.make_real_server(vip).expect("real server");
    assert_eq!(read(&rs1, "net.ipv4.conf.all.arp_ignore"), "1");
    assert_eq!(read(&rs1, "net.ipv4.conf.vnet0.arp_announce"), "2");
    assert!(rs1.has_address(vip).expect("addr"));
    assert!(!lb1.has_address(vip).expect("addr"));
    // The VIP is on lo, so lb1's probe to it must stay unanswered (no ARP reply for it).
    lb1.add_address("10.0.0.200/24").expect("secondary");
    assert!(
        lb1.has_address("10.0.0.200".parse().expect("ip"))
            .expect("addr")
    );

    let switch = lab.switch_netns();
    let bridge_nf = Command::new("ip")
        .args([
            "netns",
            "exec",
            &switch,
            "sysctl",
            "-n",
            "-e",
            "net.bridge.bridge-nf-call-iptables",
        ])
        .output()
        .expect("sysctl");
    let value = String::from_utf8_lossy(&bridge_nf.stdout).trim().to_owned();
    assert!(
        value.is_empty() || value == "0",
        "bridge-nf-call-iptables = {value}"
    );
}

#[test]
fn two_labs_in_parallel_do_not_collide() {
    if !root_available("two_labs_in_parallel_do_not_collide") {
        return;
    }
    let build = || Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(build);
        let b = s.spawn(build);
        (a.join().expect("lab a"), b.join().expect("lab b"))
    });
    assert_ne!(a.id(), b.id());
    let (a1, a2) = (a.host("lb1").expect("a lb1"), a.host("lb2").expect("a lb2"));
    let (b1, b2) = (b.host("lb1").expect("b lb1"), b.host("lb2").expect("b lb2"));
    assert_ne!(a1.netns(), b1.netns());
    assert!(b.cut(&a1).is_err(), "lab b accepted a host of lab a");
    a.cut(&a1).expect("cut in lab a");
    assert!(blocked(&a, &a1, &a2));
    assert!(reaches(&b, &b1, &b2), "a cut in lab a reached lab b");
    let a_id = a.id().clone();
    drop(a);
    assert_eq!(leftovers(&a_id, &[]), Vec::<String>::new());
    assert!(reaches(&b, &b2, &b1), "dropping lab a broke lab b");
}

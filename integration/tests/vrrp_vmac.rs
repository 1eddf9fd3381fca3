//! `use_vmac` between real vigild processes in the lab (root and `tshark`; `SKIPPED` otherwise):
//! the master's adverts and ARP replies carry the virtual router MAC, a failover keeps the
//! client's ARP entry valid, and the macvlan comes and goes with the daemon.

use std::net::IpAddr;
use std::thread;
use std::time::Duration;

use nix::sys::signal::Signal;
use vigil_integration::{Host, Lab, root_available, wait_for};

use crate::vrrp_support::{
    Daemon, Node, Responders, SETTLE, VIP4, holds, wait_answer, wait_owner, who_answers,
};

/// vrid 51 (the tests' instance) as RFC 5798 §7.3 makes it a MAC.
const VMAC: &str = "00:00:5e:00:01:33";
/// keepalived's default name for it.
const VMAC_IFACE: &str = "vrrp.51";

fn vip4() -> IpAddr {
    VIP4.parse().expect("address")
}

fn node(priority: u8) -> Node {
    Node {
        extra: "use_vmac = true\n".into(),
        ..Node::new(priority)
    }
}

/// Runs tshark on `host`'s lab interface for at most `seconds` (or `count` packets) with the
/// capture filter `filter`, printing `fields` separated by `|`, one line per packet.
fn capture(host: &Host, filter: &str, count: usize, seconds: u32, fields: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = [
        "tshark",
        "-n",
        "-i",
        host.iface(),
        "-a",
        &format!("duration:{seconds}"),
        "-c",
        &count.to_string(),
        "-f",
        filter,
        "-T",
        "fields",
        "-E",
        "separator=|",
    ]
    .iter()
    .map(ToString::to_string)
    .collect();
    for f in fields {
        argv.extend(["-e".to_owned(), (*f).to_owned()]);
    }
    let out = host.run(&argv).expect("run tshark");
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

/// The MACs (Ethernet source, ARP sender) of the ARP replies for the VIP that `client` gets
/// while it resolves the VIP afresh, again and again, for up to 10 s (3 replies suffice).
fn arp_replies_for_vip(client: &Host) -> Vec<String> {
    let done = std::sync::atomic::AtomicBool::new(false);
    thread::scope(|s| {
        let capture = s.spawn(|| {
            let replies = capture(
                client,
                &format!("arp and arp[6:2] = 2 and arp[14:4] = 0x{:08x}", vip_u32()),
                3,
                10,
                &["eth.src", "arp.src.hw_mac"],
            );
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            replies
        });
        // tshark starts slowly on a loaded machine: keep asking until it has seen enough.
        while !done.load(std::sync::atomic::Ordering::Relaxed) {
            client
                .ip(&["neigh", "flush", "to", VIP4])
                .expect("flush the client's neighbour entry");
            // Any traffic to the VIP resolves it; the responders answer UDP.
            let _ = who_answers(client, vip4());
            thread::sleep(Duration::from_millis(300));
        }
        capture.join().expect("capture thread")
    })
}

fn vip_u32() -> u32 {
    let IpAddr::V4(v4) = vip4() else {
        unreachable!("VIP4 is IPv4")
    };
    u32::from(v4)
}

/// The MAC the client's neighbour table holds for the VIP, if any.
fn client_mac_for_vip(client: &Host) -> Option<String> {
    let out = client.ip(&["neigh", "show", VIP4]).ok()?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "lladdr")?;
    words.get(at + 1).map(|m| (*m).to_owned())
}

fn has_link(host: &Host, name: &str) -> bool {
    host.ip(&["link", "show", name]).is_ok()
}

fn ifindex(host: &Host, name: &str) -> Option<u32> {
    let out = host.ip(&["-o", "link", "show", name]).ok()?;
    out.split(':').next()?.trim().parse().ok()
}

/// The scheduling policy of each thread of `pid` named like a VRRP unit thread.
fn vrrp_thread_policies(pid: u32) -> Vec<u32> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("tasks");
    tasks
        .filter_map(Result::ok)
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with("vrrp "))
        })
        .filter_map(|t| {
            let sched = std::fs::read_to_string(t.path().join("sched")).ok()?;
            sched
                .lines()
                .find(|l| l.starts_with("policy"))?
                .split(':')
                .nth(1)?
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn the_virtual_mac_answers_for_the_vip_and_moves_with_it() {
    let test = "the_virtual_mac_answers_for_the_vip_and_moves_with_it";
    if !root_available(test) {
        return;
    }
    if !std::path::Path::new("/usr/bin/tshark").is_file() {
        use std::io::Write as _;
        let line = format!("SKIPPED (needs tshark; scripts/install-deps installs it): {test}\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "client"]).expect("lab");
    let (lb1, lb2, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("lb2").expect("lb2"),
        lab.host("client").expect("client"),
    );
    // What a SIGKILLed run leaves on lb2: its vmac, still holding the VIP.
    lb2.ip(&[
        "link", "add", VMAC_IFACE, "link", "vnet0", "address", VMAC, "type", "macvlan", "mode",
        "private",
    ])
    .expect("leftover vmac");
    lb2.ip(&["addr", "add", &format!("{VIP4}/24"), "dev", VMAC_IFACE])
        .expect("leftover VIP");
    let leftover = ifindex(&lb2, VMAC_IFACE).expect("leftover index");

    let _responders = Responders::start(&[&lb1, &lb2], "0.0.0.0".parse().expect("any"));
    // lb1's VRRP thread runs under SCHED_RR by default; lb2 turns it off.
    let d1 = Daemon::start(&lb1, &node(150));
    let d2 = Daemon::start(
        &lb2,
        &Node {
            global: "vrrp_rt_priority = 0\n".into(),
            ..node(100)
        },
    );
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
    wait_answer(&client, vip4(), "lb1", &[&d1, &d2]);

    assert_eq!(
        vrrp_thread_policies(d1.process.pid()),
        vec![2],
        "lb1's VRRP unit thread is SCHED_RR (2) by default"
    );
    assert!(
        d1.process.log().contains("VRRP threads run under SCHED_RR"),
        "{}",
        d1.process.log()
    );
    assert_eq!(
        vrrp_thread_policies(d2.process.pid()),
        vec![0],
        "lb2's is SCHED_OTHER (0) with vrrp_rt_priority = 0"
    );

    // The VIP lives on lb1's vmac; lb2 made a fresh vmac of its own, without the VIP.
    let on_vmac = lb1
        .ip(&["-o", "addr", "show", "dev", VMAC_IFACE])
        .expect("lb1 vmac");
    assert!(on_vmac.contains(VIP4), "{on_vmac}");
    assert!(has_link(&lb2, VMAC_IFACE), "the backup has its vmac ready");
    assert_ne!(
        ifindex(&lb2, VMAC_IFACE),
        Some(leftover),
        "the leftover vmac was deleted and made anew"
    );
    assert!(!holds(&lb2, VIP4), "the leftover VIP went with it");

    // The master's adverts leave from the virtual MAC.
    let adverts = capture(&client, "ip proto 112", 3, 8, &["eth.src", "ip.src"]);
    assert!(adverts.len() >= 2, "adverts seen: {adverts:?}");
    let from_lb1 = format!("{VMAC}|{}", lb1.ipv4());
    assert!(
        adverts.iter().all(|a| *a == from_lb1),
        "adverts must come from {from_lb1}: {adverts:?}"
    );

    // ARP for the VIP is answered by the virtual MAC only (not also by lb1's own interface).
    let replies = arp_replies_for_vip(&client);
    assert!(!replies.is_empty(), "no ARP reply for the VIP");
    let from_vmac = format!("{VMAC}|{VMAC}");
    assert!(
        replies.iter().all(|r| *r == from_vmac),
        "ARP replies for the VIP: {replies:?}"
    );
    assert_eq!(client_mac_for_vip(&client).as_deref(), Some(VMAC));

    // A clean stop of lb1 hands over; the client reaches lb2 with its ARP entry unchanged.
    d1.process.signal(Signal::SIGTERM).expect("SIGTERM");
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &[&d1, &d2]);
    wait_answer(&client, vip4(), "lb2", &[&d2]);
    assert_eq!(client_mac_for_vip(&client).as_deref(), Some(VMAC));
    let status = d1.process.wait(SETTLE).expect("lb1 exits");
    assert!(status.success(), "{}", d1.process.log());
    assert!(!has_link(&lb1, VMAC_IFACE), "a clean stop deletes the vmac");

    let adverts = capture(&client, "ip proto 112", 3, 8, &["eth.src", "ip.src"]);
    let from_lb2 = format!("{VMAC}|{}", lb2.ipv4());
    assert!(
        adverts.len() >= 2 && adverts.iter().all(|a| *a == from_lb2),
        "adverts must come from {from_lb2}: {adverts:?}"
    );
    let replies = arp_replies_for_vip(&client);
    assert!(
        !replies.is_empty() && replies.iter().all(|r| *r == from_vmac),
        "ARP replies for the VIP after failover: {replies:?}"
    );

    d2.process.signal(Signal::SIGTERM).expect("SIGTERM");
    let status = d2.process.wait(SETTLE).expect("lb2 exits");
    assert!(status.success(), "{}", d2.process.log());
    let gone = wait_for("lb2's vmac deleted", SETTLE, || !has_link(&lb2, VMAC_IFACE));
    assert!(gone.is_ok(), "a clean stop deletes the vmac");
    assert!(!holds(&lb2, VIP4));
}

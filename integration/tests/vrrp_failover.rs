//! VRRP failover between real vigild processes in the lab (root; `SKIPPED` otherwise).
//!
//! Two load balancers (lb1 preferred) share a VIP; a client finds out which one answers for it
//! with a UDP responder on each. The lab prints the daemons' logs when a wait fails.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use vigil_integration::{Lab, root_available};

use crate::vrrp_support::{
    Daemon, Node, Responders, SETTLE, VIP4, VIP6, holds, wait_answer, wait_owner,
};

fn vip4() -> IpAddr {
    VIP4.parse().expect("address")
}

#[test]
fn one_master_is_elected_and_a_sigkilled_master_is_replaced_then_preempts_back() {
    if !root_available("vrrp: election and SIGKILL failover") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "client"]).expect("lab");
    let (lb1, lb2, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("lb2").expect("lb2"),
        lab.host("client").expect("client"),
    );
    let _responders = Responders::start(&[&lb1, &lb2], "0.0.0.0".parse().expect("any"));
    let d1 = Daemon::start(&lb1, &Node::new(150));
    let d2 = Daemon::start(&lb2, &Node::new(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d1.wait_state("master", SETTLE);
    d2.wait_state("backup", SETTLE);
    wait_answer(&client, vip4(), "lb1", &[&d1, &d2]);

    // lb2 may have been master for a moment at start (it can come up first): count from here.
    let takeover = "vigil_vrrp_transitions_total{instance=\"vi_web\",from=\"backup\",to=\"master\",reason=\"master_down\"}";
    let takeovers = d2.metric(takeover).unwrap_or(0.0);

    // A crash: no priority-0 advert, the VIP stays on the dead node; lb2 must take over after
    // Master_Down_Interval and its gratuitous ARPs must redirect the client.
    d1.process.kill().expect("SIGKILL lb1");
    d2.wait_state("master", SETTLE);
    assert!(holds(&lb2, VIP4));
    wait_answer(&client, vip4(), "lb2", &[&d2]);
    assert!(
        holds(&lb1, VIP4),
        "a SIGKILLed vigild cannot remove its VIP"
    );
    assert!(
        d2.process.log().contains("master_down"),
        "the takeover's reason is not in the log:\n{}",
        d2.process.log()
    );
    // The same story in the metrics: lb2 heard lb1's adverts, took over for that reason, and
    // now advertises itself.
    let series = |name: &str| format!("{name}{{instance=\"vi_web\"}}");
    assert_eq!(
        d2.metric(takeover),
        Some(takeovers + 1.0),
        "{}",
        d2.process.log()
    );
    assert!(
        d2.metric(&series("vigil_vrrp_adverts_received_total"))
            .is_some_and(|n| n > 0.0)
    );
    assert!(
        d2.metric(&series("vigil_vrrp_adverts_sent_total"))
            .is_some_and(|n| n > 0.0)
    );
    assert_eq!(
        d2.metric("vigil_vrrp_state{instance=\"vi_web\",state=\"master\"}"),
        Some(1.0)
    );
    // Its unit task keeps proving progress to the watchdog (it beats every 500 ms).
    let silent = d2.metric("vigil_liveness_silent_seconds{component=\"vrrp unit vi_web\"}");
    assert!(silent.is_some_and(|s| s < 2.0), "{silent:?}");

    // Restarted, lb1 first removes the leftover VIP, then preempts (higher priority).
    let d1 = Daemon::start(&lb1, &Node::new(150));
    d1.process
        .wait_for_output("removed VIPs left over", SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", d1.process.log()));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
    wait_answer(&client, vip4(), "lb1", &[&d1, &d2]);
}

#[test]
fn sigterm_hands_the_vip_over_after_skew_time_only() {
    if !root_available("vrrp: SIGTERM handover") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    // 1 s adverts: Master_Down_Interval ≈ 3.6 s for lb2, its skew time ≈ 0.6 s.
    let slow = |priority| Node {
        interval: "1s",
        ..Node::new(priority)
    };
    let d1 = Daemon::start(&lb1, &slow(150));
    let d2 = Daemon::start(&lb2, &slow(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);

    let started = Instant::now();
    d1.process.signal(Signal::SIGTERM).expect("SIGTERM");
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &[&d1, &d2]);
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(2500),
        "takeover took {took:?}: the priority-0 advert was not heeded\n{}",
        d2.process.log()
    );
    let status = d1.process.wait(SETTLE).expect("lb1 exits");
    assert!(
        status.success(),
        "vigild exited with {status}\n{}",
        d1.process.log()
    );
    assert!(!holds(&lb1, VIP4), "a clean stop removes the VIP");
}

#[test]
fn nopreempt_leaves_a_lower_priority_master_in_place() {
    if !root_available("vrrp: nopreempt") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let d2 = Daemon::start(&lb2, &Node::new(100));
    d2.wait_state("master", SETTLE);
    let d1 = Daemon::start(
        &lb1,
        &Node {
            preempt: false,
            ..Node::new(150)
        },
    );
    d1.wait_state("backup", SETTLE);
    // Fifteen advert intervals: ample time for a preemption that must not happen.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        d1.state().as_deref(),
        Some("backup"),
        "{}",
        d1.process.log()
    );
    assert!(holds(&lb2, VIP4) && !holds(&lb1, VIP4));
}

#[test]
fn unicast_peers_elect_and_fail_over() {
    if !root_available("vrrp: unicast") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "client"]).expect("lab");
    let (lb1, lb2, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("lb2").expect("lb2"),
        lab.host("client").expect("client"),
    );
    let _responders = Responders::start(&[&lb1, &lb2], "0.0.0.0".parse().expect("any"));
    let unicast = |priority, peer: IpAddr| Node {
        unicast_peers: Some(vec![peer]),
        ..Node::new(priority)
    };
    let d1 = Daemon::start(&lb1, &unicast(150, IpAddr::V4(lb2.ipv4())));
    let d2 = Daemon::start(&lb2, &unicast(100, IpAddr::V4(lb1.ipv4())));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
    d1.process.kill().expect("SIGKILL lb1");
    d2.wait_state("master", SETTLE);
    wait_answer(&client, vip4(), "lb2", &[&d2]);
}

#[test]
fn an_ipv6_vip_moves_on_failover() {
    if !root_available("vrrp: IPv6 VIP") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2", "client"]).expect("lab");
    let (lb1, lb2, client) = (
        lab.host("lb1").expect("lb1"),
        lab.host("lb2").expect("lb2"),
        lab.host("client").expect("client"),
    );
    let _responders = Responders::start(&[&lb1, &lb2], "::".parse().expect("any"));
    let v6 = |priority| Node {
        vips: vec![format!("{VIP6}/64")],
        ..Node::new(priority)
    };
    let d1 = Daemon::start(&lb1, &v6(150));
    let d2 = Daemon::start(&lb2, &v6(100));
    wait_owner(VIP6, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
    let vip: IpAddr = VIP6.parse().expect("address");
    wait_answer(&client, vip, "lb1", &[&d1, &d2]);
    d1.process.kill().expect("SIGKILL lb1");
    d2.wait_state("master", SETTLE);
    // The unsolicited NA (override flag) moves the client's neighbour entry.
    wait_answer(&client, vip, "lb2", &[&d2]);
}

#[test]
fn the_masters_link_going_down_fails_over_and_its_return_preempts() {
    if !root_available("vrrp: link down") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let d1 = Daemon::start(&lb1, &Node::new(150));
    let d2 = Daemon::start(&lb2, &Node::new(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    lab.link_down(&lb1).expect("link down");
    d1.wait_state("fault", SETTLE);
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &[&d1, &d2]);
    lab.link_up(&lb1).expect("link up");
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
}

#[test]
fn a_failing_track_script_lowers_the_priority_and_the_peer_preempts() {
    if !root_available("vrrp: track script") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let flag = lb1.write_file("healthy", "").expect("flag file");
    let tracked = Node {
        extra: "track_scripts = [\"chk\"]\n".to_owned(),
        tables: format!(
            "[[track_script]]\nname = \"chk\"\ncommand = [\"/bin/test\", \"-e\", \"{}\"]\n\
             interval = \"100ms\"\ntimeout = \"1s\"\nweight = -100\n",
            flag.display()
        ),
        ..Node::new(150)
    };
    let d1 = Daemon::start(&lb1, &tracked);
    let d2 = Daemon::start(&lb2, &Node::new(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    std::fs::remove_file(&flag).expect("remove flag");
    // 150 - 100 = 50 < 100: lb2 preempts.
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &[&d1, &d2]);
    d1.wait_state("backup", SETTLE);
    std::fs::write(&flag, "").expect("restore flag");
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
}

#[test]
fn a_sync_group_moves_together_when_one_member_faults() {
    if !root_available("vrrp: sync group") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let flag = lb1.write_file("healthy", "").expect("flag file");
    let grouped = |priority, track: bool| {
        let track = if track {
            format!(
                "track_scripts = [\"chk\"]\n\n[[track_script]]\nname = \"chk\"\n\
                 command = [\"/bin/test\", \"-e\", \"{}\"]\ninterval = \"100ms\"\n",
                flag.display()
            )
        } else {
            String::new()
        };
        Node {
            tables: format!(
                "[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"vi_web\", \"vi_b\"]\n\n\
                 [[vrrp_instance]]\nname = \"vi_b\"\ninterface = \"vnet0\"\nvrid = 52\n\
                 priority = {priority}\nadvert_interval = \"100ms\"\nfencing = \"off\"\n\
                 garp_delay = \"0s\"\nvips = [\"10.0.0.101/24\"]\n{track}"
            ),
            ..Node::new(priority)
        }
    };
    let d1 = Daemon::start(&lb1, &grouped(150, true));
    let d2 = Daemon::start(&lb2, &grouped(100, false));
    let hosts = [&lb1, &lb2];
    wait_owner(VIP4, &lb1, &hosts, &[&d1, &d2]);
    wait_owner("10.0.0.101", &lb1, &hosts, &[&d1, &d2]);
    // vi_b's weight-0 script fails: vi_b faults and takes vi_web (healthy) down with it.
    std::fs::remove_file(&flag).expect("remove flag");
    wait_owner("10.0.0.101", &lb2, &hosts, &[&d1, &d2]);
    wait_owner(VIP4, &lb2, &hosts, &[&d1, &d2]);
    d1.wait_state("fault", SETTLE);
    std::fs::write(&flag, "").expect("restore flag");
    wait_owner(VIP4, &lb1, &hosts, &[&d1, &d2]);
    wait_owner("10.0.0.101", &lb1, &hosts, &[&d1, &d2]);
}

#[test]
fn a_backup_frozen_past_master_down_reads_the_queued_adverts_before_its_timer() {
    if !root_available("vrrp: a stalled backup does not take over") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let d1 = Daemon::start(&lb1, &Node::new(150));
    let d2 = Daemon::start(&lb2, &Node::new(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    d2.wait_state("backup", SETTLE);
    let takeover = "vigil_vrrp_transitions_total{instance=\"vi_web\",from=\"backup\",to=\"master\",reason=\"master_down\"}";
    let before = d2.metric(takeover).unwrap_or(0.0);

    // The worst scheduling stall: lb2 does not run for 1 s (about 3 Master_Down_Intervals at
    // 100 ms adverts) while lb1's adverts queue up in its socket. When it runs again its timer
    // and its socket are ready together; it must read the adverts first and stay backup.
    for _ in 0..5 {
        d2.process.signal(Signal::SIGSTOP).expect("SIGSTOP lb2");
        std::thread::sleep(Duration::from_secs(1));
        d2.process.signal(Signal::SIGCONT).expect("SIGCONT lb2");
        std::thread::sleep(Duration::from_millis(500));
    }
    d2.wait_state("backup", SETTLE);
    let after = d2.metric(takeover).unwrap_or(0.0);
    assert!(
        after <= before,
        "lb2 took over after a stall although lb1's adverts were waiting ({before} -> {after}):\n{}",
        d2.process.log()
    );
    assert!(holds(&lb1, VIP4) && !holds(&lb2, VIP4));
}

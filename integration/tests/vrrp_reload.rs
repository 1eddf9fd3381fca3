//! vigild's VRRP reloads and notify scripts, end to end (root; `SKIPPED` otherwise).

use std::time::Duration;

use nix::sys::signal::Signal;
use vigil_integration::{Lab, root_available, wait_for};

use crate::vrrp_support::{Daemon, Node, SETTLE, VIP4, config, wait_owner};

/// How many transitions of `instance` the daemon has logged.
fn transitions(daemon: &Daemon, instance: &str) -> usize {
    let needle = format!("instance=\"{instance}\"");
    daemon
        .process
        .log()
        .lines()
        .filter(|l| l.contains("VRRP state changed") && l.contains(&needle))
        .count()
}

fn reload(daemon: &Daemon, node: &Node, reloads_before: usize) {
    std::fs::write(&daemon.config, config(&daemon.host, node, &daemon.state))
        .expect("rewrite config");
    daemon.process.signal(Signal::SIGHUP).expect("SIGHUP");
    let done = wait_for("the reload", SETTLE, || {
        daemon
            .process
            .log()
            .matches("VRRP instances reloaded")
            .count()
            > reloads_before
    });
    assert!(done.is_ok(), "no reload logged:\n{}", daemon.process.log());
}

#[test]
fn a_reload_leaves_unchanged_instances_alone_and_updates_priorities_in_place() {
    if !root_available("vrrp: reload") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let node = Node::new(150);
    let d1 = Daemon::start(&lb1, &node);
    let d2 = Daemon::start(&lb2, &Node::new(100));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    let before = transitions(&d1, "vi_web");

    // A new instance next to the running one: it starts, vi_web does not move.
    let with_other = Node {
        tables: "[[vrrp_instance]]\nname = \"vi_other\"\ninterface = \"vnet0\"\nvrid = 52\n\
                 advert_interval = \"100ms\"\nfencing = \"off\"\nvips = [\"10.0.0.101/24\"]\n"
            .to_owned(),
        ..node.clone()
    };
    reload(&d1, &with_other, 0);
    wait_for("vi_other master", SETTLE, || {
        crate::vrrp_support::holds(&lb1, "10.0.0.101")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d1.process.log()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        transitions(&d1, "vi_web"),
        before,
        "vi_web flapped on reload:\n{}",
        d1.process.log()
    );
    assert!(crate::vrrp_support::holds(&lb1, VIP4));

    // Priority 150 → 50, below lb2's 100: updated in place, and lb2 preempts.
    let lowered = Node {
        priority: 50,
        ..with_other
    };
    reload(&d1, &lowered, 1);
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &[&d1, &d2]);
    assert!(
        d1.process.log().contains("updated=[\"vi_web\"]"),
        "{}",
        d1.process.log()
    );
    // Removing vi_other stops it cleanly: its VIP goes.
    reload(
        &d1,
        &Node {
            priority: 50,
            ..node
        },
        2,
    );
    wait_for("vi_other's VIP removed", SETTLE, || {
        !crate::vrrp_support::holds(&lb1, "10.0.0.101")
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d1.process.log()));
}

#[test]
fn notify_scripts_see_each_transition_in_order() {
    if !root_available("vrrp: notify scripts") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let out = lb1.write_file("transitions", "").expect("output file");
    let script = format!(
        "echo \"$VIGIL_INSTANCE $VIGIL_STATE $VIGIL_OLD_STATE $VIGIL_REASON $VIGIL_PRIORITY \
         $VIGIL_VRID $*\" >> {}",
        out.display()
    );
    let node = Node {
        extra: format!("notify = [\"/bin/sh\", \"-c\", '{script}', \"sh\"]\n"),
        ..Node::new(150)
    };
    let d1 = Daemon::start(&lb1, &node);
    d1.wait_state("master", SETTLE);
    // The API's JSON view (`vigilctl status --json`) shows the VIP held and the transition.
    let vigilctl = crate::vrrp_support::binary("vigilctl");
    let json = lb1
        .run(&[
            vigilctl.to_str().expect("UTF-8 path"),
            "--config",
            d1.config.to_str().expect("UTF-8 path"),
            "status",
            "--json",
        ])
        .expect("vigilctl status --json");
    for needle in [
        "\"state\": \"master\"",
        "\"last_reason\": \"master_down\"",
        "\"vips_held\": [\n        \"10.0.0.100\"",
    ] {
        assert!(json.contains(needle), "{needle} missing from:\n{json}");
    }
    let status = d1.process.terminate(SETTLE).expect("SIGTERM");
    assert!(status.success(), "{}", d1.process.log());
    let lines = std::fs::read_to_string(&out).expect("read transitions");
    let lines: Vec<&str> = lines.lines().collect();
    assert_eq!(
        lines,
        [
            "vi_web backup initialize startup 150 51 INSTANCE vi_web BACKUP 150",
            "vi_web master backup master_down 150 51 INSTANCE vi_web MASTER 150",
            "vi_web stop master shutdown 150 51 INSTANCE vi_web STOP 150",
        ],
        "{}",
        d1.process.log()
    );
}

//! Shared config pushes end to end (root; `SKIPPED` otherwise): two vigild forming a
//! coordination cluster, a fragment pushed with `vigilctl config push` on one applied live on
//! the other (virtual server and tracking weight), with no VRRP transition on the master;
//! history, rollback, and an invalid push refused with positions.

use std::path::Path;
use std::time::{Duration, Instant};

use vigil_integration::{Host, Lab, root_available, wait_for, wait_for_value};

use crate::coord_support::{Outcome, vigilctl};
use crate::vrrp_support::{Daemon, Node, SETTLE, VIP4, config, holds, wait_owner};

const RAFT_PORT: u16 = 7401;
const CLIENT_PORT: u16 = 7402;

/// `[cluster]` for member `id` on `host` with one peer, and the tracked script.
fn tables(host: &Host, id: u64, peer_id: u64, peer: &Host) -> String {
    format!(
        "[cluster]\nnode_id = {id}\nraft_listen = \"{ip}:{RAFT_PORT}\"\n\
         client_listen = \"{ip}:{CLIENT_PORT}\"\nheartbeat_interval = \"100ms\"\n\
         election_timeout_min = \"400ms\"\nelection_timeout_max = \"800ms\"\n\n\
         [[cluster.peers]]\nid = {peer_id}\naddress = \"{peer_ip}:{RAFT_PORT}\"\n\n\
         [[track_script]]\nname = \"chk\"\ncommand = [\"/bin/true\"]\ninterval = \"1s\"\n",
        ip = host.ipv4(),
        peer_ip = peer.ipv4(),
    )
}

/// lb1's `[cluster]` without the tracked script.
fn original_tables_without_script(lb1: &Host, lb2: &Host) -> String {
    let tables = tables(lb1, 1, 2, lb2);
    let cut = tables.find("[[track_script]]").expect("script table");
    tables[..cut].to_owned()
}

fn node(priority: u8, host: &Host, id: u64, peer_id: u64, peer: &Host) -> Node {
    Node {
        // +10 while the script is up.
        extra: "track_scripts = [{ name = \"chk\", weight = 10 }]\n".to_owned(),
        tables: tables(host, id, peer_id, peer),
        ..Node::new(priority)
    }
}

fn ctl(daemon: &Daemon, args: &[&str]) -> Outcome {
    let mut argv = vec!["--config", daemon.config.to_str().expect("UTF-8 path")];
    argv.extend_from_slice(args);
    vigilctl(&daemon.host, &argv)
}

fn ok(daemon: &Daemon, args: &[&str]) -> String {
    let out = ctl(daemon, args);
    assert!(
        out.code == Some(0),
        "vigilctl {args:?} on {} failed: {out:?}\n--- vigild log ---\n{}",
        daemon.host.name(),
        daemon.process.log_tail(40)
    );
    out.stdout
}

/// `vi_web`'s effective priority as `vigilctl status --json` shows it.
fn effective_priority(daemon: &Daemon) -> Option<u64> {
    let out = ctl(daemon, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    status["vrrp"]
        .as_array()?
        .iter()
        .find(|i| i["name"] == "vi_web")?["effective_priority"]
        .as_u64()
}

fn wait_priority(daemon: &Daemon, want: u64) {
    wait_for(
        &format!("{} at effective priority {want}", daemon.host.name()),
        SETTLE,
        || effective_priority(daemon) == Some(want),
    )
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.process.log_tail(40)));
}

/// How many transitions of `vi_web` the daemon has logged (as `vrrp_reload` counts them).
fn transitions(daemon: &Daemon) -> usize {
    daemon
        .process
        .log()
        .lines()
        .filter(|l| l.contains("VRRP state changed") && l.contains("instance=\"vi_web\""))
        .count()
}

fn fragment(host: &Host, file: &str, weight: i32) -> std::path::PathBuf {
    let text = format!(
        "[[virtual_server]]\naddress = \"{VIP4}:80\"\nscheduler = \"rr\"\n\n\
         [[virtual_server.real_server]]\naddress = \"10.0.0.50\"\n\n\
         [[track]]\ninstance = \"vi_web\"\nscript = \"chk\"\nweight = {weight}\n"
    );
    host.write_file(file, &text).expect("write fragment")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

#[test]
fn a_pushed_fragment_applies_live_on_every_node_without_a_vip_flap() {
    if !root_available("shared config: push, history, rollback") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let d1 = Daemon::start(&lb1, &node(150, &lb1, 1, 2, &lb2));
    let d2 = Daemon::start(&lb2, &node(100, &lb2, 2, 1, &lb1));
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &[&d1, &d2]);
    // The cluster answers linearizable reads once it has a leader.
    wait_for("the coordination cluster", SETTLE, || {
        ctl(&d2, &["config", "show"]).code == Some(0)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d2.process.log_tail(40)));
    wait_priority(&d1, 160);
    let before = transitions(&d1);

    // Pushed on lb2, validated there, applied on lb1: a new virtual server and the script's
    // weight 10 → 40 on the running master.
    let web = fragment(&lb2, "web.toml", 40);
    let started = Instant::now();
    let pushed = ok(&d2, &["config", "push", path_str(&web)]);
    let v1: u64 = pushed
        .trim()
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no version in {pushed:?}"));
    wait_for_value("lb1 serves the pushed virtual server", SETTLE, || {
        ok(&d1, &["lvs", "--json"])
            .contains(&format!("{VIP4}:80"))
            .then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d1.process.log_tail(40)));
    wait_priority(&d1, 190);
    eprintln!(
        "shared config: pushed on lb2, applied on lb1 within {:?} (vigilctl round trips included)",
        started.elapsed()
    );
    assert!(
        d1.process.log().contains("updated=[\"vi_web\"]"),
        "the weight was applied in place:\n{}",
        d1.process.log()
    );
    let status = ok(&d1, &["status", "--json"]);
    assert!(
        status.contains("\"name\": \"web\"") && status.contains(&format!("\"version\": {v1}")),
        "lb1's status names the applied fragment:\n{status}"
    );

    // An invalid fragment: refused on the node taking it, with positions; nothing written.
    let bad = lb2
        .write_file(
            "bad.toml",
            "[[virtual_server]]\naddress = \"10.0.0.100:81\"\n\n\
             [[virtual_server.real_server]]\naddress = \"10.0.0.999\"\n\n\
             [[track]]\ninstance = \"vi_nope\"\nscript = \"chk\"\nweight = 5\n",
        )
        .expect("write fragment");
    let refused = ctl(&d2, &["config", "push", path_str(&bad)]);
    assert_eq!(refused.code, Some(78), "{refused:?}");
    assert!(
        refused.stderr.contains("/vigil/config/bad:5:"),
        "positioned error: {refused:?}"
    );
    let shown = ok(&d1, &["config", "show"]);
    assert!(!shown.contains("bad"), "{shown}");

    // A second version, then a rollback to the first: each is applied in place on lb1.
    let web20 = fragment(&lb2, "web-20.toml", 20);
    ok(&d2, &["config", "push", "--name", "web", path_str(&web20)]);
    wait_priority(&d1, 170);
    ok(&d1, &["config", "rollback", "web", &v1.to_string()]);
    wait_priority(&d2, 140);
    wait_priority(&d1, 190);
    let history = ok(&d1, &["config", "history", "web"]);
    assert_eq!(
        history.lines().count(),
        4,
        "header + 3 versions:\n{history}"
    );
    assert!(history.contains(&format!("rollback to {v1}")), "{history}");
    assert_eq!(
        ok(&d1, &["config", "show", "web"]),
        std::fs::read_to_string(&web).expect("read")
    );

    // A reload re-merges the file with the fragments in force: the pushed weight survives it,
    // and a file the fragments no longer fit (no `chk` to track) is refused, naming them.
    ok(&d1, &["reload"]);
    // Long enough for a dropped weight to reach the instance (it takes milliseconds).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        effective_priority(&d1),
        Some(190),
        "{}",
        d1.process.log_tail(20)
    );
    let original = std::fs::read_to_string(&d1.config).expect("read config");
    let without_chk = Node {
        tables: original_tables_without_script(&lb1, &lb2),
        ..Node::new(150)
    };
    std::fs::write(&d1.config, config(&lb1, &without_chk, &d1.state)).expect("rewrite config");
    let refused = ctl(&d1, &["reload"]);
    assert_eq!(refused.code, Some(78), "{refused:?}");
    assert!(refused.stderr.contains("/vigil/config/web:"), "{refused:?}");
    std::fs::write(&d1.config, original).expect("restore config");
    assert_eq!(effective_priority(&d1), Some(190));

    // Through all of it lb1 stayed master: no transition, the VIP never left.
    assert_eq!(
        transitions(&d1),
        before,
        "vi_web changed state on a shared-config push:\n{}",
        d1.process.log()
    );
    assert!(holds(&lb1, VIP4));
    assert!(!holds(&lb2, VIP4));

    // Removal: the virtual server goes from lb1 again.
    ok(&d2, &["config", "rm", "web"]);
    wait_for_value("lb1 drops the virtual server", SETTLE, || {
        (!ok(&d1, &["lvs", "--json"]).contains(&format!("{VIP4}:80"))).then_some(())
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", d1.process.log_tail(40)));
    wait_priority(&d1, 160);
    assert_eq!(transitions(&d1), before, "{}", d1.process.log());
}

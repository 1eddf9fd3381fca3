//! Hitless reload, case by case, on real vigild pairs (root; `SKIPPED` otherwise): unchanged
//! VRRP instances keep their state and VIPs, changed ones are updated in place, removed ones
//! hand over to the peer, checker state survives, and an invalid config changes nothing.
//!
//! "No flap" is asserted three ways: the daemons' transition log lines, the notify scripts'
//! output, and a [`HolderRecorder`] watching the VIP on both hosts over rtnetlink (every add and
//! removal, plus a dump every 5 ms) for the whole reload.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;
use vigil_integration::{HolderRecorder, HolderReport, Host, Lab, root_available, wait_for};

use crate::vrrp_support::{Daemon, Node, SETTLE, VIP4, binary, config, holds, wait_owner};

const API: &str = "127.0.0.1:7400";
/// The second instance's VRID and first VIP.
const OTHER_VRID: u8 = 52;
const OTHER_VIP: &str = "10.0.0.101";

/// `vi_other`'s settings.
#[derive(Debug, Clone)]
struct Other {
    priority: u8,
    interval: &'static str,
    vips: Vec<&'static str>,
}

impl Other {
    fn new(priority: u8) -> Self {
        Self {
            priority,
            interval: "100ms",
            vips: vec![OTHER_VIP],
        }
    }
}

/// A notify hook appending "instance state old_state reason" to `out`, as TOML.
fn notify(out: &Path) -> String {
    let script = format!(
        "echo \"$VIGIL_INSTANCE $VIGIL_STATE $VIGIL_OLD_STATE $VIGIL_REASON\" >> {}",
        out.display()
    );
    format!("notify = [\"/bin/sh\", \"-c\", '{script}', \"sh\"]\n")
}

/// `vi_web` (from `priority`) and, unless `None`, `vi_other`, both notifying into `out`.
fn node(priority: u8, other: Option<&Other>, out: &Path) -> Node {
    let mut tables = String::new();
    if let Some(o) = other {
        let vips: Vec<String> = o.vips.iter().map(|v| format!("\"{v}/24\"")).collect();
        let _ = write!(
            tables,
            "[[vrrp_instance]]\nname = \"vi_other\"\ninterface = \"vnet0\"\nvrid = {OTHER_VRID}\n\
             priority = {}\nadvert_interval = \"{}\"\ngarp_delay = \"0s\"\nfencing = \"off\"\n\
             vips = [{}]\n{}",
            o.priority,
            o.interval,
            vips.join(", "),
            notify(out)
        );
    }
    Node {
        extra: notify(out),
        tables,
        ..Node::new(priority)
    }
}

/// One side of a test: its daemon and its notify output.
struct Side {
    daemon: Daemon,
    notified: PathBuf,
    priority: u8,
}

impl Side {
    fn start(host: &Host, priority: u8, other: Option<&Other>) -> Self {
        let notified = host.write_file("notified", "").expect("notify output");
        let daemon = Daemon::start(host, &node(priority, other, &notified));
        Self {
            daemon,
            notified,
            priority,
        }
    }

    fn notifications(&self) -> Vec<String> {
        std::fs::read_to_string(&self.notified)
            .expect("read notify output")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// Transitions of `instance` in the daemon's log.
    fn transitions(&self, instance: &str) -> usize {
        let needle = format!("instance=\"{instance}\"");
        self.daemon
            .process
            .log()
            .lines()
            .filter(|l| l.contains("VRRP state changed") && l.contains(&needle))
            .count()
    }

    fn reloads(&self) -> usize {
        self.daemon
            .process
            .log()
            .matches("VRRP instances reloaded")
            .count()
    }

    /// Rewrites the config for `other` and reloads with SIGHUP, or with `vigilctl reload` when
    /// `ctl`; waits until the reload is logged and returns its log line.
    fn reload(&self, other: Option<&Other>, ctl: bool) -> String {
        self.reload_as(&node(self.priority, other, &self.notified), ctl)
    }

    /// [`Side::reload`] with the config of `node`.
    fn reload_as(&self, node: &Node, ctl: bool) -> String {
        let before = self.reloads();
        let text = config(&self.daemon.host, node, &self.daemon.state);
        std::fs::write(&self.daemon.config, text).expect("rewrite config");
        if ctl {
            let out = vigilctl(&self.daemon.host, &["reload"]);
            assert!(out.status.success(), "vigilctl reload: {}", show(&out));
        } else {
            self.daemon.process.signal(Signal::SIGHUP).expect("SIGHUP");
        }
        wait_for("the reload", SETTLE, || self.reloads() > before)
            .unwrap_or_else(|e| panic!("{e}\n{}", self.daemon.process.log()));
        self.daemon
            .process
            .log()
            .lines()
            .rfind(|l| l.contains("VRRP instances reloaded"))
            .unwrap_or_default()
            .to_owned()
    }
}

/// Runs `vigilctl --api 127.0.0.1:7400 ARGS` inside `host` (the API address from the command
/// line, so an invalid config file does not stop vigilctl itself).
fn vigilctl(host: &Host, args: &[&str]) -> Output {
    let vigilctl = binary("vigilctl");
    std::process::Command::new("ip")
        .args(["netns", "exec", host.netns()])
        .arg(vigilctl)
        .args(["--api", API])
        .args(args)
        .output()
        .expect("run vigilctl")
}

fn show(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn status_json(host: &Host) -> Value {
    let out = vigilctl(host, &["status", "--json"]);
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).expect("status JSON")
}

/// Starts recording who holds `vip` on `hosts` (the first is expected to be the sole holder).
fn record(hosts: &[&Host], vip: &str) -> HolderRecorder {
    HolderRecorder::start(hosts, vip.parse().expect("address")).expect("holder recorder")
}

/// Every observation of the recording — rtnetlink events and 5 ms dumps — shows host 0
/// holding the VIP and no other host: it never flapped, never moved.
fn assert_held_throughout(report: &HolderReport, what: &str) {
    assert!(
        report.dumps > 20,
        "{what}: too few dumps to tell ({})",
        report.dumps
    );
    let wrong: Vec<_> = report
        .observations
        .iter()
        .filter(|o| o.held != (o.host == 0))
        .collect();
    assert!(
        wrong.is_empty(),
        "{what}: the VIP moved or flapped: {wrong:?}\n{}",
        report.describe()
    );
}

#[test]
fn unchanged_instances_keep_state_and_vips_while_others_change_in_place() {
    if !root_available("reload: unchanged and in-place instances") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let mut other = Other::new(150);
    let s1 = Side::start(&lb1, 150, Some(&other));
    let s2 = Side::start(&lb2, 100, Some(&Other::new(100)));
    let daemons = [&s1.daemon, &s2.daemon];
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &daemons);
    wait_owner(OTHER_VIP, &lb1, &[&lb1, &lb2], &daemons);
    let web = record(&[&lb1, &lb2], VIP4);
    let kept = record(&[&lb1, &lb2], OTHER_VIP);
    let before = (
        s1.transitions("vi_web"),
        s1.transitions("vi_other"),
        s2.transitions("vi_web"),
        s2.transitions("vi_other"),
    );
    let notified = (s1.notifications(), s2.notifications());

    // 1. The same file again (SIGHUP): nothing to do.
    let line = s1.reload(Some(&other), false);
    assert!(line.contains("unchanged=2"), "{line}");
    // 2. vi_other gets a new advert interval and a second VIP on both nodes (vigilctl reload),
    //    the master first; vi_web is untouched.
    other.interval = "200ms";
    other.vips = vec![OTHER_VIP, "10.0.0.102"];
    let line = s1.reload(Some(&other), true);
    assert!(
        line.contains("updated=[\"vi_other\"]") && line.contains("unchanged=1"),
        "{line}"
    );
    let peer = Other {
        priority: 100,
        ..other.clone()
    };
    let line = s2.reload(Some(&peer), true);
    assert!(line.contains("updated=[\"vi_other\"]"), "{line}");
    wait_for("10.0.0.102 on lb1", SETTLE, || holds(&lb1, "10.0.0.102"))
        .unwrap_or_else(|e| panic!("{e}\n{}", s1.daemon.process.log()));
    // 3. vi_other drops its first VIP and lowers its priority (still above lb2's).
    other.vips = vec!["10.0.0.102"];
    other.priority = 140;
    let line = s1.reload(Some(&other), false);
    assert!(line.contains("updated=[\"vi_other\"]"), "{line}");
    wait_for("10.0.0.101 released by lb1", SETTLE, || {
        !holds(&lb1, OTHER_VIP)
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", s1.daemon.process.log()));
    // Long enough for a wrongly restarted or demoted instance to show (3 intervals + skew).
    std::thread::sleep(Duration::from_secs(1));

    let after = (
        s1.transitions("vi_web"),
        s1.transitions("vi_other"),
        s2.transitions("vi_web"),
        s2.transitions("vi_other"),
    );
    assert_eq!(
        after,
        before,
        "a transition happened on reload:\n--- lb1 ---\n{}\n--- lb2 ---\n{}",
        s1.daemon.process.log(),
        s2.daemon.process.log()
    );
    assert_eq!(
        (s1.notifications(), s2.notifications()),
        notified,
        "notify scripts ran on reload"
    );
    assert_held_throughout(&web.finish().expect("recording"), "vi_web's VIP");
    // vi_other's first VIP stayed up on lb1 until the reload that dropped it, and lb2 never
    // took it: exactly one holding interval, on lb1, ending with that reload.
    let report = kept.finish().expect("recording");
    assert_eq!(report.event_intervals.len(), 1, "{}", report.describe());
    assert_eq!(report.event_intervals[0].host, 0, "{}", report.describe());
    assert!(report.observations.iter().all(|o| o.host == 0 || !o.held));
    // The master advertises the new list and interval; the backup is content with it.
    let status = status_json(&lb2);
    let vi_other = status["vrrp"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == "vi_other"))
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(vi_other["state"], "backup", "{status:#}");
    assert_eq!(vi_other["master"], lb1.ipv4().to_string(), "{status:#}");
    assert!(!holds(&lb2, "10.0.0.102") && holds(&lb1, "10.0.0.102"));
    assert!(holds(&lb1, VIP4) && !holds(&lb2, VIP4));
}

#[test]
fn a_changed_notify_script_applies_in_place_from_the_next_transition() {
    if !root_available("reload: notify script changed in place") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let s1 = Side::start(&lb1, 150, None);
    let s2 = Side::start(&lb2, 100, None);
    let daemons = [&s1.daemon, &s2.daemon];
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &daemons);
    let web = record(&[&lb1, &lb2], VIP4);
    let transitions = s1.transitions("vi_web");
    let old_lines = s1.notifications();

    // lb1's notify hook now writes to another file: the master must not restart for that.
    let new_out = lb1
        .write_file("notified-new", "")
        .expect("new notify output");
    let line = s1.reload_as(&node(150, None, &new_out), false);
    assert!(line.contains("updated=[\"vi_web\"]"), "{line}");
    // Long enough for a restarted instance to hand over and come back (3 intervals + skew).
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        s1.transitions("vi_web"),
        transitions,
        "{}",
        s1.daemon.process.log()
    );
    assert_held_throughout(&web.finish().expect("recording"), "vi_web's VIP");

    // The next transition (a clean stop) runs the new script, and only it.
    s1.daemon.process.signal(Signal::SIGTERM).expect("SIGTERM");
    s1.daemon
        .process
        .wait(Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", s1.daemon.process.log()));
    let new_lines: Vec<String> = std::fs::read_to_string(&new_out)
        .expect("read the new notify output")
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        new_lines,
        ["vi_web stop master shutdown"],
        "{}",
        s1.daemon.process.log()
    );
    assert_eq!(
        s1.notifications(),
        old_lines,
        "the old script ran after the reload"
    );
}

#[test]
fn a_removed_instance_releases_its_vips_and_the_peer_takes_over_at_once() {
    if !root_available("reload: removed instance") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let s1 = Side::start(&lb1, 150, Some(&Other::new(150)));
    let s2 = Side::start(&lb2, 100, Some(&Other::new(100)));
    let daemons = [&s1.daemon, &s2.daemon];
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &daemons);
    wait_owner(OTHER_VIP, &lb1, &[&lb1, &lb2], &daemons);
    let web = record(&[&lb1, &lb2], VIP4);
    let moved = record(&[&lb1, &lb2], OTHER_VIP);
    let web_before = (s1.transitions("vi_web"), s2.transitions("vi_web"));

    let started = moved.now();
    let line = s1.reload(None, false);
    assert!(line.contains("stopped=[\"vi_other\"]"), "{line}");
    wait_owner(OTHER_VIP, &lb2, &[&lb1, &lb2], &daemons);
    let report = moved.finish().expect("recording");
    // lb1 removed it, then lb2 added it: one interval each, lb1's ending first.
    let mut intervals = report.event_intervals.clone();
    intervals.sort_by_key(|i| i.from);
    assert_eq!(intervals.len(), 2, "{}", report.describe());
    let (gone, taken) = (intervals[0], intervals[1]);
    assert_eq!((gone.host, taken.host), (0, 1), "{}", report.describe());
    assert!(report.never_two_holders(), "{}", report.describe());
    let gap = taken.from.saturating_sub(gone.to);
    eprintln!(
        "vi_other handed over {gap:?} after lb1 removed it ({:?} after the SIGHUP)",
        taken.from.saturating_sub(started)
    );
    // The priority-0 advert makes lb2 take over after Skew_Time (≈60 ms here) rather than
    // Master_Down_Interval (≈360 ms); the log says which one it was.
    let lb2_log = s2.daemon.process.log();
    let takeover = lb2_log
        .lines()
        .find(|l| {
            l.contains("VRRP state changed")
                && l.contains("instance=\"vi_other\"")
                && l.contains("to=\"master\"")
        })
        .unwrap_or_else(|| panic!("no takeover logged:\n{lb2_log}"));
    assert!(
        takeover.contains("announced it is leaving (priority 0)"),
        "{takeover}"
    );
    // lb1's stop ran its notify script; lb2's takeover ran its own.
    assert!(
        s1.notifications()
            .contains(&"vi_other stop master shutdown".to_owned()),
        "{:?}",
        s1.notifications()
    );
    assert!(
        s2.notifications()
            .contains(&"vi_other master backup master_down".to_owned()),
        "{:?}",
        s2.notifications()
    );
    // vi_web did not notice.
    assert_eq!(
        (s1.transitions("vi_web"), s2.transitions("vi_web")),
        web_before
    );
    assert_held_throughout(&web.finish().expect("recording"), "vi_web's VIP");
}

/// `vi_web`'s entry in `host`'s `vigilctl status --json`.
fn web_status(host: &Host) -> Value {
    let status = status_json(host);
    status["vrrp"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["name"] == "vi_web"))
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn a_track_script_added_by_sighup_keeps_the_master_and_lowers_it_once_it_fails() {
    if !root_available("reload: a track script added in place") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let s1 = Side::start(&lb1, 150, None);
    let s2 = Side::start(&lb2, 100, None);
    let daemons = [&s1.daemon, &s2.daemon];
    wait_owner(VIP4, &lb1, &[&lb1, &lb2], &daemons);
    let web = record(&[&lb1, &lb2], VIP4);
    let before = (s1.transitions("vi_web"), s2.transitions("vi_web"));
    let notified = (s1.notifications(), s2.notifications());

    // The same node, now tracking a script that fails while `maintenance` exists, weight -80
    // (150 → 70, below lb2's 100). The script succeeds for now.
    let maintenance = s1.notified.with_file_name("maintenance");
    let mut tracked = node(150, None, &s1.notified);
    tracked
        .extra
        .push_str("track_scripts = [{ name = \"chk\", weight = -80 }]\n");
    tracked.tables = format!(
        "[[track_script]]\nname = \"chk\"\ncommand = [\"/bin/sh\", \"-c\", \"test ! -e {}\"]\n\
         interval = \"100ms\"\ntimeout = \"1s\"\nfall = 2\nrise = 1\n",
        maintenance.display()
    );
    let line = s1.reload_as(&tracked, false);
    assert!(
        line.contains("updated=[\"vi_web\"]") && line.contains("restarted=[]"),
        "applied in place, not by a restart: {line}"
    );
    // Long enough for a restarted unit to show (a priority-0 handover and back) and for the new
    // script to have run several times.
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        (s1.transitions("vi_web"), s2.transitions("vi_web")),
        before,
        "a transition happened on reload:\n--- lb1 ---\n{}\n--- lb2 ---\n{}",
        s1.daemon.process.log(),
        s2.daemon.process.log()
    );
    assert_eq!(
        (s1.notifications(), s2.notifications()),
        notified,
        "notify scripts ran on reload"
    );
    assert_held_throughout(&web.finish().expect("recording"), "vi_web's VIP");
    let status = web_status(&lb1);
    assert_eq!(
        (
            status["state"].as_str(),
            status["effective_priority"].as_u64()
        ),
        (Some("master"), Some(150)),
        "{status:#}"
    );

    // The new track works: once the script fails (twice), lb1 drops to 70 and advertises it at
    // once, and lb2 (100) preempts.
    std::fs::write(&maintenance, "").expect("maintenance flag");
    wait_owner(VIP4, &lb2, &[&lb1, &lb2], &daemons);
    let status = web_status(&lb1);
    assert_eq!(
        (
            status["state"].as_str(),
            status["effective_priority"].as_u64()
        ),
        (Some("backup"), Some(70)),
        "{status:#}"
    );
    assert_eq!(
        status["tracks_down"],
        serde_json::json!(["script:chk"]),
        "{status:#}"
    );
    assert_eq!(web_status(&lb2)["state"], "master");

    // The track removed and preemption turned off in one reload, again in place: lb1 is back at
    // 150 but leaves lb2 (100) master.
    let mut calm = node(150, None, &s1.notified);
    calm.preempt = false;
    let line = s1.reload_as(&calm, false);
    assert!(
        line.contains("updated=[\"vi_web\"]") && line.contains("restarted=[]"),
        "{line}"
    );
    let taken = s1.transitions("vi_web");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        s1.transitions("vi_web"),
        taken,
        "{}",
        s1.daemon.process.log()
    );
    let status = web_status(&lb1);
    assert_eq!(
        (
            status["state"].as_str(),
            status["effective_priority"].as_u64()
        ),
        (Some("backup"), Some(150)),
        "{status:#}"
    );
    assert_eq!(status["tracks_down"], serde_json::json!([]), "{status:#}");
    assert!(holds(&lb2, VIP4) && !holds(&lb1, VIP4));
}

#[test]
fn an_invalid_config_changes_nothing_and_is_reported() {
    if !root_available("reload: invalid config") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let s1 = Side::start(&lb1, 150, None);
    s1.daemon.wait_state("master", SETTLE);
    let web = record(&[&lb1], VIP4);
    let notified = s1.notifications();
    let good = std::fs::read_to_string(&s1.daemon.config).expect("config");
    // Priority 50 would demote nothing here, but the typo must stop the whole file.
    let bad = good.replace("priority = 150", "priority = 50\nprioirty = 7");
    assert_ne!(bad, good);
    let line = bad
        .lines()
        .position(|l| l.starts_with("prioirty"))
        .expect("bad line")
        + 1;
    std::fs::write(&s1.daemon.config, &bad).expect("write bad config");
    let where_ = format!("{}:{line}:1", s1.daemon.config.display());

    let out = vigilctl(&lb1, &["reload"]);
    assert_eq!(
        out.status.code(),
        Some(78),
        "EX_CONFIG expected: {}",
        show(&out)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&where_), "no {where_} in: {}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("rejected"),
        "{}",
        show(&out)
    );
    // SIGHUP does the same, and each attempt is one error line with the position in the log.
    s1.daemon.process.signal(Signal::SIGHUP).expect("SIGHUP");
    let log_lines = || {
        s1.daemon
            .process
            .log()
            .lines()
            .filter(|l| l.contains("config error: ") && l.contains(&where_))
            .count()
    };
    wait_for("two rejected reloads logged", SETTLE, || log_lines() == 2)
        .unwrap_or_else(|e| panic!("{e}\n{}", s1.daemon.process.log()));
    assert_eq!(
        s1.daemon
            .process
            .log()
            .matches("config reload rejected; keeping the running config")
            .count(),
        2
    );
    // Still the old config: generation 1, priority 150, master, VIP never touched.
    let status = status_json(&lb1);
    assert_eq!(status["config_generation"], 1, "{status:#}");
    assert_eq!(
        status["last_reload"]["outcome"]["result"], "rejected",
        "{status:#}"
    );
    let errors = status["last_reload"]["outcome"]["errors"].to_string();
    assert!(errors.contains(&where_), "{errors}");
    let vi_web = &status["vrrp"][0];
    assert_eq!(
        (vi_web["priority"].as_u64(), vi_web["state"].as_str()),
        (Some(150), Some("master")),
        "{status:#}"
    );
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(s1.transitions("vi_web"), 2, "initialize→backup→master only");
    assert_eq!(s1.notifications(), notified);
    assert_held_throughout(&web.finish().expect("recording"), "vi_web's VIP");
    // The fixed file applies: the daemon was not left in a broken state.
    std::fs::write(&s1.daemon.config, &good).expect("restore config");
    let out = vigilctl(&lb1, &["reload"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(status_json(&lb1)["config_generation"], 2);
}

/// The real servers' view of one virtual server, by address: (up, since_secs_ago).
fn reals(host: &Host) -> Option<Vec<(String, bool, u64)>> {
    let out = vigilctl(host, &["lvs", "--json"]);
    let status: Value = serde_json::from_slice(&out.stdout).ok()?;
    status["virtual_servers"][0]["real_servers"]
        .as_array()
        .map(|all| {
            all.iter()
                .map(|r| {
                    (
                        r["addr"].as_str().unwrap_or_default().to_owned(),
                        r["up"] == true,
                        r["since_secs_ago"].as_u64().unwrap_or_default(),
                    )
                })
                .collect()
        })
}

fn lvs_config(rs1: &Host, rs2: &Host, scheduler: &str, rs1_weight: u32, extra_rs: bool) -> String {
    let mut text = format!(
        "[global]\nnode_name = \"lb1\"\n\n[api]\nlisten = \"{API}\"\n\n\
         [[virtual_server]]\naddress = \"10.0.0.100:80\"\nscheduler = \"{scheduler}\"\n"
    );
    let mut servers = vec![
        (rs1.ipv4().to_string(), 8080, rs1_weight),
        (rs2.ipv4().to_string(), 8080, 1),
    ];
    if extra_rs {
        servers.push((rs1.ipv4().to_string(), 8081, 1));
    }
    for (ip, port, weight) in servers {
        // rise/fall of 3 at 200 ms: a reset check would need 600 ms to get back where it was,
        // and would show the wrong state meanwhile.
        let _ = write!(
            text,
            "\n[[virtual_server.real_server]]\naddress = \"{ip}\"\nport = {port}\nweight = {weight}\n\
             [[virtual_server.real_server.check]]\ntype = \"tcp\"\ninterval = \"200ms\"\n\
             timeout = \"300ms\"\nretries = 0\nrise = 3\nfall = 3\nwarmup = \"50ms\"\n"
        );
    }
    text
}

#[test]
fn checker_state_of_unchanged_real_servers_survives_a_reload() {
    if !root_available("reload: checker state") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "rs1", "rs2"]).expect("lab");
    let (lb1, rs1, rs2) = (
        lab.host("lb1").expect("lb1"),
        lab.host("rs1").expect("rs1"),
        lab.host("rs2").expect("rs2"),
    );
    // rs1 listens, rs2 does not (its connects are refused: down).
    let _web = rs1
        .spawn(
            "http",
            &[
                "python3",
                "-m",
                "http.server",
                "8080",
                "--bind",
                &rs1.ipv4().to_string(),
            ],
            &[],
        )
        .expect("http server");
    let path = lb1
        .write_file("vigil.toml", &lvs_config(&rs1, &rs2, "rr", 1, false))
        .expect("config");
    let vigild = binary("vigild");
    let daemon = lb1
        .spawn(
            "vigild",
            &[
                vigild.to_str().expect("UTF-8"),
                "--config",
                path.to_str().expect("UTF-8"),
                "--log-format",
                "plain",
            ],
            &[],
        )
        .expect("vigild");
    let (a1, a2) = (
        format!("{}:8080", rs1.ipv4()),
        format!("{}:8080", rs2.ipv4()),
    );
    let settled = |r: &[(String, bool, u64)]| {
        r.iter().any(|(a, up, _)| *a == a1 && *up) && r.iter().any(|(a, up, _)| *a == a2 && !*up)
    };
    wait_for("rs1 up and rs2 down", Duration::from_secs(15), || {
        reals(&lb1).is_some_and(|r| settled(&r))
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", daemon.log()));
    // Old enough states that a reset `since` would show.
    std::thread::sleep(Duration::from_secs(3));
    let changes = || daemon.log().matches("health check changed state").count();
    let changes_before = changes();
    let since_before = reals(&lb1).expect("status");

    // The virtual server changes (scheduler, rs1's weight, one more real server); rs1's and
    // rs2's checks do not.
    std::fs::write(&path, lvs_config(&rs1, &rs2, "wlc", 3, true)).expect("rewrite config");
    let reloaded_at = Instant::now();
    let out = vigilctl(&lb1, &["reload"]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        daemon.log().contains("virtual servers reloaded"),
        "{}",
        daemon.log()
    );
    // Watch for twice the time a reset check would take to come back.
    let mut polls = 0;
    while reloaded_at.elapsed() < Duration::from_millis(1_500) {
        let now = reals(&lb1).expect("status");
        assert!(
            settled(&now),
            "an unchanged real server changed state after the reload: {now:?}\n{}",
            daemon.log()
        );
        polls += 1;
    }
    assert!(polls >= 5, "only {polls} status polls");
    let after = reals(&lb1).expect("status");
    assert_eq!(after.len(), 3, "{after:?}");
    for (addr, _, since) in since_before {
        let (_, _, now) = after
            .iter()
            .find(|(a, _, _)| *a == addr)
            .expect("still there");
        assert!(
            *now > since,
            "{addr}: state age went from {since} s to {now} s (reset)"
        );
    }
    // The only verdict changes logged since are the new server's.
    let log = daemon.log();
    let new_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("health check changed state"))
        .skip(changes_before)
        .collect();
    assert!(
        new_lines.iter().all(|l| l.contains(":8081")),
        "unchanged checks changed state: {new_lines:#?}"
    );
    assert_eq!(changes(), changes_before + new_lines.len());
}

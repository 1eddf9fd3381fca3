//! Split-brain fault tests (issue 6 item 6) in a lab of lb1, lb2, witness and client, with the
//! holder recorder (rtnetlink events + 5 ms dumps) proving "never two VIP holders at once":
//!
//! - (a) lb1, master, cut off from lb2 and the witness: lb1 drops the VIP, lb2 takes it, no
//!   instant with both;
//! - (b) lb1 cut off from lb2 only, both reaching the witness: exactly one holder throughout;
//! - (c) the master SIGSTOPped past its session timeout, then SIGCONTed: it never holds the VIP
//!   again with its old token;
//! - (d) the witness down: the VIP stays put; a master crash then leaves lb2 (1 of 3 voters)
//!   without the VIP until the witness returns, and then fails over;
//! - (e) the master SIGKILLed: the successor claims after the session expired, with a larger
//!   token;
//!
//! plus seeded fault schedules (the `vigil-faults` runner) and checks that the recorder really
//! sees split brain: vigild without fencing and keepalived under the same partition.
//!
//! The fenced tests need a vigild that enforces `fencing = "quorum"`; while vigild logs that
//! it does not, they print `SKIPPED` (the recorder tests still run).

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use vigil_integration::faults::{self, Binaries, Node, Options, Schedule, Target, Timing};
use vigil_integration::fenced_store::FencedStore;
use vigil_integration::tokens::{self, Grant};
use vigil_integration::{
    HolderRecorder, HolderReport, Host, Lab, Process, daemons, root_available,
};

/// The session timeout of the fenced tests: short, so each test takes seconds, but long enough
/// for VIP kernel lifetimes (whole seconds, expired up to a second late) to fit in the lease
/// (vigild refuses to add fenced VIPs below about 4 s).
const SESSION: Duration = Duration::from_secs(4);
/// Generous bound for an election, a session expiry plus a claim on a loaded 2-core machine.
const SETTLE: Duration = Duration::from_secs(20);
/// What vigild logs while it accepts but does not enforce quorum fencing.
const NOT_ENFORCED: &str = "is not enforced yet";

/// A lab running one target on lb1, lb2 (and the witness), with the recorder on the two
/// load balancers.
struct FaultLab {
    target: Target,
    binary: PathBuf,
    hosts: [Host; 3],
    configs: [Option<PathBuf>; 3],
    procs: [Option<Process>; 3],
    token_file: PathBuf,
    // Dropped before the lab: the recorder's sockets live in the lab's namespaces.
    recorder: HolderRecorder,
    lab: Lab,
}

impl FaultLab {
    /// Starts `target` and waits until lb1 alone holds the VIP. `None` (after a loud SKIPPED
    /// line) when the test cannot run here: not root, a binary missing, or — for fenced vigild —
    /// a vigild that does not enforce fencing yet.
    fn start(test: &str, target: Target) -> Option<Self> {
        if !root_available(test) {
            return None;
        }
        let binaries = Binaries::find();
        let binary = match binaries.for_target(target) {
            Ok(b) => b.to_path_buf(),
            Err(e) if target == Target::Keepalived => {
                skip(test, &format!("{e:#}"));
                return None;
            }
            Err(e) => panic!("{e:#}"),
        };
        let lab = Lab::with_hosts(&["lb1", "lb2", "witness", "client"]).expect("lab");
        let hosts = Node::ALL.map(|n| lab.host(n.name()).expect("host"));
        let voters = faults::Voters {
            hosts: hosts.clone(),
        };
        let token_file = lab.dir().join("tokens.log");
        let tuning = faults::Tuning {
            session_timeout: SESSION,
            ..faults::Tuning::default()
        };
        let mut configs: [Option<PathBuf>; 3] = [None, None, None];
        for node in Node::ALL.into_iter().filter(|&n| target.runs_on(n)) {
            let host = voters.host(node);
            let dir = lab.dir().join(node.name());
            let text = faults::config(target, node, &voters, &dir, &token_file, tuning);
            let path = host
                .write_file(faults::config_name(target), &text)
                .expect("write config");
            if target != Target::Keepalived {
                daemons::check_vigild_config(&binary, &path).expect("generated config is valid");
            }
            configs[node as usize] = Some(path);
        }
        let vip: IpAddr = faults::VIP.parse().expect("VIP");
        let recorder = HolderRecorder::start(&[&hosts[0], &hosts[1]], vip).expect("recorder");
        let mut fault_lab = Self {
            target,
            binary,
            hosts,
            configs,
            procs: [None, None, None],
            token_file,
            recorder,
            lab,
        };
        // lb1 first, so plain VRRP elects it without a preemption hand-over.
        for node in Node::ALL {
            fault_lab.launch(node);
        }
        let first = fault_lab
            .recorder
            .wait_sole_holder("lb1", Duration::from_millis(500), SETTLE);
        if target == Target::Vigild && fault_lab.logs().contains(NOT_ENFORCED) {
            skip(
                test,
                "this vigild does not enforce fencing = \"quorum\" yet",
            );
            return None;
        }
        if let Err(e) = first {
            panic!("{e}\n{}", fault_lab.explain());
        }
        Some(fault_lab)
    }

    fn host(&self, node: Node) -> &Host {
        &self.hosts[node as usize]
    }

    fn process(&self, node: Node) -> &Process {
        self.procs[node as usize]
            .as_ref()
            .expect("a daemon runs there")
    }

    /// Starts (or restarts) the daemon of `node`, if the target runs one there.
    fn launch(&mut self, node: Node) {
        let Some(config) = &self.configs[node as usize] else {
            return;
        };
        let host = &self.hosts[node as usize];
        let process = match self.target {
            Target::Keepalived => daemons::spawn_keepalived(&self.binary, host, config, &["-P"]),
            _ => daemons::spawn_vigild(&self.binary, host, config),
        }
        .expect("spawn daemon");
        self.procs[node as usize] = Some(process);
    }

    fn grants(&self) -> Vec<Grant> {
        match std::fs::read_to_string(&self.token_file) {
            Ok(text) => tokens::parse(&text).expect("token file"),
            Err(_) => Vec::new(),
        }
    }

    /// The highest token granted to `host` so far.
    fn token_of(&self, host: &str) -> Option<u64> {
        self.grants()
            .iter()
            .filter(|g| g.host == host)
            .filter_map(|g| g.token)
            .max()
    }

    fn wait_sole(&self, node: Node, timeout: Duration) {
        if let Err(e) =
            self.recorder
                .wait_sole_holder(node.name(), Duration::from_millis(300), timeout)
        {
            panic!("{e}\n{}", self.explain());
        }
    }

    fn report(&self) -> HolderReport {
        self.recorder.report()
    }

    fn logs(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for (node, p) in Node::ALL.iter().zip(&self.procs) {
            if let Some(p) = p {
                let _ = writeln!(s, "--- {} ---\n{}", node.name(), p.log_tail(60));
            }
        }
        s
    }

    /// The recording, the tokens and the daemons' logs, for a failure message.
    fn explain(&self) -> String {
        format!(
            "holders:\n{}tokens: {:?}\n{}",
            self.report().describe(),
            self.grants(),
            self.logs()
        )
    }

    fn assert_never_two_holders(&self) {
        let report = self.report();
        assert!(
            report.never_two_holders(),
            "two VIP holders at once:\n{}",
            self.explain()
        );
        assert!(
            report.mismatches.is_empty(),
            "the recorder's dumps disagree with its notifications:\n{}",
            self.explain()
        );
    }

    fn assert_tokens_increase(&self) {
        let check = tokens::check(&self.grants());
        assert!(check.ok(), "fencing tokens: {check}\n{}", self.explain());
    }
}

/// A test that cannot run here says so on stderr, past the harness's capture.
fn skip(test: &str, why: &str) {
    use std::io::Write as _;
    let line = format!("SKIPPED: {test}: {why}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

#[test]
fn a_an_isolated_master_drops_the_vip_before_lb2_takes_it() {
    let Some(fl) = FaultLab::start("fence (a): isolated master", Target::Vigild) else {
        return;
    };
    let t1 = fl.token_of("lb1").expect("lb1 got a token");
    fl.lab.cut(fl.host(Node::Lb1)).expect("cut lb1");
    fl.wait_sole(Node::Lb2, SETTLE);
    fl.assert_never_two_holders();
    fl.assert_tokens_increase();
    let t2 = fl.token_of("lb2").expect("lb2 got a token");
    assert!(t2 > t1, "lb2's token {t2} is not above lb1's {t1}");
    // Cut off, lb1 must not take the VIP back while it cannot reach the quorum.
    std::thread::sleep(SESSION * 2);
    assert_eq!(fl.recorder.holders(), ["lb2"], "{}", fl.explain());
    fl.assert_never_two_holders();
}

#[test]
fn b_lbs_cut_apart_but_both_reaching_the_witness_keep_one_holder() {
    let Some(fl) = FaultLab::start("fence (b): lb1-lb2 cut", Target::Vigild) else {
        return;
    };
    fl.lab
        .cut_between(fl.host(Node::Lb1), fl.host(Node::Lb2))
        .expect("cut lb1-lb2");
    // Both are VRRP masters now; only the owner of the znode may hold the VIP.
    std::thread::sleep(SESSION * 3);
    assert_eq!(fl.recorder.holders().len(), 1, "{}", fl.explain());
    fl.assert_never_two_holders();
    fl.lab.heal_all().expect("heal");
    let holder = fl
        .recorder
        .wait_settled(Duration::from_millis(500), SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", fl.explain()));
    assert_eq!(holder, "lb1", "lb1 has the higher priority");
    fl.assert_never_two_holders();
    fl.assert_tokens_increase();
}

#[test]
fn c_a_master_paused_past_its_session_never_returns_with_its_old_token() {
    let Some(fl) = FaultLab::start("fence (c): paused master", Target::Vigild) else {
        return;
    };
    let old = fl.token_of("lb1").expect("lb1 got a token");
    // The fenced resource: lb1's application writes under the token its notify script got.
    let mut store = FencedStore::default();
    store
        .write(old, "written by lb1")
        .expect("the owner's write");
    fl.process(Node::Lb1).stop().expect("SIGSTOP lb1");
    // The kernel drops the frozen daemon's VIP (its lifetime ends with the lease); lb2 claims
    // once the session expired.
    fl.wait_sole(Node::Lb2, SETTLE);
    std::thread::sleep(SESSION);
    let successor = fl.token_of("lb2").expect("lb2 got a token");
    assert!(successor > old);
    store
        .write(successor, "written by lb2")
        .expect("the successor's write");
    let resumed = fl.recorder.now();
    fl.process(Node::Lb1).cont().expect("SIGCONT lb1");
    // lb1's application wakes up with the token it was given before the pause: its late write
    // is refused and the successor's value stands.
    assert!(
        store.write(old, "late write by lb1").is_err(),
        "the fenced store accepted token {old} after {successor}"
    );
    assert_eq!(store.value(), Some("written by lb2"));
    // lb1 preempts (priority 150) — with a new claim — or stays backup; never with `old`.
    let holder = fl
        .recorder
        .wait_settled(Duration::from_secs(1), SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", fl.explain()));
    fl.assert_never_two_holders();
    fl.assert_tokens_increase();
    let report = fl.report();
    let lb1_again = report
        .event_intervals
        .iter()
        .any(|i| i.host == 0 && i.from >= resumed);
    if lb1_again || holder == "lb1" {
        let newest = fl.token_of("lb1").expect("lb1 token");
        assert!(
            newest > successor,
            "lb1 holds the VIP again with token {newest}, not above lb2's {successor}\n{}",
            fl.explain()
        );
    }
    let announced = fl
        .grants()
        .iter()
        .filter(|g| g.host == "lb1" && g.token == Some(old))
        .count();
    assert_eq!(
        announced,
        1,
        "lb1 announced its old token {old} again\n{}",
        fl.explain()
    );
}

#[test]
fn d_without_the_witness_the_vip_stays_and_a_crash_still_fails_over() {
    let Some(mut fl) = FaultLab::start("fence (d): witness down", Target::Vigild) else {
        return;
    };
    let before = fl.report().event_intervals.len();
    fl.process(Node::Witness).kill().expect("SIGKILL witness");
    // lb1 and lb2 are 2 of 3 voters: the owner's session lives on, the VIP stays put.
    std::thread::sleep(SESSION * 3);
    assert_eq!(fl.recorder.holders(), ["lb1"], "{}", fl.explain());
    assert_eq!(
        fl.report().event_intervals.len(),
        before,
        "the VIP moved or flapped with the witness down:\n{}",
        fl.explain()
    );
    // The master crashes while the witness is still down: lb2 alone is 1 of 3 voters and
    // must not take the VIP (lb1's copy leaves with its kernel lifetime).
    fl.process(Node::Lb1).kill().expect("SIGKILL lb1");
    std::thread::sleep(SESSION * 2);
    assert!(
        fl.recorder.holders().is_empty(),
        "a VIP holder without a quorum:\n{}",
        fl.explain()
    );
    // The witness returns: lb2 and the witness are a quorum again, lb1's session expires and
    // lb2 takes over.
    fl.launch(Node::Witness);
    fl.wait_sole(Node::Lb2, SETTLE);
    fl.assert_never_two_holders();
    fl.assert_tokens_increase();
}

#[test]
fn e_a_killed_master_is_replaced_after_its_session_expires_with_a_larger_token() {
    let Some(fl) = FaultLab::start("fence (e): killed master", Target::Vigild) else {
        return;
    };
    let old = fl.token_of("lb1").expect("lb1 got a token");
    let killed = fl.recorder.now();
    fl.process(Node::Lb1).kill().expect("SIGKILL lb1");
    fl.wait_sole(Node::Lb2, SETTLE);
    fl.assert_never_two_holders();
    let report = fl.report();
    let taken = report
        .event_intervals
        .iter()
        .find(|i| i.host == 1)
        .expect("lb2 held the VIP")
        .from;
    // The successor waits for the dead owner's session: not before about one session
    // timeout after the kill (its last keep-alive may have been up to a heartbeat earlier).
    assert!(
        taken >= killed + SESSION / 2,
        "lb2 took the VIP {:?} after the kill, before lb1's session could expire\n{}",
        taken.saturating_sub(killed),
        fl.explain()
    );
    let new = fl.token_of("lb2").expect("lb2 got a token");
    assert!(new > old, "lb2's token {new} is not above lb1's {old}");
    fl.assert_tokens_increase();
}

/// The recorder must see split brain where there is one: without fencing, an isolated master
/// keeps its VIP while the backup takes it too.
fn unfenced_isolation_is_seen_as_two_holders(test: &str, target: Target) {
    let Some(fl) = FaultLab::start(test, target) else {
        return;
    };
    let cut_at = fl.recorder.now();
    fl.lab.cut(fl.host(Node::Lb1)).expect("cut lb1");
    vigil_integration::wait_for("both hold the VIP", SETTLE, || {
        fl.recorder.holders().len() == 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", fl.explain()));
    std::thread::sleep(Duration::from_millis(300));
    let both_at = fl.recorder.now();
    fl.lab.heal_all().expect("heal");
    fl.recorder
        .wait_sole_holder("lb1", Duration::from_millis(300), SETTLE)
        .unwrap_or_else(|e| panic!("{e}\n{}", fl.explain()));
    let report = fl.report();
    // Only what the partition caused: a loaded machine may delay an advert before it.
    let during = |list: &[vigil_integration::holders::timeline::Overlap]| {
        list.iter()
            .filter(|o| o.to > cut_at)
            .cloned()
            .collect::<Vec<_>>()
    };
    let (events, dumps) = (
        during(&report.event_overlaps),
        during(&report.dump_overlaps),
    );
    assert_eq!(events.len(), 1, "{}", report.describe());
    assert_eq!(dumps.len(), 1, "{}", report.describe());
    let overlap = &events[0];
    assert_eq!(overlap.hosts, [0, 1]);
    assert!(overlap.duration() >= Duration::from_millis(300));
    assert!(overlap.from < both_at && overlap.to > both_at);
    assert!(report.mismatches.is_empty(), "{}", report.describe());
}

#[test]
fn the_recorder_sees_the_split_brain_of_unfenced_vigild() {
    unfenced_isolation_is_seen_as_two_holders(
        "recorder: vigild without fencing",
        Target::VigildNoFence,
    );
}

#[test]
fn the_recorder_sees_the_split_brain_of_keepalived() {
    unfenced_isolation_is_seen_as_two_holders("recorder: keepalived", Target::Keepalived);
}

/// Timed by hand with `ip addr`: a 200 ms overlap is measured as such, and a VIP whose kernel
/// lifetime runs out produces a removal the recorder sees.
#[test]
fn the_recorder_times_overlaps_and_sees_kernel_lifetime_expiry() {
    if !root_available("recorder: manual overlap and lifetime") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "lb2"]).expect("lab");
    let (lb1, lb2) = (lab.host("lb1").expect("lb1"), lab.host("lb2").expect("lb2"));
    let vip: IpAddr = "10.0.0.100".parse().expect("VIP");
    let recorder = HolderRecorder::start(&[&lb1, &lb2], vip).expect("recorder");
    lb1.add_address("10.0.0.100/24").expect("add on lb1");
    std::thread::sleep(Duration::from_millis(100));
    lb2.ip(&[
        "addr",
        "add",
        "10.0.0.100/24",
        "dev",
        "vnet0",
        "valid_lft",
        "1",
        "preferred_lft",
        "1",
    ])
    .expect("add on lb2 with a 1 s lifetime");
    std::thread::sleep(Duration::from_millis(200));
    lb1.ip(&["addr", "del", "10.0.0.100/24", "dev", "vnet0"])
        .expect("del on lb1");
    let added = Instant::now();
    vigil_integration::wait_for(
        "the kernel expires lb2's VIP",
        Duration::from_secs(5),
        || recorder.holders().is_empty(),
    )
    .expect("lifetime expiry seen");
    // IPv4 lifetimes are checked by a periodic kernel job: about a second, never much less.
    assert!(added.elapsed() >= Duration::from_millis(500));
    let report = recorder.finish().expect("recorder");
    assert_eq!(report.event_overlaps.len(), 1, "{}", report.describe());
    let d = report.event_overlaps[0].duration();
    assert!(
        d >= Duration::from_millis(190) && d < Duration::from_millis(400),
        "overlap measured as {d:?}:\n{}",
        report.describe()
    );
    assert_eq!(report.event_intervals.len(), 2, "{}", report.describe());
    assert!(report.mismatches.is_empty(), "{}", report.describe());
    assert_eq!(report.overruns, 0);
}

/// A few seeds of the randomized runner: fenced vigild must keep every invariant.
#[test]
fn seeded_schedules_keep_fenced_vigild_to_one_holder_and_increasing_tokens() {
    let test = "fence: seeded schedules (vigild)";
    if !root_available(test) {
        return;
    }
    let binaries = Binaries::find();
    let options = Options::default();
    for seed in 1..=5 {
        let schedule = Schedule::generate(seed, 5, Timing::default());
        let outcome = faults::run_schedule(&binaries, Target::Vigild, &schedule, options)
            .unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        if outcome.fencing_enforced == Some(false) {
            skip(
                test,
                "this vigild does not enforce fencing = \"quorum\" yet",
            );
            return;
        }
        assert!(
            outcome.clean(),
            "seed {seed} ({}):\n{}\n{}",
            schedule.describe(),
            faults::line(&outcome),
            outcome.holders.describe()
        );
    }
}

/// The same seeds against vigild without fencing: the runner must see its split brain (the
/// schedules cut lb1 from lb2) and the VIP must still settle once everything is healed.
#[test]
fn seeded_schedules_catch_the_split_brain_of_unfenced_vigild() {
    if !root_available("fence: seeded schedules (vigild-nofence)") {
        return;
    }
    let binaries = Binaries::find();
    let mut doubles = 0;
    for seed in 1..=5 {
        let schedule = Schedule::generate(seed, 5, Timing::default());
        let outcome = faults::run_schedule(
            &binaries,
            Target::VigildNoFence,
            &schedule,
            Options::default(),
        )
        .unwrap_or_else(|e| panic!("seed {seed}: {e:#}"));
        assert!(
            outcome.settled.is_some() && outcome.exited.is_empty(),
            "seed {seed}: {}\n{}",
            faults::line(&outcome),
            outcome.holders.describe()
        );
        assert!(
            outcome.holders.mismatches.is_empty(),
            "{}",
            outcome.holders.describe()
        );
        doubles += outcome.holders.event_overlaps.len();
    }
    assert!(
        doubles > 0,
        "no split brain seen in 5 schedules without fencing"
    );
}

//! vigild's health checks end to end: `lb1` checks HTTP servers on `rs1` and `rs2` over the lab
//! segment; killing and restarting one shows in `vigilctl lvs --json` and in the desired IPVS
//! table. The development kernel has no IPVS, so the assertions are on the desired table vigild
//! reports; the real-kernel path is covered by the lvs crate's VM test.

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use vigil_integration::{Host, Lab, Process, root_available, wait_for, workspace_binary};

const INTERVAL_MS: u64 = 200;
const TIMEOUT_MS: u64 = 500;
const RETRIES: u64 = 1;
const RETRY_DELAY_MS: u64 = 100;
const RISE: u64 = 2;
const API: &str = "127.0.0.1:7400";
/// Scheduling, process start-up and a loaded 2-core machine.
const SLACK: Duration = Duration::from_secs(2);

fn binary(name: &str) -> String {
    let path = workspace_binary(name).unwrap_or_else(|| {
        panic!("{name} is not built in this target directory; run `cargo build -p vigil-daemon`")
    });
    path.to_string_lossy().into_owned()
}

fn http_server(host: &Host) -> Process {
    let ip = host.ipv4().to_string();
    host.spawn(
        "http",
        &["python3", "-m", "http.server", "8080", "--bind", &ip],
        &[],
    )
    .expect("spawn python3 http.server")
}

/// The check of every real server, after `type`: HTTP, or TCP by vigild's half-open probe.
const HTTP: &str = "type = \"http\"\npath = \"/\"\n";
const HALF_OPEN: &str = "type = \"tcp\"\nhalf_open = true\n";

fn config(rs1: &Host, rs2: &Host, check: &str) -> String {
    let mut text = format!(
        "[global]\nnode_name = \"lb1\"\n\n[api]\nlisten = \"{API}\"\n\n\
         [[virtual_server]]\naddress = \"10.0.0.100:80\"\ngroup = \"web\"\nscheduler = \"rr\"\n"
    );
    for rs in [rs1, rs2] {
        let _ = write!(
            text,
            "\n[[virtual_server.real_server]]\naddress = \"{}\"\nport = 8080\n\
             [[virtual_server.real_server.check]]\n{check}\
             interval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\nretries = {RETRIES}\n\
             retry_delay = \"{RETRY_DELAY_MS}ms\"\nrise = {RISE}\nfall = 1\nwarmup = \"100ms\"\n",
            rs.ipv4()
        );
    }
    text
}

fn lvs_json(lb1: &Host, vigilctl: &str) -> Option<Value> {
    let out = lb1.run(&[vigilctl, "--api", API, "lvs", "--json"]).ok()?;
    serde_json::from_str(&out).ok()
}

fn real<'a>(status: &'a Value, addr: &str) -> &'a Value {
    status["virtual_servers"][0]["real_servers"]
        .as_array()
        .and_then(|reals| reals.iter().find(|r| r["addr"] == addr))
        .unwrap_or(&Value::Null)
}

fn in_desired(status: &Value, addr: &str) -> bool {
    status["virtual_servers"][0]["desired"]
        .as_array()
        .is_some_and(|d| d.iter().any(|dest| dest["addr"] == addr))
}

/// Waits for `cond` on the status; returns how long it took and the status that satisfied it.
fn wait_status(
    what: &str,
    limit: Duration,
    lb1: &Host,
    vigilctl: &str,
    daemon: &Process,
    cond: impl Fn(&Value) -> bool,
) -> (Duration, Value) {
    let start = Instant::now();
    let mut found = None;
    let result = wait_for(what, limit, || {
        found = lvs_json(lb1, vigilctl).filter(|s| cond(s));
        found.is_some()
    });
    if let Err(e) = result {
        panic!(
            "{e}\nlast status: {:#}\nvigild log:\n{}",
            lvs_json(lb1, vigilctl).unwrap_or(Value::Null),
            daemon.log_tail(40)
        );
    }
    (start.elapsed(), found.unwrap_or(Value::Null))
}

#[test]
fn vigild_marks_a_killed_real_server_down_and_back_up() {
    killed_and_restarted("vigild_marks_a_killed_real_server_down_and_back_up", HTTP);
}

/// The same with SYN probes from a raw socket across the lab's bridge: the real servers' kernels
/// check the hand-built segments' checksums, and `lb1`'s kernel resets their SYN-ACKs.
#[test]
fn half_open_checks_mark_a_killed_real_server_down_and_back_up() {
    killed_and_restarted(
        "half_open_checks_mark_a_killed_real_server_down_and_back_up",
        HALF_OPEN,
    );
}

fn killed_and_restarted(test: &str, check: &str) {
    if !root_available(test) {
        return;
    }
    let (vigild, vigilctl) = (binary("vigild"), binary("vigilctl"));
    let lab = Lab::with_hosts(&["lb1", "rs1", "rs2"]).expect("lab");
    let (lb1, rs1, rs2) = (
        lab.host("lb1").expect("lb1"),
        lab.host("rs1").expect("rs1"),
        lab.host("rs2").expect("rs2"),
    );
    let web1 = http_server(&rs1);
    let _web2 = http_server(&rs2);
    let path = lb1
        .write_file("vigil.toml", &config(&rs1, &rs2, check))
        .expect("config");
    let daemon = lb1
        .spawn(
            "vigild",
            &[
                vigild.as_str(),
                "--config",
                &Path::new(&path).to_string_lossy(),
                "--log-format",
                "plain",
            ],
            &[],
        )
        .expect("spawn vigild");
    let (a1, a2) = (
        format!("{}:8080", rs1.ipv4()),
        format!("{}:8080", rs2.ipv4()),
    );

    // Both checked and passing (python needs a moment to start listening).
    let (_, status) = wait_status(
        "both real servers pass their checks",
        Duration::from_secs(15),
        &lb1,
        &vigilctl,
        &daemon,
        |s| {
            [&a1, &a2]
                .iter()
                .all(|a| real(s, a)["up"] == true && real(s, a)["checks"][0]["last_ok"] == true)
        },
    );
    let ipvs = status["ipvs"].as_str().unwrap_or_default();
    assert!(
        ipvs == "ok" || ipvs.starts_with("unavailable: "),
        "ipvs: {ipvs}"
    );
    assert!(
        in_desired(&status, &a1) && in_desired(&status, &a2),
        "{status:#}"
    );
    assert!(real(&status, &a1)["checks"][0]["latency_ms"].is_number());

    // Kill rs1's server: down within interval + timeout·(retries+1) + retry delays (+ slack).
    web1.kill().expect("kill rs1's http server");
    let bound =
        Duration::from_millis(INTERVAL_MS + TIMEOUT_MS * (RETRIES + 1) + RETRY_DELAY_MS * RETRIES);
    let (took, status) = wait_status(
        "rs1 marked down",
        bound + SLACK,
        &lb1,
        &vigilctl,
        &daemon,
        |s| real(s, &a1)["up"] == false,
    );
    eprintln!("rs1 down after {took:?} (bound {bound:?} + slack)");
    assert!(!in_desired(&status, &a1), "{status:#}");
    assert!(in_desired(&status, &a2), "{status:#}");
    assert_eq!(real(&status, &a1)["desired_weight"], Value::Null);
    assert_eq!(real(&status, &a1)["checks"][0]["last_ok"], false);
    assert_eq!(status["virtual_servers"][0]["quorum_up"], true);
    assert!(daemon.log().contains("health check changed state"));

    // Restart it: back after `rise` successful rounds, i.e. not before (rise − 1) intervals
    // (less the scheduler's jitter: rounds start up to 2% early, never late).
    let _web1 = http_server(&rs1);
    let (took, status) = wait_status(
        "rs1 back up",
        Duration::from_secs(15),
        &lb1,
        &vigilctl,
        &daemon,
        |s| real(s, &a1)["up"] == true,
    );
    eprintln!("rs1 up again after {took:?}");
    assert!(
        took >= Duration::from_millis(INTERVAL_MS * (RISE - 1) * 49 / 50),
        "up after {took:?}, before {RISE} rounds could have passed"
    );
    assert!(
        in_desired(&status, &a1) && in_desired(&status, &a2),
        "{status:#}"
    );
    assert_eq!(real(&status, &a1)["checks"][0]["last_ok"], true);
}

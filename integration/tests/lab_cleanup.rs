//! Nothing survives a lab: not a panicking test, not a SIGKILLed owner.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use vigil_integration::{Lab, RunId, gc, root_available};

use crate::support::{REACH, count_lines, leftovers};

const PANIC_CHILD_ENV: &str = "VIGIL_LAB_PANIC_CHILD";
const PANIC_LOG_MARKER: &str = "marker-of-a-process-that-was-running";

#[test]
fn a_panicking_test_prints_logs_and_leaves_nothing_behind() {
    if std::env::var_os(PANIC_CHILD_ENV).is_some() {
        // Child role: build a lab with live processes, report it, and fail.
        let lab = Lab::with_hosts(&["lb1", "lb2", "witness"]).expect("lab");
        let mut pids = Vec::new();
        for host in lab.hosts() {
            let cmd = format!("echo {PANIC_LOG_MARKER}; exec sleep 600");
            let process = host
                .spawn("sleeper", &["sh", "-c", &cmd], &[])
                .expect("spawn");
            process
                .wait_for_output(PANIC_LOG_MARKER, REACH)
                .expect("marker");
            pids.push(process.pid().to_string());
        }
        println!("LAB {} {}", lab.id(), pids.join(" "));
        panic!("on purpose, to exercise the lab's cleanup");
    }
    if !root_available("a_panicking_test_prints_logs_and_leaves_nothing_behind") {
        return;
    }
    let exe = std::env::current_exe().expect("test binary path");
    let output = Command::new(exe)
        .args([
            "lab_cleanup::a_panicking_test_prints_logs_and_leaves_nothing_behind",
            "--exact",
            "--nocapture",
        ])
        .env(PANIC_CHILD_ENV, "1")
        .output()
        .expect("run child");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "child did not fail:\n{stdout}\n{stderr}"
    );
    let report = stdout
        .lines()
        .find_map(|line| line.strip_prefix("LAB "))
        .unwrap_or_else(|| panic!("no LAB line:\n{stdout}\n{stderr}"));
    let mut words = report.split_whitespace();
    let run = words.next().and_then(RunId::parse).expect("run id");
    let pids: Vec<u32> = words.map(|w| w.parse().expect("pid")).collect();
    assert_eq!(pids.len(), 3);
    assert!(stderr.contains("on purpose"), "{stderr}");
    assert_eq!(
        count_lines(&stderr, PANIC_LOG_MARKER),
        3,
        "log tails not printed:\n{stderr}"
    );
    assert!(stderr.contains("lb1/sleeper"), "{stderr}");
    assert_eq!(leftovers(&run, &pids), Vec::<String>::new());
    // Logs are kept for the post-mortem; remove them now that they were checked.
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("vigil-lab-{run}")));
}

#[test]
fn a_sigkilled_owners_lab_is_collected() {
    if !root_available("a_sigkilled_owners_lab_is_collected") {
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil-lab"))
        .args(["hold", "lb1", "lb2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("vigil-lab hold");
    let mut line = String::new();
    let stdout = child.stdout.take().expect("piped stdout");
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("READY line");
    let mut words = line.split_whitespace();
    assert_eq!(words.next(), Some("READY"), "{line}");
    let run = words.next().and_then(RunId::parse).expect("run id");
    let pids: Vec<u32> = words.map(|w| w.parse().expect("pid")).collect();
    assert_eq!(pids.len(), 2);
    assert!(
        !leftovers(&run, &pids).is_empty(),
        "the held lab should exist"
    );

    child.kill().expect("SIGKILL the owner");
    child.wait().expect("reap the owner");
    // Its processes outlive it (own process groups); gc must find and kill them. (A lab created
    // by a test running in parallel may collect it first; the outcome must be the same.)
    gc(false).expect("gc");
    assert_eq!(leftovers(&run, &pids), Vec::<String>::new());
    let _ = std::fs::remove_dir_all(std::env::temp_dir().join(format!("vigil-lab-{run}")));
}

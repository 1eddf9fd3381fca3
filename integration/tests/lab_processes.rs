//! Processes inside lab hosts: namespaces, signals, process groups, logs, files.

use std::time::Duration;

use nix::sys::signal::Signal;
use vigil_integration::{Lab, root_available, wait_for};

use crate::support::{REACH, count_lines, has_line, process_alive};

#[test]
fn processes_run_in_their_host_and_can_be_stopped_continued_and_killed() {
    if !root_available("processes_run_in_their_host_and_can_be_stopped_continued_and_killed") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1", "rs1"]).expect("lab");
    let rs1 = lab.host("rs1").expect("rs1");
    let ticker = rs1
        .spawn(
            "ticker",
            &[
                "sh",
                "-c",
                "echo where=$(ip -br addr show vnet0) name=$LAB_NAME; \
               sleep 600 & echo grandchild=$!; while :; do echo tick; sleep 0.02; done",
            ],
            &[("LAB_NAME", "ticker")],
        )
        .expect("spawn");
    ticker.wait_for_output("tick", REACH).expect("start");
    let log = ticker.log();
    assert!(
        log.contains("10.0.0.2/24") && log.contains("name=ticker"),
        "{log}"
    );
    assert!(ticker.log_path().starts_with(lab.dir()));
    let grandchild: u32 = log
        .lines()
        .find_map(|line| line.strip_prefix("grandchild=")?.trim().parse().ok())
        .expect("grandchild pid in log");

    let ticks = || count_lines(&ticker.log(), "tick");
    ticker.stop().expect("SIGSTOP");
    std::thread::sleep(Duration::from_millis(100));
    let frozen = ticks();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(ticks(), frozen, "a stopped process kept writing");
    assert!(ticker.is_running());

    ticker.cont().expect("SIGCONT");
    wait_for("ticks after SIGCONT", REACH, || ticks() > frozen + 3).expect("resumed");

    let status = ticker.kill().expect("SIGKILL");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert!(!ticker.is_running());
    wait_for("grandchild to die with its group", REACH, || {
        !process_alive(grandchild)
    })
    .expect("the whole process group was killed");
    assert!(
        ticker.signal(Signal::SIGCONT).is_err(),
        "signal to a reaped process"
    );
}

#[test]
fn terminate_is_graceful_then_forceful_and_files_land_in_the_lab_dir() {
    if !root_available("terminate_is_graceful_then_forceful_and_files_land_in_the_lab_dir") {
        return;
    }
    let lab = Lab::with_hosts(&["lb1"]).expect("lab");
    let lb1 = lab.host("lb1").expect("lb1");
    let script = lb1
        .write_file(
            "graceful.sh",
            "trap 'echo bye; exit 3' TERM\necho ready\nwhile :; do sleep 0.02; done\n",
        )
        .expect("write_file");
    assert!(script.starts_with(lab.dir()));
    assert!(lb1.write_file("../escape", "x").is_err());

    let graceful = lb1
        .spawn(
            "graceful",
            &["sh", script.to_str().expect("utf-8 path")],
            &[],
        )
        .expect("spawn");
    graceful.wait_for_output("ready", REACH).expect("ready");
    let status = graceful
        .terminate(Duration::from_secs(5))
        .expect("terminate");
    assert_eq!(status.code(), Some(3));
    assert!(has_line(&graceful.log(), "bye"));
    // A restart under the same name appends to the same log, as a crashed daemon's restart would.
    let again = lb1
        .spawn("graceful", &["sh", "-c", "echo second run"], &[])
        .expect("respawn");
    again.wait(REACH).expect("second run exits");
    assert_eq!(again.log_path(), graceful.log_path());
    let log = again.log();
    assert!(
        has_line(&log, "bye") && has_line(&log, "second run"),
        "{log}"
    );
    assert_eq!(lab.processes().len(), 2);

    let stubborn = lb1
        .spawn(
            "stubborn",
            &[
                "sh",
                "-c",
                "trap '' TERM; echo ready; while :; do sleep 0.02; done",
            ],
            &[],
        )
        .expect("spawn");
    stubborn.wait_for_output("ready", REACH).expect("ready");
    let status = stubborn
        .terminate(Duration::from_millis(300))
        .expect("terminate");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
}

#[test]
fn workspace_binaries_are_found_next_to_the_test() {
    let found = vigil_integration::workspace_binary("vigil-lab").expect("vigil-lab is built");
    assert_eq!(
        found.canonicalize().expect("canonical"),
        std::path::Path::new(env!("CARGO_BIN_EXE_vigil-lab"))
            .canonicalize()
            .expect("canonical")
    );
    assert_eq!(vigil_integration::workspace_binary("no-such-binary"), None);
}

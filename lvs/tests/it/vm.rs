//! The real-kernel run: this machine's kernel has no IPVS, so the `kernel` and `scenarios`
//! tests of this very binary are run again under Debian's stock kernel in qemu
//! (`scripts/vm-run`), where they must pass rather than skip.
//!
//! The host side lists those tests, runs exactly them in the VM (one thread, output on the
//! serial console) and requires both the program's exit status and libtest's summary line to
//! report all of them passed, and no SKIPPED line: a VM that ran nothing, or skipped everything,
//! cannot pass.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use crate::netns::{cannot_run, in_vm};

/// Test-path prefixes of the tests that need a kernel with IPVS.
const KERNEL_TESTS: [&str; 2] = ["kernel::", "scenarios::"];

/// The whole VM run, boot included, stays within the two-minute budget.
const VM_TIMEOUT_S: u32 = 110;

/// The tests of the binary `exe` that need a kernel with IPVS, by full path.
fn kernel_tests(exe: &Path) -> Vec<String> {
    let out = Command::new(exe)
        .args(["--list", "--format", "terse"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} --list: {}",
        exe.display(),
        out.status
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_suffix(": test"))
        .filter(|t| KERNEL_TESTS.iter().any(|p| t.starts_with(p)))
        .map(str::to_owned)
        .collect()
}

#[test]
fn kernel_tests_pass_under_a_stock_kernel_in_a_vm() {
    let name = "kernel_tests_pass_under_a_stock_kernel_in_a_vm";
    assert!(!in_vm(), "the VM runs only the kernel tests, never itself");
    if !nix::unistd::geteuid().is_root() {
        cannot_run(name, "needs root");
        return;
    }
    let vm_run = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/vm-run");
    let check = Command::new("bash")
        .arg(&vm_run)
        .arg("--check")
        .output()
        .unwrap();
    if !check.status.success() {
        cannot_run(name, String::from_utf8_lossy(&check.stderr).trim());
        return;
    }

    let exe = std::env::current_exe().unwrap();
    let tests = kernel_tests(&exe);
    for expected in [
        "kernel::fake_answers_like_the_kernel",
        "scenarios::converge_undoes_external_ipvsadm_changes",
    ] {
        assert!(
            tests.iter().any(|t| t == expected),
            "{expected} not in {tests:?}"
        );
    }

    let started = Instant::now();
    let out = Command::new("bash")
        .arg(&vm_run)
        .arg(&exe)
        .arg("--exact")
        .args(&tests)
        .args(["--test-threads=1", "--nocapture"])
        .env("VIGIL_VM_TIMEOUT", VM_TIMEOUT_S.to_string())
        .output()
        .unwrap();
    let console = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Shown on failure (libtest captures it otherwise), and with --nocapture.
    eprintln!("--- real-kernel VM console ---\n{console}--- vm-run ---\n{stderr}");

    assert!(out.status.success(), "vm-run: {}", out.status);
    let summary = format!("test result: ok. {} passed; 0 failed", tests.len());
    assert!(console.contains(&summary), "no {summary:?} on the console");
    assert!(
        !console.contains("SKIPPED"),
        "a kernel test skipped inside the VM"
    );
    eprintln!(
        "real-kernel VM: {} kernel tests passed in {:.1?}",
        tests.len(),
        started.elapsed()
    );
}

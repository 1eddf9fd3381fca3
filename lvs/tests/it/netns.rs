//! Where the kernel tests run: each on a thread of its own that has moved to a fresh network
//! namespace (IPVS tables are per namespace, so the host's table is never read or changed, and
//! every test starts from an empty table).
//!
//! On a development machine a test that cannot run (not root, no IPVS, no `ipvsadm`) prints a
//! loud SKIPPED line and passes. Inside the real-kernel VM (`scripts/vm-run` exports
//! `VIGIL_IN_VM=1`) the same condition is a failure: the VM exists to run these tests for real,
//! so a silent skip there would hide a broken setup.

use std::process::Command;

use nix::sched::{CloneFlags, unshare};
use vigil_lvs::{LvsError, NetlinkIpvs};

/// Whether this process runs inside the real-kernel VM.
pub(crate) fn in_vm() -> bool {
    std::env::var_os("VIGIL_IN_VM").is_some_and(|v| v == "1")
}

/// Reports that `name` cannot run for `why`: a skip here, a failure in the VM.
pub(crate) fn cannot_run(name: &str, why: &str) {
    assert!(!in_vm(), "{name}: {why}, inside the real-kernel VM");
    eprintln!("SKIPPED ({why}): {name}");
}

/// Runs `body` in a fresh network namespace with `lo` up. Returns `None`, after saying why, when
/// the test cannot run here (see the module docs); a panic in `body` is the test's panic.
pub(crate) fn in_private_netns<T: Send + 'static>(
    name: &str,
    body: impl FnOnce(NetlinkIpvs) -> T + Send + 'static,
) -> Option<T> {
    if !nix::unistd::geteuid().is_root() {
        cannot_run(name, "needs root");
        return None;
    }
    let name = name.to_owned();
    let thread = std::thread::spawn(move || {
        // Only this thread moves; children it spawns (ip, ipvsadm) inherit its namespace, which
        // goes away with the thread.
        unshare(CloneFlags::CLONE_NEWNET).unwrap();
        // With `lo` down the namespace has no local routing table, and the kernel's address-type
        // check then refuses every IPv4 destination (EINVAL).
        let up = Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(
            up.as_ref().is_ok_and(std::process::ExitStatus::success),
            "ip link set lo up: {up:?}"
        );
        match NetlinkIpvs::open() {
            Ok(ipvs) => Some(body(ipvs)),
            Err(LvsError::NoIpvs) => {
                cannot_run(
                    &name,
                    "kernel has no IPVS; runs in the real-kernel VM, see lvs/tests/it/vm.rs",
                );
                None
            }
            Err(e) => panic!("opening IPVS: {e}"),
        }
    });
    match thread.join() {
        Ok(out) => out,
        // Re-raise with the original payload, so the test reports the real assertion.
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

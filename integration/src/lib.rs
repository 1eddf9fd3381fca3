//! Network-namespace lab harness for end-to-end tests (needs root).
//!
//! A [`Lab`] is a private Ethernet segment: a Linux bridge in a namespace of its own, and named
//! hosts (`lb1`, `lb2`, `witness`, `rs1`, `client`, …), each a network namespace plugged into the
//! bridge with a veth pair and addressed `10.0.0.<n>/24` and `fd00::<n>/64`. Tests start daemons
//! (`vigild`, keepalived, anything) inside hosts, cut and heal links, wait for conditions, and get
//! every process log printed when they fail. Dropping the lab — also during a panic — kills every
//! process and deletes every namespace, veth and the bridge; labs of SIGKILLed runs are collected
//! by the next lab (or `vigil-lab gc`). Names are unique per run, so labs run in parallel.
//!
//! ```no_run
//! # fn main() -> Result<(), vigil_integration::LabError> {
//! use std::time::Duration;
//! use vigil_integration::{Lab, root_available};
//!
//! if !root_available("example") {
//!     return Ok(());
//! }
//! let lab = Lab::with_hosts(&["lb1", "lb2", "witness"])?;
//! let (lb1, lb2) = (lab.host("lb1")?, lab.host("lb2")?);
//! let config = lb1.write_file("vigild.toml", "# generated\n")?;
//! let daemon = lb1.spawn("vigild", &["vigild", "-c", &config.to_string_lossy()], &[])?;
//! lab.cut_between(&lb1, &lb2)?;
//! assert!(!lab.udp_exchange(&lb1, &lb2, Duration::from_millis(300))?);
//! daemon.kill()?;
//! # Ok(())
//! # }
//! ```
//!
//! Needs `ip` (iproute2) and, for cuts, `nft` (nftables).
//!
//! # Layout
//!
//! - `lab.rs`: [`Lab`] — switch namespace and bridge, adding hosts, cuts, teardown on drop.
//! - `host.rs`: [`Host`] — commands, processes, files, sockets and addresses inside one host.
//! - `process.rs`: [`Process`] — a program in its own process group with a log file; signals.
//! - `partition.rs`: cut state rendered as an nftables `bridge` ruleset for the switch.
//! - `probe.rs`: UDP round trips that show whether two hosts can talk.
//! - `netns.rs`: [`in_netns`] — run a closure on a thread inside a namespace.
//! - `state.rs`: ownership records under `/run/vigil-lab`, [`gc`] of labs whose owner died.
//! - `naming.rs`: [`RunId`] and every name derived from it.
//! - `wait.rs`: [`wait_for`] — poll a condition with a deadline.
//! - `bins.rs`: [`workspace_binary`] — find `vigild` and friends in the target directory.
//! - `holders/`: [`HolderRecorder`] — every add/removal of a VIP on the watched hosts over
//!   rtnetlink, plus 5 ms dumps, on one clock; overlaps (two holders) with their durations.
//! - `tokens.rs`: fencing tokens from `notify_master` hooks; "strictly increasing" check.
//! - `daemons.rs`: starting vigild and keepalived in a host.
//! - `faults/`: seeded fault schedules and their runner (`vigil-faults`).
//! - `cmd.rs`: running `ip`, `nft` and `sysctl`.
//! - `error.rs`: [`LabError`].
//! - `bin/vigil-lab.rs`: the CLI behind `scripts/lab` (`up`, `down`, `gc`, `list`).

#![warn(missing_docs)]

mod bins;
mod cmd;
pub mod daemons;
mod error;
pub mod faults;
pub mod fenced_store;
pub mod holders;
mod host;
mod lab;
mod naming;
mod netns;
mod partition;
mod probe;
mod process;
mod state;
pub mod tokens;
mod wait;

use std::io::Write;

pub use bins::workspace_binary;
pub use error::{LabError, Result};
pub use holders::{HolderRecorder, HolderReport};
pub use host::Host;
pub use lab::{KEEP_LOGS_ENV, Lab};
pub use naming::{HOST_IFACE, RunId};
pub use netns::in_netns;
pub use process::Process;
pub use state::{LabRecord, Owner, STATE_DIR, destroy, gc, labs};
pub use wait::{wait_for, wait_for_value};

/// Whether this process can build labs: root, with a working `ip netns`. When not, prints a loud
/// `SKIPPED (needs root): <test>: <reason>` line to stderr, so the caller can return early.
pub fn root_available(test: &str) -> bool {
    let reason = if nix::unistd::geteuid().is_root() {
        match cmd::ip(&["netns", "list"]) {
            Ok(_) => return true,
            Err(e) => format!("`ip netns` does not work here: {e}"),
        }
    } else {
        "not running as root".to_owned()
    };
    // Straight to the stderr handle rather than `eprintln!`, which the test harness captures and
    // hides for passing tests: a skip must be seen. One write, so parallel tests' lines stay whole.
    let line = format!("SKIPPED (needs root): {test}: {reason}\n");
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    false
}

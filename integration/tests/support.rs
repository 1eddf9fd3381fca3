//! Helpers shared by the lab tests.

use std::process::Command;
use std::time::Duration;

use vigil_integration::{Host, Lab, RunId};

/// Long enough for a working path even on a loaded 2-core machine (ARP resolution included).
pub(crate) const REACH: Duration = Duration::from_secs(3);
/// How long a cut path is probed before it counts as cut.
pub(crate) const CUT: Duration = Duration::from_millis(400);

/// Whether `a` and `b` can talk (a UDP round trip within [`REACH`]).
pub(crate) fn reaches(lab: &Lab, a: &Host, b: &Host) -> bool {
    lab.udp_exchange(a, b, REACH).expect("probe sockets")
}

/// Whether `a` and `b` cannot talk in either direction (probed for [`CUT`] each way).
pub(crate) fn blocked(lab: &Lab, a: &Host, b: &Host) -> bool {
    !lab.udp_exchange(a, b, CUT).expect("probe sockets")
        && !lab.udp_exchange(b, a, CUT).expect("probe sockets")
}

/// Whether `text` has a line that is exactly `line` (after trimming).
pub(crate) fn has_line(text: &str, line: &str) -> bool {
    count_lines(text, line) > 0
}

/// How many lines of `text` are exactly `line` (after trimming).
pub(crate) fn count_lines(text: &str, line: &str) -> usize {
    text.lines().filter(|l| l.trim() == line).count()
}

/// Everything a run could have left behind, as human-readable descriptions.
pub(crate) fn leftovers(run: &RunId, pids: &[u32]) -> Vec<String> {
    let mut found = Vec::new();
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    for line in String::from_utf8_lossy(&netns.stdout).lines() {
        if line.contains(run.as_str()) {
            found.push(format!("netns {line}"));
        }
    }
    // Nothing of a lab should ever appear in the machine's namespace; check anyway.
    let links = Command::new("ip")
        .args(["-o", "link"])
        .output()
        .expect("ip link");
    for line in String::from_utf8_lossy(&links.stdout).lines() {
        if line.contains(run.as_str()) {
            found.push(format!("link {line}"));
        }
    }
    if std::path::Path::new(vigil_integration::STATE_DIR)
        .join(run.as_str())
        .exists()
    {
        found.push(format!("state record {run}"));
    }
    for &pid in pids {
        if process_alive(pid) {
            found.push(format!("process {pid}"));
        }
    }
    found
}

/// A zombie awaiting its new parent's `wait` counts as gone: it runs nothing and holds no namespace.
pub(crate) fn process_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            let (_, rest) = stat.rsplit_once(')')?;
            rest.split_whitespace()
                .next()
                .map(|state| state != "Z" && state != "X")
        })
        .unwrap_or(false)
}

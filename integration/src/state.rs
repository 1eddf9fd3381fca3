//! Who owns which lab, and garbage collection of labs whose owner died.
//!
//! Before a lab creates anything it claims `/run/vigil-lab/<id>/` and writes its owner there: the
//! owning process's pid and start time, or `manual` for a lab made by `scripts/lab up`. A test that
//! is SIGKILLed cannot run its `Drop`, so [`gc`] — called by every new lab and by `vigil-lab gc` —
//! removes each lab whose owner is no longer alive: it kills every process still inside the lab's
//! namespaces and deletes them (which deletes their veths and the bridge too).
//!
//! Only namespaces whose id has a state directory are ever touched, so namespaces that merely look
//! like ours are left alone.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::naming::RunId;

/// Where lab ownership records live (tmpfs: a reboot clears them along with the namespaces).
pub const STATE_DIR: &str = "/run/vigil-lab";
/// Where iproute2 keeps named network namespaces.
const NETNS_DIR: &str = "/run/netns";

/// Who is responsible for tearing a lab down.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Owner {
    /// A process; the lab is stale once no process with this pid *and* start time exists.
    Process {
        /// The owner's pid.
        pid: u32,
        /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a recycled
        /// pid is not mistaken for the owner.
        start: u64,
    },
    /// Made by hand (`scripts/lab up`); only `down` or `gc --all` removes it.
    Manual,
}

impl Owner {
    /// The calling process.
    pub(crate) fn current() -> Self {
        let pid = std::process::id();
        Self::Process {
            pid,
            start: start_time(pid).unwrap_or(0),
        }
    }

    /// Whether the owner still holds the lab.
    pub fn is_alive(&self) -> bool {
        match *self {
            Self::Manual => true,
            // A start time of 0 means /proc could not tell when it was recorded; then only the
            // pid can be checked.
            Self::Process { pid, start } => match start_time(pid) {
                Some(now) => start == 0 || now == start,
                None => start == 0 && kill(Pid::from_raw(pid as i32), None).is_ok(),
            },
        }
    }

    fn encode(&self) -> String {
        match self {
            Self::Manual => "manual".to_owned(),
            Self::Process { pid, start } => format!("pid {pid} {start}"),
        }
    }

    fn decode(text: &str) -> Option<Self> {
        let mut words = text.split_whitespace();
        match words.next()? {
            "manual" => Some(Self::Manual),
            "pid" => Some(Self::Process {
                pid: words.next()?.parse().ok()?,
                start: words.next()?.parse().ok()?,
            }),
            _ => None,
        }
    }
}

/// One lab as recorded in [`STATE_DIR`].
#[derive(Clone, Debug)]
pub struct LabRecord {
    /// The lab's id.
    pub run: RunId,
    /// Its owner; `None` when the record is unreadable (treated as stale).
    pub owner: Option<Owner>,
    /// Its namespaces that still exist.
    pub netns: Vec<String>,
}

/// Claims `run` for `owner`, recording `logs` (the lab's directory) so that whoever destroys the
/// lab removes it too; `Ok(false)` when the id is already taken.
///
/// The record is built in a scratch directory and renamed into place, so a collector running in
/// another process never sees a half-written record (which it would take for a stale one).
pub(crate) fn claim(run: &RunId, owner: &Owner, logs: &Path) -> Result<bool> {
    fs::create_dir_all(STATE_DIR).map_err(|e| LabError::io("create", STATE_DIR, e))?;
    let scratch = Path::new(STATE_DIR).join(format!(".new-{run}-{}", std::process::id()));
    fs::create_dir(&scratch).map_err(|e| LabError::io("create", &scratch, e))?;
    let written = write_atomic(&scratch.join("logs"), logs.as_os_str().as_encoded_bytes())
        .and_then(|()| write_atomic(&scratch.join("owner"), owner.encode().as_bytes()));
    let dir = run_dir(run);
    // rename(2) onto an existing, non-empty directory fails: the id is taken.
    let claimed = written.and_then(|()| match fs::rename(&scratch, &dir) {
        Ok(()) => Ok(true),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::AlreadyExists | ErrorKind::DirectoryNotEmpty
            ) =>
        {
            Ok(false)
        }
        Err(e) => Err(LabError::io("rename into", dir, e)),
    });
    if !matches!(claimed, Ok(true)) {
        let _ = fs::remove_dir_all(&scratch);
    }
    claimed
}

/// Replaces the owner of `run` (used to hand a lab over to a human).
pub(crate) fn write_owner(run: &RunId, owner: &Owner) -> Result<()> {
    write_atomic(&run_dir(run).join("owner"), owner.encode().as_bytes())
}

/// Writes `path` through a temporary file and a rename, so readers see the old or the new
/// contents, never an empty file.
fn write_atomic(path: &Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, contents).map_err(|e| LabError::io("write", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| LabError::io("rename into", path, e))
}

/// Forgets `run` once everything it named is gone.
pub(crate) fn release(run: &RunId) -> Result<()> {
    let dir = run_dir(run);
    match fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(LabError::io("remove", dir, e)),
        _ => Ok(()),
    }
}

/// Every recorded lab, with the namespaces each still has.
pub fn labs() -> Result<Vec<LabRecord>> {
    let netns = list_netns()?;
    let mut out = Vec::new();
    for name in list_dir(Path::new(STATE_DIR))? {
        let Some(run) = RunId::parse(&name) else {
            continue;
        };
        let owner = fs::read_to_string(run_dir(&run).join("owner"))
            .ok()
            .and_then(|text| Owner::decode(&text));
        let netns = netns
            .iter()
            .filter(|ns| run.owns_netns(ns))
            .cloned()
            .collect();
        out.push(LabRecord { run, owner, netns });
    }
    out.sort_by(|a, b| a.run.cmp(&b.run));
    Ok(out)
}

/// Removes every lab whose owner is dead (and, with `include_manual`, every hand-made one too);
/// returns the ids removed. Labs of live test processes are never touched.
pub fn gc(include_manual: bool) -> Result<Vec<RunId>> {
    remove_abandoned_scratch();
    let mut removed = Vec::new();
    let mut first_error = None;
    for lab in labs()? {
        let stale = match &lab.owner {
            None => true,
            Some(Owner::Manual) => include_manual,
            Some(owner) => !owner.is_alive(),
        };
        if stale {
            // One lab that cannot be removed must not keep the others around.
            match destroy(&lab.run) {
                Ok(()) => removed.push(lab.run),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    first_error.map_or(Ok(removed), Err)
}

/// Removes scratch directories left by a [`claim`] whose process died half-way.
fn remove_abandoned_scratch() {
    let Ok(names) = list_dir(Path::new(STATE_DIR)) else {
        return;
    };
    for name in names {
        let pid = name
            .strip_prefix(".new-")
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok());
        if pid.is_some_and(|pid| start_time(pid).is_none()) {
            let _ = fs::remove_dir_all(Path::new(STATE_DIR).join(name));
        }
    }
}

/// Tears down one lab by id, whoever owns it: kills every process in its namespaces, deletes the
/// namespaces and its directory of logs and configs, and forgets the record.
pub fn destroy(run: &RunId) -> Result<()> {
    if let Ok(logs) = fs::read_to_string(run_dir(run).join("logs")) {
        let logs = Path::new(&logs);
        // Only ever a directory this crate named; never follow a record elsewhere.
        let ours = logs
            .file_name()
            .is_some_and(|name| name.to_string_lossy() == format!("vigil-lab-{run}"));
        if ours {
            let _ = fs::remove_dir_all(logs);
        }
    }
    remove_namespaces(run)
}

/// Kills every process in `run`'s namespaces, deletes them and forgets the record; the lab's
/// directory stays (a failed test keeps its logs).
pub(crate) fn remove_namespaces(run: &RunId) -> Result<()> {
    let namespaces: Vec<String> = list_netns()?
        .into_iter()
        .filter(|ns| run.owns_netns(ns))
        .collect();
    for ns in &namespaces {
        kill_all_in(ns);
    }
    // Hosts before the switch, so no veth is ever left with its bridge gone.
    let switch = run.switch_netns();
    for ns in namespaces.iter().filter(|ns| **ns != switch) {
        delete_netns(ns)?;
    }
    if namespaces.contains(&switch) {
        delete_netns(&switch)?;
    }
    release(run)
}

/// SIGKILLs every process whose network namespace is `netns` (daemons that escaped their process
/// group included). Best effort: a process may exit on its own meanwhile.
pub(crate) fn kill_all_in(netns: &str) {
    let Ok(pids) = cmd::ip(&["netns", "pids", netns]) else {
        return;
    };
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Deletes a named namespace; one that is already gone is not an error (two collectors may race).
pub(crate) fn delete_netns(netns: &str) -> Result<()> {
    match cmd::ip(&["netns", "del", netns]) {
        Err(e) if Path::new(NETNS_DIR).join(netns).exists() => Err(e),
        _ => Ok(()),
    }
}

/// Names of all named network namespaces.
pub(crate) fn list_netns() -> Result<Vec<String>> {
    list_dir(Path::new(NETNS_DIR))
}

fn list_dir(dir: &Path) -> Result<Vec<String>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::io("list", dir, e)),
    };
    Ok(entries
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect())
}

fn run_dir(run: &RunId) -> PathBuf {
    Path::new(STATE_DIR).join(run.as_str())
}

/// Start time of `pid` in clock ticks since boot, `None` if there is no such process.
pub(crate) fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses; fields after the last ')'
    // are plain. Field 22 (starttime) is the 20th of them.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_round_trips_and_detects_the_current_process() {
        let me = Owner::current();
        assert!(matches!(me, Owner::Process { start, .. } if start > 0));
        assert!(me.is_alive());
        assert_eq!(Owner::decode(&me.encode()), Some(me));
        assert_eq!(Owner::decode("manual"), Some(Owner::Manual));
        assert_eq!(Owner::decode("pid x 1"), None);
    }

    #[test]
    fn an_id_can_be_claimed_once_and_is_listed_until_released() {
        if !crate::root_available("an_id_can_be_claimed_once_and_is_listed_until_released") {
            return;
        }
        let run = RunId::next();
        let owner = Owner::current();
        let logs = std::env::temp_dir().join(format!("vigil-lab-{run}"));
        assert!(claim(&run, &owner, &logs).expect("first claim"));
        assert!(!claim(&run, &owner, &logs).expect("second claim"));
        let listed = labs().expect("labs");
        let record = listed.iter().find(|lab| lab.run == run).expect("listed");
        assert_eq!(record.owner, Some(owner));
        assert!(record.netns.is_empty());
        // A live owner's lab survives collection.
        assert!(!gc(false).expect("gc").contains(&run));
        release(&run).expect("release");
        assert!(!labs().expect("labs").iter().any(|lab| lab.run == run));
    }

    #[test]
    fn recycled_pid_is_not_the_owner() {
        let Owner::Process { pid, start } = Owner::current() else {
            panic!("current() is a process owner");
        };
        let impostor = Owner::Process {
            pid,
            start: start + 1,
        };
        assert!(!impostor.is_alive());
    }
}

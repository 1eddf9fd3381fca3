//! Script checks: run a program, judge by its exit code.

use std::process::Stdio;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::Command;

use super::{AttemptResult, ProbeError};
use crate::spec::{CheckSpec, ScriptCheck};

/// `PATH` given to scripts, which start from an empty environment.
const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) async fn check(spec: &CheckSpec, script: &ScriptCheck) -> AttemptResult {
    let (program, args) = script
        .argv
        .split_first()
        .ok_or_else(|| ProbeError::Script("empty command".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        // A clean environment: the daemon's own (NOTIFY_SOCKET, tokens, …) is not the script's.
        .env_clear()
        .env("PATH", SCRIPT_PATH)
        .env("VIGIL_RS_ADDR", spec.target.ip().to_string())
        .env("VIGIL_RS_PORT", spec.target.port().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group, so a timeout kills the whole tree (a shell script's children
        // included), not just the direct child.
        .process_group(0)
        .kill_on_drop(true);
    // Only root can switch users; an unprivileged daemon (vigild under its systemd unit runs as
    // `vigil`) runs scripts as itself rather than failing every attempt with EPERM. The daemon
    // warns once at start-up when the configured script user is therefore not honoured.
    if nix::unistd::geteuid().is_root() {
        if let Some(gid) = script.gid {
            cmd.gid(gid);
        }
        if let Some(uid) = script.uid {
            cmd.uid(uid);
        }
    }
    let child = cmd
        .spawn()
        .map_err(|e| ProbeError::Script(format!("cannot run {program}: {e}")))?;
    let guard = GroupGuard(child.id());
    let status = child.wait_with_output().await?.status;
    drop(guard);
    let Some(code) = status.code() else {
        return Err(ProbeError::Script(format!("{program} killed by a signal")));
    };
    judge(code, script.dynamic_weight)
}

/// Maps an exit code to a verdict (keepalived's MISC_CHECK / `misc_dynamic` semantics).
fn judge(code: i32, dynamic_weight: bool) -> AttemptResult {
    match (code, dynamic_weight) {
        (0, _) => Ok(("exit 0".into(), None)),
        (2..=255, true) => Ok((format!("exit {code}"), Some((code - 2) as u32))),
        _ => Err(ProbeError::Script(format!("exit {code}"))),
    }
}

/// Kills the script's process group when the attempt is dropped (timeout) or finished — a
/// finished script may have left background children behind.
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pid) = self.0.and_then(|p| i32::try_from(p).ok()) {
            // ESRCH (already gone) is the normal case.
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::judge;

    #[test]
    fn exit_codes_map_like_keepalived() {
        assert!(judge(0, false).is_ok());
        assert!(judge(1, false).is_err());
        assert!(judge(3, false).is_err());
        assert_eq!(judge(0, true).unwrap().1, None);
        assert!(judge(1, true).is_err());
        assert_eq!(judge(2, true).unwrap().1, Some(0));
        assert_eq!(judge(12, true).unwrap().1, Some(10));
        assert!(judge(-1, true).is_err());
    }
}

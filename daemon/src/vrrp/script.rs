//! Running one external program (notify or track script): as the unprivileged script user, in
//! its own process group, with a clean environment and a time limit.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Group, Pid, Uid, User};

/// The search path scripts get; the daemon's own environment is not passed on.
const SCRIPT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Who scripts run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScriptIdentity {
    /// `None`: keep the daemon's ids (it is not root, so it cannot switch).
    ids: Option<(Uid, Gid)>,
}

/// The configured script user or group cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// No such user.
    #[error("script_user {0:?} does not exist")]
    NoUser(String),
    /// No such group.
    #[error("script_group {0:?} does not exist")]
    NoGroup(String),
    /// The user database could not be read.
    #[error("cannot look up {name:?}: {source}")]
    Lookup {
        /// The user or group.
        name: String,
        /// The error.
        source: nix::Error,
    },
}

impl ScriptIdentity {
    /// Resolves `[global] script_user` / `script_group`. When the daemon is not root it cannot
    /// switch users, so scripts run as the daemon's own user and a warning says so.
    pub fn resolve(user: &str, group: Option<&str>) -> Result<Self, IdentityError> {
        if !Uid::effective().is_root() {
            tracing::warn!(
                script_user = user,
                "vigild is not running as root; scripts run as the daemon's own user"
            );
            return Ok(Self { ids: None });
        }
        let lookup = |source| IdentityError::Lookup {
            name: user.to_owned(),
            source,
        };
        let found = User::from_name(user)
            .map_err(lookup)?
            .ok_or_else(|| IdentityError::NoUser(user.to_owned()))?;
        let gid = match group {
            None => found.gid,
            Some(group) => {
                Group::from_name(group)
                    .map_err(|source| IdentityError::Lookup {
                        name: group.to_owned(),
                        source,
                    })?
                    .ok_or_else(|| IdentityError::NoGroup(group.to_owned()))?
                    .gid
            }
        };
        Ok(Self {
            ids: Some((found.uid, gid)),
        })
    }

    /// Scripts keep the daemon's user (tests, and daemons not started as root).
    pub fn current() -> Self {
        Self { ids: None }
    }
}

/// How a script ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptOutcome {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signalled,
    /// It ran past its time limit; its process group was killed.
    TimedOut,
    /// It could not be started.
    SpawnFailed(String),
}

impl ScriptOutcome {
    /// Exit status 0: the only success, as for keepalived's scripts.
    pub fn success(&self) -> bool {
        *self == Self::Exited(0)
    }
}

impl std::fmt::Display for ScriptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Exited(code) => write!(f, "exit status {code}"),
            Self::Signalled => f.write_str("killed by a signal"),
            Self::TimedOut => f.write_str("timed out"),
            Self::SpawnFailed(e) => write!(f, "cannot start: {e}"),
        }
    }
}

/// Runs `argv` with `env` added to a clean environment, as `identity`, for at most `timeout`.
/// On timeout the whole process group is killed, so children the script forked die too.
pub async fn run(
    argv: &[String],
    env: &[(&str, String)],
    identity: ScriptIdentity,
    timeout: Duration,
) -> ScriptOutcome {
    let Some((program, args)) = argv.split_first() else {
        return ScriptOutcome::SpawnFailed("empty command".to_owned());
    };
    let mut command = tokio::process::Command::new(program);
    command
        .args(args)
        .env_clear()
        .env("PATH", SCRIPT_PATH)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    if let Some((uid, gid)) = identity.ids {
        command.uid(uid.as_raw()).gid(gid.as_raw());
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => return ScriptOutcome::SpawnFailed(e.to_string()),
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => status
            .code()
            .map_or(ScriptOutcome::Signalled, ScriptOutcome::Exited),
        Ok(Err(e)) => ScriptOutcome::SpawnFailed(e.to_string()),
        Err(_) => {
            if let Some(pgid) = pgid {
                // ESRCH only: the group ended between the timeout and the kill.
                let _ = killpg(pgid, Signal::SIGKILL);
            }
            // Reap it; SIGKILL cannot be ignored, so this returns promptly.
            let _ = child.wait().await;
            ScriptOutcome::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Vec<String> {
        vec!["/bin/sh".into(), "-c".into(), script.into()]
    }

    #[tokio::test]
    async fn exit_status_and_environment_reach_the_caller() {
        let env = [("VIGIL_STATE", "master".to_owned())];
        let id = ScriptIdentity::current();
        let check = sh("test \"$VIGIL_STATE\" = master");
        let ok = run(&check, &env, id, Duration::from_secs(5)).await;
        assert_eq!(ok, ScriptOutcome::Exited(0));
        let code = run(&sh("exit 3"), &env, id, Duration::from_secs(5)).await;
        assert_eq!(code, ScriptOutcome::Exited(3));
        assert!(!code.success());
        // The daemon's environment is not inherited.
        let home = run(&sh("test -z \"$HOME\""), &[], id, Duration::from_secs(5)).await;
        assert!(home.success());
    }

    #[tokio::test]
    async fn a_script_past_its_timeout_is_killed_with_its_children() {
        let dir = std::env::temp_dir().join(format!("vigil-script-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let marker = dir.join("child-survived");
        // The background child would write the marker after 1 s unless its group is killed.
        let script = format!("(sleep 1; touch {}) & sleep 30", marker.display());
        let started = std::time::Instant::now();
        let outcome = run(
            &sh(&script),
            &[],
            ScriptIdentity::current(),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(outcome, ScriptOutcome::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "the script's child outlived the timeout");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_missing_program_is_a_spawn_failure() {
        let argv = vec!["/nonexistent/vigil-script".to_owned()];
        let outcome = run(
            &argv,
            &[],
            ScriptIdentity::current(),
            Duration::from_secs(1),
        )
        .await;
        assert!(
            matches!(outcome, ScriptOutcome::SpawnFailed(_)),
            "{outcome:?}"
        );
    }
}

//! Child processes of the comparison clusters: spawn, measure, stop.
//!
//! Every member is a direct child (never a shell wrapper), so its pid is the pid whose RSS we
//! read, and `kill_on_drop` guarantees no member outlives the harness, even when a phase
//! fails or panics. Scratch directories are removed by [`ScratchDir`]'s `Drop`.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use nix::{sys::signal, unistd::Pid};
use tokio::process::{Child, Command};

use crate::error::{BenchError, Result};

/// A running cluster member.
#[derive(Debug)]
pub struct Member {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Member {
    /// Spawns `program args…` with stdout and stderr appended to `log`.
    pub fn spawn(name: &str, program: &str, args: &[String], log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| BenchError::io(format!("open {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| BenchError::io("dup log fd", e))?;
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| BenchError::io(format!("spawn {program} for {name}"), e))?;
        Ok(Self {
            name: name.to_owned(),
            child,
            log: log.to_owned(),
        })
    }

    /// The member's pid, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Fails when the member has already exited, with the tail of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(BenchError::Cluster(format!(
                "{} exited ({status}); log tail:\n{}",
                self.name,
                log_tail(&self.log)
            ))),
            Err(e) => Err(BenchError::io(format!("wait for {}", self.name), e)),
        }
    }

    /// CPU time (user + system, all threads) the member has used since it started, from
    /// `/proc/<pid>/stat`.
    pub fn cpu(&self) -> Result<Duration> {
        let pid = self
            .pid()
            .ok_or_else(|| BenchError::Cluster(format!("{} not running", self.name)))?;
        let path = format!("/proc/{pid}/stat");
        let line = std::fs::read_to_string(&path).map_err(|e| BenchError::io(path.clone(), e))?;
        let stat = crate::procstat::parse_stat(&line)
            .ok_or_else(|| BenchError::Cluster(format!("cannot parse {path}")))?;
        Ok(crate::procstat::ticks_to_duration(stat.ticks))
    }

    /// Resident set size in bytes, from `/proc/<pid>/status`.
    pub fn rss_bytes(&self) -> Result<u64> {
        let pid = self
            .pid()
            .ok_or_else(|| BenchError::Cluster(format!("{} not running", self.name)))?;
        let path = format!("/proc/{pid}/status");
        let status = std::fs::read_to_string(&path).map_err(|e| BenchError::io(path.clone(), e))?;
        parse_vm_rss(&status).ok_or_else(|| BenchError::Cluster(format!("no VmRSS in {path}")))
    }

    /// SIGTERM, then SIGKILL after `grace`; waits for the exit either way.
    pub async fn stop(&mut self, grace: Duration) -> Result<()> {
        if let Some(pid) = self.pid() {
            // The child may have exited between `id()` and `kill`; ESRCH is fine then.
            let _ = signal::kill(Pid::from_raw(pid as i32), signal::Signal::SIGTERM);
            if tokio::time::timeout(grace, self.child.wait()).await.is_ok() {
                return Ok(());
            }
        }
        self.child
            .kill()
            .await
            .map_err(|e| BenchError::io(format!("kill {}", self.name), e))
    }
}

/// Parses `VmRSS:   1234 kB` from a `/proc/<pid>/status` text.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut parts = line.split_whitespace().skip(1);
    let kb: u64 = parts.next()?.parse().ok()?;
    (parts.next()? == "kB").then_some(kb * 1024)
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A private scratch directory, removed on drop.
#[derive(Debug)]
pub struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    /// Creates `<base>/vigil-bench-<tag>-<pid>`, replacing any leftover of a crashed run.
    pub fn create(base: &Path, tag: &str, keep: bool) -> Result<Self> {
        let path = base.join(format!("vigil-bench-{tag}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| BenchError::io(format!("clean {}", path.display()), e))?;
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| BenchError::io(format!("mkdir {}", path.display()), e))?;
        Ok(Self { path, keep })
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_rss_parses() {
        let status = "Name:\tjava\nVmPeak:\t  99 kB\nVmRSS:\t  851234 kB\nThreads:\t40\n";
        assert_eq!(parse_vm_rss(status), Some(851_234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tx\n"), None);
        assert_eq!(parse_vm_rss("VmRSS:\t12 MB\n"), None);
    }

    #[tokio::test]
    async fn member_reports_rss_and_stops() {
        let dir = ScratchDir::create(&std::env::temp_dir(), "proc-test", false).expect("scratch");
        let log = dir.path().join("sleep.log");
        let mut m = Member::spawn("sleeper", "sleep", &["30".into()], &log).expect("spawn sleep");
        assert!(m.rss_bytes().expect("rss") > 0);
        m.check_alive().expect("alive");
        m.stop(Duration::from_secs(2)).await.expect("stop");
        assert!(
            m.check_alive().is_err(),
            "stopped member must be reported dead"
        );
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "scratch dir removed on drop");
    }
}

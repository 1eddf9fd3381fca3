//! Programs running inside a lab host, each in its own process group with its own log file.
//!
//! A lab process is started as `ip netns exec <netns> <argv…>` (iproute2 enters the namespace and
//! then `exec`s the program, so the pid we hold is the program's) in a new process group. Signals go
//! to the whole group: keepalived, for one, forks a VRRP child that survives a signal to the parent
//! alone, and a crash in the lab must take the children down too.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ExitStatus};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::error::{LabError, Result};

/// Starts each line the harness itself writes into a process log.
const HEADER: &str = "=== vigil-lab:";

/// A program the lab started; cheap to clone, and the lab keeps a clone so it can kill every
/// process when it is dropped.
#[derive(Clone, Debug)]
pub struct Process {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// `<host>/<name>`, as printed in failure reports.
    label: String,
    pid: u32,
    log: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    child: Child,
    /// Set once the child has been reaped; after that its pid may belong to someone else, so no
    /// signal is sent any more.
    exit: Option<ExitStatus>,
}

impl Process {
    pub(crate) fn new(label: String, child: Child, log: PathBuf) -> Self {
        Self {
            inner: Arc::new(Inner {
                label,
                pid: child.id(),
                log,
                state: Mutex::new(State { child, exit: None }),
            }),
        }
    }

    /// `<host>/<name>`.
    pub fn label(&self) -> &str {
        &self.inner.label
    }

    /// The program's pid, which is also its process-group id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// The file that receives the program's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.inner.log
    }

    /// Everything the program has written so far (lossy UTF-8), without the harness's own
    /// `=== vigil-lab:` header lines (they repeat the argv, which would fool a search for output).
    pub fn log(&self) -> String {
        let bytes = fs::read(&self.inner.log).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|line| !line.starts_with(HEADER))
            .fold(String::new(), |mut out, line| {
                out.push_str(line);
                out.push('\n');
                out
            })
    }

    /// Waits up to `timeout` until the program's output contains `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) -> Result<()> {
        crate::wait_for(
            &format!("{} to print {needle:?}", self.label()),
            timeout,
            || self.log().contains(needle),
        )
    }

    /// Whether the program has not exited yet (a stopped program is still running).
    pub fn is_running(&self) -> bool {
        self.poll_exit().is_none()
    }

    /// The exit status, if the program has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        self.poll_exit()
    }

    /// Sends `signal` to the program's process group.
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let state = self.state();
        if state.exit.is_some() {
            return Err(self.signal_error(signal, Errno::ESRCH));
        }
        killpg(self.pgid(), signal).map_err(|errno| self.signal_error(signal, errno))
    }

    /// Freezes the whole process group (SIGSTOP), as a hung daemon would be.
    pub fn stop(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// Resumes a stopped process group (SIGCONT).
    pub fn cont(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    /// Crashes the whole process group with SIGKILL and reaps the program.
    pub fn kill(&self) -> Result<ExitStatus> {
        let mut state = self.state();
        if let Some(status) = state.exit {
            return Ok(status);
        }
        // ESRCH: the group is already gone and only the zombie leader is left to reap.
        match killpg(self.pgid(), Signal::SIGKILL) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(errno) => return Err(self.signal_error(Signal::SIGKILL, errno)),
        }
        let status = state.child.wait().map_err(|e| self.wait_error(e))?;
        state.exit = Some(status);
        Ok(status)
    }

    /// Asks the process group to exit (SIGTERM, plus SIGCONT in case it is stopped) and waits up to
    /// `grace`; SIGKILLs it after that.
    pub fn terminate(&self, grace: Duration) -> Result<ExitStatus> {
        if self.is_running() {
            self.signal(Signal::SIGTERM)?;
            self.signal(Signal::SIGCONT)?;
        }
        match self.wait(grace) {
            Ok(status) => Ok(status),
            Err(LabError::Timeout { .. }) => self.kill(),
            Err(e) => Err(e),
        }
    }

    /// Waits up to `timeout` for the program to exit by itself.
    pub fn wait(&self, timeout: Duration) -> Result<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.poll_exit() {
                return Ok(status);
            }
            if start.elapsed() >= timeout {
                return Err(LabError::Timeout {
                    what: format!("{} to exit", self.label()),
                    after: start.elapsed(),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The last `lines` lines of the log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn poll_exit(&self) -> Option<ExitStatus> {
        let mut state = self.state();
        if state.exit.is_none() {
            // An error here means the child was already reaped elsewhere, which this type never does.
            state.exit = state.child.try_wait().ok().flatten();
        }
        state.exit
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the state consistent (each field is set in one step).
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn pgid(&self) -> Pid {
        Pid::from_raw(self.inner.pid as i32)
    }

    fn signal_error(&self, signal: Signal, errno: Errno) -> LabError {
        LabError::Signal {
            name: self.inner.label.clone(),
            pid: self.inner.pid,
            signal: signal.as_str(),
            source: errno,
        }
    }

    fn wait_error(&self, source: std::io::Error) -> LabError {
        LabError::io("wait for", &self.inner.log, source)
    }
}

/// Opens (appending) the log of a process and writes a header naming the run, so a log that holds
/// several runs of one daemon (crash and restart) can be read.
pub(crate) fn open_log(path: &Path, argv: &str) -> Result<(File, File)> {
    let mut out = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| LabError::io("open", path, e))?;
    writeln!(out, "{HEADER} starting {argv}").map_err(|e| LabError::io("write", path, e))?;
    let err = out.try_clone().map_err(|e| LabError::io("dup", path, e))?;
    Ok((out, err))
}

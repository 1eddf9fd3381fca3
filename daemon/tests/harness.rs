//! Spawning and talking to the real binaries. Every child is killed on drop and every wait is
//! bounded, so a hung daemon fails a test instead of hanging the suite.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Generous bound for anything that should take milliseconds.
pub(crate) const PATIENCE: Duration = Duration::from_secs(10);

pub(crate) const VIGILD: &str = env!("CARGO_BIN_EXE_vigild");
pub(crate) const VIGILCTL: &str = env!("CARGO_BIN_EXE_vigilctl");

/// Environment variables the binaries read that must not leak in from the developer's shell.
const SCRUBBED_ENV: &[&str] = &[
    "NOTIFY_SOCKET",
    "WATCHDOG_USEC",
    "WATCHDOG_PID",
    "RUST_LOG",
    "VIGIL_API",
    "VIGIL_CONFIG",
    "VIGIL_TOKEN_FILE",
    "VIGIL_LOG_FORMAT",
    "VIGIL_LOG_LEVEL",
    "VIGIL_CHECK_CONFIG",
    "VIGIL_TIMEOUT",
];

/// A directory removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    pub(crate) fn new(tag: &str) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("vigil-daemon-{tag}-{}-{n}", std::process::id()));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A loopback port nothing listens on (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A valid config for node `node` with the API on `127.0.0.1:port`; `api_extra` is appended to
/// the `[api]` table.
pub(crate) fn config_text(node: &str, port: u16, api_extra: &str) -> String {
    format!("[global]\nnode_name = \"{node}\"\n\n[api]\nlisten = \"127.0.0.1:{port}\"\n{api_extra}")
}

fn scrubbed(program: &str) -> Command {
    let mut command = Command::new(program);
    for var in SCRUBBED_ENV {
        command.env_remove(var);
    }
    command
}

/// A running `vigild`, killed on drop.
pub(crate) struct Vigild {
    child: Child,
    pub(crate) port: u16,
    log: Arc<Mutex<String>>,
}

impl Vigild {
    pub(crate) fn spawn(config: &Path, port: u16) -> Self {
        Self::spawn_with(config, port, |_| {})
    }

    /// Spawns with extra settings on the command (e.g. `NOTIFY_SOCKET`).
    pub(crate) fn spawn_with(config: &Path, port: u16, tweak: impl FnOnce(&mut Command)) -> Self {
        let mut command = scrubbed(VIGILD);
        command
            .arg("--config")
            .arg(config)
            .arg("--log-format")
            .arg("plain")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        tweak(&mut command);
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self { child, port, log }
    }

    /// Spawns and waits until the API accepts connections.
    pub(crate) fn start(config: &Path, port: u16) -> Self {
        let mut daemon = Self::spawn(config, port);
        daemon.wait_ready();
        daemon
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn api(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub(crate) fn wait_ready(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("vigild exited early with {status}; log:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "vigild not ready; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub(crate) fn wait_for_log(&self, needle: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.log().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Vigild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a binary to completion (killed after [`PATIENCE`]) and returns its output.
pub(crate) fn run(program: &str, args: &[&str]) -> Output {
    run_with_env(program, args, &[])
}

/// [`run`] with extra environment variables.
pub(crate) fn run_with_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = scrubbed(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained while the child runs: output beyond the pipe buffer (completion scripts are
    // ~60 KiB) would otherwise block the child until the deadline.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("{program} {args:?} did not finish in {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Reads a child's pipe to its end on a thread.
fn drain<R: Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut bytes);
        }
        bytes
    })
}

pub(crate) fn vigilctl(args: &[&str]) -> Output {
    run(VIGILCTL, args)
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Asserts that a finished binary exited with `code` and said `needle` on stderr.
pub(crate) fn assert_exit(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert!(err.contains(needle), "stderr: {err}");
}

/// `vigilctl status --json` against `daemon`, parsed.
pub(crate) fn status_json(daemon: &Vigild) -> serde_json::Value {
    let output = vigilctl(&["--api", &daemon.api(), "status", "--json"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A raw HTTP/1.1 exchange, independent of vigilctl's client: returns (status, body).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    authorization: Option<&str>,
) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let auth = authorization
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Content-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}

//! The coordination node inside vigild, over loopback: a witness with only `[global]`, `[api]`
//! and `[cluster]`, its client API behind the control API's token, `[cluster]` changes kept
//! for a restart, and `vigilctl`'s coordination commands against it.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{TempDir, Vigild, assert_exit, free_port, http, stderr, stdout, vigilctl};

fn witness_config(dir: &TempDir, api: u16, raft: u16, client: u16, session: &str) -> String {
    let token = dir.write("token", "s3cret\n");
    format!(
        "[global]\nnode_name = \"w1\"\nstate_dir = \"{state}\"\n\n\
         [api]\nlisten = \"127.0.0.1:{api}\"\ntoken_file = \"{token}\"\n\n\
         [cluster]\nnode_id = 1\nwitness = true\nraft_listen = \"127.0.0.1:{raft}\"\n\
         client_listen = \"127.0.0.1:{client}\"\nsession_timeout = \"{session}\"\n",
        state = dir.path().join("state").display(),
        token = token.display(),
    )
}

#[test]
fn a_witness_serves_the_tree_behind_the_api_token_and_keeps_cluster_changes_for_a_restart() {
    let dir = TempDir::new("coord");
    let (api, raft, client) = (free_port(), free_port(), free_port());
    let config = dir.write(
        "vigil.toml",
        &witness_config(&dir, api, raft, client, "10s"),
    );
    let cfg = config.to_str().unwrap();
    let mut daemon = Vigild::start(&config, api);

    // A lone member bootstraps at once and leads; status shows the coordination view.
    let deadline = Instant::now() + Duration::from_secs(10);
    let coord = loop {
        let out = vigilctl(&["--config", cfg, "status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        if status["coord"]["role"] == "leader" {
            break status["coord"].clone();
        }
        assert!(
            Instant::now() < deadline,
            "no leader: {status}\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(coord["node_id"], 1);
    assert_eq!(coord["witness"], true);
    assert_eq!(coord["leader"], 1);
    assert_eq!(coord["voters"]["1"], format!("127.0.0.1:{raft}"));
    assert!(status_json_vrrp_is_empty(cfg));
    let table = stdout(&vigilctl(&["--config", cfg, "status"]));
    assert!(
        table.contains("coord        node 1 leader (witness), term 1, leader 1"),
        "{table}"
    );

    // The tree through vigilctl, which finds address and token in the config.
    let out = vigilctl(&["--config", cfg, "create", "/x", "hello"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "/x\n");
    let out = vigilctl(&["--config", cfg, "get", "/x"]);
    assert_eq!(stdout(&out), "hello\n", "{}", stderr(&out));
    let out = vigilctl(&["--config", cfg, "set", "/x", "world", "--version", "7"]);
    assert_exit(&out, 1, "BadVersion");
    let out = vigilctl(&["--config", cfg, "get", "/nope"]);
    assert_exit(&out, 1, "NoNode");

    // The client API wants the control API's token.
    let (code, _) = http(client, "GET", "/v1/nodes/x", None);
    assert_eq!(code, 401);
    assert_eq!(
        http(client, "GET", "/v1/nodes/x", Some("Bearer s3cret")).0,
        200
    );
    let wrong = dir.write("wrong", "nope\n");
    let out = vigilctl(&[
        "--config",
        cfg,
        "--token-file",
        wrong.to_str().unwrap(),
        "get",
        "/x",
    ]);
    assert_exit(&out, 77, "not authorised");

    // [cluster] changes are accepted by a reload but wait for a restart; the node runs on.
    let changed = witness_config(&dir, api, raft, client, "20s");
    std::fs::write(&config, changed).unwrap();
    let out = vigilctl(&["--config", cfg, "reload"]);
    assert_exit(&out, 0, "cluster changed; it takes effect after a restart");
    let out = vigilctl(&["--config", cfg, "get", "/x"]);
    assert_eq!(stdout(&out), "hello\n", "{}", stderr(&out));

    // `watch` prints each change; `elect` prints who leads.
    let mut watch = Streaming::spawn(&["--config", cfg, "watch", "/x"]);
    watch.wait_stderr("watching /x");
    let out = vigilctl(&["--config", cfg, "set", "/x", "again"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = watch.next_line();
    assert!(line.ends_with(" NodeDataChanged /x"), "{line}");
    assert_eq!(watch.interrupt(), Some(0));
    let mut elect = Streaming::spawn(&["--config", cfg, "elect", "e1", "--id", "me"]);
    let line = elect.next_line();
    assert!(line.starts_with("leader me token "), "{line}");
    assert_eq!(elect.interrupt(), Some(0));
    let out = vigilctl(&["--config", cfg, "ls", "-R", "/elections"]);
    assert_eq!(
        stdout(&out),
        "/elections/e1\n",
        "the candidate's node outlived it"
    );

    // A clean stop stops the coordination node last.
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(Duration::from_secs(10))
        .expect("vigild exits");
    assert!(status.success(), "{status}\n{}", daemon.log());
    let log = daemon.log();
    assert!(log.contains("coordination node stopped"), "{log}");

    // Restarted on the same data: the write is still there.
    let daemon = Vigild::start(&config, api);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = vigilctl(&["--config", cfg, "get", "/x"]);
        if stdout(&out) == "again\n" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}\n{}",
            stderr(&out),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A long-running vigilctl whose output is read line by line.
struct Streaming {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Streaming {
    fn spawn(args: &[&str]) -> Self {
        use std::io::BufRead;
        let mut child = std::process::Command::new(crate::harness::VIGILCTL)
            .args(args)
            .env_remove("VIGIL_CONFIG")
            .env_remove("VIGIL_COORD")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let sink = std::sync::Arc::clone(&stderr);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                let mut all = sink.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
        });
        Self {
            child,
            lines,
            stderr,
        }
    }

    fn next_line(&mut self) -> String {
        self.lines
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|_| panic!("no output; stderr: {}", self.stderr.lock().unwrap()))
    }

    fn wait_stderr(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.stderr.lock().unwrap().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "no {needle:?}: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGINT, as Ctrl-C would; the exit code. Panics if the process ignores it for 10 s.
    fn interrupt(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        nix::sys::signal::kill(pid, Signal::SIGINT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "still running 10 s after SIGINT; stderr: {}",
                self.stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Streaming {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_json_vrrp_is_empty(cfg: &str) -> bool {
    let out = vigilctl(&["--config", cfg, "status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    status["vrrp"].as_array().is_some_and(Vec::is_empty)
}

#[test]
fn coordination_commands_without_a_server_exit_69_with_a_clear_message() {
    let port = free_port();
    let out = vigilctl(&["--coord", &format!("127.0.0.1:{port}"), "get", "/x"]);
    assert_exit(&out, 69, "cannot serve the request");
    assert!(stderr(&out).contains("--coord"), "{}", stderr(&out));
}

//! Start, status, reload (API and SIGHUP), shutdown.
//!
//! NEEDS the real vigil-conf loader: every test here starts vigild on the port its config names.

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{
    PATIENCE, TempDir, Vigild, config_text, free_port, http, status_json, stderr, stdout, vigilctl,
};

#[test]
fn status_shows_the_running_daemon_as_table_and_json() {
    let dir = TempDir::new("status");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let daemon = Vigild::start(&config, port);

    // The address comes from `[api] listen` in the config vigilctl is pointed at.
    let output = vigilctl(&["--config", config.to_str().unwrap(), "status"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    let table = stdout(&output);
    assert!(table.contains("node         node-a\n"), "{table}");
    assert!(
        table.contains(&format!("pid          {}\n", daemon.pid())),
        "{table}"
    );
    assert!(table.contains("generation   1\n"), "{table}");
    assert!(table.contains("last reload  none\n"), "{table}");

    let json = status_json(&daemon);
    assert_eq!(json["node_name"], "node-a");
    assert_eq!(json["pid"], daemon.pid());
    assert_eq!(json["config_generation"], 1);
    assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(json["config_path"], config.to_str().unwrap());
    assert!(
        json["uptime_secs"].is_u64() && json["started_at_unix_secs"].is_u64(),
        "{json}"
    );
    assert!(json["last_reload"].is_null(), "{json}");
}

#[test]
fn vigilctl_reload_bumps_the_generation() {
    let dir = TempDir::new("reload");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let daemon = Vigild::start(&config, port);

    let output = vigilctl(&["--api", &daemon.api(), "reload"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("applied, generation 2 (unchanged)"),
        "{}",
        stdout(&output)
    );

    let output = vigilctl(&["--api", &daemon.api(), "reload", "--json"]);
    assert_eq!(output.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["outcome"]["result"], "applied");
    assert_eq!(report["outcome"]["generation"], 3);

    let json = status_json(&daemon);
    assert_eq!(json["config_generation"], 3);
    assert_eq!(json["last_reload"]["outcome"]["result"], "applied");
    daemon.wait_for_log("config reload applied");
}

#[test]
fn sighup_applies_a_changed_config() {
    let dir = TempDir::new("hup-ok");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let daemon = Vigild::start(&config, port);

    dir.write("vigil.toml", &config_text("node-b", port, ""));
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_log("config reload applied");
    let json = status_json(&daemon);
    assert_eq!(json["node_name"], "node-b");
    assert_eq!(json["config_generation"], 2);
    assert_eq!(json["last_reload"]["outcome"]["changed"], true);
}

/// NEEDS the real vigil-conf validator: the rewritten file must be rejected.
#[test]
fn sighup_with_an_invalid_file_keeps_the_old_config() {
    let dir = TempDir::new("hup-bad");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let daemon = Vigild::start(&config, port);

    dir.write(
        "vigil.toml",
        &format!("bogus = 1\n{}", config_text("node-b", port, "")),
    );
    daemon.signal(Signal::SIGHUP);
    daemon.wait_for_log("config reload rejected");

    // Still serving, same generation, same node, and the errors are reported and logged.
    let json = status_json(&daemon);
    assert_eq!(json["node_name"], "node-a");
    assert_eq!(json["config_generation"], 1);
    let outcome = &json["last_reload"]["outcome"];
    assert_eq!(outcome["result"], "rejected");
    assert_eq!(outcome["generation"], 1);
    let errors = outcome["errors"].as_array().unwrap();
    assert!(!errors.is_empty());
    let log = daemon.log();
    for error in errors {
        let error = error.as_str().unwrap();
        assert!(error.contains("vigil.toml:"), "{error}");
        assert!(log.contains(error), "{error:?} not logged:\n{log}");
    }

    // The API path gives the same answer, with EX_CONFIG and the errors on stderr.
    let output = vigilctl(&["--api", &daemon.api(), "reload"]);
    assert_eq!(
        output.status.code(),
        Some(78),
        "stdout: {}",
        stdout(&output)
    );
    assert!(
        stderr(&output).contains("vigil.toml:1:"),
        "{}",
        stderr(&output)
    );
    assert_eq!(status_json(&daemon)["config_generation"], 1);
}

#[test]
fn sigterm_stops_cleanly_and_promptly() {
    let dir = TempDir::new("term");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let mut daemon = Vigild::start(&config, port);

    let sent = Instant::now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(PATIENCE)
        .expect("vigild did not exit after SIGTERM");
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
    assert!(
        sent.elapsed() < Duration::from_secs(3),
        "took {:?}",
        sent.elapsed()
    );
    assert!(
        daemon.log().contains("vigild stopped"),
        "log:\n{}",
        daemon.log()
    );
}

#[test]
fn a_second_stop_signal_exits_at_once() {
    let dir = TempDir::new("term-twice");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let mut daemon = Vigild::start(&config, port);

    // A half-sent request keeps the graceful stop waiting for the API to drain (up to 5 s).
    let mut stuck = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stuck
        .write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    daemon.signal(Signal::SIGTERM);
    daemon.wait_for_log("vigild stopping");
    assert!(
        daemon.wait_exit(Duration::from_millis(300)).is_none(),
        "nothing to drain?"
    );

    let sent = Instant::now();
    daemon.signal(Signal::SIGTERM);
    let status = daemon
        .wait_exit(PATIENCE)
        .expect("vigild did not exit after a second SIGTERM");
    assert_eq!(status.code(), Some(128 + 15), "log:\n{}", daemon.log());
    assert!(
        sent.elapsed() < Duration::from_secs(2),
        "took {:?}",
        sent.elapsed()
    );
    assert!(
        daemon.log().contains("second stop signal"),
        "log:\n{}",
        daemon.log()
    );
}

#[test]
fn sigint_stops_cleanly() {
    let dir = TempDir::new("int");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let mut daemon = Vigild::start(&config, port);
    daemon.signal(Signal::SIGINT);
    let status = daemon
        .wait_exit(PATIENCE)
        .expect("vigild did not exit after SIGINT");
    assert_eq!(status.code(), Some(0), "log:\n{}", daemon.log());
}

#[test]
fn errors_are_json() {
    let dir = TempDir::new("json-errors");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let _daemon = Vigild::start(&config, port);

    let (code, body) = http(port, "GET", "/v1/nope", None);
    assert_eq!(code, 404);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "not_found");

    let (code, body) = http(port, "GET", "/v1/reload", None);
    assert_eq!(code, 405);
    let body: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["error"], "method_not_allowed");
}

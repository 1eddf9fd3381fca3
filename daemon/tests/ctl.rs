//! `vigilctl` on its own: help, completions, an unreachable daemon.

use crate::harness::{TempDir, assert_exit, free_port, stderr, stdout, vigilctl};

#[test]
fn help_lists_the_subcommands() {
    let output = vigilctl(&["--help"]);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    for word in [
        "status",
        "reload",
        "completions",
        "--api",
        "VIGIL_API",
        "--token-file",
    ] {
        assert!(help.contains(word), "{word} missing from:\n{help}");
    }
}

#[test]
fn completions_are_generated() {
    let output = vigilctl(&["completions", "bash"]);
    assert_eq!(output.status.code(), Some(0));
    let script = stdout(&output);
    assert!(
        script.contains("_vigilctl") && script.contains("reload"),
        "{script}"
    );
}

#[test]
fn unreachable_daemon_exits_69_with_a_clear_message() {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let output = vigilctl(&["--api", &addr, "status"]);
    assert_eq!(output.status.code(), Some(69), "EX_UNAVAILABLE expected");
    let message = stderr(&output);
    assert!(
        message.contains(&format!("cannot reach vigild at {addr}")),
        "{message}"
    );
    assert!(stdout(&output).is_empty());
}

#[test]
fn usage_error_exits_64() {
    let output = vigilctl(&["frobnicate"]);
    assert_eq!(output.status.code(), Some(64));
}

#[test]
fn explicit_missing_config_exits_78() {
    let dir = TempDir::new("ctl-missing");
    let missing = dir.path().join("absent.toml");
    let output = vigilctl(&["--config", missing.to_str().unwrap(), "status"]);
    assert_exit(&output, 78, "absent.toml:1:1: ");
}

#[test]
fn unreadable_token_file_exits_66() {
    let dir = TempDir::new("ctl-token");
    let missing = dir.path().join("token");
    let addr = format!("127.0.0.1:{}", free_port());
    let output = vigilctl(&[
        "--api",
        &addr,
        "--token-file",
        missing.to_str().unwrap(),
        "status",
    ]);
    assert_exit(&output, 66, "cannot read API token file");
}

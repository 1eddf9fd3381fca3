//! `vigild --check-config` and start-up refusal of bad configs.

use crate::harness::{
    TempDir, VIGILD, assert_exit, config_text, free_port, run, run_with_env, stderr, stdout,
};

#[test]
fn valid_config_exits_0() {
    let dir = TempDir::new("check-ok");
    let config = dir.write("vigil.toml", &config_text("n1", free_port(), ""));
    let path = config.to_str().unwrap();
    let output = run(VIGILD, &["--check-config", "--config", path]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains("valid"),
        "stdout: {}",
        stdout(&output)
    );
    assert!(stderr(&output).is_empty(), "stderr: {}", stderr(&output));
}

#[test]
fn unreadable_file_exits_1_with_a_positioned_error() {
    let dir = TempDir::new("check-missing");
    let missing = dir.path().join("absent.toml");
    let path = missing.to_str().unwrap();
    let output = run(VIGILD, &["-t", "-f", path]);
    assert_eq!(output.status.code(), Some(1));
    let errors = stderr(&output);
    assert!(
        errors.starts_with(&format!("{path}:1:1: ")),
        "stderr: {errors}"
    );
}

/// NEEDS the real vigil-conf validator: the skeleton accepts anything.
#[test]
fn invalid_config_exits_1_with_one_error_per_line() {
    let dir = TempDir::new("check-bad");
    let text = format!(
        "bogus = 1\n{}",
        config_text("n1", free_port(), "").replace("127.0.0.1:", "not an address:")
    );
    let config = dir.write("vigil.toml", &text);
    let path = config.to_str().unwrap();
    let output = run(VIGILD, &["--check-config", "--config", path]);
    assert_eq!(output.status.code(), Some(1), "stdout: {}", stdout(&output));
    let errors = stderr(&output);
    assert!(!errors.is_empty());
    for line in errors.lines() {
        let rest = line
            .strip_prefix(&format!("{path}:"))
            .unwrap_or_else(|| panic!("{line}"));
        let mut parts = rest.splitn(3, ':');
        let (line_no, col) = (parts.next().unwrap(), parts.next().unwrap_or(""));
        assert!(
            line_no.parse::<usize>().is_ok() && col.parse::<usize>().is_ok(),
            "{line}"
        );
        assert!(
            parts
                .next()
                .is_some_and(|m| m.starts_with(' ') && m.len() > 1),
            "{line}"
        );
    }
    // `bogus` sits on line 1.
    assert!(
        errors.lines().any(|l| l.starts_with(&format!("{path}:1:"))),
        "{errors}"
    );
}

#[test]
fn vigild_refuses_to_start_without_a_readable_config() {
    let dir = TempDir::new("start-missing");
    let missing = dir.path().join("absent.toml");
    let output = run(VIGILD, &["--config", missing.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(78), "EX_CONFIG expected");
    assert!(
        stderr(&output).contains("absent.toml:1:1: "),
        "stderr: {}",
        stderr(&output)
    );
}

/// NEEDS the real vigil-conf validator.
#[test]
fn vigild_refuses_to_start_on_an_invalid_config() {
    let dir = TempDir::new("start-bad");
    let text = format!("bogus = 1\n{}", config_text("n1", free_port(), ""));
    let config = dir.write("vigil.toml", &text);
    let output = run(VIGILD, &["--config", config.to_str().unwrap()]);
    assert_exit(&output, 78, "vigil.toml:1:");
}

#[test]
fn usage_errors_exit_64() {
    let output = run(VIGILD, &["--no-such-flag"]);
    assert_eq!(output.status.code(), Some(64));
    let output = run(VIGILD, &["--help"]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("--check-config"));
    assert!(
        stdout(&output).contains("VIGIL_CONFIG"),
        "every flag has an env var"
    );
}

#[test]
fn flags_also_come_from_vigil_environment_variables() {
    let dir = TempDir::new("check-env");
    let config = dir.write("vigil.toml", &config_text("n1", free_port(), ""));
    let env = [
        ("VIGIL_CONFIG", config.to_str().unwrap()),
        ("VIGIL_CHECK_CONFIG", "1"),
    ];
    let output = run_with_env(VIGILD, &[], &env);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    assert!(
        stdout(&output).contains(config.to_str().unwrap()),
        "{}",
        stdout(&output)
    );
}

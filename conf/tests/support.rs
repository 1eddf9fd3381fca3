//! Helpers shared by the test modules.

use vigil_conf::{Config, ConfigError, load_str};

/// Loads `src`, panicking with every error if it does not validate.
pub(crate) fn ok(src: &str) -> Config {
    match load_str(src, "t.toml") {
        Ok(c) => c,
        Err(e) => panic!("config should load, got:\n{e}"),
    }
}

/// Loads `src`, which must fail; returns the errors.
pub(crate) fn errs(src: &str) -> Vec<ConfigError> {
    match load_str(src, "t.toml") {
        Ok(c) => panic!("config should be refused, got {c:#?}"),
        Err(e) => e.0,
    }
}

/// The errors as `LINE:COL: message` strings (the file name is always `t.toml`).
pub(crate) fn positions(src: &str) -> Vec<String> {
    errs(src)
        .into_iter()
        .map(|e| format!("{}:{}: {}", e.line, e.col, e.message))
        .collect()
}

/// Asserts that `src` fails with exactly one error at `line:col` whose message contains `needle`.
#[track_caller]
pub(crate) fn one_error(src: &str, line: usize, col: usize, needle: &str) {
    let all = errs(src);
    assert_eq!(all.len(), 1, "expected one error, got: {all:#?}");
    let e = &all[0];
    assert_eq!((e.line, e.col), (line, col), "wrong position for {e}");
    assert!(
        e.message.contains(needle),
        "message {:?} lacks {needle:?}",
        e.message
    );
    assert_eq!(e.file, "t.toml");
}

/// A minimal valid VRRP instance, to which tests append or prepend keys.
pub(crate) const INSTANCE: &str =
    "[[vrrp_instance]]\nname = \"vi\"\ninterface = \"eth0\"\nvrid = 1\nvips = [\"192.0.2.1\"]\n";

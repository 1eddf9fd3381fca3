//! `vigilctl import-keepalived`: the real binary converts the importer's keepalived fixtures, and
//! the real `vigild --check-config` accepts what it wrote.

use std::path::PathBuf;
use std::process::Output;

use crate::harness::{TempDir, VIGILCTL, VIGILD, run, stderr, stdout};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../conf/tests/fixtures/keepalived")
        .join(name)
}

/// Runs the import into `dir/vigil.toml` and returns the output and the TOML's path.
fn import_to_file(dir: &TempDir, source: &str) -> (Output, PathBuf) {
    let out = dir.path().join("vigil.toml");
    let output = run(
        VIGILCTL,
        &["import-keepalived", source, "-o", out.to_str().unwrap()],
    );
    (output, out)
}

/// Every stderr line but the last is `FILE:LINE: text — reason`; the last is the summary and
/// states how many there were. Returns that count.
fn unconverted_lines(output: &Output) -> usize {
    let text = stderr(output);
    let lines: Vec<&str> = text.lines().collect();
    let (summary, listed) = lines.split_last().expect("a summary line");
    for line in listed {
        let mut parts = line.splitn(3, ':');
        let (file, number) = (parts.next().unwrap(), parts.next().unwrap_or(""));
        assert!(
            std::path::Path::new(file)
                .extension()
                .is_some_and(|e| e == "conf"),
            "{line}"
        );
        assert!(number.parse::<usize>().is_ok_and(|n| n > 0), "{line}");
        assert!(
            parts.next().is_some_and(|rest| rest.contains(" — ")),
            "{line}"
        );
    }
    if listed.is_empty() {
        assert_eq!(*summary, "vigilctl: every statement was converted");
    } else {
        let count = listed.len().to_string();
        assert!(summary.contains(&format!("{count} line")), "{summary}");
    }
    listed.len()
}

fn assert_check_config_accepts(path: &std::path::Path) {
    let output = run(
        VIGILD,
        &["--check-config", "--config", path.to_str().unwrap()],
    );
    assert_eq!(
        output.status.code(),
        Some(0),
        "vigild rejected the imported TOML:\n{}\n{}",
        stderr(&output),
        std::fs::read_to_string(path).unwrap_or_default()
    );
}

#[test]
fn lvs_dr_fixture_imports_to_a_config_vigild_accepts() {
    let dir = TempDir::new("import-lvs-dr");
    let source = fixture("lvs_dr.conf");
    let (output, toml) = import_to_file(&dir, source.to_str().unwrap());
    let listed = unconverted_lines(&output);
    // 0 only when nothing was listed; 1 when TOML was written but lines were not converted.
    let expected = i32::from(listed != 0);
    assert_eq!(
        output.status.code(),
        Some(expected),
        "stderr: {}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "TOML went to -o, not stdout");
    let text = std::fs::read_to_string(&toml).unwrap();
    assert!(
        text.contains("[[virtual_servers]]") || text.contains("virtual_server"),
        "{text}"
    );
    assert_check_config_accepts(&toml);

    // Without -o the same TOML goes to stdout.
    let output = run(VIGILCTL, &["import-keepalived", source.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(expected));
    assert_eq!(stdout(&output), text);
}

#[test]
fn unconvertible_lines_are_listed_with_exit_1_and_the_rest_still_validates() {
    let dir = TempDir::new("import-unsupported");
    let source = fixture("unsupported.conf");
    let (output, toml) = import_to_file(&dir, source.to_str().unwrap());
    assert_eq!(output.status.code(), Some(1), "stderr: {}", stderr(&output));
    assert!(unconverted_lines(&output) >= 5, "{}", stderr(&output));
    let listed = stderr(&output);
    assert!(
        listed.contains("frobnicate yes"),
        "an unknown keyword is listed: {listed}"
    );
    assert!(
        listed
            .lines()
            .all(|l| l.starts_with(source.to_str().unwrap()) || l.starts_with("vigilctl: ")),
        "{listed}"
    );
    assert_check_config_accepts(&toml);
}

#[test]
fn unreadable_input_exits_66_and_syntax_errors_exit_65() {
    let dir = TempDir::new("import-errors");
    let missing = dir.path().join("absent.conf");
    let output = run(VIGILCTL, &["import-keepalived", missing.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(66),
        "stderr: {}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("absent.conf"));
    assert!(stdout(&output).is_empty());

    let broken = dir.write("broken.conf", "vrrp_instance VI_1 {\n  state MASTER\n");
    let output = run(VIGILCTL, &["import-keepalived", broken.to_str().unwrap()]);
    assert_eq!(
        output.status.code(),
        Some(65),
        "stderr: {}",
        stderr(&output)
    );
    assert!(stdout(&output).is_empty(), "no TOML on a syntax error");
}

#[test]
fn unwritable_output_exits_73() {
    let dir = TempDir::new("import-cantcreat");
    let out = dir.path().join("no/such/dir/vigil.toml");
    let source = fixture("lvs_dr.conf");
    let output = run(
        VIGILCTL,
        &[
            "import-keepalived",
            source.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(73),
        "stderr: {}",
        stderr(&output)
    );
}

//! `vigilctl import-keepalived FILE [-o OUT]`: keepalived.conf → vigil TOML, offline.
//!
//! The TOML goes to stdout (or `OUT`); every statement that could not be converted goes to
//! stderr as `file:line: text — reason`, followed by a one-line summary. The TOML always passes
//! `vigild --check-config` (the importer validates each block with vigil's own compiler), so a
//! partial import is still a usable starting point; the exit code tells the cases apart:
//!
//! | code | meaning |
//! |------|---------|
//! | 0    | everything converted |
//! | 1    | TOML produced, some lines listed as not converted ([`INCOMPLETE`]) |
//! | 65   | keepalived syntax error (EX_DATAERR); no TOML |
//! | 66   | the file or an included file cannot be read (EX_NOINPUT) |
//! | 71   | stdout cannot be written (EX_OSERR) |
//! | 73   | `OUT` cannot be written (EX_CANTCREAT) |

use std::io::Write;
use std::path::Path;

use vigil_conf::import::{Import, ImportError, import_file};

use crate::exit;

/// Some statements were not converted, but the TOML was written. Like `vigild --check-config`,
/// "1" means "look at stderr"; scripts that accept a partial import can allow it.
pub const INCOMPLETE: u8 = 1;
/// sysexits(3) EX_DATAERR: the input is not valid keepalived syntax.
pub const DATAERR: u8 = 65;
/// sysexits(3) EX_CANTCREAT: the output file cannot be created.
pub const CANTCREAT: u8 = 73;

/// Runs the import; returns the exit code.
pub fn run(file: &Path, output: Option<&Path>) -> u8 {
    match import_file(file) {
        Ok(import) => emit(&import, output),
        Err(error) => {
            eprintln!("vigilctl: {error}");
            match error {
                ImportError::Read { .. } => exit::NOINPUT,
                ImportError::Syntax { .. } => DATAERR,
            }
        }
    }
}

fn emit(import: &Import, output: Option<&Path>) -> u8 {
    let written = match output {
        Some(path) => match std::fs::write(path, &import.toml) {
            Ok(()) => exit::OK,
            Err(error) => {
                eprintln!("vigilctl: cannot write {}: {error}", path.display());
                CANTCREAT
            }
        },
        None => super::print_stdout(&import.toml),
    };
    if written != exit::OK {
        return written;
    }
    let mut stderr = std::io::stderr().lock();
    // Nothing useful to do when stderr itself is gone; the exit code still tells.
    for line in &import.unconverted {
        let _ = writeln!(stderr, "{line}");
    }
    let _ = writeln!(stderr, "vigilctl: {}", summary(import.unconverted.len()));
    if import.unconverted.is_empty() {
        exit::OK
    } else {
        INCOMPLETE
    }
}

fn summary(unconverted: usize) -> String {
    match unconverted {
        0 => "every statement was converted".to_owned(),
        1 => "1 line was not converted (listed above); review the TOML before use".to_owned(),
        n => format!("{n} lines were not converted (listed above); review the TOML before use"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_lines() {
        assert_eq!(summary(0), "every statement was converted");
        assert!(summary(1).starts_with("1 line was not converted"));
        assert!(summary(3).starts_with("3 lines were not converted"));
    }

    #[test]
    fn missing_file_is_noinput_and_syntax_error_is_dataerr() {
        let dir = std::env::temp_dir().join(format!("vigilctl-import-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(run(&dir.join("absent.conf"), None), exit::NOINPUT);
        let broken = dir.join("broken.conf");
        std::fs::write(&broken, "vrrp_instance VI_1 {\n  state MASTER\n").unwrap();
        let out = dir.join("out.toml");
        assert_eq!(run(&broken, Some(&out)), DATAERR);
        assert!(!out.exists(), "no TOML is written on a syntax error");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! Fencing tokens as the notify scripts saw them: a `notify_master` hook appends
//! `<host> <VIGIL_FENCING_TOKEN>` to one file shared by the lab's hosts, and [`check`] verifies
//! that the tokens of successive holders strictly increase.

use std::fmt;
use std::path::Path;

/// The `notify_master` argv that appends `<host> <token>` to `file` (one `write(2)` of a short
/// line with `O_APPEND`, so lines of different hosts never interleave).
pub fn notify_master_argv(host: &str, file: &Path) -> Vec<String> {
    vec![
        "/bin/sh".to_owned(),
        "-c".to_owned(),
        format!(
            "echo \"{host} ${{VIGIL_FENCING_TOKEN}}\" >> '{}'",
            file.display()
        ),
    ]
}

/// One line of the token file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The host whose daemon became master.
    pub host: String,
    /// Its fencing token; `None` when the variable was empty (no fencing).
    pub token: Option<u64>,
}

/// Parses the token file; malformed lines are returned as errors with their line number.
pub fn parse(text: &str) -> Result<Vec<Grant>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let mut words = line.split_whitespace();
            let host = words.next().unwrap_or_default().to_owned();
            let token = match words.next() {
                None => None,
                Some(t) => Some(
                    t.parse::<u64>()
                        .map_err(|e| format!("line {}: token {t:?}: {e}", n + 1))?,
                ),
            };
            if words.next().is_some() {
                return Err(format!("line {}: trailing words in {line:?}", n + 1));
            }
            Ok(Grant { host, token })
        })
        .collect()
}

/// What [`check`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenCheck {
    /// Master notifications seen.
    pub grants: usize,
    /// Notifications without a token.
    pub missing: usize,
    /// Pairs of successive grants whose tokens did not strictly increase (a host repeating its
    /// own current token — a notification for the claim it already holds — is not counted).
    pub violations: Vec<(Grant, Grant)>,
}

impl TokenCheck {
    /// Every grant had a token and the tokens strictly increased.
    pub fn ok(&self) -> bool {
        self.missing == 0 && self.violations.is_empty()
    }
}

impl fmt::Display for TokenCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} grants, {} without token, {} not increasing",
            self.grants,
            self.missing,
            self.violations.len()
        )?;
        for (a, b) in &self.violations {
            write!(
                f,
                "; {} {:?} then {} {:?}",
                a.host, a.token, b.host, b.token
            )?;
        }
        Ok(())
    }
}

/// Checks that the tokens of successive grants strictly increase.
pub fn check(grants: &[Grant]) -> TokenCheck {
    let mut result = TokenCheck {
        grants: grants.len(),
        ..TokenCheck::default()
    };
    let mut last: Option<&Grant> = None;
    for g in grants {
        let Some(token) = g.token else {
            result.missing += 1;
            continue;
        };
        if let Some(prev) = last {
            let prev_token = prev.token.unwrap_or(0);
            let repeat = prev.host == g.host && prev_token == token;
            if token <= prev_token && !repeat {
                result.violations.push((prev.clone(), g.clone()));
            }
        }
        last = Some(g);
    }
    result
}

/// Reads and checks a token file; a missing file means no grants.
pub fn check_file(path: &Path) -> Result<TokenCheck, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse(&text).map(|g| check(&g)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenCheck::default()),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn increasing_tokens_pass_and_a_repeat_by_the_holder_is_allowed() {
        let g = parse("lb1 4\nlb2 9\nlb2 9\nlb1 12\n").expect("parse");
        let c = check(&g);
        assert!(c.ok(), "{c}");
        assert_eq!(c.grants, 4);
    }

    #[test]
    fn an_old_token_after_a_newer_one_is_a_violation() {
        let c = check(&parse("lb1 4\nlb2 9\nlb1 4\n").expect("parse"));
        assert_eq!(c.violations.len(), 1, "{c}");
        assert_eq!(c.violations[0].1.token, Some(4));
        // Equal tokens on different hosts: two owners of one claim.
        let c = check(&parse("lb1 7\nlb2 7\n").expect("parse"));
        assert!(!c.ok());
    }

    #[test]
    fn empty_tokens_count_as_missing_and_garbage_is_an_error() {
        let c = check(&parse("lb1\nlb2 3\n").expect("parse"));
        assert_eq!((c.missing, c.ok()), (1, false));
        let err = parse("lb1 4\nlb2 x\n").expect_err("bad token");
        assert!(err.starts_with("line 2:"), "{err}");
    }

    #[test]
    fn the_hook_writes_the_host_and_the_variable() {
        let argv = notify_master_argv("lb1", Path::new("/tmp/t"));
        assert_eq!(argv[..2], ["/bin/sh", "-c"]);
        assert!(argv[2].contains("lb1 ${VIGIL_FENCING_TOKEN}") && argv[2].contains(">> '/tmp/t'"));
    }
}

//! The conversion context: collects [`Unconverted`] statements, and reads typed arguments,
//! listing a statement whose arguments do not fit instead of guessing.

use std::fmt::Write as _;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::Unconverted;
use super::lex::{Loc, Sources};
use super::toml_out::Value;
use super::tree::Stmt;
use crate::duration::format_duration;

pub(super) struct Cx<'a> {
    pub(super) sources: &'a Sources,
    pub(super) unconverted: Vec<Unconverted>,
}

impl Cx<'_> {
    /// Lists `s` as not converted. For a statement with a block the reason says so, since its
    /// inner lines are not listed one by one.
    pub(super) fn skip(&mut self, s: &Stmt, reason: impl Into<String>) {
        let mut reason = reason.into();
        match s.end {
            Some(end) if end.file == s.loc.file && end.line > s.loc.line => {
                let _ = write!(
                    reason,
                    " (the whole block, lines {}-{}, is skipped)",
                    s.loc.line, end.line
                );
            }
            _ if s.block.is_some() => reason.push_str(" (the whole block is skipped)"),
            _ => {}
        }
        self.skip_at(s.loc, reason);
    }

    pub(super) fn skip_at(&mut self, loc: Loc, reason: impl Into<String>) {
        self.unconverted.push(Unconverted {
            file: self.sources.name(loc).to_owned(),
            line: loc.line,
            text: self.sources.text(loc).to_owned(),
            reason: reason.into(),
        });
    }

    /// Lists a keyword this context does not convert, with the specific reason when the
    /// keyword is a known keepalived feature vigil lacks.
    pub(super) fn unknown(&mut self, s: &Stmt, context: &str) {
        let k = s.keyword();
        let reason = if k.is_empty() {
            "a block without a keyword".to_owned()
        } else if k.starts_with('@') {
            "keepalived `@host` conditional lines are not supported; keep the right variant \
             per node by hand"
                .to_owned()
        } else if k.starts_with('$') {
            "keepalived parameter definitions and substitutions are not supported".to_owned()
        } else if let Some(r) = unsupported_reason(k) {
            r.to_owned()
        } else {
            format!("keyword `{k}` in {context} is unknown or has no vigil equivalent")
        };
        self.skip(s, reason);
    }

    /// The single argument of `s`; lists `s` otherwise.
    pub(super) fn one<'s>(&mut self, s: &'s Stmt) -> Option<&'s str> {
        if let ([a], None) = (s.args(), &s.block) {
            Some(a.as_str())
        } else {
            self.skip(s, format!("`{}` takes exactly one value", s.keyword()));
            None
        }
    }

    pub(super) fn int(&mut self, s: &Stmt, range: RangeInclusive<i64>) -> Option<i64> {
        let a = self.one(s)?;
        match a.parse::<i64>() {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                self.skip(
                    s,
                    format!(
                        "`{}` must be an integer in {}..={}",
                        s.keyword(),
                        range.start(),
                        range.end()
                    ),
                );
                None
            }
        }
    }

    /// A (possibly fractional) number of seconds.
    pub(super) fn secs(&mut self, s: &Stmt) -> Option<Duration> {
        let a = self.one(s)?;
        let d = parse_secs(a);
        if d.is_none() {
            self.skip(s, format!("`{}` must be a number of seconds", s.keyword()));
        }
        d
    }

    /// A keyword without arguments; lists `s` when it has some.
    pub(super) fn flag(&mut self, s: &Stmt) -> bool {
        if s.args().is_empty() && s.block.is_none() {
            true
        } else {
            self.skip(s, format!("`{}` takes no value", s.keyword()));
            false
        }
    }

    /// A program and its arguments: one (usually quoted) argument is split like a shell would
    /// without expansions; several arguments are the argv as written.
    pub(super) fn command(&mut self, s: &Stmt) -> Option<Vec<String>> {
        let argv = match s.args() {
            [] => None,
            [one] => split_argv(one),
            many => Some(many.to_vec()),
        };
        self.argv(s, argv)
    }

    /// A notify script: `"PROGRAM ARGS" [USER [GROUP]]` (arguments must be quoted with the
    /// program in keepalived, so further words name the user to run it as).
    pub(super) fn notify_command(&mut self, s: &Stmt) -> Option<Vec<String>> {
        let (argv, user) = match s.args() {
            [] => (None, false),
            [one, rest @ ..] => (split_argv(one), !rest.is_empty() && rest.len() <= 2),
        };
        if s.args().len() > 3 {
            self.skip(s, "expected `\"PROGRAM ARGS\" [USER [GROUP]]`");
            return None;
        }
        let argv = self.argv(s, argv)?;
        if user {
            self.skip(
                s,
                "the script is converted; it runs as [global] script_user, not the user given here",
            );
        }
        Some(argv)
    }

    fn argv(&mut self, s: &Stmt, argv: Option<Vec<String>>) -> Option<Vec<String>> {
        match argv {
            Some(a) if a.first().is_some_and(|p| !p.is_empty()) && s.block.is_none() => Some(a),
            _ => {
                self.skip(
                    s,
                    format!(
                        "`{}` needs a command (balanced quotes, a program first)",
                        s.keyword()
                    ),
                );
                None
            }
        }
    }
}

/// `"2"`, `"0.5"`, `"1.25"` seconds, down to the nanosecond.
pub(super) fn parse_secs(text: &str) -> Option<Duration> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 9
    {
        return None;
    }
    let secs: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().ok()?
    };
    // One day bounds every timer in vigil; larger values are typos.
    (secs <= 86_400).then(|| Duration::new(secs, nanos))
}

pub(super) fn dur(d: Duration) -> Value {
    Value::Str(format_duration(d))
}

/// Splits a command line into words: whitespace separates, `'…'` is literal, `"…"` allows `\"`
/// and `\\`, a backslash outside quotes escapes the next character. `None` on an unterminated
/// quote.
pub(super) fn split_argv(line: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => out.extend(word.take()),
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => w.push(c),
                    }
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => w.push(chars.next()?),
                        c => w.push(c),
                    }
                }
            }
            '\\' => word.get_or_insert_with(String::new).push(chars.next()?),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    Some(out)
}

/// Known keepalived keywords that vigil deliberately does not have, with what to do instead.
fn unsupported_reason(keyword: &str) -> Option<&'static str> {
    Some(match keyword {
        "notification_email"
        | "notification_email_from"
        | "smtp_server"
        | "smtp_connect_timeout"
        | "smtp_helo_name"
        | "smtp_alert"
        | "smtp_alert_vrrp"
        | "smtp_alert_checker" => "vigil sends no e-mail; use notify scripts instead",
        "lvs_sync_daemon" | "lvs_sync_daemon_interface" | "lvs_id" => {
            "IPVS connection synchronisation (lvs_sync_daemon) is not managed by vigil"
        }
        "vrrp_strict" | "strict_mode" => {
            "vrrp_strict semantics (iptables drop rules, strict RFC checks) are not reproduced; \
             vigil always checks TTL and versions"
        }
        "virtual_server_group" => "virtual_server_group is not supported; list the services",
        "track_process" | "vrrp_track_process" => {
            "process tracking is not supported; use a track script (e.g. pgrep)"
        }
        "track_bfd" | "bfd_instance" => "BFD is not supported",
        "virtual_routes" | "virtual_rules" | "static_ipaddress" | "static_routes"
        | "static_rules" => "routes, rules and static addresses are not managed by vigil",
        "garp_lower_prio_delay"
        | "garp_lower_prio_repeat"
        | "vrrp_garp_lower_prio_delay"
        | "vrrp_garp_lower_prio_repeat" => "vigil sends no GARPs on hearing a lower priority",
        "vrrp_mcast_group4" | "vrrp_mcast_group6" | "mcast_src_ip" => {
            "vigil uses the standard multicast groups and the interface's primary address"
        }
        "dont_track_primary"
        | "debug"
        | "linkbeat_use_polling"
        | "vrrp_iptables"
        | "vrrp_ipsets"
        | "vrrp_nftables"
        | "vmac_xmit_base"
        | "lvs_flush"
        | "lvs_timeouts"
        | "dynamic_interfaces"
        | "net_namespace"
        | "instance"
        | "nftables"
        | "vrrp_skip_check_adv_addr"
        | "skip_check_adv_addr"
        | "vrrp_check_unicast_src"
        | "check_unicast_src" => "keepalived-specific behaviour with no vigil equivalent",
        "UDP_CHECK" | "PING_CHECK" | "BFD_CHECK" | "FILE_CHECK" => {
            "this checker is not converted; write the equivalent vigil check by hand"
        }
        "notify_up" | "notify_down" | "quorum_up" | "quorum_down" => {
            "real-server and quorum notify scripts are not supported by vigil"
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_secs("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_secs("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_secs(".25"), Some(Duration::from_millis(250)));
        assert_eq!(parse_secs("1.000000001"), Some(Duration::new(1, 1)));
        for bad in ["", ".", "-1", "1e3", "1s", "100000", "0.0000000001"] {
            assert_eq!(parse_secs(bad), None, "{bad}");
        }
    }

    #[test]
    fn argv() {
        let a = |s| split_argv(s).expect("balanced");
        assert_eq!(a("/bin/check  arg"), ["/bin/check", "arg"]);
        assert_eq!(
            a(r#"/bin/sh -c 'pgrep -x "haproxy"'"#),
            ["/bin/sh", "-c", "pgrep -x \"haproxy\""]
        );
        assert_eq!(a(r#"a\ b "c \" d" ''"#), ["a b", "c \" d", ""]);
        assert_eq!(split_argv("'open"), None);
    }
}

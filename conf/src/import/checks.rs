//! keepalived checkers: `TCP_CHECK`, `HTTP_GET`, `SSL_GET`, `MISC_CHECK`, `DNS_CHECK`,
//! `SMTP_CHECK`.
//!
//! keepalived defaults differ from vigil's (interval 60s, timeout 5s, one retry), so those are
//! always written out.

use std::net::IpAddr;
use std::time::Duration;

use super::cx::{Cx, dur};
use super::toml_out::{Table, Value};
use super::tree::Stmt;

const HEADER: &str = "[[virtual_server.real_server.check]]";

/// The query types both keepalived and vigil know.
const DNS_TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"];

/// Timing settings inherited from the virtual server and real server levels.
#[derive(Debug, Clone)]
pub(super) struct CheckDefaults {
    /// `delay_loop`; keepalived's default is 60s.
    pub(super) interval: Duration,
    pub(super) timeout: Option<Duration>,
    pub(super) retries: Option<i64>,
    pub(super) retry_delay: Option<Duration>,
    pub(super) warmup: Option<Duration>,
    /// `virtualhost`: the Host header of HTTP checks.
    pub(super) host: Option<String>,
}

impl Default for CheckDefaults {
    fn default() -> Self {
        Self {
            interval: Duration::from_mins(1),
            timeout: None,
            retries: None,
            retry_delay: None,
            warmup: None,
            host: None,
        }
    }
}

/// Reads a timing keyword valid at any level; false when `st` is something else.
pub(super) fn common(cx: &mut Cx<'_>, st: &Stmt, d: &mut CheckDefaults) -> bool {
    match st.keyword() {
        "delay_loop" => {
            if let Some(i) = cx.secs(st) {
                if i >= Duration::from_millis(10) {
                    d.interval = i;
                } else {
                    cx.skip(st, "delay_loop must be at least 10ms");
                }
            }
        }
        "connect_timeout" | "misc_timeout" => {
            if let Some(t) = cx.secs(st) {
                if t >= Duration::from_millis(10) && t <= Duration::from_hours(1) {
                    d.timeout = Some(t);
                } else {
                    cx.skip(st, "timeout must be in 10ms..=1h");
                }
            }
        }
        "retry" | "nb_get_retry" => d.retries = cx.int(st, 0..=100).or(d.retries),
        "delay_before_retry" => d.retry_delay = cx.secs(st).or(d.retry_delay),
        "warmup" => d.warmup = cx.secs(st).or(d.warmup),
        _ => return false,
    }
    true
}

pub(super) fn is_checker(keyword: &str) -> bool {
    matches!(
        keyword,
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "MISC_CHECK" | "DNS_CHECK" | "SMTP_CHECK"
    )
}

/// The vigil checks for one keepalived checker: one per `url` for HTTP, else one.
pub(super) fn checker(cx: &mut Cx<'_>, s: &Stmt, inherited: &CheckDefaults) -> Vec<Table> {
    let kind = s.keyword();
    if !s.args().is_empty() || s.block.is_none() {
        cx.skip(s, format!("expected `{kind} {{ … }}`"));
        return Vec::new();
    }
    let mut d = inherited.clone();
    let mut t = Table::new(HEADER);
    t.set(
        "type",
        Value::str(match kind {
            "TCP_CHECK" => "tcp",
            "HTTP_GET" => "http",
            "SSL_GET" => "https",
            "DNS_CHECK" => "dns",
            "SMTP_CHECK" => "smtp",
            _ => "script",
        }),
    );
    // Checker keys go after the timing keys, whatever their order in the source.
    let mut extra = Table::new(HEADER);
    let mut urls = Vec::new();
    let mut script = None;
    // keepalived's DNS_CHECK defaults: an SOA query for the root.
    let (mut dns_type, mut dns_name) = ("SOA".to_owned(), ".".to_owned());
    for st in s.body() {
        if common(cx, st, &mut d) {
            continue;
        }
        match (kind, st.keyword()) {
            (_, "connect_port") => {
                if let Some(p) = cx.int(st, 1..=65_535) {
                    extra.set("port", Value::Int(p));
                }
            }
            (_, "bind_to") => match cx.one(st).map(str::parse::<IpAddr>) {
                Some(Ok(ip)) => extra.set("bind", Value::str(ip.to_string())),
                Some(Err(_)) => cx.skip(st, "not an IP address"),
                None => {}
            },
            (_, "bind_if") => {
                if let Some(i) = cx.one(st) {
                    extra.set("bind_device", Value::str(i));
                }
            }
            (_, "connect_ip") => cx.skip(st, "vigil checks the real server's own address"),
            ("HTTP_GET" | "SSL_GET", "url") => urls.push(st),
            ("HTTP_GET" | "SSL_GET", "virtualhost") => d.host = cx.one(st).map(str::to_owned),
            // vigil sends SNI whenever a host is known.
            ("SSL_GET", "enable_sni") => {
                cx.flag(st);
            }
            ("MISC_CHECK", "misc_path") => script = cx.command(st),
            ("MISC_CHECK", "misc_dynamic") => {
                if cx.flag(st) {
                    extra.set("dynamic_weight", Value::Bool(true));
                }
            }
            ("DNS_CHECK", "type") => match cx.one(st).map(str::to_ascii_uppercase) {
                Some(q) if DNS_TYPES.contains(&q.as_str()) => dns_type = q,
                Some(_) => cx.skip(st, "unknown DNS query type"),
                None => {}
            },
            ("DNS_CHECK", "name") => dns_name = cx.one(st).map_or(dns_name, str::to_owned),
            ("SMTP_CHECK", "helo_name") => {
                if let Some(h) = cx.one(st) {
                    extra.set("helo", Value::str(h));
                }
            }
            ("MISC_CHECK", "user") => {
                cx.skip(st, "vigil runs every script as [global] script_user");
            }
            _ => cx.unknown(st, kind),
        }
    }
    timing(&mut t, &d, kind);
    t.entries.append(&mut extra.entries);
    match kind {
        "MISC_CHECK" => {
            if let Some(argv) = script {
                t.set("command", Value::argv(&argv));
                vec![t]
            } else {
                cx.skip(s, "MISC_CHECK without `misc_path` is not converted");
                Vec::new()
            }
        }
        "DNS_CHECK" => {
            t.set("name", Value::Str(dns_name));
            t.set("query_type", Value::Str(dns_type));
            vec![t]
        }
        "HTTP_GET" | "SSL_GET" => {
            if urls.is_empty() {
                cx.skip(s, format!("{kind} without `url` is not converted"));
            }
            urls.into_iter()
                .filter_map(|u| url(cx, u, &t, &d, kind == "SSL_GET"))
                .collect()
        }
        _ => vec![t],
    }
}

/// Writes the timing keys. keepalived's timeout for scripts defaults to the interval.
fn timing(t: &mut Table, d: &CheckDefaults, kind: &str) {
    t.set("interval", dur(d.interval));
    let timeout = d.timeout.unwrap_or(if kind == "MISC_CHECK" {
        d.interval.min(Duration::from_hours(1))
    } else {
        Duration::from_secs(5)
    });
    t.set("timeout", dur(timeout));
    let retries = d.retries.unwrap_or(i64::from(kind != "MISC_CHECK"));
    if retries > 0 {
        t.set("retries", Value::Int(retries));
    }
    if let Some(r) = d.retry_delay {
        t.set("retry_delay", dur(r));
    }
    if let Some(w) = d.warmup {
        t.set("warmup", dur(w));
    }
}

/// One `url { path …; digest …; status_code …; regex … }` block as a check of its own.
fn url(cx: &mut Cx<'_>, s: &Stmt, base: &Table, d: &CheckDefaults, https: bool) -> Option<Table> {
    let mut t = base.clone();
    let mut status = Vec::new();
    let mut host = d.host.clone();
    let mut has_path = false;
    for st in s.body() {
        match st.keyword() {
            "path" => {
                if let Some(p) = cx.one(st) {
                    if p.starts_with('/') {
                        t.set("path", Value::str(p));
                        has_path = true;
                    } else {
                        cx.skip(st, "the path must start with '/'");
                    }
                }
            }
            "digest" => match cx.one(st) {
                Some(h) if h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    t.set(
                        "digest",
                        Value::str(format!("md5:{}", h.to_ascii_lowercase())),
                    );
                }
                Some(_) => cx.skip(st, "expected an MD5 digest (32 hex digits)"),
                None => {}
            },
            "status_code" => {
                for code in st.args() {
                    match status_code(code) {
                        Some(v) => status.push(v),
                        None => cx.skip(st, format!("\"{code}\" is not a status code or range")),
                    }
                }
            }
            "regex" => match cx.one(st) {
                Some(re) if regex::Regex::new(re).is_ok() => t.set("body_regex", Value::str(re)),
                Some(_) => cx.skip(st, "the regex is not valid in vigil's (Rust) regex syntax"),
                None => {}
            },
            "virtualhost" => host = cx.one(st).map(str::to_owned),
            _ => cx.unknown(st, "url"),
        }
    }
    if !has_path {
        cx.skip(s, "a url without a valid `path` is not converted");
        return None;
    }
    if !status.is_empty() {
        t.set("status", Value::Array(status));
    }
    if let Some(h) = host {
        t.set("host", Value::Str(h));
    }
    if https {
        // keepalived's SSL_GET does not verify certificates; keep that, visibly.
        t.set("verify_cert", Value::Bool(false));
    }
    Some(t)
}

/// `200` or `200-299`.
fn status_code(text: &str) -> Option<Value> {
    let valid = |c: &str| c.parse::<u16>().ok().filter(|c| (100..=599).contains(c));
    match text.split_once('-') {
        None => valid(text).map(|c| Value::Int(i64::from(c))),
        Some((a, b)) => {
            let (a, b) = (valid(a)?, valid(b)?);
            (a <= b).then(|| Value::str(format!("{a}-{b}")))
        }
    }
}

//! `[[virtual_server.real_server.check]]`: common timing keys plus the keys of each type.
//!
//! Keys of other check types are never asked for, so they surface as unknown keys of this one.

use std::net::IpAddr;
use std::time::Duration;

use toml::de::DeValue;

use super::keywords::CheckType;
use crate::model::{
    Check, CheckKind, Digest, DnsCheck, DnsType, HttpCheck, StatusRange, TlsOptions, UdpCheck,
};
use crate::walk::{Argv, Ctx, FromToml, Table, Val};

pub(super) fn check(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    rs_port: u16,
    node_name: &str,
) -> Option<Check> {
    let kind = t.req::<CheckType>(cx, "type");
    if let Some(k) = kind {
        let name = CheckType::name(k);
        t.set_what(format!("a {name} check"));
    }
    let ms = Duration::from_millis;
    let secs = Duration::from_secs;
    let interval = t
        .opt_duration(cx, "interval", ms(10)..=Duration::from_hours(24))
        .unwrap_or(secs(5));
    let timeout = t
        .opt_duration(cx, "timeout", ms(10)..=Duration::from_hours(1))
        .unwrap_or(secs(3));
    let retries = t.opt_int(cx, "retries", 0..=100).map_or(0, |n| n as u32);
    let retry_delay = t
        .opt_duration(cx, "retry_delay", Duration::ZERO..=Duration::from_hours(1))
        .unwrap_or(secs(1));
    let rise = t.opt_int(cx, "rise", 1..=100).map_or(1, |n| n as u32);
    let fall = t.opt_int(cx, "fall", 1..=100).map_or(1, |n| n as u32);
    let warmup = t
        .opt_duration(cx, "warmup", Duration::ZERO..=Duration::from_hours(24))
        .unwrap_or(interval);
    let port = t.opt_int(cx, "port", 1..=65_535).map(|p| p as u16);
    let bind = t.opt::<IpAddr>(cx, "bind");
    let bind_device = t.opt::<String>(cx, "bind_device");
    let kind = match kind? {
        CheckType::Tcp if t.get(cx, "half_open", false) => Some(CheckKind::TcpHalfOpen),
        CheckType::Tcp => Some(CheckKind::Tcp),
        CheckType::Http => Some(CheckKind::Http(http(cx, t, false))),
        CheckType::Https => Some(CheckKind::Http(http(cx, t, true))),
        CheckType::Script => t.req::<Argv>(cx, "command").map(|a| CheckKind::Script {
            command: a.0,
            dynamic_weight: t.get(cx, "dynamic_weight", false),
        }),
        CheckType::Dns => {
            let name = t.req::<String>(cx, "name");
            let record_type = t.get(cx, "query_type", DnsType::A);
            name.map(|name| CheckKind::Dns(DnsCheck { name, record_type }))
        }
        CheckType::Udp => {
            let payload = t
                .opt::<String>(cx, "payload")
                .unwrap_or_default()
                .into_bytes();
            let expect = t.opt::<String>(cx, "expect").map(String::into_bytes);
            Some(CheckKind::Udp(UdpCheck { payload, expect }))
        }
        CheckType::Smtp => Some(CheckKind::Smtp {
            helo: t.get(cx, "helo", node_name.to_owned()),
        }),
    };
    if !matches!(kind, Some(CheckKind::Script { .. })) && port.unwrap_or(rs_port) == 0 {
        cx.error(
            &t.span(),
            format!(
                "{} needs a port: set `port` here or on the real server",
                t.what()
            ),
        );
    }
    t.finish(cx);
    Some(Check {
        kind: kind?,
        interval,
        timeout,
        retries,
        retry_delay,
        rise,
        fall,
        warmup,
        port,
        bind,
        bind_device,
    })
}

impl CheckType {
    fn name(self) -> &'static str {
        use crate::walk::Keyword;
        Self::ALL
            .iter()
            .find(|(_, k)| *k == self)
            .map_or("?", |(n, _)| *n)
    }
}

fn http(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>, https: bool) -> HttpCheck {
    let path = t.get(cx, "path", "/".to_owned());
    if !path.starts_with('/') {
        cx.error(&t.value_span("path"), "`path` must start with '/'");
    }
    let status = t
        .opt::<Vec<StatusRange>>(cx, "status")
        .unwrap_or_else(|| vec![StatusRange { from: 200, to: 299 }]);
    let body_regex = t
        .opt_spanned::<String>(cx, "body_regex")
        .and_then(|(re, span)| match regex::Regex::new(&re) {
            Ok(_) => Some(re),
            Err(e) => {
                // regex renders syntax errors as a multi-line drawing; its last line is the cause.
                let text = e.to_string();
                let cause = text
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim_start_matches("error: ");
                cx.error(&span, format!("invalid `body_regex`: {cause}"));
                None
            }
        });
    let digest = t.opt::<Digest>(cx, "digest");
    let host = t.opt::<String>(cx, "host");
    let tls = https.then(|| TlsOptions {
        sni: t.opt(cx, "sni"),
        verify_cert: t.get(cx, "verify_cert", true),
        ca_file: t.opt(cx, "ca_file"),
    });
    HttpCheck {
        path,
        status,
        body_regex,
        digest,
        host,
        tls,
    }
}

/// `200` or `"200-299"`.
impl FromToml for StatusRange {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let range = match v.get_ref() {
            DeValue::Integer(_) => i64::from_toml(cx, v).map(|c| (c, c)),
            DeValue::String(s) => s
                .split_once('-')
                .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?))),
            _ => None,
        };
        match range {
            Some((from, to)) if (100..=599).contains(&from) && (from..=599).contains(&to) => {
                Some(Self {
                    from: from as u16,
                    to: to as u16,
                })
            }
            _ => {
                cx.error(
                    &v.span(),
                    "expected an HTTP status code 100..=599 or a range string like \"200-299\"",
                );
                None
            }
        }
    }
}

/// `"sha256:<64 hex>"` or `"md5:<32 hex>"`.
impl FromToml for Digest {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = String::from_toml(cx, v)?;
        let parsed = match s.split_once(':') {
            Some(("sha256", hex)) => decode_hex(hex)
                .and_then(|b| b.try_into().ok())
                .map(Digest::Sha256),
            Some(("md5", hex)) => decode_hex(hex)
                .and_then(|b| b.try_into().ok())
                .map(Digest::Md5),
            _ => None,
        };
        if parsed.is_none() {
            cx.error(
                &v.span(),
                "expected \"sha256:<64 hex digits>\" or \"md5:<32 hex digits>\"",
            );
        }
        parsed
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
        .collect()
}

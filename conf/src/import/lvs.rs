//! `virtual_server` and `real_server`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::checks::{self, CheckDefaults};
use super::convert::Item;
use super::cx::Cx;
use super::toml_out::{Table, Value};
use super::tree::Stmt;

const SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];

pub(super) fn virtual_server(cx: &mut Cx<'_>, s: &Stmt) -> Option<Item> {
    let mut t = Table::new("[[virtual_server]]");
    let (what, port, fwmark) = match s.args() {
        [kw, mark] if kw == "fwmark" => match mark.parse::<u32>() {
            Ok(m) if m > 0 => {
                t.set("fwmark", Value::Int(i64::from(m)));
                (format!("virtual_server fwmark {m}"), 0, true)
            }
            _ => {
                cx.skip(s, "fwmark must be an integer 1..=4294967295");
                return None;
            }
        },
        [kw, _] if kw == "group" => {
            cx.skip(
                s,
                "virtual_server_group is not supported; list the services",
            );
            return None;
        }
        [ip, port] if ip.parse::<IpAddr>().is_ok() && port.parse::<u16>().is_ok() => {
            let addr = SocketAddr::new(ip.parse().ok()?, port.parse().ok()?);
            t.set("address", Value::str(addr.to_string()));
            (format!("virtual_server {ip} {port}"), addr.port(), false)
        }
        _ => {
            cx.skip(
                s,
                "expected `virtual_server IP PORT` or `virtual_server fwmark N`",
            );
            return None;
        }
    };
    let is_v6 = matches!(
        s.args().first().map(|a| a.parse::<IpAddr>()),
        Some(Ok(IpAddr::V6(_)))
    );
    let mut defaults = CheckDefaults::default();
    let mut flags = Vec::new();
    let mut real = Vec::new();
    let mut rs_inhibit = Vec::new();
    let mut inhibit = false;
    for st in s.body() {
        if checks::common(cx, st, &mut defaults) {
            continue;
        }
        match st.keyword() {
            "lb_algo" | "lvs_sched" => match cx.one(st).map(str::to_ascii_lowercase) {
                Some(a) if SCHEDULERS.contains(&a.as_str()) => t.set("scheduler", Value::Str(a)),
                Some(_) => cx.skip(st, "unknown IPVS scheduler"),
                None => {}
            },
            "lb_kind" | "lvs_method" => match st.args() {
                [m] => match m.to_ascii_lowercase().as_str() {
                    m @ ("nat" | "dr" | "tun") => t.set("forwarding", Value::str(m)),
                    _ => cx.skip(st, "unknown forwarding method"),
                },
                _ => cx.skip(st, "tunnel options are not supported"),
            },
            "persistence_timeout" => {
                if let Some(n) = cx.int(st, 1..=i64::from(u32::MAX)) {
                    t.set("persistence_timeout", Value::str(format!("{n}s")));
                }
            }
            "persistence_granularity" => match netmask(st.args(), is_v6) {
                Some(len) => t.set("persistence_netmask", Value::Int(i64::from(len))),
                None => cx.skip(st, "expected a netmask (IPv4 dotted, IPv6 prefix length)"),
            },
            "protocol" if !fwmark => match cx.one(st).map(str::to_ascii_lowercase).as_deref() {
                Some(p @ ("tcp" | "udp" | "sctp")) => t.set("protocol", Value::str(p)),
                Some(_) => cx.skip(st, "unknown protocol"),
                None => {}
            },
            "protocol" => cx.skip(st, "fwmark services have no protocol"),
            "sorry_server" => match st.args() {
                [ip, port] => match (ip.parse::<IpAddr>(), port.parse::<u16>()) {
                    (Ok(ip), Ok(port)) => {
                        t.set(
                            "sorry_server",
                            Value::str(SocketAddr::new(ip, port).to_string()),
                        );
                    }
                    _ => cx.skip(st, "expected `sorry_server IP PORT`"),
                },
                _ => cx.skip(st, "expected `sorry_server IP PORT`"),
            },
            "quorum" => {
                if let Some(q) = cx.int(st, 0..=i64::from(u32::MAX)) {
                    t.set("quorum", Value::Int(q));
                }
            }
            "hysteresis" => {
                if let Some(h) = cx.int(st, 0..=i64::from(u32::MAX)) {
                    t.set("hysteresis", Value::Int(h));
                }
            }
            "inhibit_on_failure" => inhibit |= cx.flag(st),
            "alpha" if cx.flag(st) => t.set("alpha", Value::Bool(true)),
            "omega" if cx.flag(st) => t.set("omega", Value::Bool(true)),
            "alpha" | "omega" => {}
            f @ ("sh-port" | "mh-port" | "flag-2") if cx.flag(st) => flags.push(("port", f)),
            f @ ("sh-fallback" | "mh-fallback" | "flag-1") if cx.flag(st) => {
                flags.push(("fallback", f));
            }
            "real_server" => {
                if let Some((tables, inh)) = real_server(cx, st, port, &defaults) {
                    if inh {
                        rs_inhibit.push(st);
                    }
                    real.push(tables);
                }
            }
            "sorry_server_inhibit" | "sorry_server_lvs_method" => {
                cx.skip(
                    st,
                    "vigil's sorry server uses the service's forwarding method",
                );
            }
            "ha_suspend" => cx.skip(st, "vigil keeps virtual servers configured on every node"),
            "virtualhost" => defaults.host = cx.one(st).map(str::to_owned),
            _ => cx.unknown(st, "virtual_server"),
        }
    }
    if !flags.is_empty() {
        let mut names: Vec<&str> = flags.iter().map(|(f, _)| *f).collect();
        names.dedup();
        t.set("scheduler_flags", Value::strs(&names));
    }
    // vigil has inhibit_on_failure per service; keepalived's per-server flag maps when every
    // server has it.
    if inhibit || (!real.is_empty() && rs_inhibit.len() == real.len()) {
        t.set("inhibit_on_failure", Value::Bool(true));
    } else {
        for st in rs_inhibit {
            let loc = st
                .body()
                .iter()
                .find(|b| b.keyword() == "inhibit_on_failure");
            cx.skip_at(
                loc.map_or(st.loc, |b| b.loc),
                "vigil sets inhibit_on_failure per virtual server, and not every real server has it",
            );
        }
    }
    t.order(&[
        "address",
        "fwmark",
        "protocol",
        "scheduler",
        "scheduler_flags",
        "forwarding",
        "persistence_timeout",
        "persistence_netmask",
        "quorum",
        "hysteresis",
        "sorry_server",
        "inhibit_on_failure",
        "alpha",
        "omega",
    ]);
    let mut tables = vec![t];
    tables.extend(real.into_iter().flatten());
    Some(Item {
        loc: s.loc,
        what,
        name: String::new(),
        tables,
    })
}

/// One `real_server IP PORT { … }` and its checks; also whether it sets inhibit_on_failure.
fn real_server(
    cx: &mut Cx<'_>,
    s: &Stmt,
    vs_port: u16,
    vs_defaults: &CheckDefaults,
) -> Option<(Vec<Table>, bool)> {
    let (addr, port) = match s.args() {
        [ip] => (ip.parse::<IpAddr>().ok(), Some(vs_port)),
        [ip, port] => (ip.parse::<IpAddr>().ok(), port.parse::<u16>().ok()),
        _ => (None, None),
    };
    let (Some(addr), Some(port)) = (addr, port) else {
        cx.skip(s, "expected `real_server IP PORT`");
        return None;
    };
    let mut t = Table::new("[[virtual_server.real_server]]");
    t.set("address", Value::str(addr.to_string()));
    t.set("port", Value::Int(i64::from(port)));
    let mut defaults = vs_defaults.clone();
    let mut inhibit = false;
    let mut checkers = Vec::new();
    for st in s.body() {
        if checks::common(cx, st, &mut defaults) {
            continue;
        }
        match st.keyword() {
            "weight" => {
                if let Some(w) = cx.int(st, 0..=65_535) {
                    t.set("weight", Value::Int(w));
                }
            }
            "uthreshold" => {
                if let Some(u) = cx.int(st, 0..=i64::from(i32::MAX)) {
                    t.set("upper_threshold", Value::Int(u));
                }
            }
            "lthreshold" => {
                if let Some(l) = cx.int(st, 0..=i64::from(i32::MAX)) {
                    t.set("lower_threshold", Value::Int(l));
                }
            }
            "inhibit_on_failure" => inhibit |= cx.flag(st),
            "virtualhost" => defaults.host = cx.one(st).map(str::to_owned),
            _ if checks::is_checker(st.keyword()) => checkers.push(st),
            _ => cx.unknown(st, "real_server"),
        }
    }
    let mut tables = vec![t];
    for st in checkers {
        tables.extend(checks::checker(cx, st, &defaults));
    }
    Some((tables, inhibit))
}

/// `255.255.255.0` → 24 for IPv4 services; a prefix length for IPv6 ones.
fn netmask(args: &[String], v6: bool) -> Option<u8> {
    let [mask] = args else { return None };
    if v6 {
        return mask.parse::<u8>().ok().filter(|l| *l <= 128);
    }
    let bits = u32::from(mask.parse::<Ipv4Addr>().ok()?);
    let len = bits.leading_ones();
    // A netmask is contiguous ones: all the bits after the prefix must be zero.
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

//! The list blocks of a `vrrp_instance`: `virtual_ipaddress`, `unicast_peer` and the
//! `track_*` blocks, one entry per line.

use std::collections::HashMap;
use std::net::IpAddr;

use super::cx::Cx;
use super::lex::Loc;
use super::toml_out::Value;
use super::tree::Stmt;
use crate::model::AddressFamily;

/// One `virtual_ipaddress` entry.
pub(super) struct VipEntry {
    pub(super) addr: IpAddr,
    pub(super) value: Value,
    pub(super) loc: Loc,
}

/// `ADDR[/LEN] [dev IF] [label L] …`: dev and label are kept; other options are listed.
pub(super) fn vip(cx: &mut Cx<'_>, s: &Stmt) -> Option<VipEntry> {
    if s.block.is_some() {
        cx.skip(s, "unexpected block in an address list");
        return None;
    }
    let text = s.keyword();
    let (a, len) = text
        .split_once('/')
        .map_or((text, None), |(a, l)| (a, Some(l)));
    let Ok(addr) = a.parse::<IpAddr>() else {
        cx.skip(s, format!("\"{text}\" is not an IP address"));
        return None;
    };
    let max = AddressFamily::of(&addr).max_prefix();
    let len = match len.map(str::parse::<u8>) {
        None => max,
        Some(Ok(l)) if l <= max => l,
        Some(_) => {
            cx.skip(s, format!("invalid prefix length (0..={max})"));
            return None;
        }
    };
    let (mut dev, mut label, mut ignored) = (None, None, Vec::new());
    let mut args = s.args().iter();
    while let Some(opt) = args.next() {
        match (opt.as_str(), args.clone().next()) {
            ("dev", Some(_)) => dev = args.next().cloned(),
            ("label", Some(_)) if addr.is_ipv4() => label = args.next().cloned(),
            ("no_track" | "home" | "nodad" | "noprefixroute" | "autojoin", _) => {
                ignored.push(opt.clone());
            }
            (_, Some(_)) => {
                ignored.push(format!("{opt} {}", args.next().map_or("", String::as_str)));
            }
            (_, None) => ignored.push(opt.clone()),
        }
    }
    if !ignored.is_empty() {
        cx.skip(
            s,
            format!(
                "the address is converted, but not its option(s) `{}`",
                ignored.join("`, `")
            ),
        );
    }
    let address = format!("{addr}/{len}");
    let value = if dev.is_none() && label.is_none() {
        Value::Str(address)
    } else {
        let mut t = vec![("address", Value::Str(address))];
        t.extend(label.map(|l| ("label", Value::Str(l))));
        t.extend(dev.map(|d| ("dev", Value::Str(d))));
        Value::Inline(t)
    };
    Some(VipEntry {
        addr,
        value,
        loc: s.loc,
    })
}

/// Every address of a list block, e.g. `unicast_peer { 10.0.0.2 }`; per-peer options are listed.
pub(super) fn peers(cx: &mut Cx<'_>, s: &Stmt) -> Vec<(IpAddr, Loc)> {
    let mut out = Vec::new();
    for st in s.body() {
        match st.keyword().parse::<IpAddr>() {
            Ok(ip) if st.block.is_none() => {
                if !st.args().is_empty() {
                    cx.skip(
                        st,
                        "per-peer options are not supported; the peer is converted",
                    );
                }
                out.push((ip, st.loc));
            }
            _ => cx.skip(st, "not an IP address"),
        }
    }
    out
}

/// A tracked object with its keepalived weight (`None`: the definition's own weight).
pub(super) struct Tracked {
    pub(super) name: String,
    pub(super) weight: Option<i64>,
    pub(super) loc: Loc,
}

/// `NAME [weight N]` entries of `track_interface`, `track_script` and `track_file`.
pub(super) fn tracked(cx: &mut Cx<'_>, s: &Stmt) -> Vec<Tracked> {
    let mut out = Vec::new();
    for st in s.body() {
        let weight = match st.args() {
            [] => None,
            [w, n] if w == "weight" => match n.parse::<i64>() {
                Ok(n) if (-254..=254).contains(&n) => Some(n),
                _ => {
                    cx.skip(st, "weight must be an integer in -254..=254");
                    continue;
                }
            },
            [w, _, r] if w == "weight" && r == "reverse" => {
                cx.skip(st, "`reverse` weights are not supported by vigil");
                continue;
            }
            // Several names on one line, e.g. `track_interface { eth0 eth1 }`.
            names if st.block.is_none() && !names.iter().any(|n| n == "weight") => {
                out.extend(st.words.iter().map(|name| Tracked {
                    name: name.clone(),
                    weight: None,
                    loc: st.loc,
                }));
                continue;
            }
            _ => {
                cx.skip(st, "expected `NAME` or `NAME weight N`");
                continue;
            }
        };
        if st.block.is_some() || st.keyword().is_empty() {
            cx.skip(st, "expected `NAME` or `NAME weight N`");
            continue;
        }
        out.push(Tracked {
            name: st.keyword().to_owned(),
            weight,
            loc: st.loc,
        });
    }
    out
}

/// `vrrp_track_file NAME { file PATH weight N }`, recorded for the instances that track it.
pub(super) fn track_file(cx: &mut Cx<'_>, s: &Stmt, defs: &mut HashMap<String, (String, i64)>) {
    let [name] = s.args() else {
        cx.skip(s, "`vrrp_track_file` takes one name");
        return;
    };
    let (mut path, mut weight) = (None, 1);
    for st in s.body() {
        match st.keyword() {
            "file" => path = cx.one(st).map(str::to_owned),
            "weight" => match st.args() {
                [_, r] if r == "reverse" => {
                    cx.skip(st, "`reverse` weights are not supported by vigil");
                }
                _ => weight = cx.int(st, -254..=254).unwrap_or(weight),
            },
            "init_file" => cx.skip(st, "vigil does not create tracked files"),
            _ => cx.unknown(st, "vrrp_track_file"),
        }
    }
    match path {
        Some(p) => {
            defs.insert(name.clone(), (p, weight));
        }
        None => cx.skip(s, "vrrp_track_file without `file`"),
    }
}

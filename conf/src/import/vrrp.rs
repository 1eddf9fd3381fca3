//! `vrrp_instance`: its settings, VIPs, transport, authentication and tracking.

use std::net::IpAddr;
use std::time::Duration;

use super::convert::{Item, Known};
use super::cx::{Cx, dur};
use super::lex::Loc;
use super::toml_out::{Table, Value};
use super::tree::Stmt;
use super::vips::{self, Tracked, VipEntry};
use crate::model::AddressFamily;

/// The name of a `KEYWORD NAME { … }` block.
pub(super) fn block_name<'s>(cx: &mut Cx<'_>, s: &'s Stmt) -> Option<&'s str> {
    if let [name] = s.args() {
        Some(name)
    } else {
        cx.skip(s, format!("`{}` takes exactly one name", s.keyword()));
        None
    }
}

/// Instance settings gathered before the table is written, because several depend on others
/// (version on family, auth on version, priority on tracking weights).
#[derive(Default)]
struct Inst<'s> {
    interface: Option<String>,
    vrid: Option<i64>,
    priority: Option<i64>,
    version: Option<(i64, &'s Stmt)>,
    advert: Option<(Duration, &'s Stmt)>,
    native_ipv6: bool,
    vips: Vec<VipEntry>,
    peers: Vec<(IpAddr, Loc)>,
    unicast_src: Option<(IpAddr, &'s Stmt)>,
    auth_pass: Option<(String, &'s Stmt)>,
    interfaces: Vec<Tracked>,
    scripts: Vec<Tracked>,
    files: Vec<Tracked>,
    notify: Vec<(&'static str, Value)>,
    nopreempt: bool,
    preempt_delay: Option<(Duration, &'s Stmt)>,
    accept: Option<bool>,
    garp_delay: Option<Duration>,
    garp_count: Option<i64>,
    garp_refresh: Option<Duration>,
    garp_refresh_count: Option<i64>,
    use_vmac: bool,
    vmac_name: Option<String>,
}

pub(super) fn instance(cx: &mut Cx<'_>, s: &Stmt, known: &Known) -> Option<Item> {
    let name = block_name(cx, s)?;
    let mut i = Inst::default();
    for st in s.body() {
        statement(cx, st, &mut i);
    }
    let what = format!("vrrp_instance {name}");
    let missing = [
        ("interface", i.interface.is_none()),
        ("virtual_router_id", i.vrid.is_none()),
        ("virtual_ipaddress", i.vips.is_empty()),
    ];
    if let Some((key, _)) = missing.iter().find(|(_, m)| *m) {
        cx.skip(
            s,
            format!("{what} not converted: it has no (valid) `{key}`"),
        );
        return None;
    }
    let d = &known.defaults;
    let mut t = Table::new("[[vrrp_instance]]");
    t.set("name", Value::str(name));
    t.set(
        "interface",
        Value::str(i.interface.clone().unwrap_or_default()),
    );
    t.set("vrid", Value::Int(i.vrid.unwrap_or_default()));

    let family = if i.native_ipv6 {
        AddressFamily::Ipv6
    } else {
        i.vips
            .first()
            .map_or(AddressFamily::Ipv4, |v| AddressFamily::of(&v.addr))
    };
    // keepalived's default is VRRPv2, but it runs IPv6 instances as v3.
    let mut version = i.version.map_or(d.version.unwrap_or(2), |(v, _)| v);
    if family == AddressFamily::Ipv6 && version == 2 {
        if let Some((_, st)) = i.version {
            cx.skip(
                st,
                "VRRPv2 is IPv4-only; version 3 is used, as keepalived does",
            );
        }
        version = 3;
    }
    // Tracking first (it may move the priority), written after the instance's own keys.
    let mut track = Table::new("");
    let priority = tracking(cx, &mut track, &i, known, i.priority.unwrap_or(100));
    t.set("priority", Value::Int(priority));
    t.set("version", Value::Int(version));
    if let Some((d, st)) = i.advert {
        let ok = if version == 2 {
            d.subsec_nanos() == 0 && (1..=255).contains(&d.as_secs())
        } else {
            d.as_nanos() % 10_000_000 == 0
                && (Duration::from_millis(10)..=Duration::from_millis(40_950)).contains(&d)
        };
        if ok {
            t.set("advert_interval", dur(d));
        } else {
            cx.skip(
                st,
                format!("not a valid VRRPv{version} advert interval; 1s is used"),
            );
        }
    }

    if !i.peers.is_empty() {
        t.set("transport", Value::str("unicast"));
        if let Some((src, _)) = i
            .unicast_src
            .filter(|(a, _)| AddressFamily::of(a) == family)
        {
            t.set("unicast_source", Value::str(src.to_string()));
        } else if let Some((_, st)) = i.unicast_src {
            cx.skip(st, "address family differs from the instance's");
        }
        let mut peers = Vec::new();
        for (p, loc) in &i.peers {
            if AddressFamily::of(p) == family {
                peers.push(Value::str(p.to_string()));
            } else {
                cx.skip_at(*loc, "address family differs from the instance's");
            }
        }
        t.set("unicast_peers", Value::Array(peers));
    } else if let Some((_, st)) = i.unicast_src {
        cx.skip(
            st,
            "without `unicast_peer` keepalived (and vigil) use multicast",
        );
    }

    let mut vips = Vec::new();
    for v in i.vips {
        if AddressFamily::of(&v.addr) == family {
            vips.push(v.value);
        } else {
            cx.skip_at(
                v.loc,
                "vigil instances are single-family: put this address in its own instance",
            );
        }
    }
    t.set("vips", Value::Array(vips));

    if i.nopreempt {
        t.set("preempt", Value::Bool(false));
    }
    match i.preempt_delay {
        Some((_, st)) if i.nopreempt => cx.skip(st, "no effect with `nopreempt`"),
        Some((delay, _)) => t.set("preempt_delay", dur(delay)),
        None => {}
    }
    if let Some(a) = i.accept {
        t.set("accept_mode", Value::Bool(a));
    }
    if i.priority == Some(255) {
        t.set("address_owner", Value::Bool(true));
    }
    if let Some(n) = i.garp_count.or(d.garp_count) {
        t.set("garp_count", Value::Int(n));
    }
    if let Some(delay) = i.garp_delay.or(d.garp_delay) {
        t.set("garp_delay", dur(delay));
    }
    if let Some(r) = i.garp_refresh.or(d.garp_refresh).filter(|r| !r.is_zero()) {
        t.set("garp_refresh", dur(r));
    }
    if let Some(n) = i.garp_refresh_count.or(d.garp_refresh_count) {
        t.set("garp_refresh_count", Value::Int(n));
    }
    if let Some((pass, st)) = i.auth_pass {
        if version == 2 {
            // keepalived sends the first 8 bytes (RFC 3768 §5.3.6.1 has 8 octets).
            let mut end = pass.len().min(8);
            while !pass.is_char_boundary(end) {
                end -= 1;
            }
            if end < pass.len() {
                t.note("auth_pass truncated to 8 bytes, as keepalived sends it");
            }
            t.set("auth_pass", Value::str(&pass[..end]));
        } else {
            cx.skip(
                st,
                "VRRPv3 has no authentication (keepalived ignores it too)",
            );
        }
    }
    t.comments.append(&mut track.comments);
    t.entries.append(&mut track.entries);
    for (key, argv) in i.notify {
        t.set(key, argv);
    }
    // Imported setups have no [cluster], so plain VRRP as in keepalived.
    t.set("fencing", Value::str("off"));
    if i.use_vmac {
        t.set("use_vmac", Value::Bool(true));
    }
    if let Some(name) = i.vmac_name {
        t.set("vmac_name", Value::str(&name));
    }
    Some(Item {
        loc: s.loc,
        what,
        name: name.to_owned(),
        tables: vec![t],
    })
}

fn statement<'s>(cx: &mut Cx<'_>, st: &'s Stmt, i: &mut Inst<'s>) {
    match st.keyword() {
        "state" => cx.skip(
            st,
            "vigil has no configured initial state: it elects by priority",
        ),
        "interface" => i.interface = cx.one(st).map(str::to_owned),
        "virtual_router_id" => i.vrid = cx.int(st, 1..=255),
        "priority" => i.priority = cx.int(st, 1..=255),
        "version" => i.version = cx.int(st, 2..=3).map(|v| (v, st)),
        "advert_int" => i.advert = cx.secs(st).map(|d| (d, st)),
        "native_ipv6" => i.native_ipv6 = cx.flag(st),
        "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
            i.vips
                .extend(st.body().iter().filter_map(|e| vips::vip(cx, e)));
        }
        "unicast_peer" => i.peers.extend(vips::peers(cx, st)),
        "unicast_src_ip" => match cx.one(st).map(str::parse::<IpAddr>) {
            Some(Ok(ip)) => i.unicast_src = Some((ip, st)),
            Some(Err(_)) => cx.skip(st, "not an IP address"),
            None => {}
        },
        "authentication" => authentication(cx, st, i),
        "track_interface" => i.interfaces.extend(vips::tracked(cx, st)),
        "track_script" => i.scripts.extend(vips::tracked(cx, st)),
        "track_file" => i.files.extend(vips::tracked(cx, st)),
        key @ ("notify_master" | "notify_backup" | "notify_fault" | "notify_stop" | "notify") => {
            if let Some(argv) = cx.notify_command(st) {
                i.notify.push((notify_key(key), Value::argv(&argv)));
            }
        }
        "nopreempt" => i.nopreempt = cx.flag(st),
        "preempt_delay" => i.preempt_delay = cx.secs(st).map(|d| (d, st)),
        "accept" => i.accept = cx.flag(st).then_some(true),
        "no_accept" => i.accept = cx.flag(st).then_some(false),
        "garp_master_delay" => i.garp_delay = cx.secs(st),
        "garp_master_repeat" => i.garp_count = cx.int(st, 1..=100),
        "garp_master_refresh" => i.garp_refresh = cx.secs(st),
        "garp_master_refresh_repeat" => i.garp_refresh_count = cx.int(st, 1..=100),
        "use_vmac" => {
            i.use_vmac = true;
            i.vmac_name = st.args().first().cloned();
        }
        _ => cx.unknown(st, "vrrp_instance"),
    }
}

fn notify_key(key: &str) -> &'static str {
    match key {
        "notify_master" => "notify_master",
        "notify_backup" => "notify_backup",
        "notify_fault" => "notify_fault",
        "notify_stop" => "notify_stop",
        _ => "notify",
    }
}

fn authentication<'s>(cx: &mut Cx<'_>, s: &'s Stmt, i: &mut Inst<'s>) {
    let mut pass = None;
    let mut ah = false;
    for st in s.body() {
        match st.keyword() {
            "auth_type" => match cx.one(st) {
                Some("PASS") | None => {}
                Some("AH") => {
                    ah = true;
                    cx.skip(
                        st,
                        "IPsec AH authentication is not supported (RFC 3768 dropped it)",
                    );
                }
                Some(_) => cx.skip(st, "unknown auth_type"),
            },
            "auth_pass" => pass = cx.one(st).map(|p| (p.to_owned(), st)),
            _ => cx.unknown(st, "authentication"),
        }
    }
    match pass {
        Some((_, st)) if ah => cx.skip(st, "belongs to AH authentication, which is not converted"),
        Some((p, st)) if !p.is_empty() => i.auth_pass = Some((p, st)),
        Some((_, st)) => cx.skip(st, "empty password"),
        None => {}
    }
}

/// Writes `track_*` and returns the priority. keepalived adds a positive weight while the
/// object is *up*; vigil applies weights while it is down. `prio` with `+w` therefore becomes
/// `prio + w` with `-w`, which gives the same priority in every state.
fn tracking(cx: &mut Cx<'_>, t: &mut Table, i: &Inst<'_>, known: &Known, prio: i64) -> i64 {
    let script_weight = |x: &Tracked| x.weight.or_else(|| known.scripts.get(&x.name).copied());
    let scripts: Vec<&Tracked> = i
        .scripts
        .iter()
        .filter(|x| {
            let ok = known.scripts.contains_key(&x.name);
            if !ok {
                cx.skip_at(
                    x.loc,
                    format!(
                        "vrrp_script \"{}\" is not defined or was not converted",
                        x.name
                    ),
                );
            }
            ok
        })
        .collect();
    let positive: i64 = i
        .interfaces
        .iter()
        .map(|x| x.weight.unwrap_or(0))
        .chain(scripts.iter().map(|x| script_weight(x).unwrap_or(0)))
        .filter(|w| *w > 0)
        .sum();
    let flip = positive > 0 && prio + positive <= 254;
    if positive > 0 && !flip {
        t.note(
            "keepalived positive tracking weights could not be converted (see the importer's list)",
        );
    }
    let entry = |cx: &mut Cx<'_>, name: &str, w: Option<i64>, loc, plain: bool| -> Option<Value> {
        match w {
            Some(w) if w > 0 && !flip => {
                cx.skip_at(
                    loc,
                    "a positive weight here would push the priority above 254",
                );
                None
            }
            Some(w) if w > 0 => Some(weighted(name, -w)),
            Some(w) if !plain => Some(weighted(name, w)),
            _ => Some(Value::str(name)),
        }
    };
    let interfaces: Vec<Value> = i
        .interfaces
        .iter()
        .filter_map(|x| entry(cx, &x.name, x.weight, x.loc, x.weight.unwrap_or(0) == 0))
        .collect();
    // An entry without weight uses the script's; spell it out only when it has to flip.
    let scripts: Vec<Value> = scripts
        .iter()
        .filter_map(|x| {
            let w = script_weight(x);
            entry(
                cx,
                &x.name,
                w,
                x.loc,
                x.weight.is_none() && w.unwrap_or(0) <= 0,
            )
        })
        .collect();
    let mut files = Vec::new();
    for x in &i.files {
        match known.track_files.get(&x.name) {
            Some((path, w)) => files.push(Value::Inline(vec![
                ("path", Value::str(path.as_str())),
                ("weight", Value::Int(x.weight.unwrap_or(*w))),
            ])),
            None => cx.skip_at(
                x.loc,
                format!("vrrp_track_file \"{}\" is not defined", x.name),
            ),
        }
    }
    for (key, list) in [
        ("track_interfaces", interfaces),
        ("track_scripts", scripts),
        ("track_files", files),
    ] {
        if !list.is_empty() {
            t.set(key, Value::Array(list));
        }
    }
    if flip {
        t.note(format!(
            "priority {prio} + {positive}: keepalived's positive weights are added while the \
             tracked object is up; vigil subtracts them while it is down."
        ));
        prio + positive
    } else {
        prio
    }
}

fn weighted(name: &str, w: i64) -> Value {
    Value::Inline(vec![("name", Value::str(name)), ("weight", Value::Int(w))])
}

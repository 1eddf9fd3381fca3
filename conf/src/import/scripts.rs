//! `vrrp_sync_group` and `vrrp_script`.

use std::time::Duration;

use super::convert::Item;
use super::cx::{Cx, dur};
use super::toml_out::{Table, Value};
use super::tree::Stmt;
use super::vrrp::block_name;

/// `vrrp_sync_group G { group { VI_1 VI_2 } }`; members must be converted instances.
pub(super) fn sync_group(cx: &mut Cx<'_>, s: &Stmt, instances: &[String]) -> Option<Item> {
    let name = block_name(cx, s)?;
    let mut members = Vec::new();
    for st in s.body() {
        match st.keyword() {
            "group" if st.args().is_empty() => {
                for m in st.body() {
                    for w in &m.words {
                        if instances.contains(w) {
                            members.push(Value::str(w.as_str()));
                        } else {
                            cx.skip(
                                m,
                                format!(
                                    "vrrp_instance \"{w}\" is not defined or was not converted"
                                ),
                            );
                        }
                    }
                }
            }
            k if k.starts_with("notify") => cx.skip(
                st,
                "vigil sync groups have no notify scripts; put them on the instances",
            ),
            _ => cx.unknown(st, "vrrp_sync_group"),
        }
    }
    if members.is_empty() {
        cx.skip(
            s,
            format!("vrrp_sync_group {name} not converted: no convertible members"),
        );
        return None;
    }
    let mut t = Table::new("[[vrrp_sync_group]]");
    t.set("name", Value::str(name));
    t.set("instances", Value::Array(members));
    Some(Item {
        loc: s.loc,
        what: format!("vrrp_sync_group {name}"),
        name: name.to_owned(),
        tables: vec![t],
    })
}

/// `vrrp_script NAME { script …; interval; timeout; weight; rise; fall }`. Returns the item and
/// keepalived's weight; a positive weight is applied per instance, never written here.
pub(super) fn script(cx: &mut Cx<'_>, s: &Stmt) -> Option<(Item, i64)> {
    let name = block_name(cx, s)?;
    let (mut command, mut interval, mut timeout, mut weight) = (None, None, None, 0);
    let (mut rise, mut fall) = (None, None);
    for st in s.body() {
        match st.keyword() {
            "script" => command = cx.command(st),
            "interval" => interval = cx.secs(st).filter(|d| !d.is_zero()),
            "timeout" => timeout = cx.secs(st).filter(|d| !d.is_zero()),
            "weight" => match st.args() {
                [_, r] if r == "reverse" => {
                    cx.skip(st, "`reverse` weights are not supported by vigil");
                }
                _ => weight = cx.int(st, -254..=254).unwrap_or(0),
            },
            "rise" => rise = cx.int(st, 1..=100),
            "fall" => fall = cx.int(st, 1..=100),
            "user" => cx.skip(st, "vigil runs every script as [global] script_user"),
            "init_fail" => cx.skip(st, "vigil scripts start as not yet known, then rise/fall"),
            _ => cx.unknown(st, "vrrp_script"),
        }
    }
    let Some(command) = command else {
        cx.skip(
            s,
            format!("vrrp_script {name} not converted: it has no `script`"),
        );
        return None;
    };
    // keepalived runs scripts every second by default; a timeout defaults to the interval.
    let interval = interval.unwrap_or(Duration::from_secs(1));
    let mut t = Table::new("[[track_script]]");
    t.set("name", Value::str(name));
    t.set("command", Value::argv(&command));
    t.set("interval", dur(interval));
    t.set("timeout", dur(timeout.unwrap_or(interval)));
    if let Some(r) = rise {
        t.set("rise", Value::Int(r));
    }
    if let Some(f) = fall {
        t.set("fall", Value::Int(f));
    }
    if weight < 0 {
        t.set("weight", Value::Int(weight));
    } else if weight > 0 {
        t.note(format!(
            "keepalived weight +{weight} (added while the script succeeds) is converted per instance."
        ));
    }
    let item = Item {
        loc: s.loc,
        what: format!("vrrp_script {name}"),
        name: name.to_owned(),
        tables: vec![t],
    };
    Some((item, weight))
}

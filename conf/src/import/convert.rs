//! Top-level dispatch, `global_defs`, and the validation that keeps only blocks vigil accepts.

use std::collections::HashMap;
use std::time::Duration;

use super::Unconverted;
use super::cx::{Cx, dur};
use super::lex::{Loc, Sources};
use super::toml_out::{Table, Value, render};
use super::tree::Stmt;
use super::validate::{accept, valid};
use super::{lvs, scripts, vips, vrrp};

/// One converted keepalived block: the tables it becomes, validated together.
pub(super) struct Item {
    /// The block's first line, where it is listed if vigil refuses the result.
    pub(super) loc: Loc,
    /// E.g. `vrrp_instance VI_1`.
    pub(super) what: String,
    pub(super) name: String,
    pub(super) tables: Vec<Table>,
}

/// `global_defs` settings that are defaults for every VRRP instance.
#[derive(Debug, Default)]
pub(super) struct VrrpDefaults {
    pub(super) version: Option<i64>,
    pub(super) garp_delay: Option<Duration>,
    pub(super) garp_count: Option<i64>,
    pub(super) garp_refresh: Option<Duration>,
    pub(super) garp_refresh_count: Option<i64>,
}

/// What instances may refer to: converted scripts (name → keepalived weight) and
/// `vrrp_track_file` definitions (name → path, weight).
pub(super) struct Known {
    pub(super) defaults: VrrpDefaults,
    pub(super) scripts: HashMap<String, i64>,
    pub(super) track_files: HashMap<String, (String, i64)>,
}

pub(super) fn convert(
    sources: &Sources,
    stmts: &[Stmt],
    file_name: &str,
) -> (String, Vec<Unconverted>) {
    let mut cx = Cx {
        sources,
        unconverted: Vec::new(),
    };
    let mut global = Table::new("[global]");
    let mut known = Known {
        defaults: VrrpDefaults::default(),
        scripts: HashMap::new(),
        track_files: HashMap::new(),
    };
    let (mut scripts, mut instances, mut groups, mut services) = (vec![], vec![], vec![], vec![]);
    for s in stmts {
        match (s.keyword(), &s.block) {
            ("global_defs", Some(_)) => global_defs(&mut cx, s, &mut global, &mut known.defaults),
            ("vrrp_script", Some(_)) => scripts.push(s),
            ("vrrp_track_file", Some(_)) => vips::track_file(&mut cx, s, &mut known.track_files),
            ("vrrp_instance", Some(_)) => instances.push(s),
            ("vrrp_sync_group", Some(_)) => groups.push(s),
            ("virtual_server", Some(_)) => services.push(s),
            _ => cx.unknown(s, "the top level"),
        }
    }

    let mut accepted = Vec::new();
    if let Err(msg) = valid(std::slice::from_ref(&global)) {
        // Only free-form strings and range-checked numbers go into [global]; should vigil
        // still refuse one, the settings are listed rather than emitted.
        if let Some(s) = stmts.iter().find(|s| s.keyword() == "global_defs") {
            cx.skip_at(s.loc, format!("global_defs not converted: {msg}"));
        }
    } else if !global.entries.is_empty() || !global.comments.is_empty() {
        accepted.push(global);
    }

    let mut weights = HashMap::new();
    let items = scripts
        .into_iter()
        .filter_map(|s| {
            let (item, weight) = scripts::script(&mut cx, s)?;
            weights.insert(item.name.clone(), weight);
            Some(item)
        })
        .collect();
    for item in accept(&mut cx, &mut accepted, items) {
        let weight = weights.get(&item.name).copied().unwrap_or(0);
        known.scripts.insert(item.name, weight);
    }

    let items = instances
        .into_iter()
        .filter_map(|s| vrrp::instance(&mut cx, s, &known))
        .collect();
    let names: Vec<String> = accept(&mut cx, &mut accepted, items)
        .into_iter()
        .map(|i| i.name)
        .collect();

    let items = groups
        .into_iter()
        .filter_map(|s| scripts::sync_group(&mut cx, s, &names))
        .collect();
    accept(&mut cx, &mut accepted, items);

    let items = services
        .into_iter()
        .filter_map(|s| lvs::virtual_server(&mut cx, s))
        .collect();
    accept(&mut cx, &mut accepted, items);

    let header = format!(
        "vigil configuration imported from the keepalived config {file_name}.\n\
         Review it, and the statements the importer listed as not converted, before use."
    );
    (render(&header, &accepted), cx.unconverted)
}

fn global_defs(cx: &mut Cx<'_>, s: &Stmt, global: &mut Table, defaults: &mut VrrpDefaults) {
    for st in s.body() {
        match st.keyword() {
            "router_id" => {
                if let Some(id) = cx.one(st) {
                    global.set("router_id", Value::str(id));
                }
            }
            "script_user" => match (st.args(), &st.block) {
                ([user], None) => global.set("script_user", Value::str(user.as_str())),
                ([user, group], None) => {
                    global.set("script_user", Value::str(user.as_str()));
                    global.set("script_group", Value::str(group.as_str()));
                }
                _ => cx.skip(st, "`script_user` takes a user and an optional group"),
            },
            "enable_script_security" => {
                if cx.flag(st) {
                    global.note(
                        "keepalived enable_script_security: vigil always runs scripts as \
                         script_user, never as root unless configured so.",
                    );
                }
            }
            "vrrp_version" => defaults.version = cx.int(st, 2..=3),
            // keepalived: 0 (its default) leaves the VRRP process with normal scheduling, as
            // `vrrp_rt_priority = 0` does in vigil. Without the statement vigil's own default
            // (real-time on) applies: the importer maps what is written, not keepalived's defaults.
            "vrrp_rt_priority" => {
                if let Some(priority) = cx.int(st, 0..=99) {
                    global.set("vrrp_rt_priority", Value::Int(priority));
                }
            }
            "vrrp_rlimit_rtime" => {
                if let Some(limit) = rlimit_rtime(cx, st) {
                    global.set("vrrp_rlimit_rtime", dur(limit));
                }
            }
            "vrrp_garp_master_delay" => defaults.garp_delay = cx.secs(st),
            "vrrp_garp_master_repeat" => defaults.garp_count = cx.int(st, 1..=100),
            "vrrp_garp_master_refresh" => defaults.garp_refresh = cx.secs(st),
            "vrrp_garp_master_refresh_repeat" => {
                defaults.garp_refresh_count = cx.int(st, 1..=100);
            }
            _ => cx.unknown(st, "global_defs"),
        }
    }
}

/// keepalived's `vrrp_rlimit_rtime` is in microseconds; vigil takes a duration from 1 ms to
/// 10 s (a shorter limit would kill the daemon on an ordinary burst, a longer one no longer
/// protects the CPU), so a value outside that is listed rather than converted.
fn rlimit_rtime(cx: &mut Cx<'_>, st: &Stmt) -> Option<Duration> {
    let micros = cx.int(st, 1_000..=10_000_000)?;
    u64::try_from(micros).ok().map(Duration::from_micros)
}

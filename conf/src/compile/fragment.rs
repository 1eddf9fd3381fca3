//! Shared config fragments: `[[virtual_server]]` and `[[track]]` tables pushed through the
//! coordination tree (`/vigil/config/<name>`) and merged into every node's local config.
//!
//! A fragment is validated by the same section compilers as the main file, with its own name in
//! every diagnostic (`/vigil/config/web:4:11: …`). Merging then checks it against the local
//! config and the other fragments: a virtual server may be defined once across all of them, and
//! a `[[track]]` entry must name a local VRRP instance and an existing track script or
//! health-check group. Anything wrong refuses the whole set: a node never runs half of a push.

use super::Refs;
use super::lvs::virtual_server;
use super::track::WEIGHT;
use crate::error::{ConfigError, ConfigErrors};
use crate::model::{Config, TrackInterface, TrackRef, VirtualServer};
use crate::suggest::closest;
use crate::walk::{Ctx, Span, Table};

/// What a `[[track]]` entry points at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Script(String),
    Group(String),
    Interface(String),
}

/// One `[[track]]` entry: set the weight of a tracked object on an instance.
#[derive(Debug)]
struct TrackSet {
    instance: String,
    instance_span: Span,
    target: Target,
    target_span: Span,
    weight: i32,
}

/// One fragment's compiled sections, with the spans the merge checks need.
struct Compiled {
    virtual_servers: Vec<(VirtualServer, Span)>,
    tracks: Vec<TrackSet>,
}

/// Validates `fragments` (name, TOML text) and merges them, in order, into `base`.
///
/// Virtual servers are appended after the local ones; `[[track]]` entries set (or add) the weight
/// of a tracked script, group or interface on a local instance. On a witness (which runs no VRRP
/// or LVS) fragments are still validated, but references to instances are not checked and
/// nothing is merged.
pub(crate) fn merge(base: &Config, fragments: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    let witness = base.cluster.as_ref().is_some_and(|c| c.witness);
    let mut errors = Vec::new();
    let mut merged = base.clone();
    // Virtual servers defined so far: key → where (None = the local config).
    let mut defined: Vec<(crate::model::VsKey, Option<String>)> = base
        .virtual_servers
        .iter()
        .map(|vs| (*vs.key(), None))
        .collect();
    let mut groups: Vec<String> = base
        .virtual_servers
        .iter()
        .filter_map(|vs| vs.group.clone())
        .collect();
    let mut compiled = Vec::new();
    for (name, src) in fragments {
        match compile_one(name, src, &base.global.node_name) {
            Ok(c) => {
                groups.extend(
                    c.virtual_servers
                        .iter()
                        .filter_map(|(vs, _)| vs.group.clone()),
                );
                compiled.push((name, src, c));
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    for (name, src, c) in compiled {
        let mut cx = Ctx::new(name, src);
        for (vs, span) in c.virtual_servers {
            let key = *vs.key();
            if let Some((_, place)) = defined.iter().find(|(k, _)| *k == key) {
                let place = place.as_deref().map_or_else(
                    || "the local config file".to_owned(),
                    |f| format!("fragment {f}"),
                );
                cx.error(
                    &span,
                    format!("virtual server {key} is already defined in {place}"),
                );
                continue;
            }
            defined.push((key, Some((*name).to_owned())));
            merged.virtual_servers.push(vs);
        }
        for t in c.tracks {
            if !witness {
                apply_track(&mut cx, &mut merged, base, &groups, t);
            }
        }
        errors.extend(cx.into_diagnostics().0);
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    if witness {
        return Ok(base.clone());
    }
    Ok(merged)
}

/// Resolves one `[[track]]` entry against the local config and applies it to `merged`.
fn apply_track(
    cx: &mut Ctx<'_>,
    merged: &mut Config,
    base: &Config,
    groups: &[String],
    t: TrackSet,
) {
    let Some(instance) = merged
        .vrrp_instances
        .iter_mut()
        .find(|i| i.name == t.instance)
    else {
        let names: Vec<&str> = base
            .vrrp_instances
            .iter()
            .map(|i| i.name.as_str())
            .collect();
        let hint = closest(&t.instance, &names).map(|b| format!("; did you mean \"{b}\"?"));
        cx.error(
            &t.instance_span,
            format!(
                "unknown vrrp_instance \"{}\" (this node's config has no such instance){}",
                t.instance,
                hint.unwrap_or_default()
            ),
        );
        return;
    };
    match t.target {
        Target::Script(name) => {
            if base.track_script(&name).is_none() {
                let names: Vec<&str> = base.track_scripts.iter().map(|s| s.name.as_str()).collect();
                unknown(cx, &t.target_span, "track_script", &name, &names);
                return;
            }
            set_ref(&mut instance.track.scripts, name, t.weight);
        }
        Target::Group(name) => {
            if !groups.contains(&name) {
                let names: Vec<&str> = groups.iter().map(String::as_str).collect();
                unknown(
                    cx,
                    &t.target_span,
                    "health-check group (a virtual server `group`)",
                    &name,
                    &names,
                );
                return;
            }
            set_ref(&mut instance.track.groups, name, t.weight);
        }
        Target::Interface(name) => {
            let list = &mut instance.track.interfaces;
            match list.iter_mut().find(|i| i.name == name) {
                Some(i) => i.weight = t.weight,
                None => list.push(TrackInterface {
                    name,
                    weight: t.weight,
                }),
            }
        }
    }
}

fn set_ref(list: &mut Vec<TrackRef>, name: String, weight: i32) {
    match list.iter_mut().find(|r| r.name == name) {
        Some(r) => r.weight = Some(weight),
        None => list.push(TrackRef {
            name,
            weight: Some(weight),
        }),
    }
}

fn unknown(cx: &mut Ctx<'_>, at: &Span, what: &str, name: &str, names: &[&str]) {
    let hint = closest(name, names).map(|b| format!("; did you mean \"{b}\"?"));
    cx.error(
        at,
        format!("unknown {what} \"{name}\"{}", hint.unwrap_or_default()),
    );
}

/// Parses and validates one fragment on its own.
fn compile_one(name: &str, src: &str, node_name: &str) -> Result<Compiled, Vec<ConfigError>> {
    let mut cx = Ctx::new(name, src);
    let Some(root) = super::parse(&mut cx, src) else {
        return Err(cx.into_diagnostics().0);
    };
    let mut top = Table::new(
        root.get_ref(),
        0..0,
        "a shared config fragment (only [[virtual_server]] and [[track]] may appear)",
    );
    let mut refs = Refs::default();
    let virtual_servers = top
        .tables(&mut cx, "virtual_server", "[[virtual_server]]")
        .into_iter()
        .filter_map(|mut t| {
            let span = t.span();
            virtual_server(&mut cx, &mut t, node_name, &mut refs).map(|vs| (vs, span))
        })
        .collect();
    let tracks = top
        .tables(&mut cx, "track", "a [[track]] entry")
        .into_iter()
        .filter_map(|mut t| track_set(&mut cx, &mut t))
        .collect();
    top.finish(&mut cx);
    // Duplicates within the fragment and its own group/script references are checked like the
    // main file's; `track_groups` of instances are not in fragments, so nothing dangles here.
    refs.check(&mut cx);
    let (errors, _) = cx.into_diagnostics();
    if errors.is_empty() {
        Ok(Compiled {
            virtual_servers,
            tracks,
        })
    } else {
        Err(errors)
    }
}

fn track_set(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Option<TrackSet> {
    let instance_span = t.value_span("instance");
    let instance: Option<String> = t.req(cx, "instance");
    let mut targets = Vec::new();
    for (key, make) in [
        ("script", Target::Script as fn(String) -> Target),
        ("group", Target::Group),
        ("interface", Target::Interface),
    ] {
        if let Some((name, span)) = t.opt_spanned::<String>(cx, key) {
            targets.push((make(name), span));
        }
    }
    let weight = t.req_int(cx, "weight", WEIGHT);
    t.finish(cx);
    if targets.len() != 1 {
        cx.error(
            &t.span(),
            "a [[track]] entry names exactly one of `script`, `group` or `interface`",
        );
        return None;
    }
    let (target, target_span) = targets.pop()?;
    Some(TrackSet {
        instance: instance?,
        instance_span,
        target,
        target_span,
        weight: i32::try_from(weight?).ok()?,
    })
}

//! Tracked objects of VRRP instances, and `[[track_script]]`.

use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::Refs;
use crate::model::{Track, TrackFile, TrackInterface, TrackRef, TrackScript};
use crate::walk::{Argv, Ctx, Span, Table, Val};

/// Weights move priority within 1..=254, so a larger magnitude is meaningless.
pub(super) const WEIGHT: std::ops::RangeInclusive<i64> = -254..=254;

/// The `track_*` keys of an instance; script and group names are recorded for resolution.
pub(super) fn track(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>, refs: &mut Refs) -> Track {
    let mut track = Track::default();
    for (name, weight, _) in items(cx, t, "track_interfaces", "name") {
        track.interfaces.push(TrackInterface {
            name,
            weight: weight.unwrap_or(0),
        });
    }
    for (name, weight, span) in items(cx, t, "track_scripts", "name") {
        refs.tracked_scripts.push((name.clone(), span));
        track.scripts.push(TrackRef { name, weight });
    }
    for (path, weight, _) in items(cx, t, "track_files", "path") {
        track.files.push(TrackFile {
            path: PathBuf::from(path),
            weight: weight.unwrap_or(0),
        });
    }
    for (name, weight, span) in items(cx, t, "track_groups", "name") {
        refs.tracked_groups.push((name.clone(), span));
        track.groups.push(TrackRef { name, weight });
    }
    track
}

/// An array whose entries are either `"name"` or `{ <name_key> = "name", weight = N }`.
/// Returns (name, weight, span of the name).
fn items(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    key: &'static str,
    name_key: &'static str,
) -> Vec<(String, Option<i32>, Span)> {
    let mut all = entries(cx, t, key, name_key);
    // Two entries for one object could never be told apart in tracking reports.
    let mut seen = Vec::new();
    all.retain(|(name, _, span)| {
        if seen.contains(name) {
            cx.error(span, format!("\"{name}\" is listed twice in `{key}`"));
            false
        } else {
            seen.push(name.clone());
            true
        }
    });
    all
}

fn entries(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    key: &'static str,
    name_key: &'static str,
) -> Vec<(String, Option<i32>, Span)> {
    let Some(v) = t.raw(key) else {
        return Vec::new();
    };
    let DeValue::Array(entries) = v.get_ref() else {
        cx.error(
            &v.span(),
            format!("`{key}` must be an array, found {}", v.get_ref().type_str()),
        );
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|e| item(cx, e, key, name_key))
        .collect()
}

fn item(
    cx: &mut Ctx<'_>,
    v: &Val<'_>,
    key: &str,
    name_key: &'static str,
) -> Option<(String, Option<i32>, Span)> {
    match v.get_ref() {
        DeValue::String(s) if !s.is_empty() => Some((s.to_string(), None, v.span())),
        DeValue::Table(inner) => {
            let mut e = Table::new(inner, v.span(), format!("a `{key}` entry"));
            let name_span = e.value_span(name_key);
            let name: Option<String> = e.req(cx, name_key);
            let weight = e.opt_int(cx, "weight", WEIGHT).map(|w| w as i32);
            e.finish(cx);
            name.map(|n| (n, weight, name_span))
        }
        _ => {
            cx.error(
                &v.span(),
                format!("each `{key}` entry must be a non-empty string or {{ {name_key} = \"…\", weight = N }}"),
            );
            None
        }
    }
}

/// One `[[track_script]]`.
pub(super) fn track_script(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    refs: &mut Refs,
) -> Option<TrackScript> {
    let name_span = t.value_span("name");
    let name: Option<String> = t.req(cx, "name");
    if let Some(n) = &name {
        refs.scripts.push((n.clone(), name_span));
        t.set_what(format!("[[track_script]] \"{n}\""));
    }
    let command: Option<Argv> = t.req(cx, "command");
    let interval = t.opt_duration(
        cx,
        "interval",
        Duration::from_millis(10)..=Duration::from_hours(24),
    );
    let timeout = t.opt_duration(
        cx,
        "timeout",
        Duration::from_millis(10)..=Duration::from_hours(1),
    );
    let rise = t.opt_int(cx, "rise", 1..=100).unwrap_or(1) as u32;
    let fall = t.opt_int(cx, "fall", 1..=100).unwrap_or(1) as u32;
    let weight = t.opt_int(cx, "weight", WEIGHT).unwrap_or(0) as i32;
    t.finish(cx);
    Some(TrackScript {
        name: name?,
        command: command?.0,
        interval: interval.unwrap_or(Duration::from_secs(2)),
        timeout: timeout.unwrap_or(Duration::from_secs(1)),
        rise,
        fall,
        weight,
    })
}

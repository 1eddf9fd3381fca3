//! Checks that span sections: unique names and ids, references that must resolve, witness rules.
//!
//! Section compilers record what they define and what they reference, with spans, in [`Refs`];
//! [`Refs::check`] then reports every clash and dangling reference.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;

use crate::model::{AddressFamily, VsKey};
use crate::suggest::closest;
use crate::walk::{Ctx, Span};

/// Definitions and references collected while compiling, for the cross-section checks.
#[derive(Default)]
pub(crate) struct Refs {
    /// `[[vrrp_instance]]` name definitions.
    pub(crate) instances: Vec<(String, Span)>,
    /// (interface, family, vrid) of each instance, at the vrid's span.
    pub(crate) vrids: Vec<((String, AddressFamily, u8), Span)>,
    /// The macvlan interface name of each `use_vmac` instance.
    pub(crate) vmacs: Vec<(String, Span)>,
    /// `[[track_script]]` name definitions.
    pub(crate) scripts: Vec<(String, Span)>,
    /// `track_scripts` references.
    pub(crate) tracked_scripts: Vec<(String, Span)>,
    /// Every VIP address, at its entry's span; an address belongs to one instance only.
    pub(crate) vips: Vec<(IpAddr, Span)>,
    /// Health-check group definitions (`group` of a virtual server); several virtual servers
    /// may share one group.
    pub(crate) groups: Vec<(String, Span)>,
    /// `track_groups` references.
    pub(crate) tracked_groups: Vec<(String, Span)>,
    /// `[[vrrp_sync_group]]` name definitions.
    pub(crate) sync_groups: Vec<(String, Span)>,
    /// Sync group members: instance name, where.
    pub(crate) sync_members: Vec<(String, Span)>,
    /// Virtual server keys, at the address/fwmark span.
    pub(crate) vs_keys: Vec<(VsKey, Span)>,
    /// Cluster ids (this node's first, then peers').
    pub(crate) cluster_ids: Vec<(u64, Span)>,
    /// `[cluster] witness = true`, where.
    pub(crate) witness: Option<Span>,
    /// Where `[cluster.fencing] session_timeout` is (a table when the key is absent).
    pub(crate) fencing_session_timeout: Option<Span>,
}

impl Refs {
    pub(crate) fn check(&self, cx: &mut Ctx<'_>) {
        duplicates(cx, &self.instances, |n| {
            format!("duplicate VRRP instance name \"{n}\"")
        });
        duplicates(cx, &self.vrids, |(ifname, family, vrid)| {
            format!(
                "duplicate vrid {vrid} on interface \"{ifname}\" ({family}): another instance already uses it"
            )
        });
        duplicates(cx, &self.vmacs, |n| {
            format!(
                "virtual MAC interface \"{n}\" is already used by another instance; set `vmac_name`"
            )
        });
        duplicates(cx, &self.scripts, |n| {
            format!("duplicate track_script name \"{n}\"")
        });
        duplicates(cx, &self.vips, |ip| {
            format!("VIP {ip} is already managed by another VRRP instance")
        });
        duplicates(cx, &self.sync_groups, |n| {
            format!("duplicate vrrp_sync_group name \"{n}\"")
        });
        duplicates(cx, &self.sync_members, |n| {
            format!(
                "instance \"{n}\" is already in a sync group; an instance belongs to at most one"
            )
        });
        duplicates(cx, &self.vs_keys, |k| {
            format!("duplicate virtual server {k}")
        });
        duplicates(cx, &self.cluster_ids, |id| {
            format!("duplicate cluster id {id}")
        });

        unresolved(cx, &self.tracked_scripts, &self.scripts, "track_script");
        unresolved(
            cx,
            &self.tracked_groups,
            &self.groups,
            "health-check group (a virtual server `group`)",
        );
        unresolved(cx, &self.sync_members, &self.instances, "vrrp_instance");

        if self.witness.is_some() {
            for (name, span) in &self.instances {
                cx.error(
                    span,
                    format!("VRRP instance \"{name}\" on a witness: a witness ([cluster] witness = true) runs coordination only"),
                );
            }
            for (key, span) in &self.vs_keys {
                cx.error(
                    span,
                    format!("virtual server {key} on a witness: a witness ([cluster] witness = true) runs coordination only"),
                );
            }
        }
    }
}

/// Reports every occurrence after the first of the same key, naming the first one's line.
fn duplicates<K: Eq + Hash>(cx: &mut Ctx<'_>, items: &[(K, Span)], msg: impl Fn(&K) -> String) {
    let mut first: HashMap<&K, &Span> = HashMap::new();
    for (key, span) in items {
        if let Some(prev) = first.get(key) {
            let line = cx.line_of(prev);
            cx.error(span, format!("{} (first at line {line})", msg(key)));
        } else {
            first.insert(key, span);
        }
    }
}

/// Reports references to names that are not defined, with the closest defined name.
fn unresolved(cx: &mut Ctx<'_>, refs: &[(String, Span)], defs: &[(String, Span)], what: &str) {
    let names: Vec<&str> = defs.iter().map(|(n, _)| n.as_str()).collect();
    for (name, span) in refs {
        if names.contains(&name.as_str()) {
            continue;
        }
        let hint = closest(name, &names).map(|best| format!("; did you mean \"{best}\"?"));
        cx.error(
            span,
            format!("unknown {what} \"{name}\"{}", hint.unwrap_or_default()),
        );
    }
}

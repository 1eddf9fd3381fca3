//! What a reload changes: per VRRP instance (by name) and per virtual server (by key), so the
//! daemon leaves unchanged ones running with their state.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

use crate::model::{Config, VsKey};

/// How one kind of keyed item changed between two configs. Each list is in the order the items
/// appear in the config they come from (the new one, or the old one for `removed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemDiff<K> {
    /// In the new config only.
    pub added: Vec<K>,
    /// In the old config only.
    pub removed: Vec<K>,
    /// In both, with different settings.
    pub changed: Vec<K>,
    /// In both, identical.
    pub unchanged: Vec<K>,
}

impl<K> ItemDiff<K> {
    /// Whether nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// The differences between two configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDiff {
    /// VRRP instances by name.
    pub vrrp_instances: ItemDiff<String>,
    /// Virtual servers by key.
    pub virtual_servers: ItemDiff<VsKey>,
    /// Track scripts by name (instances tracking a changed script need their tracker restarted).
    pub track_scripts: ItemDiff<String>,
    /// Sync groups by name.
    pub sync_groups: ItemDiff<String>,
    /// `[global]` differs.
    pub global_changed: bool,
    /// `[api]` differs (rebinding the listener).
    pub api_changed: bool,
    /// `[metrics]` differs.
    pub metrics_changed: bool,
    /// `[cluster]` differs (added, removed or changed); applying it needs a restart.
    pub cluster_changed: bool,
}

impl ConfigDiff {
    /// Whether the two configs are identical.
    pub fn is_empty(&self) -> bool {
        self.vrrp_instances.is_empty()
            && self.virtual_servers.is_empty()
            && self.track_scripts.is_empty()
            && self.sync_groups.is_empty()
            && !(self.global_changed
                || self.api_changed
                || self.metrics_changed
                || self.cluster_changed)
    }
}

/// Compares `old` with `new`.
pub fn diff(old: &Config, new: &Config) -> ConfigDiff {
    ConfigDiff {
        vrrp_instances: keyed(&old.vrrp_instances, &new.vrrp_instances, |i| i.name.clone()),
        virtual_servers: keyed(&old.virtual_servers, &new.virtual_servers, |v| *v.key()),
        track_scripts: keyed(&old.track_scripts, &new.track_scripts, |s| s.name.clone()),
        sync_groups: keyed(&old.sync_groups, &new.sync_groups, |g| g.name.clone()),
        global_changed: old.global != new.global,
        api_changed: old.api != new.api,
        metrics_changed: old.metrics != new.metrics,
        cluster_changed: old.cluster != new.cluster,
    }
}

/// Keys are unique within a validated config, so each key maps to exactly one item per side.
fn keyed<T: PartialEq, K: Eq + Hash + Clone>(
    old: &[T],
    new: &[T],
    key: impl Fn(&T) -> K,
) -> ItemDiff<K> {
    let old_by_key: HashMap<K, &T> = old.iter().map(|o| (key(o), o)).collect();
    let new_keys: HashSet<K> = new.iter().map(&key).collect();
    let mut d = ItemDiff {
        added: Vec::new(),
        removed: Vec::new(),
        changed: Vec::new(),
        unchanged: Vec::new(),
    };
    for n in new {
        let k = key(n);
        match old_by_key.get(&k) {
            None => d.added.push(k),
            Some(o) if *o == n => d.unchanged.push(k),
            Some(_) => d.changed.push(k),
        }
    }
    d.removed = old
        .iter()
        .map(&key)
        .filter(|k| !new_keys.contains(k))
        .collect();
    d
}

//! Shared config: fragments (`[[virtual_server]]` tables and `[[track]]` weights) pushed through
//! the coordination tree and applied live on every node, without a restart.
//!
//! # Tree layout
//!
//! ```text
//! /vigil/config                         data: empty; its data version counts every change
//! /vigil/config/<name>                  data: the fragment's current TOML text
//! /vigil/config-history/<name>/v-NNNNNNNNNN
//!                                       data: JSON {"action": "push" | "rollback" | "remove",
//!                                       "from": N (rollback), "node": "<node_name>",
//!                                       "text": "<TOML>"}; ctime = when it committed
//! ```
//!
//! Every change (push, rollback, removal) is one `Multi` that bumps `/vigil/config` with the
//! data version its validation read, sets (or creates, or deletes) `/vigil/config/<name>` with
//! the version it read, and creates the next sequential history node. History and current can
//! therefore never disagree, and a change validated against one set of fragments cannot commit
//! over another: the loser of two concurrent changes gets [`tree::TreeError::Conflict`] and
//! nothing is written. The version operators see is the history sequence (`v-0000000012` is
//! version 12); `rollback N` pushes the text of version N again as a new version, and a removal
//! is a version too, so the history of a fragment is complete.
//!
//! # Validation and apply
//!
//! The node taking a change validates the whole resulting set with
//! [`vigil_conf::merge_fragments`] against its own base config (the file) before writing. Every
//! node (the [`watcher`]) follows the applied entries of its coordination node, re-reads all
//! fragments linearizably after a change (debounced) and hands them to the supervisor as a
//! [`crate::control::Control::Fragments`]. The supervisor merges them into its base config and
//! applies the result by the reload path (LVS by diff, VRRP in place where it can); a set that
//! does not merge on this node (say its base lacks an instance a `[[track]]` names) is logged and
//! changes nothing, and [`SharedConfig::status`] (in `GET /v1/status`) says which set runs.
//!
//! # Layout
//!
//! - `tree`: the znode layout, reads and the change transactions.
//! - `watcher`: the per-node task that follows the tree and feeds the supervisor.
//! - this file: [`SharedConfig`], the base config and the per-node outcome shared by the
//!   supervisor and the API.

pub mod tree;
pub mod watcher;

use std::sync::{Arc, Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use vigil_conf::Config;

pub use self::tree::{Fragment, TreeError};
use crate::reload::unix_now;

/// A fragment by name and version, as shown in the status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FragmentVersion {
    /// The fragment's name.
    pub name: String,
    /// Its version (history sequence).
    pub version: u64,
}

/// This node's shared-config outcome, part of `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedConfigStatus {
    /// The fragments the running config includes.
    pub applied: Vec<FragmentVersion>,
    /// The last set this node refused, with why; cleared once a later set applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<RejectedSet>,
    /// When `applied` or `rejected` last changed, in seconds since the Unix epoch (0: never).
    pub updated_at_unix_secs: u64,
}

/// A set of fragments this node could not apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedSet {
    /// The set.
    pub fragments: Vec<FragmentVersion>,
    /// One `path:line:col: message` (or runtime error) per line.
    pub errors: Vec<String>,
}

/// The base config (the file) and the fragments in force; shared by the supervisor, which
/// updates it, and the API, which validates pushes against the base. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SharedConfig {
    inner: Arc<Mutex<State>>,
}

#[derive(Debug)]
struct State {
    base: Arc<Config>,
    fragments: Vec<Fragment>,
    status: SharedConfigStatus,
}

impl SharedConfig {
    /// Starts with `base` and no fragments.
    pub fn new(base: Arc<Config>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(State {
                base,
                fragments: Vec::new(),
                status: SharedConfigStatus::default(),
            })),
        }
    }

    /// The config file as last loaded, without fragments.
    pub fn base(&self) -> Arc<Config> {
        Arc::clone(&self.lock().base)
    }

    /// The fragments the running config includes.
    pub fn fragments(&self) -> Vec<Fragment> {
        self.lock().fragments.clone()
    }

    /// This node's outcome.
    pub fn status(&self) -> SharedConfigStatus {
        self.lock().status.clone()
    }

    /// A reload swapped in a new base config (merged with the current fragments).
    pub fn set_base(&self, base: Arc<Config>) {
        self.lock().base = base;
    }

    /// `fragments` are now part of the running config.
    pub fn applied(&self, fragments: Vec<Fragment>) {
        let mut state = self.lock();
        state.status = SharedConfigStatus {
            applied: versions(&fragments),
            rejected: None,
            updated_at_unix_secs: unix_now(),
        };
        state.fragments = fragments;
    }

    /// `fragments` could not be applied; the previous set keeps running.
    pub fn rejected(&self, fragments: &[Fragment], errors: Vec<String>) {
        let mut state = self.lock();
        state.status.rejected = Some(RejectedSet {
            fragments: versions(fragments),
            errors,
        });
        state.status.updated_at_unix_secs = unix_now();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn versions(fragments: &[Fragment]) -> Vec<FragmentVersion> {
    fragments
        .iter()
        .map(|f| FragmentVersion {
            name: f.name.clone(),
            version: f.version,
        })
        .collect()
}

/// `base` with `fragments` merged in; errors as `path:line:col: message` lines.
pub fn merge(base: &Config, fragments: &[Fragment]) -> Result<Config, Vec<String>> {
    let paths: Vec<String> = fragments.iter().map(Fragment::path).collect();
    let set: Vec<(&str, &str)> = paths
        .iter()
        .zip(fragments)
        .map(|(p, f)| (p.as_str(), f.text.as_str()))
        .collect();
    validate(base, &set)
}

/// Validates `set` (`(path, text)` pairs) against `base`, as a push must before writing.
pub fn validate(base: &Config, set: &[(&str, &str)]) -> Result<Config, Vec<String>> {
    vigil_conf::merge_fragments(base, set)
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect())
}

#[cfg(test)]
mod tests;

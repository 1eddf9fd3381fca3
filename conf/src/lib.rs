//! vigil's configuration model: TOML in, validated [`Config`] out.
//!
//! - [`load_file`] / [`load_str`] return a [`Config`] or *every* error found, as [`ConfigErrors`],
//!   in file order; each [`ConfigError`] displays as `FILE:LINE:COL: message` and points at the
//!   offending key or value. Syntax errors, type errors and semantic errors (duplicate VRIDs,
//!   dangling references, …) from all sections come back from one run.
//! - [`load_str_with_warnings`] / [`load_file_with_warnings`] also return warnings (e.g. VRRPv2
//!   passwords are sent in clear text).
//! - The [`Config`] is the compiled model: addresses are `IpAddr`s, times are `Duration`s, modes
//!   are enums, defaults are filled in and cross-references resolved. It implements `PartialEq`,
//!   and [`diff`] lists what a reload adds, removes or changes per VRRP instance and virtual server.
//!
//! The annotated reference config is `conf/examples/vigil.toml`; `conf/examples/witness.toml`
//! shows a coordination-only witness.
//!
//! ```
//! let src = "[global]\nlog_format = \"xml\"\n\n[api]\nlisten = \"localhost\"\n";
//! let errors = vigil_conf::load_str(src, "vigil.toml").unwrap_err();
//! assert_eq!(
//!     errors.to_string(),
//!     "vigil.toml:2:14: unknown log format \"xml\"; expected one of: plain, json\n\
//!      vigil.toml:5:10: invalid socket address \"localhost\" (expected IP:PORT, IPv6 in brackets)"
//! );
//! ```
//!
//! # Layout
//! - `model/`: the validated types ([`Config`] and everything in it), with defaults documented.
//! - `walk/`: the span-aware table walker over `toml::de::DeTable` (which keeps every span).
//!   Reading a key declares it known, so unknown keys (with a "did you mean" suggestion) fall out
//!   of the walker's `finish`, and adding a key is one line in the section's compiler.
//! - `compile/`: one file per section (vrrp, vip, track, lvs, check, cluster), `keywords.rs` for enum
//!   spellings, `cross.rs` for checks between sections (duplicates, references, witness rules).
//! - `duration.rs`: `"1m30s"`-style durations. `suggest.rs`: edit distance. `error.rs`: diagnostics.
//! - `diff.rs`: reload diffs.

#![warn(missing_docs)]

mod compile;
mod diff;
mod duration;
mod error;
pub mod import;
mod model;
mod suggest;
mod walk;

pub use compile::default_node_name;
pub use diff::{ConfigDiff, ItemDiff, diff};
pub use duration::{DurationError, format_duration, parse_duration};
pub use error::{ConfigError, ConfigErrors, ConfigWarning};
pub use model::*;

use std::path::Path;

/// Reads and validates a config file.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    load_file_with_warnings(path).map(|(config, _)| config)
}

/// Validates config text; `file` names it in error messages.
pub fn load_str(src: &str, file: &str) -> Result<Config, ConfigErrors> {
    load_str_with_warnings(src, file).map(|(config, _)| config)
}

/// Like [`load_file`], also returning warnings (in file order).
pub fn load_file_with_warnings(path: &Path) -> Result<(Config, Vec<ConfigWarning>), ConfigErrors> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => load_str_with_warnings(&src, &name),
        Err(e) => Err(ConfigErrors(vec![ConfigError {
            file: name,
            line: 1,
            col: 1,
            message: format!("cannot read config: {e}"),
        }])),
    }
}

/// Like [`load_str`], also returning warnings (in file order).
pub fn load_str_with_warnings(
    src: &str,
    file: &str,
) -> Result<(Config, Vec<ConfigWarning>), ConfigErrors> {
    compile::compile(src, file).map_err(ConfigErrors)
}

/// Validates shared config fragments (each a name, used in diagnostics, and its TOML text) and
/// merges them, in order, into `base`: the config this node runs while they are in force.
///
/// A fragment may hold `[[virtual_server]]` tables (the same syntax as the main file; each
/// virtual server may be defined once across the file and all fragments) and `[[track]]`
/// entries that set the weight of a tracked script, check group or interface on a local VRRP
/// instance:
///
/// ```toml
/// [[track]]
/// instance = "VI_1"
/// group = "web"      # or script = "…", or interface = "…"
/// weight = -30
/// ```
///
/// Every error of every fragment is returned, positioned in its fragment; nothing is merged
/// unless all are valid. A witness validates fragments but runs none of them.
pub fn merge_fragments(base: &Config, fragments: &[(&str, &str)]) -> Result<Config, ConfigErrors> {
    compile::merge_fragments(base, fragments)
}

//! Import of keepalived configurations: `keepalived.conf` in, vigil TOML out.
//!
//! [`import_file`] / [`import_str`] read a keepalived config (following `include` directives),
//! convert what vigil can express and return the TOML text together with every statement that
//! could not be converted, as [`Unconverted`] (`file:line: text — reason`). Nothing is dropped
//! silently: a statement is either converted or listed.
//!
//! The TOML returned always passes [`crate::load_str`]: each converted block (instance, script,
//! sync group, virtual server) is validated with vigil's own compiler before it is kept, and a
//! block vigil refuses is listed as unconverted with vigil's reason instead of being emitted.
//!
//! Behaviour is kept where keepalived's defaults differ from vigil's: keepalived defaults to
//! VRRPv2, a 60s `delay_loop`, a 5s `connect_timeout`, one retry per check round, and SSL_GET
//! without certificate verification, so the importer writes those values explicitly.
//!
//! ```
//! let src = "vrrp_instance VI_1 {\n  state MASTER\n  interface eth0\n  virtual_router_id 51\n  \
//!            virtual_ipaddress {\n    192.0.2.10/24\n  }\n}\n";
//! let import = vigil_conf::import::import_str(src, "keepalived.conf").unwrap();
//! let config = vigil_conf::load_str(&import.toml, "vigil.toml").unwrap();
//! assert_eq!(config.vrrp_instances[0].vrid, 51);
//! assert_eq!(
//!     import.unconverted[0].to_string(),
//!     "keepalived.conf:2: state MASTER — vigil has no configured initial state: it elects by priority"
//! );
//! ```
//!
//! # Layout
//! - `lex.rs`: tokens with `file:line`, comments, quotes, and `include` (globs, cycles).
//! - `tree.rs`: tokens → statements with optional `{ }` blocks.
//! - `toml_out.rs`: the small TOML writer (tables, arrays of tables, escaping).
//! - `cx.rs`: conversion context: the unconverted list and typed argument readers.
//! - `convert.rs`: top-level dispatch and `global_defs`.
//! - `validate.rs`: keeps the converted blocks vigil accepts, lists the others.
//! - `vrrp.rs`, `vips.rs`: `vrrp_instance` and its list blocks, `vrrp_track_file`.
//! - `scripts.rs`: `vrrp_script` and `vrrp_sync_group`.
//! - `lvs.rs`, `checks.rs`: `virtual_server`, `real_server` and their checkers.

mod checks;
mod convert;
mod cx;
mod lex;
mod lvs;
mod scripts;
mod toml_out;
mod tree;
mod validate;
mod vips;
mod vrrp;

use std::fmt;
use std::path::{Path, PathBuf};

/// The result of an import: vigil TOML plus everything that could not be converted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// vigil TOML text; always accepted by [`crate::load_str`].
    pub toml: String,
    /// Statements that were not (or not completely) converted, in source order.
    pub unconverted: Vec<Unconverted>,
}

/// One keepalived statement the importer could not convert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unconverted {
    /// The file it is in (an included file where it came from one).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The source line, trimmed.
    pub text: String,
    /// Why it was not converted.
    pub reason: String,
}

impl fmt::Display for Unconverted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: {} — {}",
            self.file, self.line, self.text, self.reason
        )
    }
}

/// Why a keepalived config could not be imported at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file (the main one or an included one) could not be read.
    #[error("{}: cannot read: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text cannot be split into statements (braces, quotes, nesting, include cycles).
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
}

/// Imports the keepalived config at `path`, following its includes.
pub fn import_file(path: &Path) -> Result<Import, ImportError> {
    let src = std::fs::read_to_string(path).map_err(|source| ImportError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    import_str(&src, &path.display().to_string())
}

/// Imports keepalived config text; `file_name` names it in messages, and relative `include`
/// patterns are resolved against its directory.
pub fn import_str(src: &str, file_name: &str) -> Result<Import, ImportError> {
    let (sources, tokens, mut unconverted) = lex::lex(src, file_name)?;
    let stmts = tree::parse(&sources, &tokens)?;
    let (toml, mut rest) = convert::convert(&sources, &stmts, file_name);
    unconverted.append(&mut rest);
    // Source order: by file as first seen, then line.
    unconverted.sort_by_key(|u| {
        let file = sources.index_of(&u.file);
        (file, u.line)
    });
    Ok(Import { toml, unconverted })
}

//! The span-aware table walker: reads typed values out of a parsed TOML tree, collecting every
//! error instead of stopping at the first.
//!
//! Each section's compiler asks a [`Table`] for its keys (`tbl.get(cx, "priority", 100)`). Asking
//! for a key also declares it known, so [`Table::finish`] can report every key nobody asked for,
//! with the closest known key as a suggestion. Adding a config key is therefore one line.
//!
//! - `mod.rs`: [`Ctx`], which collects positioned errors and warnings.
//! - `table.rs`: [`Table`], typed access to one TOML table.
//! - `value.rs`: [`FromToml`] for the scalar types, arrays, [`Keyword`] enums and [`Argv`].

mod table;
mod value;

pub(crate) use table::Table;
pub(crate) use value::{Argv, FromToml, Keyword};

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use crate::error::{ConfigError, LineIndex};

/// Byte range in the source.
pub(crate) type Span = Range<usize>;
/// A parsed TOML value with its span.
pub(crate) type Val<'i> = Spanned<DeValue<'i>>;

/// Collects diagnostics for one source file.
pub(crate) struct Ctx<'s> {
    file: &'s str,
    index: LineIndex<'s>,
    errors: Vec<(usize, String)>,
    warnings: Vec<(usize, String)>,
}

impl<'s> Ctx<'s> {
    pub(crate) fn new(file: &'s str, src: &'s str) -> Self {
        Self {
            file,
            index: LineIndex::new(src),
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error at the start of `at`.
    pub(crate) fn error(&mut self, at: &Span, message: impl Into<String>) {
        self.errors.push((at.start, one_line(message.into())));
    }

    /// Records a warning at the start of `at`.
    pub(crate) fn warn(&mut self, at: &Span, message: impl Into<String>) {
        self.warnings.push((at.start, one_line(message.into())));
    }

    /// 1-based line of the start of `at`, for "first defined at line N" hints.
    pub(crate) fn line_of(&self, at: &Span) -> usize {
        self.index.position(at.start).0
    }

    pub(crate) fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// Errors and warnings, each sorted into file order (stable, so errors at one position keep
    /// the order they were found in).
    pub(crate) fn into_diagnostics(self) -> (Vec<ConfigError>, Vec<ConfigError>) {
        let Self {
            file,
            index,
            errors,
            warnings,
        } = self;
        let convert = |mut list: Vec<(usize, String)>| {
            list.sort_by_key(|(offset, _)| *offset);
            list.into_iter()
                .map(|(offset, message)| {
                    let (line, col) = index.position(offset);
                    ConfigError {
                        file: file.to_owned(),
                        line,
                        col,
                        message,
                    }
                })
                .collect::<Vec<_>>()
        };
        (convert(errors), convert(warnings))
    }
}

/// Tools read diagnostics one per line (`vigild check-config`, editors), so messages from
/// libraries that span lines (regex, the TOML parser) are folded into one.
fn one_line(message: String) -> String {
    if message.contains('\n') {
        message.split_whitespace().collect::<Vec<_>>().join(" ")
    } else {
        message
    }
}

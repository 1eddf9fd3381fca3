//! [`Table`]: typed, span-aware access to one TOML table, with unknown-key detection.

use std::ops::RangeInclusive;
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use super::value::type_error;
use super::{Ctx, FromToml, Span, Val};
use crate::duration::format_duration;
use crate::suggest::closest;

/// A TOML table being read: remembers which keys were asked for.
pub(crate) struct Table<'t, 'i> {
    entries: &'t DeTable<'i>,
    span: Span,
    /// How the table is named in messages, e.g. `[[vrrp_instance]] "vi_web"`.
    what: String,
    known: Vec<&'static str>,
}

impl<'t, 'i> Table<'t, 'i> {
    pub(crate) fn new(table: &'t DeTable<'i>, span: Span, what: impl Into<String>) -> Self {
        Self {
            entries: table,
            span,
            what: what.into(),
            known: Vec::new(),
        }
    }

    /// Reads `v` as a table, or reports a type error.
    pub(crate) fn from_value(
        cx: &mut Ctx<'_>,
        v: &'t Val<'i>,
        what: impl Into<String>,
    ) -> Option<Self> {
        match v.get_ref() {
            DeValue::Table(t) => Some(Self::new(t, v.span(), what)),
            other => {
                cx.error(
                    &v.span(),
                    format!("expected a table, found {}", other.type_str()),
                );
                None
            }
        }
    }

    /// The table's own span (its `[header]`, or the inline table).
    pub(crate) fn span(&self) -> Span {
        self.span.clone()
    }

    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// Renames the table in later messages, e.g. once its `name` key is known.
    pub(crate) fn set_what(&mut self, what: impl Into<String>) {
        self.what = what.into();
    }

    /// The raw value of `key`, declaring the key known.
    pub(crate) fn raw(&mut self, key: &'static str) -> Option<&'t Val<'i>> {
        if !self.known.contains(&key) {
            self.known.push(key);
        }
        self.entries.get_key_value(key).map(|(_, v)| v)
    }

    /// Span of the key itself, for errors about the key rather than its value.
    pub(crate) fn key_span(&self, key: &str) -> Option<Span> {
        self.entries.get_key_value(key).map(|(k, _)| k.span())
    }

    /// Span of the value of `key`, or of the table when the key is absent.
    pub(crate) fn value_span(&self, key: &str) -> Span {
        self.entries
            .get_key_value(key)
            .map_or_else(|| self.span(), |(_, v)| v.span())
    }

    /// An optional key.
    pub(crate) fn opt<T: FromToml>(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<T> {
        self.raw(key).and_then(|v| T::from_toml(cx, v))
    }

    /// An optional key, with the span of its value.
    pub(crate) fn opt_spanned<T: FromToml>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<(T, Span)> {
        let v = self.raw(key)?;
        T::from_toml(cx, v).map(|t| (t, v.span()))
    }

    /// An optional array, each element with its own span (for per-element errors).
    pub(crate) fn opt_items<T: FromToml>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
    ) -> Option<Vec<(T, Span)>> {
        let v = self.raw(key)?;
        let DeValue::Array(items) = v.get_ref() else {
            type_error(cx, v, "an array");
            return None;
        };
        let parsed: Vec<Option<(T, Span)>> = items
            .iter()
            .map(|item| T::from_toml(cx, item).map(|x| (x, item.span())))
            .collect();
        parsed.into_iter().collect()
    }

    /// A key with a default; a present but invalid value reports an error and yields the default
    /// so that checks depending on it can still run.
    pub(crate) fn get<T: FromToml>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        default: T,
    ) -> T {
        self.opt(cx, key).unwrap_or(default)
    }

    /// A required key: its absence is reported at the table header.
    pub(crate) fn req<T: FromToml>(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<T> {
        if self.raw(key).is_none() {
            cx.error(
                &self.span,
                format!("missing required key `{key}` in {}", self.what),
            );
            return None;
        }
        self.opt(cx, key)
    }

    /// An optional integer that must lie in `range`.
    pub(crate) fn opt_int(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        let v = self.raw(key)?;
        let n = i64::from_toml(cx, v)?;
        if range.contains(&n) {
            Some(n)
        } else {
            cx.error(
                &v.span(),
                format!(
                    "`{key}` = {n} is out of range {}..={}",
                    range.start(),
                    range.end()
                ),
            );
            None
        }
    }

    /// A required integer that must lie in `range`.
    pub(crate) fn req_int(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        range: RangeInclusive<i64>,
    ) -> Option<i64> {
        if self.raw(key).is_none() {
            cx.error(
                &self.span,
                format!("missing required key `{key}` in {}", self.what),
            );
            return None;
        }
        self.opt_int(cx, key, range)
    }

    /// An optional duration that must lie in `range`.
    pub(crate) fn opt_duration(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        range: RangeInclusive<Duration>,
    ) -> Option<Duration> {
        let v = self.raw(key)?;
        let d = Duration::from_toml(cx, v)?;
        if range.contains(&d) {
            Some(d)
        } else {
            cx.error(
                &v.span(),
                format!(
                    "`{key}` = \"{}\" is out of range {}..={}",
                    format_duration(d),
                    format_duration(*range.start()),
                    format_duration(*range.end())
                ),
            );
            None
        }
    }

    /// The elements of an array-of-tables (or array of inline tables) key.
    pub(crate) fn tables(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        what: &str,
    ) -> Vec<Table<'t, 'i>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let DeValue::Array(items) = v.get_ref() else {
            cx.error(
                &v.span(),
                format!(
                    "`{key}` must be an array of tables ([[{key}]]), found {}",
                    v.get_ref().type_str()
                ),
            );
            return Vec::new();
        };
        items
            .iter()
            .filter_map(|item| Table::from_value(cx, item, what))
            .collect()
    }

    /// A sub-table key (`[section]`), if present.
    pub(crate) fn table(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        what: &str,
    ) -> Option<Table<'t, 'i>> {
        let v = self.raw(key)?;
        Table::from_value(cx, v, what)
    }

    /// Reports every key that was never asked for, suggesting the closest known one.
    pub(crate) fn finish(&self, cx: &mut Ctx<'_>) {
        for (key, _) in self.entries {
            let name: &str = key.get_ref();
            if self.known.contains(&name) {
                continue;
            }
            let hint = closest(name, &self.known).map(|best| format!("; did you mean `{best}`?"));
            cx.error(
                &key.span(),
                format!(
                    "unknown key `{name}` in {}{}",
                    self.what,
                    hint.unwrap_or_default()
                ),
            );
        }
    }
}

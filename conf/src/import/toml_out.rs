//! A small TOML writer: tables and arrays of tables in the order given, keys in insertion order,
//! strings escaped per TOML 1.0 basic strings.

use std::fmt::Write as _;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Str(String),
    Int(i64),
    Bool(bool),
    Array(Vec<Value>),
    /// An inline table.
    Inline(Vec<(&'static str, Value)>),
}

impl Value {
    pub(super) fn str(s: impl Into<String>) -> Self {
        Self::Str(s.into())
    }

    pub(super) fn strs<S: AsRef<str>>(items: &[S]) -> Self {
        Self::Array(items.iter().map(|s| Self::str(s.as_ref())).collect())
    }

    /// A program: a bare string when it has no arguments, else an argv array.
    pub(super) fn argv(argv: &[String]) -> Self {
        match argv {
            [program] => Self::str(program.as_str()),
            _ => Self::strs(argv),
        }
    }
}

/// One `[header]` or `[[header]]` with its keys, and comments written above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Table {
    /// With brackets, e.g. `[[vrrp_instance]]`.
    pub(super) header: &'static str,
    pub(super) comments: Vec<String>,
    pub(super) entries: Vec<(&'static str, Value)>,
}

impl Table {
    pub(super) fn new(header: &'static str) -> Self {
        Self {
            header,
            comments: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Sets `key`, replacing an earlier value (in keepalived a repeated keyword wins).
    pub(super) fn set(&mut self, key: &'static str, value: Value) {
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(entry) => entry.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Sorts the keys into `order`; keys not in it keep their relative order at the end.
    pub(super) fn order(&mut self, order: &[&str]) {
        self.entries
            .sort_by_key(|(k, _)| order.iter().position(|o| o == k).unwrap_or(order.len()));
    }

    pub(super) fn note(&mut self, comment: impl Into<String>) {
        self.comments.push(comment.into());
    }
}

/// Renders the tables after a comment `header` (each of its lines prefixed with `# `).
pub(super) fn render(header: &str, tables: &[Table]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        let _ = writeln!(out, "# {line}");
    }
    for t in tables {
        out.push('\n');
        for c in &t.comments {
            for line in c.lines() {
                let _ = writeln!(out, "# {line}");
            }
        }
        let _ = writeln!(out, "{}", t.header);
        for (k, v) in &t.entries {
            let _ = writeln!(out, "{k} = {}", value(v));
        }
    }
    out
}

fn value(v: &Value) -> String {
    match v {
        Value::Str(s) => quote(s),
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(value).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Inline(entries) => {
            let inner: Vec<String> = entries
                .iter()
                .map(|(k, v)| format!("{k} = {}", value(v)))
                .collect();
            format!("{{ {} }}", inner.join(", "))
        }
    }
}

/// A TOML basic string.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_round_trip_through_the_toml_parser() {
        let tricky = "a \"b\" \\ c\td\u{7f}\u{1}é";
        let mut t = Table::new("[global]");
        t.set("script_user", Value::str(tricky));
        let text = render("imported", &[t]);
        let parsed: toml::Table = text.parse().expect("valid TOML");
        assert_eq!(parsed["global"]["script_user"].as_str(), Some(tricky));
    }
}

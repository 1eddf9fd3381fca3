//! Reading single TOML values as typed Rust values.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use toml::de::DeValue;

use super::{Ctx, Val};
use crate::duration::parse_duration;
use crate::suggest::closest;

/// A type that can be read from one TOML value, reporting its own errors.
pub(crate) trait FromToml: Sized {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self>;
}

pub(super) fn type_error(cx: &mut Ctx<'_>, v: &Val<'_>, expected: &str) {
    cx.error(
        &v.span(),
        format!("expected {expected}, found {}", v.get_ref().type_str()),
    );
}

/// Reads a string value, reporting a type error otherwise.
fn as_str<'v>(cx: &mut Ctx<'_>, v: &'v Val<'_>, expected: &str) -> Option<&'v str> {
    if let DeValue::String(s) = v.get_ref() {
        Some(s.as_ref())
    } else {
        type_error(cx, v, expected);
        None
    }
}

impl FromToml for String {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        as_str(cx, v, "a string").map(str::to_owned)
    }
}

impl FromToml for bool {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        if let DeValue::Boolean(b) = v.get_ref() {
            Some(*b)
        } else {
            type_error(cx, v, "a boolean (true or false)");
            None
        }
    }
}

impl FromToml for i64 {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        if let DeValue::Integer(i) = v.get_ref() {
            let parsed = i64::from_str_radix(i.as_str(), i.radix()).ok();
            if parsed.is_none() {
                cx.error(&v.span(), "integer does not fit in 64 bits");
            }
            parsed
        } else {
            type_error(cx, v, "an integer");
            None
        }
    }
}

impl FromToml for PathBuf {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = as_str(cx, v, "a path string")?;
        if s.is_empty() {
            cx.error(&v.span(), "path must not be empty");
            return None;
        }
        Some(PathBuf::from(s))
    }
}

impl FromToml for Duration {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = as_str(cx, v, "a duration string such as \"1s\" or \"100ms\"")?;
        parsed(cx, v, parse_duration(s), |e| {
            format!("invalid duration \"{s}\": {e}")
        })
    }
}

impl FromToml for IpAddr {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = as_str(cx, v, "an IP address string")?;
        parsed(cx, v, s.parse(), |_| format!("invalid IP address \"{s}\""))
    }
}

impl FromToml for SocketAddr {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = as_str(
            cx,
            v,
            "an address string such as \"127.0.0.1:7400\" or \"[::1]:7400\"",
        )?;
        parsed(cx, v, s.parse(), |_| {
            format!("invalid socket address \"{s}\" (expected IP:PORT, IPv6 in brackets)")
        })
    }
}

/// The value of `result`, or its error reported at `v` as `message(err)`.
fn parsed<T, E>(
    cx: &mut Ctx<'_>,
    v: &Val<'_>,
    result: Result<T, E>,
    message: impl FnOnce(E) -> String,
) -> Option<T> {
    match result {
        Ok(t) => Some(t),
        Err(e) => {
            cx.error(&v.span(), message(e));
            None
        }
    }
}

impl<T: FromToml> FromToml for Vec<T> {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let DeValue::Array(items) = v.get_ref() else {
            type_error(cx, v, "an array");
            return None;
        };
        // Every element is checked even after a bad one, so all of them are reported.
        let parsed: Vec<Option<T>> = items.iter().map(|item| T::from_toml(cx, item)).collect();
        parsed.into_iter().collect()
    }
}

/// An enum spelled as one of a fixed set of strings in the config.
pub(crate) trait Keyword: Sized + Copy + 'static {
    /// What the value is, for messages ("scheduler").
    const WHAT: &'static str;
    /// Every accepted spelling and its value.
    const ALL: &'static [(&'static str, Self)];
}

impl<T: Keyword> FromToml for T {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let s = as_str(cx, v, &format!("a {} string", T::WHAT))?;
        if let Some((_, k)) = T::ALL.iter().find(|(name, _)| *name == s) {
            return Some(*k);
        }
        let names: Vec<&str> = T::ALL.iter().map(|(n, _)| *n).collect();
        let hint = closest(s, &names).map(|best| format!(" (did you mean \"{best}\"?)"));
        let msg = format!(
            "unknown {} \"{s}\"; expected one of: {}{}",
            T::WHAT,
            names.join(", "),
            hint.unwrap_or_default()
        );
        cx.error(&v.span(), msg);
        None
    }
}

/// A command line: either one string (the program, no arguments) or an array of strings (argv).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Argv(pub(crate) Vec<String>);

impl FromToml for Argv {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        let argv = match v.get_ref() {
            DeValue::String(s) => vec![s.to_string()],
            DeValue::Array(_) => Vec::<String>::from_toml(cx, v)?,
            _ => {
                type_error(cx, v, "a program path or an argv array of strings");
                return None;
            }
        };
        if argv.first().is_none_or(String::is_empty) {
            cx.error(&v.span(), "command must name a program");
            return None;
        }
        Some(Self(argv))
    }
}

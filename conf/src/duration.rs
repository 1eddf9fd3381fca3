//! Human-readable durations: `"100ms"`, `"1s"`, `"1m30s"`, `"1.5s"`.
//!
//! Grammar: one or more `<number><unit>` parts, units in strictly decreasing size, no spaces.
//! Units: `d`, `h`, `m`, `s`, `ms`, `us`, `ns`. A number may have a decimal fraction, which is
//! exact down to the nanosecond. A bare number is refused: `interval = "5"` is ambiguous.

use std::fmt::Write as _;
use std::time::Duration;

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string is empty.
    #[error("empty duration")]
    Empty,
    /// A part has digits but no unit.
    #[error("missing unit after `{0}` (use e.g. \"{0}s\" or \"{0}ms\")")]
    MissingUnit(String),
    /// A unit was expected but something else was found.
    #[error("unknown unit `{0}` (expected one of d, h, m, s, ms, us, ns)")]
    UnknownUnit(String),
    /// A unit was expected to follow a number.
    #[error("expected a number at `{0}`")]
    ExpectedNumber(String),
    /// Units must go from larger to smaller, each at most once.
    #[error("unit `{0}` is out of order or repeated (write larger units first, e.g. \"1m30s\")")]
    UnitOrder(String),
    /// The value does not fit a [`Duration`] or has a fraction finer than 1 ns.
    #[error("duration out of range or finer than 1ns")]
    Overflow,
}

/// Units from largest to smallest, with their length in nanoseconds.
const UNITS: [(&str, u128); 7] = [
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Parses a human-readable duration.
pub fn parse_duration(text: &str) -> Result<Duration, DurationError> {
    if text.is_empty() {
        return Err(DurationError::Empty);
    }
    let mut rest = text;
    let mut total: u128 = 0;
    // Index into UNITS of the smallest unit used so far; the next unit must be smaller.
    let mut last_unit: Option<usize> = None;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..num_len];
        if number.is_empty() || number.starts_with('.') || number.ends_with('.') {
            return Err(DurationError::ExpectedNumber(rest.to_owned()));
        }
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        if unit.is_empty() {
            return Err(DurationError::MissingUnit(number.to_owned()));
        }
        let Some(unit_idx) = UNITS.iter().position(|(u, _)| *u == unit) else {
            return Err(DurationError::UnknownUnit(unit.to_owned()));
        };
        if last_unit.is_some_and(|last| unit_idx <= last) {
            return Err(DurationError::UnitOrder(unit.to_owned()));
        }
        last_unit = Some(unit_idx);
        total = total
            .checked_add(part_nanos(number, UNITS[unit_idx].1)?)
            .ok_or(DurationError::Overflow)?;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| DurationError::Overflow)?;
    Ok(Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// `number × unit` in nanoseconds, exact; a fraction that does not land on a whole nanosecond
/// is refused rather than rounded.
fn part_nanos(number: &str, unit_nanos: u128) -> Result<u128, DurationError> {
    let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
    if frac.contains('.') {
        return Err(DurationError::ExpectedNumber(number.to_owned()));
    }
    let whole: u128 = whole.parse().map_err(|_| DurationError::Overflow)?;
    let mut nanos = whole
        .checked_mul(unit_nanos)
        .ok_or(DurationError::Overflow)?;
    if !frac.is_empty() {
        if frac.len() > 18 {
            return Err(DurationError::Overflow);
        }
        let scale = 10u128.pow(frac.len() as u32);
        let frac: u128 = frac.parse().map_err(|_| DurationError::Overflow)?;
        let scaled = frac
            .checked_mul(unit_nanos)
            .ok_or(DurationError::Overflow)?;
        if scaled % scale != 0 {
            return Err(DurationError::Overflow);
        }
        nanos = nanos
            .checked_add(scaled / scale)
            .ok_or(DurationError::Overflow)?;
    }
    Ok(nanos)
}

/// Formats a duration in the canonical form [`parse_duration`] reads back, e.g. `"1m30s"`,
/// `"1s500ms"`, `"0s"`.
pub fn format_duration(d: Duration) -> String {
    let mut nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    let mut out = String::new();
    for (unit, len) in UNITS {
        let n = nanos / len;
        if n > 0 {
            // Writing to a String cannot fail.
            let _ = write!(out, "{n}{unit}");
            nanos %= len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_compound_and_fractional() {
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(
            parse_duration("2h1ms"),
            Ok(Duration::from_millis(7_200_001))
        );
    }

    #[test]
    fn refuses_malformed() {
        assert_eq!(
            parse_duration("5"),
            Err(DurationError::MissingUnit("5".into()))
        );
        assert_eq!(
            parse_duration("1s1m"),
            Err(DurationError::UnitOrder("m".into()))
        );
        assert_eq!(
            parse_duration("1x"),
            Err(DurationError::UnknownUnit("x".into()))
        );
        assert_eq!(
            parse_duration("s"),
            Err(DurationError::ExpectedNumber("s".into()))
        );
        assert_eq!(
            parse_duration("1.2.3s"),
            Err(DurationError::ExpectedNumber("1.2.3".into()))
        );
        assert_eq!(parse_duration("0.5ns"), Err(DurationError::Overflow));
    }
}

//! Durations: accepted spellings, refusals, and format/parse round trips.

use std::time::Duration;

use proptest::prelude::*;
use vigil_conf::{DurationError, format_duration, parse_duration};

#[test]
fn accepted_spellings() {
    let cases = [
        ("100ms", Duration::from_millis(100)),
        ("1s", Duration::from_secs(1)),
        ("1m30s", Duration::from_secs(90)),
        ("1.5s", Duration::from_millis(1500)),
        ("40.95s", Duration::from_millis(40_950)),
        ("1d2h", Duration::from_hours(26)),
        ("250us", Duration::from_micros(250)),
        ("7ns", Duration::from_nanos(7)),
        ("0s", Duration::ZERO),
    ];
    for (text, want) in cases {
        assert_eq!(parse_duration(text), Ok(want), "{text}");
    }
}

#[test]
fn refused_spellings() {
    for bad in [
        "",
        "1",
        "1 s",
        "s",
        "1sec",
        "-1s",
        "1s2s",
        "1ms1s",
        ".5s",
        "5.s",
        "99999999999999999999d",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad:?} should be refused");
    }
    assert_eq!(parse_duration(""), Err(DurationError::Empty));
}

#[test]
fn canonical_format() {
    assert_eq!(format_duration(Duration::from_secs(90)), "1m30s");
    assert_eq!(format_duration(Duration::from_millis(1500)), "1s500ms");
    assert_eq!(format_duration(Duration::ZERO), "0s");
    assert_eq!(
        format_duration(Duration::from_nanos(3_600_000_000_001)),
        "1h1ns"
    );
}

proptest! {
    #[test]
    fn format_then_parse_round_trips(secs in 0u64..=10_000_000_000, nanos in 0u32..1_000_000_000) {
        let d = Duration::new(secs, nanos);
        prop_assert_eq!(parse_duration(&format_duration(d)), Ok(d));
    }

    #[test]
    fn parse_never_panics(s in "[0-9.a-z ]{0,12}") {
        let _ = parse_duration(&s);
    }
}

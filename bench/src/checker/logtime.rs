//! The UTC timestamp at the start of a vigild log line (`tracing`'s plain format:
//! `2026-11-22T03:20:43.123456Z  WARN …`), as a [`SystemTime`] comparable with the benchmark's
//! own clock readings.

use std::time::{Duration, SystemTime};

/// Days from 1970-01-01 to the given civil date (proleptic Gregorian; Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
pub fn parse(stamp: &str) -> Option<SystemTime> {
    let stamp = stamp.strip_suffix('Z')?;
    let (date, time) = stamp.split_once('T')?;
    let mut d = date.splitn(3, '-');
    let year: i64 = d.next()?.parse().ok()?;
    let month: u32 = d.next()?.parse().ok()?;
    let day: u32 = d.next()?.parse().ok()?;
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':');
    let hour: u64 = t.next()?.parse().ok()?;
    let minute: u64 = t.next()?.parse().ok()?;
    let second: u64 = t.next()?.parse().ok()?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<9}").parse().ok()?
    };
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// The timestamp a log line starts with, if it starts with one.
pub fn parse_line(line: &str) -> Option<SystemTime> {
    parse(line.split_whitespace().next()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unix(secs: u64, nanos: u32) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn known_instants() {
        assert_eq!(parse("1970-01-01T00:00:00Z"), Some(unix(0, 0)));
        // 2000-03-01 follows a leap day in a century leap year.
        assert_eq!(parse("2000-03-01T00:00:00Z"), Some(unix(951_868_800, 0)));
        assert_eq!(
            parse("2026-11-22T03:20:43.123456Z"),
            Some(unix(1_795_317_643, 123_456_000))
        );
    }

    #[test]
    fn a_log_line_is_read_from_its_first_word() {
        let line = "2026-11-22T03:20:43.5Z  WARN vigil_daemon::lb::runtime: real server down \
                    real_server=127.1.0.1:20000 state=down";
        assert_eq!(parse_line(line), Some(unix(1_795_317_643, 500_000_000)));
        assert_eq!(parse_line("=== vigil-lab: started"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn malformed_stamps_are_none() {
        for bad in [
            "2026-11-22T03:20:43",
            "2026-13-22T03:20:43Z",
            "2026-11-22T24:00:00Z",
            "2026-11-22T03:20:43.12a4Z",
            "2026-11-22T03:20:43.1234567890Z",
            "1969-12-31T23:59:59Z",
            "yesterday",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}

//! The side-by-side table of a benchmark.

use std::fmt::Write as _;
use std::time::Duration;

use super::series::{BACKUP_PRIORITY, Fault};
use super::stats::Summary;

/// One fault and interval's results for both implementations.
#[derive(Debug, Clone, Copy)]
pub struct Row {
    /// What happened to the master.
    pub fault: Fault,
    /// Advertisement interval.
    pub interval: Duration,
    /// vigild's outages.
    pub vigild: Summary,
    /// keepalived's outages.
    pub keepalived: Summary,
}

/// The RFC 9568 bound on a failover without a priority-0 advert (crash or link loss): Master_Down_Interval (3 × interval + skew, skew =
/// (256 − backup priority) × interval / 256) plus 10 ms for detection and takeover work.
pub fn target(interval: Duration) -> Duration {
    let skew = interval * (256 - u32::from(BACKUP_PRIORITY)) / 256;
    interval * 3 + skew + Duration::from_millis(10)
}

fn ms(d: Duration) -> String {
    format!("{:.0}", d.as_secs_f64() * 1000.0)
}

fn spread(s: &Summary) -> String {
    format!("{}/{}/{}", ms(s.min), ms(s.median), ms(s.max))
}

fn interval_label(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Renders `rows` as a Markdown table (milliseconds; ratio = vigild median / keepalived median).
pub fn render(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | advert | target ms | vigild min/med/max ms | keepalived min/med/max ms | \
         median vigild/keepalived |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let ka = r.keepalived.median.as_secs_f64();
        let ratio = if ka > 0.0 {
            format!("{:.2}", r.vigild.median.as_secs_f64() / ka)
        } else {
            "-".to_owned()
        };
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | ≤ {} | {} | {} | {ratio} |",
            r.fault,
            interval_label(r.interval),
            ms(target(r.interval)),
            spread(&r.vigild),
            spread(&r.keepalived),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(min: u64, median: u64, max: u64) -> Summary {
        Summary {
            runs: 3,
            min: Duration::from_millis(min),
            median: Duration::from_millis(median),
            max: Duration::from_millis(max),
        }
    }

    #[test]
    fn target_is_master_down_interval_plus_ten_ms() {
        // 3 × 1000 + 156 × 1000 / 256 (= 609.375) + 10.
        assert_eq!(
            target(Duration::from_secs(1)),
            Duration::from_micros(3_619_375)
        );
        assert_eq!(
            target(Duration::from_millis(10)),
            Duration::from_nanos(30_000_000 + 6_093_750 + 10_000_000)
        );
    }

    #[test]
    fn rows_show_spreads_and_the_median_ratio() {
        let table = render(&[Row {
            fault: Fault::Kill,
            interval: Duration::from_millis(100),
            vigild: summary(300, 360, 400),
            keepalived: summary(320, 342, 380),
        }]);
        let row = table.lines().nth(2).expect("a data row");
        assert_eq!(
            row,
            "| SIGKILL | 100 ms | ≤ 371 | 300/360/400 | 320/342/380 | 1.05 |"
        );
        let one_s = render(&[Row {
            fault: Fault::LinkDown,
            interval: Duration::from_secs(1),
            vigild: summary(1, 1, 1),
            keepalived: summary(0, 0, 0),
        }]);
        assert!(
            one_s.contains("| link down | 1 s | ≤ 3619 | 1/1/1 | 0/0/0 | - |"),
            "{one_s}"
        );
    }
}

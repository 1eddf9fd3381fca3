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

/// One fault's results for the fencing comparison: vigild with quorum fencing, vigild without,
/// keepalived, all at the same VRRP settings.
#[derive(Debug, Clone, Copy)]
pub struct FencingRow {
    /// What happened to the master.
    pub fault: Fault,
    /// Advertisement interval.
    pub interval: Duration,
    /// The fenced cluster's session timeout.
    pub session_timeout: Duration,
    /// vigild, `fencing = "quorum"`; after the first run the master is mostly a Raft follower.
    pub fenced: Summary,
    /// The same with the master always the Raft leader, if measured.
    pub fenced_leader: Option<Summary>,
    /// vigild, `fencing = "off"`.
    pub unfenced: Summary,
    /// keepalived.
    pub keepalived: Summary,
}

fn ratio(a: Duration, b: Duration) -> String {
    let b = b.as_secs_f64();
    if b > 0.0 {
        format!("{:.2}", a.as_secs_f64() / b)
    } else {
        "-".to_owned()
    }
}

/// Renders the fencing comparison as a Markdown table (milliseconds). The target is a
/// fenced median within 50 ms of the unfenced one; the last column says by how much it is off.
pub fn render_fencing(rows: &[FencingRow]) -> String {
    let mut out = String::from(
        "| fault | advert | session | fenced min/med/max ms | fenced, master leads Raft \
         min/med/max ms | unfenced min/med/max ms | keepalived min/med/max ms | fenced/unfenced \
         | fenced/keepalived | fenced − unfenced median ms (target ≤ 50) |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let over = r.fenced.median.as_secs_f64() - r.unfenced.median.as_secs_f64();
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {:+.0} ({}) |",
            r.fault,
            interval_label(r.interval),
            interval_label(r.session_timeout),
            spread(&r.fenced),
            r.fenced_leader
                .as_ref()
                .map_or_else(|| "-".to_owned(), spread),
            spread(&r.unfenced),
            spread(&r.keepalived),
            ratio(r.fenced.median, r.unfenced.median),
            ratio(r.fenced.median, r.keepalived.median),
            over * 1000.0,
            if over <= 0.050 { "met" } else { "missed" },
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

    #[test]
    fn fencing_rows_compare_three_series_against_the_target() {
        let table = render_fencing(&[
            FencingRow {
                fault: Fault::Kill,
                interval: Duration::from_millis(100),
                session_timeout: Duration::from_secs(4),
                fenced: summary(2900, 3500, 4300),
                fenced_leader: Some(summary(5500, 5800, 6100)),
                unfenced: summary(300, 350, 400),
                keepalived: summary(310, 360, 390),
            },
            FencingRow {
                fault: Fault::Term,
                interval: Duration::from_millis(100),
                session_timeout: Duration::from_secs(4),
                fenced: summary(20, 40, 60),
                fenced_leader: None,
                unfenced: summary(5, 10, 15),
                keepalived: summary(0, 0, 0),
            },
        ]);
        let rows: Vec<&str> = table.lines().skip(2).collect();
        assert_eq!(
            rows,
            [
                "| SIGKILL | 100 ms | 4 s | 2900/3500/4300 | 5500/5800/6100 | 300/350/400 | \
                 310/360/390 | 10.00 | 9.72 | +3150 (missed) |",
                "| SIGTERM | 100 ms | 4 s | 20/40/60 | - | 5/10/15 | 0/0/0 | 4.00 | - | +30 (met) |",
            ]
        );
    }
}

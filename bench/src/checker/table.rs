//! The side-by-side tables of `vigil-checkbench`.

use std::fmt::Write as _;
use std::time::Duration;

use super::fleet::Protocol;
use super::run::{Load, Outcome};
use crate::failover::stats::Summary;

/// One check type's results.
#[derive(Debug, Clone)]
pub struct LoadRow {
    /// TCP or HTTP.
    pub protocol: Protocol,
    /// vigild checked TCP by its half-open (SYN) probe; keepalived, which has none, connected.
    pub half_open: bool,
    /// vigild's result.
    pub vigild: Outcome,
    /// keepalived's result, if it was tried.
    pub keepalived: Option<Outcome>,
}

/// Issue #5's targets for 10,000 checks a second.
fn target(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Tcp => "≤ 5 % CPU, ≤ 64 MB",
        Protocol::Http => "≤ 15 % CPU",
    }
}

/// The first line of `log` that says why the daemon stopped, else its last line.
fn reason(log: &str) -> String {
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    let first = |sign: &str| lines.iter().find(|l| l.contains(sign));
    first("Can't initialize")
        .or_else(|| first("rror"))
        .or_else(|| first("FATAL"))
        .or(lines.last())
        .map_or_else(|| "exited".to_owned(), |l| (*l).trim().to_owned())
}

fn cells(o: &Outcome) -> String {
    match o {
        Outcome::Measured(l) => format!(
            "{:.0} | {:.2} ({:.2} user) | {:.0} | {:.1} | {}",
            l.checks_per_sec,
            l.usage.cpu_percent(),
            l.usage.user_percent(),
            micros_per_check(l),
            l.usage.rss_mib(),
            l.false_downs
        ),
        Outcome::Refused(log) => format!(
            "exited: `{}` | - | - | - | -",
            reason(log).replace('|', "/")
        ),
    }
}

impl LoadRow {
    /// The check as the tables name it.
    pub fn check(&self) -> String {
        check_name(self.protocol, self.half_open)
    }
}

/// A check as the tables and the progress lines name it.
pub fn check_name(protocol: Protocol, half_open: bool) -> String {
    if half_open {
        format!("{protocol} (vigild half-open)")
    } else {
        protocol.to_string()
    }
}

/// CPU time per check, in microseconds: the figure that contention on a shared
/// machine distorts least (a starved daemon checks less but spends about the same per check).
pub fn micros_per_check(l: &Load) -> f64 {
    let checks = l.checks_per_sec * l.usage.elapsed.as_secs_f64();
    if checks > 0.0 {
        l.usage.cpu.as_secs_f64() * 1e6 / checks
    } else {
        0.0
    }
}

fn measured(o: Option<&Outcome>) -> Option<&Load> {
    match o? {
        Outcome::Measured(l) => Some(l),
        Outcome::Refused(_) => None,
    }
}

/// Renders the load table: per check type, each daemon's rate, CPU, RSS, false downs, and the
/// vigild/keepalived ratios where both ran.
pub fn render_load(rows: &[LoadRow]) -> String {
    let mut out = String::from(
        "| check | daemon | checks/s | CPU % of one core | CPU µs per check | \
         RSS MiB | false downs | target |\n|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        // Writing to a String cannot fail.
        let _ = writeln!(
            out,
            "| {} | vigild | {} | {} |",
            r.check(),
            cells(&r.vigild),
            target(r.protocol)
        );
        if let Some(ka) = &r.keepalived {
            let _ = writeln!(out, "| {} | keepalived | {} | |", r.check(), cells(ka));
        }
        if let (Some(v), Some(k)) = (measured(Some(&r.vigild)), measured(r.keepalived.as_ref())) {
            let ratio = |a: f64, b: f64| {
                if b > 0.0 {
                    format!("{:.2}", a / b)
                } else {
                    "-".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "| {} | vigild/keepalived | {} | {} | {} | {} | | |",
                r.check(),
                ratio(v.checks_per_sec, k.checks_per_sec),
                ratio(v.usage.cpu_percent(), k.usage.cpu_percent()),
                ratio(micros_per_check(v), micros_per_check(k)),
                ratio(v.usage.rss_mib(), k.usage.rss_mib()),
            );
        }
    }
    out
}

/// Renders how long stopped real servers stayed in vigild's desired table.
pub fn render_dead(rows: &[(String, Vec<Option<Duration>>)], bound: Duration) -> String {
    let ms = |d: Duration| format!("{:.0}", d.as_secs_f64() * 1000.0);
    let mut out = String::from(
        "| check | servers stopped | stop → removed from desired table, min/med/max ms | \
         bound (interval + timeout) | within bound |\n|---|---|---|---|---|\n",
    );
    for (check, delays) in rows {
        let seen: Vec<Duration> = delays.iter().flatten().copied().collect();
        let spread = Summary::of(&seen).map_or_else(
            || "-".to_owned(),
            |s| format!("{}/{}/{}", ms(s.min), ms(s.median), ms(s.max)),
        );
        let within = delays
            .iter()
            .filter(|d| d.is_some_and(|d| d <= bound))
            .count();
        let _ = writeln!(
            out,
            "| {check} | {} | {spread} | ≤ {} | {within}/{} |",
            delays.len(),
            ms(bound),
            delays.len()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procstat::Window;

    fn load(rate: f64, cpu_ms: u64, rss_mib: u64) -> Outcome {
        Outcome::Measured(Load {
            checks_per_sec: rate,
            connections_per_sec: rate,
            answered_per_sec: 0.0,
            usage: Window {
                elapsed: Duration::from_secs(1),
                cpu: Duration::from_millis(cpu_ms),
                user: Duration::from_millis(cpu_ms / 2),
                rss_bytes: rss_mib * 1024 * 1024,
            },
            processes: 1,
            false_downs: 0,
            loadavg: (String::new(), String::new()),
            fleet_cpu_percent: 0.0,
        })
    }

    #[test]
    fn ratios_appear_only_when_both_ran() {
        let both = render_load(&[LoadRow {
            protocol: Protocol::Tcp,
            half_open: false,
            vigild: load(10_000.0, 30, 20),
            keepalived: Some(load(10_000.0, 120, 10)),
        }]);
        assert!(
            both.contains(
                "| tcp | vigild | 10000 | 3.00 (1.50 user) | 3 | 20.0 | 0 | ≤ 5 % CPU, ≤ 64 MB |"
            ),
            "{both}"
        );
        assert!(
            both.contains("| tcp | vigild/keepalived | 1.00 | 0.25 | 0.25 | 2.00 | | |"),
            "{both}"
        );
        let refused = render_load(&[LoadRow {
            protocol: Protocol::Http,
            half_open: false,
            vigild: load(9_990.0, 100, 30),
            keepalived: Some(Outcome::Refused(
                "Starting\nmodprobe: FATAL: Module ip_vs not found\n\
                 IPVS: Can't initialize ipvs: No such file or directory\nStopped\n"
                    .to_owned(),
            )),
        }]);
        assert!(
            refused.contains(
                "| http | keepalived | exited: `IPVS: Can't initialize ipvs: No such file or \
                 directory` | - | - | - | - | |"
            ),
            "{refused}"
        );
        assert!(!refused.contains("vigild/keepalived"), "{refused}");
    }

    #[test]
    fn dead_servers_count_misses_against_the_bound() {
        let bound = Duration::from_secs(2);
        let table = render_dead(
            &[(
                "tcp".to_owned(),
                vec![
                    Some(Duration::from_millis(400)),
                    Some(Duration::from_millis(900)),
                    None,
                ],
            )],
            bound,
        );
        assert!(
            table.contains("| tcp | 3 | 400/400/900 | ≤ 2000 | 2/3 |"),
            "{table}"
        );
    }
}

//! The side-by-side table and the JSON record of a run.

use std::{fmt::Write as _, time::Duration};

use serde::Serialize;

use crate::load::{Throughput, WatchLatency};

/// Every figure measured for one target; `None` where a phase was skipped or failed.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figures {
    /// 100-byte sets with one client.
    pub write_1: Option<PhaseFigures>,
    /// 100-byte sets with 64 clients.
    pub write_64: Option<PhaseFigures>,
    /// Linearizable reads with 64 clients.
    pub read_64: Option<PhaseFigures>,
    /// Watch notification latency.
    pub watch: Option<WatchFigures>,
    /// Nodes created for the memory and restart phases.
    pub nodes: usize,
    /// Seconds taken to create them.
    pub create_secs: Option<f64>,
    /// RSS of each member after creating the nodes, MiB.
    pub rss_mib: Option<Vec<f64>>,
    /// Whole-cluster restart to first linearizable read, seconds.
    pub restart_secs: Option<f64>,
    /// Phases that failed, with their error.
    pub errors: Vec<String>,
}

/// Serializable throughput figures.
#[derive(Debug, Clone, Serialize)]
pub struct PhaseFigures {
    /// Operations per second.
    pub per_sec: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// p99 latency, ms.
    pub p99_ms: f64,
    /// Completed operations.
    pub ops: usize,
    /// Failed operations.
    pub errors: usize,
    /// CPU time (user + system) of all members together per 1,000 completed operations, ms.
    /// On a machine where members, load generator and other work share the cores, this is
    /// what bounds throughput once latency no longer does.
    pub member_cpu_ms_per_1k: Option<f64>,
    /// The load generator's own CPU time per 1,000 operations, ms (client-side cost).
    pub bench_cpu_ms_per_1k: Option<f64>,
}

impl From<&Throughput> for PhaseFigures {
    fn from(t: &Throughput) -> Self {
        Self {
            per_sec: t.per_sec,
            p50_ms: ms(t.p50),
            p99_ms: ms(t.p99),
            ops: t.ops,
            errors: t.errors,
            member_cpu_ms_per_1k: None,
            bench_cpu_ms_per_1k: None,
        }
    }
}

/// Serializable watch figures.
#[derive(Debug, Clone, Serialize)]
pub struct WatchFigures {
    /// Median, ms.
    pub p50_ms: f64,
    /// p99, ms.
    pub p99_ms: f64,
    /// p99 of the writer's set → acknowledgement, ms (the commit part).
    pub ack_p99_ms: f64,
    /// p99 of set → the first watcher of the key notified, ms.
    pub first_p99_ms: f64,
    /// p99 of first → last watcher of the key notified, ms (the fan-out part).
    pub spread_p99_ms: f64,
    /// Median of set → acknowledgement, ms.
    pub ack_p50_ms: f64,
    /// Median of set → the first watcher notified, ms.
    pub first_p50_ms: f64,
    /// Median of first → last watcher notified, ms.
    pub spread_p50_ms: f64,
    /// Notifications measured.
    pub notifications: usize,
    /// Notifications that never arrived.
    pub missed: usize,
}

impl From<&WatchLatency> for WatchFigures {
    fn from(w: &WatchLatency) -> Self {
        Self {
            p50_ms: ms(w.p50),
            p99_ms: ms(w.p99),
            ack_p99_ms: ms(w.ack_p99),
            first_p99_ms: ms(w.first_p99),
            spread_p99_ms: ms(w.spread_p99),
            ack_p50_ms: ms(w.ack_p50),
            first_p50_ms: ms(w.first_p50),
            spread_p50_ms: ms(w.spread_p50),
            notifications: w.notifications,
            missed: w.missed,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// One table row: a label and how to pull the number out of [`Figures`].
struct Row {
    label: &'static str,
    get: fn(&Figures) -> Option<f64>,
    decimals: usize,
}

const ROWS: &[Row] = &[
    Row {
        label: "writes/s, 1 client",
        get: |f| f.write_1.as_ref().map(|p| p.per_sec),
        decimals: 0,
    },
    Row {
        label: "  p50 ms",
        get: |f| f.write_1.as_ref().map(|p| p.p50_ms),
        decimals: 2,
    },
    Row {
        label: "  p99 ms",
        get: |f| f.write_1.as_ref().map(|p| p.p99_ms),
        decimals: 2,
    },
    Row {
        label: "writes/s, 64 clients",
        get: |f| f.write_64.as_ref().map(|p| p.per_sec),
        decimals: 0,
    },
    Row {
        label: "  p50 ms",
        get: |f| f.write_64.as_ref().map(|p| p.p50_ms),
        decimals: 2,
    },
    Row {
        label: "  p99 ms",
        get: |f| f.write_64.as_ref().map(|p| p.p99_ms),
        decimals: 2,
    },
    Row {
        label: "  member CPU ms/1k writes",
        get: |f| f.write_64.as_ref().and_then(|p| p.member_cpu_ms_per_1k),
        decimals: 0,
    },
    Row {
        label: "  bench CPU ms/1k writes",
        get: |f| f.write_64.as_ref().and_then(|p| p.bench_cpu_ms_per_1k),
        decimals: 0,
    },
    Row {
        label: "lin. reads/s, 64 clients",
        get: |f| f.read_64.as_ref().map(|p| p.per_sec),
        decimals: 0,
    },
    Row {
        label: "  p99 ms",
        get: |f| f.read_64.as_ref().map(|p| p.p99_ms),
        decimals: 2,
    },
    Row {
        label: "  member CPU ms/1k reads",
        get: |f| f.read_64.as_ref().and_then(|p| p.member_cpu_ms_per_1k),
        decimals: 0,
    },
    Row {
        label: "watch notify p50 ms",
        get: |f| f.watch.as_ref().map(|w| w.p50_ms),
        decimals: 2,
    },
    Row {
        label: "watch notify p99 ms",
        get: |f| f.watch.as_ref().map(|w| w.p99_ms),
        decimals: 2,
    },
    Row {
        label: "  set ack p50 ms",
        get: |f| f.watch.as_ref().map(|w| w.ack_p50_ms),
        decimals: 2,
    },
    Row {
        label: "  set ack p99 ms",
        get: |f| f.watch.as_ref().map(|w| w.ack_p99_ms),
        decimals: 2,
    },
    Row {
        label: "  first notify p99 ms",
        get: |f| f.watch.as_ref().map(|w| w.first_p99_ms),
        decimals: 2,
    },
    Row {
        label: "  fan-out p50 ms",
        get: |f| f.watch.as_ref().map(|w| w.spread_p50_ms),
        decimals: 2,
    },
    Row {
        label: "  fan-out p99 ms",
        get: |f| f.watch.as_ref().map(|w| w.spread_p99_ms),
        decimals: 2,
    },
    Row {
        label: "create nodes/s",
        get: |f| f.create_secs.map(|s| f.nodes as f64 / s),
        decimals: 0,
    },
    Row {
        label: "RSS/member MiB (max)",
        get: |f| {
            f.rss_mib
                .as_ref()
                .and_then(|v| v.iter().copied().reduce(f64::max))
        },
        decimals: 0,
    },
    Row {
        label: "restart-to-serving s",
        get: |f| f.restart_secs,
        decimals: 2,
    },
];

/// Renders the table. Targets missing from `results` (vigil until wired) print "n/a".
pub fn table(
    vigil: Option<&Figures>,
    zk: Option<&Figures>,
    etcd: Option<&Figures>,
    nodes: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "memory/restart phases with {nodes} nodes; ratios are vigil/other"
    );
    let _ = writeln!(
        out,
        "{:<26}{:>12}{:>12}{:>12}{:>12}{:>12}",
        "metric", "vigil", "zookeeper", "etcd", "vigil/zk", "vigil/etcd"
    );
    for row in ROWS {
        let v = vigil.and_then(row.get);
        let z = zk.and_then(row.get);
        let e = etcd.and_then(row.get);
        let _ = writeln!(
            out,
            "{:<26}{:>12}{:>12}{:>12}{:>12}{:>12}",
            row.label,
            cell(v, row.decimals),
            cell(z, row.decimals),
            cell(e, row.decimals),
            ratio(v, z),
            ratio(v, e)
        );
    }
    out
}

fn cell(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// `a/b` with two decimals, or "n/a" when either side is missing or `b` is zero.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 => format!("{:.2}", a / b),
        _ => "n/a".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios() {
        assert_eq!(ratio(Some(3.0), Some(2.0)), "1.50");
        assert_eq!(ratio(None, Some(2.0)), "n/a");
        assert_eq!(ratio(Some(1.0), Some(0.0)), "n/a");
    }

    #[test]
    fn table_shows_na_for_unwired_vigil() {
        let zk = Figures {
            write_1: Some(PhaseFigures {
                per_sec: 1262.4,
                p50_ms: 0.77,
                p99_ms: 2.0,
                ops: 12_624,
                errors: 0,
                member_cpu_ms_per_1k: None,
                bench_cpu_ms_per_1k: None,
            }),
            restart_secs: Some(10.5),
            ..Figures::default()
        };
        let t = table(None, Some(&zk), None, 1_000_000);
        let line = t
            .lines()
            .find(|l| l.starts_with("writes/s, 1 client"))
            .expect("row");
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cols[3..], ["n/a", "1262", "n/a", "n/a", "n/a"]);
        let line = t.lines().find(|l| l.starts_with("restart")).expect("row");
        assert!(line.contains("10.50"), "{line}");
    }
}

//! Health-check and IPVS metrics: counters the load-balancer runtime bumps as things happen,
//! and the per-server gauges read from its status view at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};

use vigil_checks::ProbeOutcome;
use vigil_lvs::Op;

use super::expo::{Exposition, Kind};
use super::histogram::{CHECK_LATENCY_BOUNDS, Histogram};
use crate::lb::LbStatus;

/// Every check kind `vigil-checks` names, plus a catch-all so a new kind is still counted.
const CHECK_KINDS: [&str; 9] = [
    "tcp",
    "tcp-half-open",
    "http",
    "https",
    "script",
    "dns",
    "udp",
    "smtp",
    "other",
];

/// IPVS operation kinds, in the order [`op_index`] gives.
const OP_KINDS: [&str; 6] = [
    "add_service",
    "edit_service",
    "del_service",
    "add_dest",
    "edit_dest",
    "del_dest",
];

/// Per check kind: attempt latency and results.
#[derive(Debug)]
struct KindStats {
    latency: Histogram,
    ok: AtomicU64,
    failed: AtomicU64,
}

/// Counters of the load-balancer runtime; shared by its tasks and the metrics endpoint.
#[derive(Debug)]
pub struct LbCounters {
    kinds: Vec<KindStats>,
    ops: [AtomicU64; OP_KINDS.len()],
    converged: AtomicU64,
    failed: AtomicU64,
    recovered: AtomicU64,
}

impl Default for LbCounters {
    fn default() -> Self {
        Self {
            kinds: CHECK_KINDS
                .iter()
                .map(|_| KindStats {
                    latency: Histogram::new(&CHECK_LATENCY_BOUNDS),
                    ok: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                })
                .collect(),
            ops: Default::default(),
            converged: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            recovered: AtomicU64::new(0),
        }
    }
}

impl LbCounters {
    /// One finished check attempt (called on the scheduler task: two atomics and a bucket).
    pub fn attempt(&self, kind: &str, outcome: &ProbeOutcome) {
        let slot = CHECK_KINDS
            .iter()
            .position(|k| *k == kind)
            .unwrap_or(CHECK_KINDS.len() - 1);
        let stats = &self.kinds[slot];
        stats.latency.observe(outcome.latency);
        let counter = if outcome.ok { &stats.ok } else { &stats.failed };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A convergence of the kernel table that succeeded, with the ops it applied and the errors
    /// it recovered from by re-reading the table.
    pub fn converged(&self, applied: &[Op], recovered: usize) {
        for op in applied {
            self.ops[op_index(op)].fetch_add(1, Ordering::Relaxed);
        }
        self.converged.fetch_add(1, Ordering::Relaxed);
        self.recovered
            .fetch_add(recovered as u64, Ordering::Relaxed);
    }

    /// A convergence that failed (the table is not as desired until the next one).
    pub fn convergence_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the check and IPVS families; `status` adds the per-server gauges.
    pub(crate) fn write(&self, e: &mut Exposition, status: Option<&LbStatus>) {
        e.family(
            "vigil_check_attempts_total",
            Kind::Counter,
            "Health-check attempts finished, by check kind and result (ok or failed).",
        );
        for (kind, stats) in CHECK_KINDS.iter().zip(&self.kinds) {
            e.sample_u64(
                "vigil_check_attempts_total",
                &[("kind", kind), ("result", "ok")],
                stats.ok.load(Ordering::Relaxed),
            );
            e.sample_u64(
                "vigil_check_attempts_total",
                &[("kind", kind), ("result", "failed")],
                stats.failed.load(Ordering::Relaxed),
            );
        }
        e.family(
            "vigil_check_latency_seconds",
            Kind::Histogram,
            "Duration of health-check attempts, by check kind.",
        );
        for (kind, stats) in CHECK_KINDS.iter().zip(&self.kinds) {
            e.histogram(&[("kind", kind)], &stats.latency.snapshot());
        }
        e.family(
            "vigil_ipvs_operations_total",
            Kind::Counter,
            "IPVS table operations applied by the reconciler, by operation.",
        );
        for (op, count) in OP_KINDS.iter().zip(&self.ops) {
            e.sample_u64(
                "vigil_ipvs_operations_total",
                &[("op", op)],
                count.load(Ordering::Relaxed),
            );
        }
        e.family(
            "vigil_ipvs_reconciles_total",
            Kind::Counter,
            "Convergences of the kernel IPVS table, by result (ok or failed).",
        );
        e.sample_u64(
            "vigil_ipvs_reconciles_total",
            &[("result", "ok")],
            self.converged.load(Ordering::Relaxed),
        );
        e.sample_u64(
            "vigil_ipvs_reconciles_total",
            &[("result", "failed")],
            self.failed.load(Ordering::Relaxed),
        );
        e.family(
            "vigil_ipvs_reconcile_errors_recovered_total",
            Kind::Counter,
            "IPVS operation errors a convergence recovered from by re-reading the table.",
        );
        e.sample_u64(
            "vigil_ipvs_reconcile_errors_recovered_total",
            &[],
            self.recovered.load(Ordering::Relaxed),
        );
        if let Some(status) = status {
            write_status(e, status);
        }
    }
}

fn op_index(op: &Op) -> usize {
    match op {
        Op::AddService(_) => 0,
        Op::EditService(_) => 1,
        Op::DelService(_) => 2,
        Op::AddDest(..) => 3,
        Op::EditDest(..) => 4,
        Op::DelDest(..) => 5,
    }
}

/// Gauges from the status view: one series per virtual server and real server.
fn write_status(e: &mut Exposition, status: &LbStatus) {
    e.family(
        "vigil_ipvs_available",
        Kind::Gauge,
        "1 when the kernel IPVS table was converged by the last attempt, else 0.",
    );
    e.sample_u64("vigil_ipvs_available", &[], u64::from(status.ipvs == "ok"));
    e.family(
        "vigil_virtual_server_quorum_up",
        Kind::Gauge,
        "1 when the virtual server's quorum (minimum alive weight) holds, else 0.",
    );
    for vs in &status.virtual_servers {
        e.sample_u64(
            "vigil_virtual_server_quorum_up",
            &[("virtual_server", &vs.key)],
            u64::from(vs.quorum_up),
        );
    }
    e.family(
        "vigil_real_server_up",
        Kind::Gauge,
        "1 when every check of the real server passes, else 0.",
    );
    for vs in &status.virtual_servers {
        for rs in &vs.real_servers {
            e.sample_u64(
                "vigil_real_server_up",
                &[("virtual_server", &vs.key), ("real_server", &rs.addr)],
                u64::from(rs.up),
            );
        }
    }
    e.family(
        "vigil_real_server_weight",
        Kind::Gauge,
        "The real server's weight in the desired IPVS table (0 when inhibited, absent when not in the table).",
    );
    for vs in &status.virtual_servers {
        for rs in &vs.real_servers {
            if let Some(weight) = rs.desired_weight {
                e.sample_u64(
                    "vigil_real_server_weight",
                    &[("virtual_server", &vs.key), ("real_server", &rs.addr)],
                    u64::from(weight),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use vigil_checks::SchedulerConfig;
    use vigil_lvs::FakeIpvs;

    use super::*;
    use crate::lb::{IpvsBackend, LbOptions, LbRuntime};

    /// An integer sample's value; 0 when absent.
    fn value(text: &str, series: &str) -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_running_balancer_counts_attempts_and_ipvs_operations() {
        let backend = tokio::net::TcpListener::bind("127.0.1:0")
            .await
            .expect("bind");
        let real = backend.local_addr().expect("address");
        let src = format!(
            "[[virtual_server]]\naddress = \"192.0.2.10:80\"\n\
             [[virtual_server.real_server]]\naddress = \"{}\"\nport = {}\n\
             [[virtual_server.real_server.check]]\ntype = \"tcp\"\ninterval = \"50ms\"\n\
             timeout = \"500ms\"\nwarmup = \"10ms\"\n",
            real.ip(),
            real.port()
        );
        let config = vigil_conf::load_str(&src, "t.toml").expect("config");
        let options = LbOptions::with_backend(
            IpvsBackend::Given(Box::new(FakeIpvs::new())),
            SchedulerConfig::default(),
        );
        let lb = LbRuntime::start(&std::sync::Arc::new(config), options).expect("start");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let text = loop {
            let status = lb.status().await.expect("status");
            let mut e = Exposition::new();
            lb.counters().write(&mut e, Some(&status));
            let text = e.finish();
            let ok = value(
                &text,
                "vigil_check_attempts_total{kind=\"tcp\",result=\"ok\"}",
            );
            let converged = value(&text, "vigil_ipvs_reconciles_total{result=\"ok\"}");
            if ok >= 2 && converged >= 1 {
                break text;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "counters did not move:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        lb.shutdown().await;
        // The first convergence created the service and its one destination.
        assert_eq!(
            value(&text, "vigil_ipvs_operations_total{op=\"add_service\"}"),
            1
        );
        assert_eq!(
            value(&text, "vigil_ipvs_operations_total{op=\"add_dest\"}"),
            1
        );
        assert_eq!(value(&text, "vigil_ipvs_available"), 1, "{text}");
        let attempts = value(&text, "vigil_check_latency_seconds_count{kind=\"tcp\"}");
        assert!(attempts >= 2, "{text}");
        assert_eq!(
            value(
                &text,
                "vigil_check_attempts_total{kind=\"http\",result=\"ok\"}"
            ),
            0
        );
        assert!(
            text.contains(&format!(
                "vigil_real_server_up{{virtual_server=\"192.0.2.10:80/tcp\",real_server=\"{real}\"}} 1\n"
            )),
            "{text}"
        );
    }
}

//! Prometheus metrics: `GET /metrics` on the control API (text format 0.0.4).
//!
//! Most numbers already exist in the runtimes' status views (VRRP instance status, the LVS
//! status, openraft's metrics), so a scrape reads those; only what no view keeps is counted as
//! it happens, with relaxed atomics: check attempts and their latency ([`LbCounters`], fed by
//! the check scheduler), IPVS convergences and operations (the kernel task), Raft log fsyncs
//! (`vigil_coord::raft::FSYNC_LATENCY`). Nothing on a hot path takes a lock.
//!
//! # Families
//!
//! | Family | Type | Labels |
//! |--------|------|--------|
//! | `vigil_build_info` | gauge | `version` |
//! | `vigil_uptime_seconds`, `vigil_config_generation` | gauge | |
//! | `vigil_vrrp_state` | gauge (1 for the current state) | `instance`, `state` |
//! | `vigil_vrrp_priority`, `vigil_vrrp_effective_priority`, `vigil_vrrp_vips_held` | gauge | `instance` |
//! | `vigil_vrrp_transitions_total` | counter | `instance`, `from`, `to`, `reason` |
//! | `vigil_vrrp_adverts_sent_total`, `vigil_vrrp_adverts_received_total`, `vigil_vrrp_errors_total` | counter | `instance` |
//! | `vigil_vrrp_adverts_discarded_total` | counter | `instance`, `reason` |
//! | `vigil_check_attempts_total` | counter | `kind`, `result` |
//! | `vigil_check_latency_seconds` | histogram | `kind` |
//! | `vigil_ipvs_operations_total` | counter | `op` |
//! | `vigil_ipvs_reconciles_total` | counter | `result` |
//! | `vigil_ipvs_reconcile_errors_recovered_total` | counter | |
//! | `vigil_ipvs_available`, `vigil_virtual_server_quorum_up` | gauge | (`virtual_server`) |
//! | `vigil_real_server_up`, `vigil_real_server_weight` | gauge | `virtual_server`, `real_server` |
//! | `vigil_liveness_silent_seconds` | gauge | `component` |
//! | `vigil_raft_*`, `vigil_coord_*` (with a coordination node) | see [`coord`] | `node_id` |
//!
//! VRRP counters restart from zero when a reload restarts an instance; Prometheus' `rate()`
//! treats that as a counter reset.

pub mod coord;
pub mod expo;
pub mod histogram;
mod lb;
pub mod node;

use std::time::{Duration, Instant};

pub use coord::{CoordMetrics, CoordSnapshot};
pub use expo::{CONTENT_TYPE, Exposition, Kind};
pub use histogram::{Histogram, HistogramSnapshot};
pub use lb::LbCounters;

use crate::lb::LbStatus;
use crate::vrrp::InstanceStatus;
use crate::watchdog::Beacon;

/// One per-instance family: name, help, and how to read the value from the status.
type InstanceFamily = (&'static str, &'static str, fn(&InstanceStatus) -> u64);

/// VRRP states as `vigil_vrrp_state` labels them (the status view's names).
const VRRP_STATES: [&str; 4] = ["initialize", "backup", "master", "fault"];

/// Everything one scrape renders.
#[derive(Debug, Default)]
pub struct Scrape<'a> {
    /// The running config's generation.
    pub generation: u64,
    /// Log lines of the VRRP threads dropped because the log output fell behind.
    pub log_lines_dropped: u64,
    /// Since the daemon started.
    pub uptime: Duration,
    /// Every VRRP instance.
    pub vrrp: &'a [InstanceStatus],
    /// The load balancer's counters and, when it answered, its status.
    pub lb: Option<(&'a LbCounters, Option<&'a LbStatus>)>,
    /// The coordination node's numbers, when this daemon runs one.
    pub coord: Option<&'a CoordSnapshot>,
    /// The components the watchdog judges, with the moment to judge them at.
    pub liveness: Option<(Instant, &'a [(String, Beacon)])>,
}

/// The exposition document for `scrape`.
pub fn render(scrape: &Scrape<'_>) -> String {
    let mut e = Exposition::new();
    e.family(
        "vigil_build_info",
        Kind::Gauge,
        "Always 1; the labels say which vigild runs.",
    );
    e.sample_u64(
        "vigil_build_info",
        &[("version", env!("CARGO_PKG_VERSION"))],
        1,
    );
    e.family(
        "vigil_uptime_seconds",
        Kind::Gauge,
        "Seconds since vigild started.",
    );
    e.sample("vigil_uptime_seconds", &[], scrape.uptime.as_secs_f64());
    e.family(
        "vigil_config_generation",
        Kind::Gauge,
        "1 for the config loaded at start, +1 for each applied reload.",
    );
    e.sample_u64("vigil_config_generation", &[], scrape.generation);
    e.family(
        "vigil_log_lines_dropped_total",
        Kind::Counter,
        "Log lines of the real-time VRRP threads dropped because the log output fell behind.",
    );
    e.sample_u64(
        "vigil_log_lines_dropped_total",
        &[],
        scrape.log_lines_dropped,
    );
    write_vrrp(&mut e, scrape.vrrp);
    if let Some((counters, status)) = scrape.lb {
        counters.write(&mut e, status);
    }
    if let Some((now, beacons)) = scrape.liveness {
        write_liveness(&mut e, now, beacons);
    }
    if let Some(snapshot) = scrape.coord {
        coord::write(&mut e, snapshot);
    }
    e.finish()
}

fn write_vrrp(e: &mut Exposition, instances: &[InstanceStatus]) {
    e.family(
        "vigil_vrrp_state",
        Kind::Gauge,
        "1 for the state the VRRP instance is in (initialize, backup, master, fault), 0 for the others.",
    );
    for i in instances {
        for state in VRRP_STATES {
            e.sample_u64(
                "vigil_vrrp_state",
                &[("instance", &i.name), ("state", state)],
                u64::from(i.state == state),
            );
        }
    }
    let gauges: [InstanceFamily; 3] = [
        ("vigil_vrrp_priority", "Configured VRRP priority.", |i| {
            u64::from(i.priority)
        }),
        (
            "vigil_vrrp_effective_priority",
            "VRRP priority advertised after tracking adjustments.",
            |i| u64::from(i.effective_priority),
        ),
        (
            "vigil_vrrp_vips_held",
            "Virtual addresses this node has configured for the instance.",
            |i| i.vips_held.len() as u64,
        ),
    ];
    for (name, help, value) in gauges {
        e.family(name, Kind::Gauge, help);
        for i in instances {
            e.sample_u64(name, &[("instance", &i.name)], value(i));
        }
    }
    e.family(
        "vigil_vrrp_transitions_total",
        Kind::Counter,
        "VRRP state transitions, by previous state, new state and reason.",
    );
    for i in instances {
        for t in &i.transitions {
            e.sample_u64(
                "vigil_vrrp_transitions_total",
                &[
                    ("instance", &i.name),
                    ("from", &t.from),
                    ("to", &t.to),
                    ("reason", &t.reason),
                ],
                t.count,
            );
        }
    }
    let counters: [InstanceFamily; 3] = [
        (
            "vigil_vrrp_adverts_sent_total",
            "VRRP advertisements sent.",
            |i| i.adverts_out,
        ),
        (
            "vigil_vrrp_adverts_received_total",
            "VRRP advertisements received and handed to the state machine.",
            |i| i.adverts_in,
        ),
        (
            "vigil_vrrp_errors_total",
            "VRRP send, address and announcement failures.",
            |i| i.errors,
        ),
    ];
    for (name, help, value) in counters {
        e.family(name, Kind::Counter, help);
        for i in instances {
            e.sample_u64(name, &[("instance", &i.name)], value(i));
        }
    }
    e.family(
        "vigil_vrrp_adverts_discarded_total",
        Kind::Counter,
        "Received VRRP packets discarded, by reason (ttl, auth, other_vrid, malformed, ...).",
    );
    for i in instances {
        for (reason, count) in &i.discards {
            e.sample_u64(
                "vigil_vrrp_adverts_discarded_total",
                &[("instance", &i.name), ("reason", reason)],
                *count,
            );
        }
    }
}

fn write_liveness(e: &mut Exposition, now: Instant, beacons: &[(String, Beacon)]) {
    e.family(
        "vigil_liveness_silent_seconds",
        Kind::Gauge,
        "Seconds since each component last proved progress to the watchdog (retired ones are absent).",
    );
    for (name, beacon) in beacons {
        if let Some(silent) = beacon.silent_for(now) {
            e.sample(
                "vigil_liveness_silent_seconds",
                &[("component", name)],
                silent.as_secs_f64(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::vrrp::status::TransitionCount;

    fn instance(name: &str, state: &str) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 51,
            state: state.into(),
            priority: 150,
            effective_priority: 120,
            master: None,
            since_unix: 0,
            last_reason: None,
            adverts_in: 3,
            adverts_out: 40,
            discards: BTreeMap::from([("ttl".to_owned(), 2)]),
            errors: 0,
            last_error: None,
            vips_held: vec!["10.0.0.100".parse().expect("address")],
            tracks_down: Vec::new(),
            transitions: vec![TransitionCount {
                from: "backup".into(),
                to: "master".into(),
                reason: "master_down".into(),
                count: 1,
            }],
            fencing: None,
        }
    }

    #[test]
    fn vrrp_families_and_values() {
        let vrrp = [instance("vi_1", "master"), instance("vi_2", "backup")];
        let text = render(&Scrape {
            generation: 3,
            log_lines_dropped: 7,
            vrrp: &vrrp,
            ..Scrape::default()
        });
        for line in [
            "# TYPE vigil_vrrp_state gauge\n",
            "vigil_vrrp_state{instance=\"vi_1\",state=\"master\"} 1\n",
            "vigil_vrrp_state{instance=\"vi_1\",state=\"backup\"} 0\n",
            "vigil_vrrp_state{instance=\"vi_2\",state=\"backup\"} 1\n",
            "vigil_vrrp_effective_priority{instance=\"vi_1\"} 120\n",
            "# TYPE vigil_vrrp_transitions_total counter\n",
            "vigil_vrrp_transitions_total{instance=\"vi_1\",from=\"backup\",to=\"master\",reason=\"master_down\"} 1\n",
            "vigil_vrrp_adverts_sent_total{instance=\"vi_2\"} 40\n",
            "vigil_vrrp_adverts_discarded_total{instance=\"vi_1\",reason=\"ttl\"} 2\n",
            "vigil_config_generation 3\n",
            "# TYPE vigil_log_lines_dropped_total counter\n",
            "vigil_log_lines_dropped_total 7\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert_well_formed(&text);
    }

    #[test]
    fn liveness_ages_are_exported_and_retired_components_left_out() {
        let then = crate::watchdog::epoch() + Duration::from_secs(1);
        let now = then + Duration::from_millis(2_500);
        let live = Beacon::new_at(then);
        let gone = Beacon::new_at(now);
        gone.retire();
        let beacons = [
            ("supervisor".to_owned(), live),
            ("vrrp unit x".to_owned(), gone),
        ];
        let text = render(&Scrape {
            liveness: Some((now, &beacons)),
            ..Scrape::default()
        });
        assert!(
            text.contains("vigil_liveness_silent_seconds{component=\"supervisor\"} 2.5\n"),
            "{text}"
        );
        assert!(!text.contains("vrrp unit x"), "{text}");
    }

    /// Every sample belongs to the family declared just before it, declared exactly once.
    pub(crate) fn assert_well_formed(text: &str) {
        let mut declared = std::collections::HashSet::new();
        let mut family = String::new();
        let mut kind = String::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, k) = rest.split_once(' ').expect("TYPE line");
                assert!(declared.insert(name.to_owned()), "{name} declared twice");
                family = name.to_owned();
                kind = k.to_owned();
            } else if line.starts_with("# HELP ") {
            } else {
                let name = line.split(['{', ' ']).next().expect("sample name");
                let base = match kind.as_str() {
                    "histogram" => name
                        .strip_suffix("_bucket")
                        .or_else(|| name.strip_suffix("_sum"))
                        .or_else(|| name.strip_suffix("_count"))
                        .unwrap_or(name),
                    _ => name,
                };
                assert_eq!(base, family, "sample {line:?} outside its family");
                let value = line.rsplit(' ').next().expect("value");
                assert!(
                    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                    "bad value in {line:?}"
                );
            }
        }
    }
}

//! Human-readable output of `vigilctl`. JSON output is the API types serialised as they are.

use std::fmt::Write;

use crate::api::types::StatusResponse;
use crate::reload::{ReloadOutcome, ReloadReport};

/// `vigilctl status` as a two-column table, then the VRRP instances and the cluster's nodes.
pub fn status_table(status: &StatusResponse, now_unix_secs: u64) -> String {
    let mut out = String::new();
    let mut row = |key: &str, value: &str| {
        // Writing to a String cannot fail.
        let _ = writeln!(out, "{key:<13}{value}");
    };
    row("node", &status.node_name);
    row("version", &status.version);
    row("pid", &status.pid.to_string());
    row("uptime", &duration(status.uptime_secs));
    row("config", &status.config_path);
    row("generation", &status.config_generation.to_string());
    if let Some(lvs) = &status.lvs {
        row(
            "lvs",
            &format!(
                "{}/{} virtual servers up, {}/{} real servers up, ipvs {} (vigilctl lvs)",
                lvs.virtual_servers_up,
                lvs.virtual_servers,
                lvs.real_servers_up,
                lvs.real_servers,
                lvs.ipvs
            ),
        );
    }
    if let Some(coord) = &status.coord {
        row("coord", &crate::coord::status::summary(coord));
        if let Some(waiting) = &coord.waiting {
            row("", waiting);
        }
    }
    if !status.vrrp.is_empty() {
        let states: Vec<String> = status
            .vrrp
            .iter()
            .map(|i| format!("{} {}", i.name, i.state))
            .collect();
        row("vrrp", &states.join(", "));
    }
    match &status.last_reload {
        None => row("last reload", "none"),
        Some(report) => {
            let ago = duration(now_unix_secs.saturating_sub(report.at_unix_secs));
            row(
                "last reload",
                &format!("{} ({ago} ago)", reload_summary(report)),
            );
            if let ReloadOutcome::Rejected { errors, .. } = &report.outcome {
                for error in errors {
                    row("", error);
                }
            }
        }
    }
    if !status.vrrp.is_empty() {
        out.push('\n');
        out.push_str(&crate::vrrp::render::vrrp_table(&status.vrrp));
    }
    if let Some(cluster) = &status.cluster {
        out.push('\n');
        match &cluster.error {
            Some(error) => {
                let _ = writeln!(out, "cluster: {error}");
            }
            None if cluster.members.is_empty() => {
                out.push_str("cluster: no node has registered yet\n");
            }
            None => out.push_str(&super::cluster::cluster_table(
                &cluster.members,
                now_unix_secs.saturating_mul(1000),
            )),
        }
    }
    out
}

/// One line saying what a reload did.
pub fn reload_summary(report: &ReloadReport) -> String {
    match &report.outcome {
        ReloadOutcome::Applied {
            generation,
            changed,
            ..
        } => {
            let what = if *changed { "changed" } else { "unchanged" };
            format!("applied, generation {generation} ({what})")
        }
        ReloadOutcome::Rejected { generation, errors } => {
            format!(
                "rejected with {} error(s), generation {generation} still running",
                errors.len()
            )
        }
    }
}

/// `93784` → `1d 2h`: the two largest non-zero units are precise enough for an uptime.
pub fn duration(secs: u64) -> String {
    let units = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let mut rest = secs;
    let mut parts = Vec::new();
    for (size, name) in units {
        let n = rest / size;
        rest %= size;
        if n > 0 || !parts.is_empty() {
            parts.push(format!("{n}{name}"));
        }
        if parts.len() == 2 {
            break;
        }
    }
    if parts.is_empty() {
        "0s".to_owned()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(duration(0), "0s");
        assert_eq!(duration(59), "59s");
        assert_eq!(duration(61), "1m 1s");
        assert_eq!(duration(3_600), "1h 0m");
        assert_eq!(duration(93_784), "1d 2h");
    }

    #[test]
    fn table_shows_rejected_reload_errors() {
        let status = StatusResponse {
            node_name: "lb1".into(),
            version: "0.1.0".into(),
            pid: 42,
            uptime_secs: 61,
            started_at_unix_secs: 1_000,
            config_path: "/etc/vigil/vigil.toml".into(),
            config_generation: 2,
            last_reload: Some(ReloadReport {
                at_unix_secs: 1_050,
                outcome: ReloadOutcome::Rejected {
                    generation: 2,
                    errors: vec!["vigil.toml:1:1: unknown key `bogus`".into()],
                },
            }),
            lvs: None,
            vrrp: Vec::new(),
            coord: None,
            shared_config: None,
            cluster: None,
        };
        let table = status_table(&status, 1_060);
        assert!(table.contains("node         lb1\n"), "{table}");
        assert!(table.contains("uptime       1m 1s\n"), "{table}");
        assert!(table.contains("generation   2\n"), "{table}");
        assert!(
            table.contains("rejected with 1 error(s), generation 2 still running (10s ago)"),
            "{table}"
        );
        assert!(
            table.contains("             vigil.toml:1:1: unknown key `bogus`\n"),
            "{table}"
        );
    }

    #[test]
    fn table_ends_with_the_cluster_or_why_it_is_missing() {
        use crate::api::types::ClusterView;
        use crate::members::MemberView;
        let mut status = StatusResponse {
            node_name: "lb2".into(),
            version: "0.1.0".into(),
            pid: 42,
            uptime_secs: 61,
            started_at_unix_secs: 1_000,
            config_path: "/etc/vigil/vigil.toml".into(),
            config_generation: 1,
            last_reload: None,
            lvs: None,
            vrrp: Vec::new(),
            coord: None,
            shared_config: None,
            cluster: Some(ClusterView {
                members: vec![MemberView {
                    node: "lb1".into(),
                    up: false,
                    last_seen_unix_ms: 1_000_000,
                    record: None,
                }],
                error: None,
            }),
        };
        let table = status_table(&status, 1_010);
        let last = table.lines().last().expect("a row");
        assert!(last.starts_with("lb1 "), "{table}");
        assert!(last.contains("DOWN (seen 10s)"), "{table}");
        status.cluster = Some(ClusterView {
            members: Vec::new(),
            error: Some("no answer from the coordination tree within 2s (no quorum?)".into()),
        });
        let table = status_table(&status, 1_010);
        assert!(
            table.ends_with(
                "\ncluster: no answer from the coordination tree within 2s (no quorum?)\n"
            ),
            "{table}"
        );
    }
}

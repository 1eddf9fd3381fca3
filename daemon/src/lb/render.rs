//! `vigilctl lvs` as text: one block per virtual server, a row per real server and check.

use std::fmt::Write;

use super::status::{CheckView, LbStatus, RsStatus};
use crate::ctl::render::duration as ago;

/// The human table for `vigilctl lvs`.
pub fn lvs_table(status: &LbStatus) -> String {
    let mut out = String::new();
    let synced = status
        .last_sync_secs_ago
        .map(|s| format!(" (synced {} ago)", ago(s)))
        .unwrap_or_default();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "ipvs: {}{synced}", status.ipvs);
    if status.virtual_servers.is_empty() {
        out.push_str("no virtual servers configured\n");
        return out;
    }
    for vs in &status.virtual_servers {
        let quorum = if vs.quorum_up { "up" } else { "DOWN" };
        let sorry = match (&vs.sorry_server, vs.sorry_active) {
            (Some(s), true) => format!(", sorry server {s} ACTIVE"),
            (Some(s), false) => format!(", sorry server {s} standby"),
            (None, _) => String::new(),
        };
        let group = vs
            .group
            .as_ref()
            .map(|g| format!(", group {g}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n{} {} {}: quorum {quorum} (alive weight {} of {}){sorry}{group}",
            vs.key, vs.scheduler, vs.forwarding, vs.alive_weight, vs.quorum
        );
        let mut rows = vec![[
            "REAL SERVER".to_owned(),
            "STATE".to_owned(),
            "WEIGHT".to_owned(),
            "IN TABLE".to_owned(),
            "SINCE".to_owned(),
            "CHECK".to_owned(),
            "LAST RESULT".to_owned(),
            "LATENCY".to_owned(),
        ]];
        for rs in &vs.real_servers {
            rows.extend(real_rows(rs));
        }
        table(&mut out, &rows);
    }
    out
}

fn real_rows(rs: &RsStatus) -> Vec<[String; 8]> {
    let state = if rs.up { "up" } else { "DOWN" };
    let in_table = rs
        .desired_weight
        .map_or_else(|| "-".to_owned(), |w| format!("weight {w}"));
    let head = [
        rs.addr.clone(),
        state.to_owned(),
        rs.weight.to_string(),
        in_table,
        ago(rs.since_secs_ago),
    ];
    if rs.checks.is_empty() {
        return vec![row(head, ["none".into(), "-".into(), "-".into()])];
    }
    rs.checks
        .iter()
        .enumerate()
        .map(|(i, check)| {
            // Server columns only on its first check's row.
            let server = if i == 0 {
                head.clone()
            } else {
                Default::default()
            };
            row(server, check_cells(check))
        })
        .collect()
}

fn row(server: [String; 5], check: [String; 3]) -> [String; 8] {
    let mut cells = server.into_iter().chain(check);
    std::array::from_fn(|_| cells.next().unwrap_or_default())
}

fn check_cells(check: &CheckView) -> [String; 3] {
    let name = if check.up {
        check.kind.clone()
    } else {
        format!("{} (down)", check.kind)
    };
    let last = match (check.last_ok, &check.last_detail) {
        (None, _) => "pending".to_owned(),
        (Some(ok), detail) => {
            let verdict = if ok { "ok" } else { "FAIL" };
            match detail.as_deref() {
                Some(d) if !d.is_empty() => format!("{verdict}: {}", shorten(d, 48)),
                _ => verdict.to_owned(),
            }
        }
    };
    let latency = check
        .latency_ms
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.1}ms"));
    [name, last, latency]
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

/// Left-aligned columns, two spaces apart, indented by two.
fn table(out: &mut String, rows: &[[String; 8]]) {
    let mut widths = [0usize; 8];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in rows {
        let mut line = String::from("  ");
        for (i, (cell, w)) in row.iter().zip(widths).enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ");
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lb::status::{DesiredDest, VsStatus};

    fn sample() -> LbStatus {
        LbStatus {
            ipvs: "unavailable: kernel has no IPVS".into(),
            last_sync_secs_ago: None,
            virtual_servers: vec![VsStatus {
                key: "10.0.0.100:80/tcp".into(),
                group: Some("web".into()),
                scheduler: "wlc".into(),
                forwarding: "dr".into(),
                quorum: 1,
                quorum_up: true,
                alive_weight: 1,
                sorry_server: None,
                sorry_active: false,
                real_servers: vec![
                    RsStatus {
                        addr: "10.0.0.3:80".into(),
                        weight: 1,
                        desired_weight: Some(1),
                        up: true,
                        since_secs_ago: 75,
                        checks: vec![CheckView {
                            kind: "http".into(),
                            target: "10.0.0.3:80".into(),
                            up: true,
                            last_ok: Some(true),
                            last_detail: Some("200".into()),
                            latency_ms: Some(1.25),
                            since_secs_ago: 75,
                        }],
                    },
                    RsStatus {
                        addr: "10.0.0.4:80".into(),
                        weight: 1,
                        desired_weight: None,
                        up: false,
                        since_secs_ago: 3,
                        checks: vec![CheckView {
                            kind: "http".into(),
                            target: "10.0.0.4:80".into(),
                            up: false,
                            last_ok: Some(false),
                            last_detail: Some("connection refused".into()),
                            latency_ms: Some(0.4),
                            since_secs_ago: 3,
                        }],
                    },
                ],
                desired: vec![DesiredDest {
                    addr: "10.0.0.3:80".into(),
                    weight: 1,
                }],
            }],
        }
    }

    #[test]
    fn table_shows_state_last_result_latency_and_since() {
        let text = lvs_table(&sample());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ipvs: unavailable: kernel has no IPVS");
        assert_eq!(
            lines[2],
            "10.0.0.100:80/tcp wlc dr: quorum up (alive weight 1 of 1), group web"
        );
        assert!(lines[3].starts_with("  REAL SERVER  STATE  WEIGHT  IN TABLE"));
        let up = lines[4].split_whitespace().collect::<Vec<_>>();
        assert_eq!(
            up,
            [
                "10.0.0.3:80",
                "up",
                "1",
                "weight",
                "1",
                "1m",
                "15s",
                "http",
                "ok:",
                "200",
                "1.2ms"
            ]
        );
        let down = lines[5];
        assert!(
            down.contains("DOWN") && down.contains("http (down)"),
            "{down}"
        );
        assert!(down.contains("FAIL: connection refused") && down.contains("0.4ms"));
        // Columns line up: every row's CHECK column starts at the same offset.
        let col = lines[3].find("CHECK").unwrap();
        assert_eq!(lines[4].find("http"), Some(col));
        assert_eq!(lines[5].find("http"), Some(col));
    }

    #[test]
    fn empty_config_says_so() {
        let status = LbStatus {
            ipvs: "ok".into(),
            last_sync_secs_ago: Some(4),
            virtual_servers: Vec::new(),
        };
        assert_eq!(
            lvs_table(&status),
            "ipvs: ok (synced 4s ago)\nno virtual servers configured\n"
        );
    }
}

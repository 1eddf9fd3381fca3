//! The cluster view of `vigilctl status`: every node that ever registered, up or down, with
//! what it last published (see [`crate::members`]).

use std::fmt::Write;

use crate::members::MemberView;

/// One line per node: name, up/down (with how long ago it was last heard of when down),
/// version, and its VRRP instances with state, priority and fencing token.
pub fn cluster_table(views: &[MemberView], now_unix_ms: u64) -> String {
    let mut out = String::new();
    let width = views.iter().map(|v| v.node.len()).max().unwrap_or(4).max(4);
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:<width$}  {:<18}  {:<8}  VRRP / LVS",
        "NODE", "STATUS", "VERSION"
    );
    for v in views {
        let status = if v.up {
            "up".to_owned()
        } else if v.last_seen_unix_ms == 0 {
            "down".to_owned()
        } else {
            let ago = now_unix_ms.saturating_sub(v.last_seen_unix_ms) / 1000;
            format!("DOWN (seen {})", super::render::duration(ago))
        };
        let (version, detail) = match &v.record {
            None => ("?".to_owned(), String::new()),
            Some(r) => {
                let mut parts: Vec<String> = r
                    .vrrp
                    .iter()
                    .map(|i| {
                        let token = i.token.map(|t| format!(" token {t}")).unwrap_or_default();
                        format!(
                            "{} {} prio {}/{}{token}",
                            i.instance, i.state, i.effective_priority, i.priority
                        )
                    })
                    .collect();
                if r.witness {
                    parts.push("witness".to_owned());
                }
                if let Some(lvs) = &r.lvs {
                    parts.push(format!(
                        "lvs {}/{} real servers up",
                        lvs.real_servers_up, lvs.real_servers
                    ));
                }
                (r.version.clone(), parts.join("; "))
            }
        };
        let _ = writeln!(
            out,
            "{:<width$}  {status:<18}  {version:<8}  {detail}",
            v.node
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::members::{NodeRecord, VrrpSummary};

    fn record(node: &str, state: &str, token: Option<u64>) -> NodeRecord {
        NodeRecord {
            node: node.to_owned(),
            node_id: 1,
            version: "0.1.0".to_owned(),
            witness: false,
            vrrp: vec![VrrpSummary {
                instance: "vi_web".to_owned(),
                state: state.to_owned(),
                priority: 150,
                effective_priority: 130,
                holding: token.is_some(),
                token,
            }],
            lvs: None,
        }
    }

    #[test]
    fn down_nodes_are_listed_with_their_last_state() {
        let views = vec![
            MemberView {
                node: "lb1".to_owned(),
                up: false,
                last_seen_unix_ms: 100_000,
                record: Some(record("lb1", "master", Some(41))),
            },
            MemberView {
                node: "lb2".to_owned(),
                up: true,
                last_seen_unix_ms: 190_000,
                record: Some(record("lb2", "master", Some(57))),
            },
            MemberView {
                node: "witness".to_owned(),
                up: true,
                last_seen_unix_ms: 0,
                record: None,
            },
        ];
        let table = cluster_table(&views, 190_000);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4, "{table}");
        assert!(lines[0].starts_with("NODE "), "{table}");
        assert!(lines[1].starts_with("lb1 "), "{table}");
        assert!(lines[1].contains("DOWN (seen 1m 30s)"), "{table}");
        assert!(
            lines[1].contains("vi_web master prio 130/150 token 41"),
            "{table}"
        );
        assert!(lines[2].contains(" up "), "{table}");
        assert!(lines[2].contains("token 57"), "{table}");
        assert!(lines[3].starts_with("witness "), "{table}");
        assert!(lines[3].contains(" ? "), "{table}");
    }
}

//! The VRRP table of `vigilctl status`.

use std::fmt::Write;

use super::status::InstanceStatus;

/// One row per instance: name, interface/vrid, state, priorities, master, VIPs held, counters.
pub fn vrrp_table(instances: &[InstanceStatus]) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:<10} {:>9} {:<26} {:<22} {:>8} {:>8} {:>7} {:>6}",
        "INSTANCE",
        "IFACE/VRID",
        "STATE",
        "PRIO",
        "MASTER",
        "VIPS",
        "ADV-IN",
        "ADV-OUT",
        "DISCARD",
        "ERRORS"
    );
    for i in instances {
        let prio = if i.priority == i.effective_priority {
            i.priority.to_string()
        } else {
            format!("{}→{}", i.priority, i.effective_priority)
        };
        let master = i.master.map_or_else(|| "-".to_owned(), |m| m.to_string());
        let vips = if i.vips_held.is_empty() {
            "-".to_owned()
        } else {
            i.vips_held
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        };
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:<10} {:>9} {:<26} {:<22} {:>8} {:>8} {:>7} {:>6}",
            i.name,
            format!("{}/{}", i.interface, i.vrid),
            i.state,
            prio,
            master,
            vips,
            i.adverts_in,
            i.adverts_out,
            i.discards_total(),
            i.errors
        );
        if let Some(error) = &i.last_error {
            let _ = writeln!(out, "  last error: {error}");
        }
        if !i.tracks_down.is_empty() {
            let _ = writeln!(out, "  failing: {}", i.tracks_down.join(", "));
        }
        if let Some(f) = &i.fencing {
            let _ = writeln!(out, "  fencing: {}", fencing_line(f));
        }
    }
    out
}

/// `quorum ok, owner lb1, token 4711, holding` and the like.
fn fencing_line(f: &crate::fence::FenceStatus) -> String {
    let quorum = if f.quorum {
        "quorum ok"
    } else {
        "no quorum lease"
    };
    let owner = f.owner.as_deref().unwrap_or("none");
    let token = f.token.map_or_else(|| "-".to_owned(), |t| t.to_string());
    let holding = if f.holding { "holding" } else { "not holding" };
    let mut line = format!("{quorum}, owner {owner}, token {token}, {holding}");
    if let Some(e) = &f.last_error {
        let _ = write!(line, " (last error: {e})");
    }
    line
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn the_table_shows_state_priority_master_and_vips() {
        let status = InstanceStatus {
            name: "vi_web".into(),
            interface: "eth0".into(),
            vrid: 51,
            state: "master".into(),
            priority: 150,
            effective_priority: 120,
            master: Some("10.0.0.1".parse().expect("address")),
            since_unix: 0,
            last_reason: Some("master_down".into()),
            adverts_in: 3,
            adverts_out: 40,
            discards: BTreeMap::from([("ttl".to_owned(), 2)]),
            errors: 0,
            last_error: None,
            vips_held: vec!["10.0.0.100".parse().expect("address")],
            tracks_down: vec!["script:chk".into()],
            transitions: Vec::new(),
            fencing: None,
        };
        let table = vrrp_table(&[status]);
        let row = table.lines().nth(1).expect("a row");
        for needle in [
            "vi_web",
            "eth0/51",
            "master",
            "150→120",
            "10.0.0.1",
            "10.0.0.100",
            "40",
        ] {
            assert!(row.contains(needle), "{needle} missing from {row:?}");
        }
        assert!(table.contains("failing: script:chk"), "{table}");
    }

    #[test]
    fn fenced_instances_show_owner_and_token() {
        let f = crate::fence::FenceStatus {
            quorum: true,
            owner: Some("lb2".into()),
            token: Some(4711),
            holding: false,
            last_error: None,
        };
        assert_eq!(
            fencing_line(&f),
            "quorum ok, owner lb2, token 4711, not holding"
        );
        let lost = crate::fence::FenceStatus::default();
        assert_eq!(
            fencing_line(&lost),
            "no quorum lease, owner none, token -, not holding"
        );
    }
}

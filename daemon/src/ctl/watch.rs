//! `vigilctl status --watch`: polls `GET /v1/status` and shows each change.
//!
//! A change is a difference in what an operator acts on — states, priorities, masters, VIPs,
//! health, leaders, reloads — not in counters and clocks that move every second (uptime,
//! advert counts, Raft indexes). The readable view is redrawn in place on a terminal (every
//! poll, so the uptime stays current, with the time of the last change in its header) and
//! appended on each change otherwise; `--json` prints one compact JSON document per change
//! (NDJSON), the full status each time. A daemon that cannot be reached at the first poll, or
//! that refuses the token, ends the watch with the usual message and exit code; one that goes
//! away later (a restart) is reported once per outage and polled on.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use serde_json::Value;

use super::client::{Client, ClientError};
use super::render;
use crate::api::types::StatusResponse;
use crate::exit;
use crate::reload::unix_now;

/// Status fields that move without anything happening; ignored when looking for changes.
const VOLATILE: &[&str] = &["uptime_secs"];
/// The same inside each VRRP instance.
const VOLATILE_VRRP: &[&str] = &[
    "adverts_in",
    "adverts_out",
    "discards",
    "errors",
    "transitions",
];
/// The same inside the coordination status (indexes move with every write).
const VOLATILE_COORD: &[&str] = &["last_log_index", "applied_index", "snapshot_index"];
/// The same inside each cluster member (a node rewrites its record periodically).
const VOLATILE_MEMBER: &[&str] = &["last_seen_unix_ms"];

/// Remembers the last status seen and tells whether a new one is a change.
#[derive(Debug, Default)]
pub struct ChangeFilter {
    last: Option<Value>,
}

impl ChangeFilter {
    /// Whether `status` differs from the previous one in anything but volatile fields (the
    /// first status always does).
    pub fn changed(&mut self, status: &StatusResponse) -> bool {
        let key = significant(status);
        if self.last.as_ref() == Some(&key) {
            return false;
        }
        self.last = Some(key);
        true
    }

    /// Forgets the last status, so that the next one counts as a change (after an outage).
    pub fn reset(&mut self) {
        self.last = None;
    }
}

/// `status` as JSON without its volatile fields.
fn significant(status: &StatusResponse) -> Value {
    let mut value = serde_json::to_value(status).unwrap_or(Value::Null);
    strip(&mut value, VOLATILE);
    if let Some(Value::Array(instances)) = value.get_mut("vrrp") {
        for instance in instances {
            strip(instance, VOLATILE_VRRP);
        }
    }
    if let Some(coord) = value.get_mut("coord") {
        strip(coord, VOLATILE_COORD);
    }
    if let Some(Value::Array(members)) = value.get_mut("cluster").and_then(|c| c.get_mut("members"))
    {
        for member in members {
            strip(member, VOLATILE_MEMBER);
        }
    }
    value
}

fn strip(value: &mut Value, keys: &[&str]) {
    if let Value::Object(map) = value {
        for key in keys {
            map.remove(*key);
        }
    }
}

/// One NDJSON line: the whole status, compact, newline-terminated.
pub fn ndjson_line(status: &StatusResponse) -> String {
    let mut line = serde_json::to_string(status).unwrap_or_else(|_| "{}".to_owned());
    line.push('\n');
    line
}

/// `12:34:56 UTC` of a Unix time: enough to tell changes apart on screen.
fn clock(unix: u64) -> String {
    let s = unix % 86_400;
    format!("{:02}:{:02}:{:02} UTC", s / 3_600, s / 60 % 60, s % 60)
}

/// Polls every `every` until Ctrl-C, or until `count` views were printed.
pub async fn run(client: &Client, json: bool, every: Duration, count: Option<u64>) -> u8 {
    let tty = !json && std::io::stdout().is_terminal();
    let mut filter = ChangeFilter::default();
    let mut printed = 0;
    let mut last_change = unix_now();
    let mut outage = false;
    let mut answered = false;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        match client.status().await {
            Ok(status) => {
                answered = true;
                if outage {
                    eprintln!("vigilctl: vigild answers again");
                    outage = false;
                }
                let changed = filter.changed(&status);
                if changed {
                    last_change = unix_now();
                }
                let text = if json {
                    changed.then(|| ndjson_line(&status))
                } else if tty {
                    Some(format!(
                        "\x1b[H\x1b[2Jvigilctl status --watch: every {:.1}s, last change {}; Ctrl-C to stop\n\n{}",
                        every.as_secs_f64(),
                        clock(last_change),
                        render::status_table(&status, unix_now())
                    ))
                } else {
                    changed.then(|| {
                        format!(
                            "--- {} ---\n{}\n",
                            clock(last_change),
                            render::status_table(&status, unix_now())
                        )
                    })
                };
                if let Some(text) = text {
                    if let Some(code) = write_out(&text) {
                        return code;
                    }
                    if changed {
                        printed += 1;
                    }
                }
                if count.is_some_and(|n| printed >= n) {
                    return exit::OK;
                }
            }
            Err(error @ (ClientError::Unreachable { .. } | ClientError::Timeout { .. }))
                if answered =>
            {
                if !outage {
                    eprintln!(
                        "vigilctl: {error}; retrying every {:.1}s",
                        every.as_secs_f64()
                    );
                    outage = true;
                }
                // Whatever comes back is shown afresh.
                filter.reset();
            }
            Err(error) => {
                eprintln!("vigilctl: {error}");
                return error.exit_code();
            }
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = &mut interrupted => return exit::OK,
        }
    }
}

/// Writes and flushes; `Some(exit code)` when the watch must end (a closed pipe ends it
/// quietly).
fn write_out(text: &str) -> Option<u8> {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => None,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Some(exit::OK),
        Err(error) => {
            eprintln!("vigilctl: cannot write output: {error}");
            Some(exit::OSERR)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::vrrp::InstanceStatus;

    fn status(state: &str, uptime: u64, adverts: u64) -> StatusResponse {
        StatusResponse {
            node_name: "lb1".into(),
            version: "0.1.0".into(),
            pid: 42,
            uptime_secs: uptime,
            started_at_unix_secs: 1_000,
            config_path: "/etc/vigil/vigil.toml".into(),
            config_generation: 1,
            last_reload: None,
            lvs: None,
            vrrp: vec![InstanceStatus {
                name: "VI_1".into(),
                interface: "eth0".into(),
                vrid: 51,
                state: state.into(),
                priority: 100,
                effective_priority: 100,
                master: None,
                since_unix: 1_000,
                last_reason: None,
                adverts_in: adverts,
                adverts_out: adverts,
                discards: BTreeMap::from([("ttl".to_owned(), adverts)]),
                errors: 0,
                last_error: None,
                vips_held: Vec::new(),
                tracks_down: Vec::new(),
                transitions: Vec::new(),
                fencing: None,
            }],
            coord: None,
            shared_config: None,
            cluster: None,
        }
    }

    #[test]
    fn counters_and_clocks_are_not_changes_states_are() {
        let mut filter = ChangeFilter::default();
        assert!(
            filter.changed(&status("backup", 1, 0)),
            "the first status is shown"
        );
        assert!(!filter.changed(&status("backup", 2, 5)));
        assert!(!filter.changed(&status("backup", 3, 9)));
        assert!(filter.changed(&status("master", 4, 9)));
        assert!(!filter.changed(&status("master", 5, 12)));
        filter.reset();
        assert!(
            filter.changed(&status("master", 6, 12)),
            "shown afresh after an outage"
        );
    }

    #[test]
    fn a_member_refreshing_its_record_is_not_a_change_going_down_is() {
        use crate::api::types::ClusterView;
        use crate::members::MemberView;
        let with = |up: bool, seen: u64| {
            let mut s = status("master", 1, 0);
            s.cluster = Some(ClusterView {
                members: vec![MemberView {
                    node: "lb2".into(),
                    up,
                    last_seen_unix_ms: seen,
                    record: None,
                }],
                error: None,
            });
            s
        };
        let mut filter = ChangeFilter::default();
        assert!(filter.changed(&with(true, 1_000)));
        assert!(!filter.changed(&with(true, 31_000)));
        assert!(filter.changed(&with(false, 31_000)));
    }

    #[test]
    fn json_watch_prints_one_compact_document_per_line() {
        let line = ndjson_line(&status("master", 7, 3));
        assert!(line.ends_with("}\n"), "{line}");
        assert_eq!(line.matches('\n').count(), 1, "{line}");
        let back: StatusResponse = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back, status("master", 7, 3));
    }

    #[test]
    fn clock_shows_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00 UTC");
        assert_eq!(clock(86_400 + 3_600 * 13 + 60 * 4 + 5), "13:04:05 UTC");
    }
}

//! systemd integration over `sd_notify(3)`: `READY=1` once the config is loaded and the API
//! socket is bound, `RELOADING=1`/`READY=1` around reloads (what `Type=notify-reload` expects),
//! `STOPPING=1` at shutdown, and `STATUS=` lines: a one-line summary of the node
//! ([`summary`]) sent when it changes, at most once per [`STATUS_MIN_GAP`] ([`StatusLimiter`]).
//! The watchdog's liveness-driven pings are in [`crate::watchdog`].
//!
//! Every call is a no-op without `NOTIFY_SOCKET`, so the daemon runs the same under systemd, in
//! a container or in a test. Failures are logged, never fatal: a lost notification must not
//! take a load balancer down.
//!
//! `NOTIFY_SOCKET` stays in the environment because we notify more than once; child processes
//! (notify scripts, in a later issue) must have it removed from their environment.

use std::fmt::Write;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use sd_notify::NotifyState;

use crate::lb::LbSummary;
use crate::metrics::CoordSnapshot;
use crate::vrrp::InstanceStatus;

/// Fewest seconds between two `STATUS=` lines: a flapping instance must not flood the journal's
/// view of the unit.
pub const STATUS_MIN_GAP: Duration = Duration::from_secs(1);

/// Beyond this many VRRP instances the summary counts states instead of naming instances.
const NAMED_INSTANCES: usize = 6;

/// Start-up finished: config loaded, API socket bound.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts. systemd requires `MONOTONIC_USEC` alongside `RELOADING=1`, to match the
/// reload to the `READY=1` that ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(error) => tracing::warn!(%error, "cannot read CLOCK_MONOTONIC for sd_notify"),
    }
}

/// A new one-line summary for `systemctl status`.
pub fn status(line: &str) {
    send(&[NotifyState::Status(line)]);
}

/// Whether systemd listens for notifications at all (`NOTIFY_SOCKET` is set).
pub fn enabled() -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some()
}

/// The node in one line, e.g. `2 VRRP instances: VI_1 MASTER, VI_2 BACKUP; 4/5 real servers up;
/// raft follower of 2, term 7`. Parts without anything configured are left out.
pub fn summary(
    vrrp: &[InstanceStatus],
    lvs: Option<&LbSummary>,
    coord: Option<&CoordSnapshot>,
) -> String {
    let mut parts = Vec::new();
    if !vrrp.is_empty() {
        let noun = if vrrp.len() == 1 {
            "instance"
        } else {
            "instances"
        };
        let detail = if vrrp.len() <= NAMED_INSTANCES {
            vrrp.iter()
                .map(|i| format!("{} {}", i.name, i.state.to_uppercase()))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            ["master", "backup", "fault", "initialize"]
                .iter()
                .filter_map(|state| {
                    let n = vrrp.iter().filter(|i| i.state == *state).count();
                    (n > 0).then(|| format!("{n} {}", state.to_uppercase()))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        parts.push(format!("{} VRRP {noun}: {detail}", vrrp.len()));
    }
    if let Some(lvs) = lvs.filter(|l| l.virtual_servers > 0) {
        let mut part = format!(
            "{}/{} real servers up",
            lvs.real_servers_up, lvs.real_servers
        );
        let lost = lvs.virtual_servers - lvs.virtual_servers_up.min(lvs.virtual_servers);
        if lost > 0 {
            let _ = write!(
                part,
                ", {lost}/{} virtual servers below quorum",
                lvs.virtual_servers
            );
        }
        if lvs.ipvs != "ok" {
            // `unavailable: <why>` can be long; its first word says enough here.
            let word = lvs.ipvs.split(':').next().unwrap_or_default();
            let _ = write!(part, ", ipvs {word}");
        }
        parts.push(part);
    }
    if let Some(c) = coord {
        let role = match (c.role, c.leader) {
            ("follower" | "learner", Some(leader)) => format!("raft {} of {leader}", c.role),
            ("follower" | "learner", None) => format!("raft {}, no leader", c.role),
            (role, _) => format!("raft {role}"),
        };
        parts.push(format!("{role}, term {}", c.term));
    }
    if parts.is_empty() {
        "running".to_owned()
    } else {
        parts.join("; ")
    }
}

/// Decides when a summary goes out: only when it changed, and at most once per `min_gap`. A
/// change that comes too soon waits for the next offer (the reporter offers every poll), so
/// the last state of a burst is always sent.
#[derive(Debug)]
pub struct StatusLimiter {
    min_gap: Duration,
    last: Option<(Instant, String)>,
}

impl StatusLimiter {
    /// Nothing sent yet.
    pub fn new(min_gap: Duration) -> Self {
        Self {
            min_gap,
            last: None,
        }
    }

    /// Records `line` as sent at `now` by someone else (`READY=1` carries a summary).
    pub fn sent(&mut self, now: Instant, line: String) {
        self.last = Some((now, line));
    }

    /// The last line sent, if any.
    pub fn last(&self) -> Option<&str> {
        self.last.as_ref().map(|(_, line)| line.as_str())
    }

    /// `Some(line)` when it should be sent now (and records it as sent).
    pub fn offer(&mut self, now: Instant, line: String) -> Option<String> {
        if let Some((at, last)) = &self.last
            && (*last == line || now.saturating_duration_since(*at) < self.min_gap)
        {
            return None;
        }
        self.last = Some((now, line.clone()));
        Some(line)
    }
}

/// Sends [`summary`] lines as they change: polls `summarize` every `poll`, passes each line
/// through `limiter`. Runs until aborted.
pub async fn report_status<F, Fut>(
    mut summarize: F,
    limiter: Arc<Mutex<StatusLimiter>>,
    poll: Duration,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = String>,
{
    let mut tick = tokio::time::interval(poll);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let line = summarize().await;
        let send = limiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .offer(Instant::now(), line);
        if let Some(line) = send {
            status(&line);
        }
    }
}

/// Graceful shutdown starts.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "sd_notify failed");
    }
}

/// The systemd watchdog hook (`WatchdogSec=`): where and how often to ping. *Whether* to ping
/// is decided by [`crate::watchdog::run`] from the components' liveness.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    interval: Option<Duration>,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID`; disabled when they are absent or name another PID.
    pub fn from_env() -> Self {
        let mut usec = 0;
        let interval = sd_notify::watchdog_enabled(false, &mut usec)
            // Ping at half the deadline, as sd_watchdog_enabled(3) recommends.
            .then(|| Duration::from_micros(usec / 2))
            .filter(|d| !d.is_zero());
        Self { interval }
    }

    /// How often to ping; `None` when systemd does not watch this process.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Tells systemd the daemon is alive.
    pub fn ping(&self) {
        if self.interval.is_some() {
            send(&[NotifyState::Watchdog]);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn instance(name: &str, state: &str) -> InstanceStatus {
        InstanceStatus {
            name: name.into(),
            interface: "eth0".into(),
            vrid: 1,
            state: state.into(),
            priority: 100,
            effective_priority: 100,
            master: None,
            since_unix: 0,
            last_reason: None,
            adverts_in: 0,
            adverts_out: 0,
            discards: BTreeMap::new(),
            errors: 0,
            last_error: None,
            vips_held: Vec::new(),
            tracks_down: Vec::new(),
            transitions: Vec::new(),
            fencing: None,
        }
    }

    fn lvs(vs: usize, vs_up: usize, rs: usize, rs_up: usize, ipvs: &str) -> LbSummary {
        LbSummary {
            ipvs: ipvs.into(),
            virtual_servers: vs,
            virtual_servers_up: vs_up,
            real_servers: rs,
            real_servers_up: rs_up,
        }
    }

    #[test]
    fn summary_names_instances_servers_and_raft() {
        let vrrp = [instance("VI_1", "master"), instance("VI_2", "backup")];
        let coord = CoordSnapshot {
            role: "follower",
            leader: Some(2),
            term: 7,
            ..CoordSnapshot::default()
        };
        assert_eq!(
            summary(&vrrp, Some(&lvs(2, 2, 5, 4, "ok")), Some(&coord)),
            "2 VRRP instances: VI_1 MASTER, VI_2 BACKUP; 4/5 real servers up; raft follower of 2, term 7"
        );
    }

    #[test]
    fn summary_of_degraded_and_empty_nodes() {
        let one = [instance("VI_1", "fault")];
        let leader = CoordSnapshot {
            role: "leader",
            leader: Some(1),
            term: 3,
            ..CoordSnapshot::default()
        };
        assert_eq!(
            summary(
                &one,
                Some(&lvs(2, 1, 4, 1, "unavailable: no ip_vs")),
                Some(&leader)
            ),
            "1 VRRP instance: VI_1 FAULT; 1/4 real servers up, 1/2 virtual servers below quorum, ipvs unavailable; raft leader, term 3"
        );
        let lost = CoordSnapshot {
            role: "follower",
            term: 9,
            ..CoordSnapshot::default()
        };
        assert_eq!(
            summary(&[], Some(&lvs(0, 0, 0, 0, "unused: none")), Some(&lost)),
            "raft follower, no leader, term 9"
        );
        assert_eq!(summary(&[], None, None), "running");
    }

    #[test]
    fn many_instances_are_counted_by_state() {
        let mut vrrp: Vec<_> = (0..5)
            .map(|i| instance(&format!("m{i}"), "master"))
            .collect();
        vrrp.extend((0..3).map(|i| instance(&format!("b{i}"), "backup")));
        assert_eq!(
            summary(&vrrp, None, None),
            "8 VRRP instances: 5 MASTER, 3 BACKUP"
        );
    }

    #[test]
    fn status_lines_only_on_change_and_rate_limited() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut limiter = StatusLimiter::new(Duration::from_secs(1));
        assert_eq!(limiter.offer(t0, "a".into()).as_deref(), Some("a"));
        assert_eq!(limiter.offer(t0 + ms(1500), "a".into()), None, "unchanged");
        assert_eq!(
            limiter.offer(t0 + ms(1600), "b".into()).as_deref(),
            Some("b")
        );
        // A burst within the gap: held back, then the latest goes out once the gap has passed.
        assert_eq!(limiter.offer(t0 + ms(1700), "c".into()), None);
        assert_eq!(limiter.offer(t0 + ms(2000), "d".into()), None);
        assert_eq!(
            limiter.offer(t0 + ms(2600), "d".into()).as_deref(),
            Some("d")
        );
        assert_eq!(limiter.last(), Some("d"));
        // What READY=1 carried counts as sent.
        limiter.sent(t0 + ms(5000), "e".into());
        assert_eq!(limiter.offer(t0 + ms(7000), "e".into()), None);
    }
}

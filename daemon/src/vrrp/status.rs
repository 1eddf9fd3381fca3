//! The status of each VRRP instance as `GET /v1/vrrp` and `vigilctl status` show it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};
use vigil_vrrp::instance::{Instance, State};
use vigil_vrrp::stats::DiscardReason;

/// One instance, serialisable; the wire type of `GET /v1/vrrp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// Interface the adverts use.
    pub interface: String,
    /// Virtual router id.
    pub vrid: u8,
    /// `initialize`, `backup`, `master` or `fault`.
    pub state: String,
    /// Priority from the config.
    pub priority: u8,
    /// Priority advertised after tracking.
    pub effective_priority: u8,
    /// The current master, when known (ourselves when master).
    pub master: Option<IpAddr>,
    /// Unix time (seconds) of the last transition, or of the start when none happened yet.
    pub since_unix: u64,
    /// Why the last transition happened (`startup`, `master_down`, `preempted`, …).
    pub last_reason: Option<String>,
    /// Adverts received (and processed).
    pub adverts_in: u64,
    /// Adverts sent.
    pub adverts_out: u64,
    /// Received adverts discarded, by reason; only non-zero reasons appear.
    pub discards: BTreeMap<String, u64>,
    /// Send, address and announcement failures.
    pub errors: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// VIPs this node has configured right now.
    pub vips_held: Vec<IpAddr>,
    /// Tracked objects currently failing (their keys, e.g. `script:chk_web`).
    pub tracks_down: Vec<String>,
    /// Transitions since the instance (re)started, by from, to and reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transitions: Vec<TransitionCount>,
    /// Quorum fencing (`fencing = "quorum"` only): lease, owner node and fencing token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fencing: Option<crate::fence::FenceStatus>,
}

/// How often one kind of transition happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransitionCount {
    /// The state left.
    pub from: String,
    /// The state entered.
    pub to: String,
    /// Why (`master_down`, `preempted`, …).
    pub reason: String,
    /// How many times.
    pub count: u64,
}

/// Counters the I/O shell keeps besides the state machine's own.
#[derive(Debug, Clone, Default)]
pub(crate) struct ShellStats {
    /// Packets the shell dropped before the state machine saw them, by reason.
    pub(crate) discards: BTreeMap<&'static str, u64>,
    pub(crate) errors: u64,
    pub(crate) last_error: Option<String>,
    pub(crate) last_reason: Option<&'static str>,
    pub(crate) vips_held: Vec<IpAddr>,
    pub(crate) tracks_down: Vec<String>,
    /// Transitions by (from, to, reason); a bounded set (states × reasons).
    pub(crate) transitions: BTreeMap<(&'static str, &'static str, &'static str), u64>,
    /// The fencing task's view of a fenced instance.
    pub(crate) fencing: Option<crate::fence::FenceStatus>,
}

impl ShellStats {
    pub(crate) fn discard(&mut self, reason: &'static str) {
        *self.discards.entry(reason).or_default() += 1;
    }

    pub(crate) fn transition(
        &mut self,
        from: &'static str,
        to: &'static str,
        reason: &'static str,
    ) {
        *self.transitions.entry((from, to, reason)).or_default() += 1;
    }

    pub(crate) fn error(&mut self, message: String) {
        self.errors += 1;
        self.last_error = Some(message);
    }
}

impl InstanceStatus {
    /// An instance whose task has not got its sockets yet.
    pub(crate) fn pending(instance: &vigil_conf::VrrpInstance) -> Self {
        Self {
            name: instance.name.clone(),
            interface: instance.interface.clone(),
            vrid: instance.vrid,
            state: state_name(State::Initialize).to_owned(),
            priority: instance.priority,
            effective_priority: instance.priority,
            master: None,
            since_unix: SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
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

    /// The status of `instance`, configured as `configured` (which follows priority updates). `started` is when the task started; `now` and
    /// `wall_now` are one moment on both clocks, to turn the monotonic transition time into a
    /// wall-clock one.
    pub(crate) fn capture(
        instance: &Instance,
        configured: &vigil_conf::VrrpInstance,
        shell: &ShellStats,
        started: Instant,
        now: Instant,
        wall_now: SystemTime,
    ) -> Self {
        let stats = instance.stats();
        let mut discards: BTreeMap<String, u64> = DiscardReason::ALL
            .iter()
            .filter(|r| stats.discarded(**r) > 0)
            .map(|r| (r.as_str().to_owned(), stats.discarded(*r)))
            .collect();
        for (reason, count) in &shell.discards {
            *discards.entry((*reason).to_owned()).or_default() += count;
        }
        let since = stats.last_transition.unwrap_or(started);
        let ago = now.saturating_duration_since(since);
        let since_unix = wall_now
            .checked_sub(ago)
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .map_or(0, |d: Duration| d.as_secs());
        Self {
            name: instance.config().name.clone(),
            interface: configured.interface.clone(),
            vrid: instance.config().vrid,
            state: state_name(instance.state()).to_owned(),
            priority: configured.priority,
            effective_priority: instance.effective_priority(),
            master: instance.master_address(),
            since_unix,
            last_reason: shell.last_reason.map(str::to_owned),
            adverts_in: stats.adverts_rx,
            adverts_out: stats.adverts_tx,
            discards,
            errors: shell.errors,
            last_error: shell.last_error.clone(),
            vips_held: shell.vips_held.clone(),
            tracks_down: shell.tracks_down.clone(),
            transitions: shell
                .transitions
                .iter()
                .map(|((from, to, reason), count)| TransitionCount {
                    from: (*from).to_owned(),
                    to: (*to).to_owned(),
                    reason: (*reason).to_owned(),
                    count: *count,
                })
                .collect(),
            fencing: shell.fencing.clone(),
        }
    }

    /// Total discards.
    pub fn discards_total(&self) -> u64 {
        self.discards.values().sum()
    }
}

/// Lower-case state name, as logs and notify scripts see it.
pub fn state_name(state: State) -> &'static str {
    state.as_str()
}

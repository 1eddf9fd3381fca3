//! The status of each VRRP instance as `GET /v1/vrrp` and `vigilctl status` show it.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError, TryLockError};
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

/// The latest status of one instance: written by its unit thread, read by the API, `vigilctl
/// status` and the metrics.
///
/// The unit thread runs real-time and must never wait for a reader: a reader on a normally
/// scheduled thread that is preempted while it holds a lock (on a starved CPU, for milliseconds)
/// would otherwise hold the adverts up. So readers hold the lock only to clone an [`Arc`] (no
/// allocation, no I/O), and the writer ([`StatusPublisher`]) only ever `try_lock`s: when a
/// reader has the lock it keeps the status and publishes it on its next pass (the next event
/// or timer, at the latest the unit's heartbeat).
#[derive(Debug, Clone)]
pub(crate) struct StatusCell(Arc<Mutex<Arc<InstanceStatus>>>);

impl StatusCell {
    /// A cell holding `status`, and the unit's publisher for it.
    pub(crate) fn new(status: InstanceStatus) -> (Self, StatusPublisher) {
        let cell = Self(Arc::new(Mutex::new(Arc::new(status))));
        let publisher = StatusPublisher {
            cell: cell.clone(),
            pending: None,
            skipped: 0,
        };
        (cell, publisher)
    }

    /// The last published status.
    pub(crate) fn get(&self) -> InstanceStatus {
        let latest = Arc::clone(&self.0.lock().unwrap_or_else(PoisonError::into_inner));
        InstanceStatus::clone(&latest)
    }
}

/// The unit's side of a [`StatusCell`]; never blocks.
#[derive(Debug)]
pub(crate) struct StatusPublisher {
    cell: StatusCell,
    /// A status a reader kept from being published.
    pending: Option<Arc<InstanceStatus>>,
    /// Publications put off because a reader held the lock (for tests and curiosity).
    skipped: u64,
}

impl StatusPublisher {
    /// Publishes `status`, or keeps it for [`flush`](Self::flush) when a reader has the cell.
    pub(crate) fn publish(&mut self, status: InstanceStatus) {
        self.pending = Some(Arc::new(status));
        self.flush();
    }

    /// Publishes the status a reader kept back, if any; `true` when nothing is left pending.
    pub(crate) fn flush(&mut self) -> bool {
        let Some(status) = self.pending.take() else {
            return true;
        };
        let previous = match self.cell.0.try_lock() {
            Ok(mut latest) => std::mem::replace(&mut *latest, status),
            Err(TryLockError::Poisoned(poisoned)) => {
                std::mem::replace(&mut *poisoned.into_inner(), status)
            }
            Err(TryLockError::WouldBlock) => {
                self.skipped += 1;
                self.pending = Some(status);
                return false;
            }
        };
        // Freed (if no reader still has it) after the lock is released.
        drop(previous);
        true
    }

    /// How many publications a reader has put off so far.
    #[cfg(test)]
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }
}

/// Lower-case state name, as logs and notify scripts see it.
pub fn state_name(state: State) -> &'static str {
    state.as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(name: &str) -> InstanceStatus {
        let instance: vigil_conf::VrrpInstance = vigil_conf::load_str(
            &format!(
                "[[vrrp_instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = 1\n\
                 vips = [\"10.0.0.1\"]\nfencing = \"off\"\n"
            ),
            "t.toml",
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .vrrp_instances
        .remove(0);
        InstanceStatus::pending(&instance)
    }

    #[test]
    fn a_reader_holding_the_cell_never_blocks_the_publisher() {
        let (cell, mut publisher) = StatusCell::new(named("a"));
        assert_eq!(cell.get().name, "a");
        // A reader that stalls while it holds the lock (a preempted thread).
        let held = cell.0.lock().expect("not poisoned");
        publisher.publish(named("b"));
        assert_eq!(publisher.skipped(), 1, "put off, not waited for");
        assert!(!publisher.flush(), "still held");
        drop(held);
        assert_eq!(cell.get().name, "a", "not published yet");
        assert!(publisher.flush());
        assert_eq!(cell.get().name, "b");
        assert!(publisher.flush(), "nothing pending");
        // A newer status replaces one still pending.
        let held = cell.0.lock().expect("not poisoned");
        publisher.publish(named("c"));
        publisher.publish(named("d"));
        drop(held);
        assert!(publisher.flush());
        assert_eq!(cell.get().name, "d");
    }

    #[test]
    fn readers_on_other_threads_see_each_published_status_eventually() {
        let (cell, mut publisher) = StatusCell::new(named("s0"));
        // A reader hammering the cell meanwhile, as `vigilctl status` in a loop would.
        let reader = {
            let cell = cell.clone();
            std::thread::spawn(move || {
                for _ in 0..100_000 {
                    if cell.get().name == "s999" {
                        break;
                    }
                }
            })
        };
        for i in 0..1000 {
            publisher.publish(named(&format!("s{i}")));
        }
        // Bounded: a reader holds the lock only to clone an Arc.
        for _ in 0..1_000_000 {
            if publisher.flush() {
                break;
            }
            std::thread::yield_now();
        }
        assert_eq!(cell.get().name, "s999");
        reader.join().expect("reader");
    }
}

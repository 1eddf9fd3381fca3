//! One VRRP instance: a sans-I/O state machine driven by inputs and time.
//!
//! The daemon owns the sockets and the clock; this type owns the protocol decisions. Decoding is
//! not done here: the daemon passes decoded [`Advertisement`]s with their source and TTL.

mod fsm;
mod receive;

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

pub use self::fsm::{Reason, State};
use crate::config::{ConfigError, GarpConfig, InstanceConfig, TrackConfig, centiseconds};
use crate::packet::{Advertisement, Auth, Version};
use crate::stats::{DiscardReason, Mismatch, Stats};
use crate::timer::{Timer, TimerTable};
use crate::track::{TrackError, Tracker};

/// An event from the outside world.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The Startup event (RFC 9568 §6.4.1): leave Initialize.
    Startup,
    /// The Shutdown event: a master sends priority 0 and drops its VIPs; back to Initialize.
    Shutdown,
    /// A decoded advertisement.
    Advert {
        /// IP source address: the sender's primary address, used for the tie-break.
        src: IpAddr,
        /// IPv4 TTL or IPv6 hop limit as received.
        ttl: u8,
        /// The decoded packet.
        advert: Advertisement,
    },
    /// A new configured priority (1..=255), e.g. from `vigilctl` or a reload.
    SetPriority(u8),
    /// A new Advertisement_Interval in centiseconds (a reload). A master advertises it at once,
    /// so v3 backups adopt it as their Master_Adver_Interval with the next advert (RFC 9568
    /// §6.4.2); v2 peers discard adverts whose interval differs from theirs (RFC 3768 §7.1), so
    /// a v2 change has to be made on every router.
    SetAdvertInterval(u16),
    /// A new list of virtual addresses (a reload). A master removes the ones that went, adds
    /// and announces the new ones and advertises the new list at once; the addresses it keeps
    /// are not touched. Other states only remember it.
    SetAddresses(Vec<IpAddr>),
    /// A tracked object went up or down.
    Track {
        /// The [`TrackConfig::name`](crate::config::TrackConfig::name).
        name: String,
        /// New status.
        up: bool,
    },
    /// A tracked object's weight changed (−254..=254).
    TrackWeight {
        /// The [`TrackConfig::name`](crate::config::TrackConfig::name).
        name: String,
        /// New weight; 0 makes "down" a fault.
        weight: i32,
    },
    /// A new set of tracked objects (a reload that adds, removes or re-weighs tracks), applied
    /// without a restart: the effective priority and the fault are recomputed through the same
    /// path as a [`Track`](Self::Track) report, so a master whose priority changes advertises
    /// at once and a weight-0 object that is down faults the instance.
    ///
    /// An object tracked before and after keeps the status its source reported (the source
    /// keeps running and reports only changes). A new object starts as its
    /// [`TrackConfig::up`](crate::config::TrackConfig::up) says, exactly as when the instance
    /// starts with it: the daemon assumes a new script or interface up until it reports
    /// otherwise, so adding a track script to a running master cannot fault it (or lower its
    /// priority) before the script has failed `fall` times; keepalived's scripts likewise
    /// change nothing before their first result.
    SetTracks {
        /// The complete new set.
        tracks: Vec<TrackConfig>,
        /// Kept names that start over as `tracks` says anyway, because their source restarted
        /// with no memory of the old status (e.g. a tracked file read again).
        reset: Vec<String>,
    },
    /// New preemption, accept-mode and announcement settings (a reload). Nothing changes
    /// state at once: preemption rules apply from the next advert (a delayed preemption under
    /// way starts counting again with the new delay, or is off with `preempt = false`), a
    /// master re-arms its periodic announcement for the new refresh period.
    SetOptions {
        /// Preempt_Mode (RFC 9568 §6.1).
        preempt: bool,
        /// keepalived's `preempt_delay`.
        preempt_delay: Duration,
        /// Accept_Mode (RFC 9568 §6.1).
        accept_mode: bool,
        /// Gratuitous ARP / unsolicited NA bursts.
        garp: GarpConfig,
    },
    /// The interface (or anything else the daemon judges fatal) failed or recovered.
    Fault {
        /// `true` while the fault lasts.
        active: bool,
    },
}

/// Something the daemon must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement (TTL/hop limit 255) to the group or the unicast peers.
    SendAdvert(Advertisement),
    /// Configure the VIPs (IPv6 with `nodad`). Accept mode: [`Instance::accept_mode`].
    AddVips(Vec<IpAddr>),
    /// Remove the VIPs.
    RemoveVips(Vec<IpAddr>),
    /// Send a burst of gratuitous ARP (IPv4) or unsolicited NA (IPv6) for these addresses.
    SendGratuitous {
        /// The VIPs to announce.
        addresses: Vec<IpAddr>,
        /// Packets in the burst; the daemon spaces them.
        count: u32,
    },
    /// The state changed; run notify scripts, log, count.
    StateChanged {
        /// Previous state.
        from: State,
        /// New state.
        to: State,
        /// Why.
        reason: Reason,
    },
    /// An advert was discarded; log (rate-limited) and count.
    Discarded {
        /// Source of the advert.
        src: IpAddr,
        /// Why.
        reason: DiscardReason,
    },
    /// An advert was processed despite disagreeing with our configuration; log (rate-limited).
    Mismatch {
        /// Source of the advert.
        src: IpAddr,
        /// What disagreed.
        mismatch: Mismatch,
    },
}

/// An input the instance refused; its state is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// Priority 0 is reserved for shutdown adverts.
    #[error("instance {name}: priority 0 is reserved")]
    Priority {
        /// The instance.
        name: String,
    },
    /// A new interval or address list the instance cannot run with (e.g. a v2 interval that is
    /// not whole seconds, an address of the other family).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A tracking update named an unknown object or carried a bad weight.
    #[error("instance {name}: {source}")]
    Track {
        /// The instance.
        name: String,
        /// What was wrong.
        source: TrackError,
    },
}

/// The master we last accepted an advert from, while backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Master {
    address: IpAddr,
    priority: u8,
}

/// One VRRP virtual router on one interface.
///
/// Methods come in four kinds (quinn-proto's convention):
/// * inputs: [`handle`](Self::handle) and [`handle_timeout`](Self::handle_timeout);
/// * outputs: [`poll_action`](Self::poll_action) and [`poll_timeout`](Self::poll_timeout);
/// * queries: [`state`](Self::state), [`stats`](Self::stats), [`effective_priority`](Self::effective_priority), …
/// * construction: [`new`](Self::new).
///
/// After every input the daemon drains `poll_action` until `None`, then re-arms its one timer
/// at `poll_timeout`. Time must not go backwards; an earlier `now` is treated as the latest seen.
#[derive(Debug)]
pub struct Instance {
    config: InstanceConfig,
    state: State,
    /// Startup seen and no Shutdown since: leaving Fault re-runs the Startup logic.
    started: bool,
    /// The daemon's fault (interface down).
    fault: bool,
    /// Fault imposed by the sync group because another member is faulty.
    sync_fault: bool,
    /// The sync group forbids going master on our own (another member defers to a live master).
    sync_hold: bool,
    priority: u8,
    tracker: Tracker,
    /// Master_Adver_Interval (RFC 9568: Active_Adver_Interval): a v3 backup adopts the master's.
    master_adver_interval: Duration,
    master: Option<Master>,
    /// When a pending preemption of a lower-priority master may happen (`preempt_delay`).
    preempt_at: Option<Instant>,
    timers: TimerTable,
    actions: VecDeque<Action>,
    stats: Stats,
    now: Instant,
}

impl Instance {
    /// A new instance in Initialize; nothing happens until [`Input::Startup`].
    pub fn new(config: InstanceConfig, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            state: State::Initialize,
            started: false,
            fault: false,
            sync_fault: false,
            sync_hold: false,
            priority: config.priority,
            tracker: Tracker::new(&config.tracks),
            master_adver_interval: config.advert_interval(),
            master: None,
            preempt_at: None,
            timers: TimerTable::default(),
            actions: VecDeque::new(),
            stats: Stats::default(),
            now,
            config,
        })
    }

    /// Processes one input at `now`.
    pub fn handle(&mut self, now: Instant, input: Input) -> Result<(), InputError> {
        let now = self.advance(now);
        match input {
            Input::Startup => self.startup(now),
            Input::Shutdown => self.shutdown(now),
            Input::Advert { src, ttl, advert } => self.receive(now, src, ttl, &advert),
            Input::SetPriority(priority) => {
                if priority == 0 {
                    return Err(InputError::Priority {
                        name: self.config.name.clone(),
                    });
                }
                let before = self.effective_priority();
                self.priority = priority;
                self.priority_changed(now, before);
            }
            Input::SetAdvertInterval(cs) => {
                let mut next = self.config.clone();
                next.advert_interval_cs = cs;
                next.validate()?;
                self.config = next;
                self.advert_interval_changed(now);
            }
            Input::SetAddresses(addresses) => {
                let mut next = self.config.clone();
                next.addresses = addresses;
                next.validate()?;
                let old = std::mem::replace(&mut self.config, next).addresses;
                self.addresses_changed(now, &old);
            }
            Input::Track { name, up } => {
                let before = self.effective_priority();
                self.tracker
                    .set_up(&name, up)
                    .map_err(|e| self.track_error(e))?;
                self.priority_changed(now, before);
                self.fault_changed(now, Reason::Fault);
            }
            Input::TrackWeight { name, weight } => {
                let before = self.effective_priority();
                self.tracker
                    .set_weight(&name, weight)
                    .map_err(|e| self.track_error(e))?;
                self.priority_changed(now, before);
                self.fault_changed(now, Reason::Fault);
            }
            Input::SetTracks { tracks, reset } => {
                let mut next = self.config.clone();
                next.tracks = tracks;
                next.validate()?;
                let before = self.effective_priority();
                self.tracker.replace(&next.tracks, &reset);
                self.config = next;
                self.priority_changed(now, before);
                self.fault_changed(now, Reason::Fault);
            }
            Input::SetOptions {
                preempt,
                preempt_delay,
                accept_mode,
                garp,
            } => {
                if preempt != self.config.preempt || preempt_delay != self.config.preempt_delay {
                    self.preempt_at = None;
                }
                let refresh_changed = garp.refresh != self.config.garp.refresh;
                self.config.preempt = preempt;
                self.config.preempt_delay = preempt_delay;
                self.config.accept_mode = accept_mode;
                self.config.garp = garp;
                if refresh_changed && self.state == State::Master {
                    match garp.refresh {
                        Some(period) => self.timers.set(Timer::GarpRefresh, now + period),
                        None => self.timers.stop(Timer::GarpRefresh),
                    }
                }
            }
            Input::Fault { active } => {
                self.fault = active;
                self.fault_changed(now, Reason::Fault);
            }
        }
        Ok(())
    }

    /// Fires every timer due at or before `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let now = self.advance(now);
        while let Some(timer) = self.timers.pop_expired(now) {
            self.fire(now, timer);
        }
    }

    /// The next thing for the daemon to do.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Whether [`poll_action`](Self::poll_action) has something.
    pub(crate) fn has_pending_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next_timeout()
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration the instance runs.
    pub fn config(&self) -> &InstanceConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The priority advertised: configured priority adjusted by tracking (see [`crate::track`]).
    pub fn effective_priority(&self) -> u8 {
        self.tracker.effective_priority(self.priority)
    }

    /// The status of the tracked object `name` (its last report, or its initial status), if
    /// tracked.
    pub fn track_is_up(&self, name: &str) -> Option<bool> {
        self.tracker.is_up(name)
    }

    /// Whether this router owns the addresses (RFC 9568 §6.1): configured priority 255.
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Whether the daemon should accept packets addressed to the VIPs while master
    /// (RFC 9568 §6.1 Accept_Mode; the owner always accepts).
    pub fn accept_mode(&self) -> bool {
        self.config.accept_mode || self.is_owner()
    }

    /// The current master as far as this instance knows: itself when master, the last accepted
    /// advert's source when backup, unknown otherwise.
    pub fn master_address(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.config.primary_address),
            State::Backup => self.master.map(|m| m.address),
            State::Initialize | State::Fault => None,
        }
    }

    /// Master_Down_Interval currently in force.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(
            self.config.version,
            self.effective_priority(),
            self.master_adver_interval,
        )
    }

    /// Whether this backup defers, on its own account, to a live master: one with a higher or
    /// equal priority, or any master when it may not preempt. Sync groups use this to hold back
    /// the other members.
    pub fn yields_to_master(&self) -> bool {
        self.state == State::Backup
            && self
                .master
                .is_some_and(|m| m.priority >= self.effective_priority() || !self.preempts())
    }

    /// Fault from this instance's own inputs (not from its sync group).
    pub(crate) fn has_own_fault(&self) -> bool {
        self.started && (self.fault || self.tracker.is_fault())
    }

    pub(crate) fn set_sync_hold(&mut self, hold: bool) {
        self.sync_hold = hold;
    }

    pub(crate) fn set_sync_fault(&mut self, now: Instant, active: bool) {
        if self.sync_fault != active {
            self.sync_fault = active;
            self.fault_changed(now, Reason::SyncGroup);
        }
    }

    /// The sync group moves this member to Master with the others.
    pub(crate) fn sync_promote(&mut self, now: Instant) {
        if self.state == State::Backup {
            self.become_master(now, Reason::SyncGroup);
        }
    }

    /// The sync group moves this member to Backup with the others.
    pub(crate) fn sync_demote(&mut self, now: Instant) {
        if self.state == State::Master {
            self.become_backup(now, Reason::SyncGroup);
        }
    }

    /// RFC 9568 §6.1: the owner always preempts whatever Preempt_Mode says.
    fn preempts(&self) -> bool {
        self.config.preempt || self.is_owner()
    }

    fn in_fault(&self) -> bool {
        self.fault || self.sync_fault || self.tracker.is_fault()
    }

    fn advance(&mut self, now: Instant) -> Instant {
        self.now = self.now.max(now);
        self.now
    }

    fn track_error(&self, source: TrackError) -> InputError {
        InputError::Track {
            name: self.config.name.clone(),
            source,
        }
    }

    /// A master announces a new priority at once so backups re-evaluate preemption without
    /// waiting an interval; a backup's new priority only matters when the next advert arrives.
    fn priority_changed(&mut self, now: Instant, before: u8) {
        if self.effective_priority() != before && self.state == State::Master {
            self.send_advert(now);
        }
    }

    /// A master advertises the new interval at once (and from then on every new interval). A
    /// backup that follows no master, or speaks v2 (where the interval is not learned from the
    /// master), uses it for its next Master_Down_Interval; a v3 backup keeps its master's.
    fn advert_interval_changed(&mut self, now: Instant) {
        match self.state {
            State::Master => self.send_advert(now),
            State::Backup if self.config.version == Version::V2 || self.master.is_none() => {
                self.master_adver_interval = self.config.advert_interval();
            }
            State::Initialize | State::Fault | State::Backup => {}
        }
    }

    /// A master gives up the addresses that went and takes (and announces) the new ones, then
    /// advertises the new list so backups do not log a mismatch; kept addresses stay up.
    fn addresses_changed(&mut self, now: Instant, old: &[IpAddr]) {
        if self.state != State::Master {
            return;
        }
        let new = &self.config.addresses;
        let removed: Vec<IpAddr> = old.iter().filter(|a| !new.contains(a)).copied().collect();
        let added: Vec<IpAddr> = new.iter().filter(|a| !old.contains(a)).copied().collect();
        if removed.is_empty() && added.is_empty() {
            return;
        }
        if !removed.is_empty() {
            self.actions.push_back(Action::RemoveVips(removed));
        }
        if !added.is_empty() {
            self.actions.push_back(Action::AddVips(added.clone()));
            if self.config.garp.repeat > 0 {
                self.actions.push_back(Action::SendGratuitous {
                    addresses: added,
                    count: self.config.garp.repeat,
                });
            }
        }
        self.send_advert(now);
    }

    /// The advertisement we send, at `priority`.
    fn advertisement(&self, priority: u8) -> Advertisement {
        Advertisement {
            version: self.config.version,
            vrid: self.config.vrid,
            priority,
            max_advert_int: self.config.advert_interval_cs,
            auth: match self.config.version {
                Version::V2 => self.config.auth.clone(),
                Version::V3 => Auth::None,
            },
            addresses: self.config.addresses.clone(),
        }
    }

    /// Sends an advert at the effective priority and restarts Adver_Timer.
    fn send_advert(&mut self, now: Instant) {
        let advert = self.advertisement(self.effective_priority());
        self.actions.push_back(Action::SendAdvert(advert));
        self.stats.adverts_tx += 1;
        self.timers
            .set(Timer::Adver, now + self.config.advert_interval());
    }

    /// A master leaving sends priority 0 so backups take over after Skew_Time (RFC 9568 §6.4.3).
    fn send_leaving_advert(&mut self) {
        self.actions
            .push_back(Action::SendAdvert(self.advertisement(0)));
        self.stats.adverts_tx += 1;
        self.stats.priority_zero_tx += 1;
    }

    fn discard(&mut self, src: IpAddr, reason: DiscardReason) {
        self.stats.count_discard(reason);
        self.actions.push_back(Action::Discarded { src, reason });
    }

    fn mismatch(&mut self, src: IpAddr, mismatch: Mismatch) {
        self.stats.count_mismatch(mismatch);
        self.actions.push_back(Action::Mismatch { src, mismatch });
    }
}

/// Skew_Time for `priority` (RFC 3768 §6.1 for v2, RFC 9568 §6.1 for v3).
///
/// v3: `((256 − Priority) · Master_Adver_Interval) / 256`. v2: `(256 − Priority) / 256` seconds,
/// independent of the interval, as RFC 3768 (and keepalived) define it. Computed on durations
/// rather than whole centiseconds so 10 ms intervals keep distinct skews per priority.
pub fn skew_time(version: Version, priority: u8, master_adver_interval: Duration) -> Duration {
    let base = match version {
        Version::V2 => Duration::from_secs(1),
        Version::V3 => master_adver_interval,
    };
    base * (256 - u32::from(priority)) / 256
}

/// Master_Down_Interval = 3 · Master_Adver_Interval + Skew_Time (RFC 3768 §6.1, RFC 9568 §6.1).
pub fn master_down_interval(
    version: Version,
    priority: u8,
    master_adver_interval: Duration,
) -> Duration {
    master_adver_interval * 3 + skew_time(version, priority, master_adver_interval)
}

/// The advert's interval as a duration (centiseconds on the wire for both versions).
fn advert_interval(advert: &Advertisement) -> Duration {
    centiseconds(advert.max_advert_int)
}

//! States, transitions and timer events (RFC 9568 §6.4; RFC 3768 §6.4 for v2).

use std::time::Instant;

use super::{Action, Instance};
use crate::timer::Timer;

/// Protocol state. RFC 9568 renames Master to "Active"; vigil keeps the names operators know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or shut down (RFC 9568 §6.4.1).
    Initialize,
    /// Listening for the master (RFC 9568 §6.4.2).
    Backup,
    /// Forwarding and advertising (RFC 9568 §6.4.3).
    Master,
    /// A fault (interface down, weight-0 track down, sync group fault) keeps the instance silent
    /// and without VIPs — keepalived's FAULT state, outside the RFC.
    Fault,
}

impl State {
    /// Stable lower-case name for logs, metrics and notify scripts.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Initialize => "initialize",
            State::Backup => "backup",
            State::Master => "master",
            State::Fault => "fault",
        }
    }
}

/// Why a transition happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Startup event with priority < 255 (RFC 9568 §6.4.1).
    Startup,
    /// Startup event as the address owner (priority 255, RFC 9568 §6.4.1).
    AddressOwner,
    /// Master_Down_Timer fired: no advert from a master we defer to (RFC 9568 §6.4.2).
    MasterDown,
    /// A master heard a higher priority, or an equal one from a higher address (RFC 9568 §6.4.3).
    Preempted,
    /// Shutdown event.
    Shutdown,
    /// The daemon's fault or a weight-0 tracked object.
    Fault,
    /// All faults cleared; the Startup logic ran again.
    FaultCleared,
    /// The sync group moved this member with the others.
    SyncGroup,
}

impl Reason {
    /// Stable snake-case name for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Startup => "startup",
            Reason::AddressOwner => "address_owner",
            Reason::MasterDown => "master_down",
            Reason::Preempted => "preempted",
            Reason::Shutdown => "shutdown",
            Reason::Fault => "fault",
            Reason::FaultCleared => "fault_cleared",
            Reason::SyncGroup => "sync_group",
        }
    }
}

impl Instance {
    pub(super) fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        self.started = true;
        self.leave_initialize(now, Reason::Startup);
    }

    /// RFC 9568 §6.4.1 Startup, also run when the last fault clears.
    fn leave_initialize(&mut self, now: Instant, reason: Reason) {
        if self.in_fault() {
            self.enter_fault(now, Reason::Fault);
        } else if self.is_owner() && !self.sync_hold {
            let reason = if reason == Reason::Startup {
                Reason::AddressOwner
            } else {
                reason
            };
            self.become_master(now, reason);
        } else {
            self.master_adver_interval = self.config.advert_interval();
            self.become_backup(now, reason);
        }
    }

    /// RFC 9568 §6.4.2/§6.4.3 Shutdown: a master sends priority 0 and drops its VIPs.
    pub(super) fn shutdown(&mut self, now: Instant) {
        self.started = false;
        if self.state == State::Initialize {
            return;
        }
        let was_master = self.state == State::Master;
        self.set_state(now, State::Initialize, Reason::Shutdown);
        if was_master {
            self.send_leaving_advert();
            self.remove_vips();
        }
        self.timers.stop_all();
        self.master = None;
    }

    /// Moves in or out of Fault after any fault source changed.
    pub(super) fn fault_changed(&mut self, now: Instant, reason: super::Reason) {
        if !self.started {
            return;
        }
        match (self.in_fault(), self.state) {
            (true, State::Backup | State::Master) => self.enter_fault(now, reason),
            (false, State::Fault) => self.leave_initialize(now, Reason::FaultCleared),
            _ => {}
        }
    }

    /// A master entering Fault still sends priority 0: if the link half works, backups take over
    /// after Skew_Time instead of Master_Down_Interval (keepalived does the same).
    fn enter_fault(&mut self, now: Instant, reason: Reason) {
        let was_master = self.state == State::Master;
        self.set_state(now, State::Fault, reason);
        if was_master {
            self.send_leaving_advert();
            self.remove_vips();
        }
        self.timers.stop_all();
        self.master = None;
        self.preempt_at = None;
    }

    /// RFC 9568 §6.4.1 / §6.4.2 "transition to Active": advertise, configure the VIPs, announce
    /// them, start Adver_Timer.
    pub(super) fn become_master(&mut self, now: Instant, reason: Reason) {
        self.timers.stop(Timer::MasterDown);
        self.master = None;
        self.preempt_at = None;
        self.set_state(now, State::Master, reason);
        self.stats.became_master += 1;
        self.send_advert(now);
        let addresses = self.config.addresses.clone();
        self.actions.push_back(Action::AddVips(addresses));
        self.send_gratuitous(self.config.garp.repeat);
        if let Some(delay) = self.config.garp.delay {
            self.timers.set(Timer::GarpDelay, now + delay);
        }
        if let Some(period) = self.config.garp.refresh {
            self.timers.set(Timer::GarpRefresh, now + period);
        }
    }

    /// RFC 9568 §6.4.1 / §6.4.3 "transition to Backup": arm Master_Down_Timer with the
    /// current Master_Adver_Interval (the caller adopted the master's, if any).
    pub(super) fn become_backup(&mut self, now: Instant, reason: Reason) {
        let was_master = self.state == State::Master;
        self.set_state(now, State::Backup, reason);
        if was_master {
            self.remove_vips();
        }
        self.timers.stop_all();
        self.timers
            .set(Timer::MasterDown, now + self.master_down_interval());
    }

    pub(super) fn fire(&mut self, now: Instant, timer: Timer) {
        match (timer, self.state) {
            // RFC 9568 §6.4.3: Adver_Timer fires → send an advert, restart the timer.
            (Timer::Adver, State::Master) => self.send_advert(now),
            // RFC 9568 §6.4.2: Master_Down_Timer fires → become master.
            (Timer::MasterDown, State::Backup) => {
                self.master = None;
                if self.sync_hold {
                    // A sync group member still defers to a live master: going master alone
                    // would split the group, so keep waiting.
                    self.timers
                        .set(Timer::MasterDown, now + self.master_down_interval());
                } else {
                    self.become_master(now, Reason::MasterDown);
                }
            }
            (Timer::GarpDelay, State::Master) => self.send_gratuitous(self.config.garp.repeat),
            (Timer::GarpRefresh, State::Master) => {
                self.send_gratuitous(self.config.garp.refresh_repeat);
                if let Some(period) = self.config.garp.refresh {
                    self.timers.set(Timer::GarpRefresh, now + period);
                }
            }
            // Timers are stopped on every transition, so a stale one cannot fire; ignore it.
            _ => {}
        }
    }

    fn send_gratuitous(&mut self, count: u32) {
        if count > 0 {
            let addresses = self.config.addresses.clone();
            self.actions
                .push_back(Action::SendGratuitous { addresses, count });
        }
    }

    fn remove_vips(&mut self) {
        self.actions
            .push_back(Action::RemoveVips(self.config.addresses.clone()));
    }

    fn set_state(&mut self, now: Instant, to: State, reason: Reason) {
        let from = self.state;
        self.state = to;
        self.stats.transitions += 1;
        self.stats.last_transition = Some(now);
        // Callers emit this before the side effects, so logs and notify scripts see the
        // transition before the VIP changes it causes.
        self.actions
            .push_back(Action::StateChanged { from, to, reason });
    }
}

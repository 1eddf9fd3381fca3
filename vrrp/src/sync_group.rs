//! Sync groups: instances that must be master on the same router together (keepalived's
//! `vrrp_sync_group`), e.g. the outside and inside VIPs of a NAT load balancer.
//!
//! [`SyncGroup`] owns its member [`Instance`]s and has the same sans-I/O shape (inputs, timeouts,
//! actions tagged with the member index). After every input it applies keepalived's rules:
//!
//! * **Fault**: while any member has a fault of its own, every other member is held in Fault too;
//!   when the last fault clears they all run the Startup logic again.
//! * **Backup**: a member that steps down from Master (it heard a better master) takes every
//!   other Master member down with it.
//! * **Master**: a member that becomes Master on its own promotes every Backup member at once,
//!   without waiting for their Master_Down_Timers. A member that reaches Backup while another is
//!   Master is promoted the same way.
//! * **Hold**: a member may not go Master on its own (timer or preemption) while another member
//!   defers to a live, better master ([`Instance::yields_to_master`]). Without this the group
//!   would loop: one member preempts, promotes the others, one of them is beaten on its own link
//!   and demotes the group again. keepalived checks the same before moving a group to master.
//!
//! A member's Shutdown does not move the others: the daemon shuts a group down as a whole.

use std::collections::VecDeque;
use std::time::Instant;

use crate::instance::{Action, Input, InputError, Instance, Reason, State};

/// A set of instances that change state together.
#[derive(Debug)]
pub struct SyncGroup {
    name: String,
    members: Vec<Instance>,
    actions: VecDeque<(usize, Action)>,
}

/// An input the group refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncGroupError {
    /// The member index is out of range.
    #[error("sync group {group}: no member {member}")]
    NoMember {
        /// The sync group.
        group: String,
        /// The member index.
        member: usize,
    },
    /// The member refused the input.
    #[error("sync group {group}: {source}")]
    Input {
        /// The sync group.
        group: String,
        /// What the member said.
        source: InputError,
    },
}

impl SyncGroup {
    /// Groups `members`; their indices in this vector identify them from now on.
    pub fn new(name: impl Into<String>, members: Vec<Instance>) -> Self {
        Self {
            name: name.into(),
            members,
            actions: VecDeque::new(),
        }
    }

    /// Passes `input` to one member, then lets the group react.
    pub fn handle(
        &mut self,
        now: Instant,
        member: usize,
        input: Input,
    ) -> Result<(), SyncGroupError> {
        if member >= self.members.len() {
            return Err(SyncGroupError::NoMember {
                group: self.name.clone(),
                member,
            });
        }
        self.refresh_holds();
        let result = self.members[member].handle(now, input);
        self.reconcile(now);
        result.map_err(|source| SyncGroupError::Input {
            group: self.name.clone(),
            source,
        })
    }

    /// Fires every member timer due at or before `now`, earliest first.
    pub fn handle_timeout(&mut self, now: Instant) {
        loop {
            let due = self
                .members
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.poll_timeout().filter(|&at| at <= now).map(|at| (at, i)))
                .min();
            let Some((_, member)) = due else { break };
            self.refresh_holds();
            self.members[member].handle_timeout(now);
            self.reconcile(now);
        }
    }

    /// The next action, tagged with the member that emitted it.
    pub fn poll_action(&mut self) -> Option<(usize, Action)> {
        self.actions.pop_front()
    }

    /// The earliest member deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.members.iter().filter_map(Instance::poll_timeout).min()
    }

    /// One member, for status queries.
    pub fn member(&self, member: usize) -> Option<&Instance> {
        self.members.get(member)
    }

    /// All members, in index order.
    pub fn members(&self) -> &[Instance] {
        &self.members
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Each member is held back while any *other* member defers to a live master.
    fn refresh_holds(&mut self) {
        let yields: Vec<bool> = self
            .members
            .iter()
            .map(Instance::yields_to_master)
            .collect();
        for (i, member) in self.members.iter_mut().enumerate() {
            let hold = yields.iter().enumerate().any(|(j, &y)| j != i && y);
            member.set_sync_hold(hold);
        }
    }

    /// Collects member actions and applies the group rules until nothing moves. Transitions the
    /// group itself caused (reason `SyncGroup`) trigger no rule, so this terminates.
    fn reconcile(&mut self, now: Instant) {
        loop {
            let mut changes = Vec::new();
            for (i, member) in self.members.iter_mut().enumerate() {
                while let Some(action) = member.poll_action() {
                    if let Action::StateChanged { from, to, reason } = action {
                        changes.push((i, from, to, reason));
                    }
                    self.actions.push_back((i, action));
                }
            }
            let own_fault: Vec<bool> = self.members.iter().map(Instance::has_own_fault).collect();
            for (j, member) in self.members.iter_mut().enumerate() {
                let fault = own_fault.iter().enumerate().any(|(k, &f)| k != j && f);
                member.set_sync_fault(now, fault);
            }
            for (i, from, to, reason) in changes.iter().copied() {
                if reason == Reason::SyncGroup {
                    continue;
                }
                match (from, to) {
                    (_, State::Master) => self.for_others(i, |m| m.sync_promote(now)),
                    (State::Master, State::Backup) => self.for_others(i, |m| m.sync_demote(now)),
                    (_, State::Backup)
                        if self.members.iter().any(|m| m.state() == State::Master) =>
                    {
                        self.members[i].sync_promote(now);
                    }
                    _ => {}
                }
            }
            if changes.is_empty() && !self.members.iter().any(Instance::has_pending_actions) {
                break;
            }
        }
    }

    fn for_others(&mut self, except: usize, mut f: impl FnMut(&mut Instance)) {
        for (j, member) in self.members.iter_mut().enumerate() {
            if j != except {
                f(member);
            }
        }
    }
}

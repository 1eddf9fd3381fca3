//! The leader's session liveness tracker: sans-I/O, time injected.
//!
//! Only the leader runs one. Heartbeats [`touch`](SessionTracker::touch) it in memory; on a timer
//! the shell calls [`poll_expired`](SessionTracker::poll_expired) and proposes one
//! [`crate::Command::ExpireSession`] per returned id. A new leader cannot know when the old one
//! last heard from each client, so [`on_become_leader`](SessionTracker::on_become_leader) gives
//! every session a full timeout from the moment of the take-over (as ZooKeeper does).
//!
//! Wiring: after the leader applies `CreateSession` it calls [`add`](SessionTracker::add); after
//! `CloseSession`/`ExpireSession` it calls [`remove`](SessionTracker::remove).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::SessionId;
use crate::error::Error;

/// Last-heard bookkeeping for every live session.
#[derive(Debug, Default)]
pub struct SessionTracker {
    /// Timeout and current deadline of each live session not yet being expired.
    live: BTreeMap<SessionId, (Duration, Instant)>,
    /// The same deadlines, ordered, so the next expiry is the first element.
    deadlines: BTreeSet<(Instant, SessionId)>,
    /// Sessions returned by `poll_expired` whose `ExpireSession` is not applied yet. Heartbeats
    /// for them are refused: the decision to expire is final, or the client could believe in a
    /// session the log is about to end.
    expiring: BTreeSet<SessionId>,
}

impl SessionTracker {
    /// An empty tracker (a node that is not the leader keeps it empty).
    pub fn new() -> SessionTracker {
        SessionTracker::default()
    }

    /// This node became leader at `now`; `sessions` are the (id, timeout) pairs of the
    /// replicated session table. Every one gets a full timeout from `now`.
    pub fn on_become_leader(
        &mut self,
        now: Instant,
        sessions: impl IntoIterator<Item = (SessionId, u32)>,
    ) {
        self.clear();
        for (id, timeout_ms) in sessions {
            self.add(id, timeout_ms, now);
        }
    }

    /// This node is no longer leader: forget everything.
    pub fn on_step_down(&mut self) {
        self.clear();
    }

    fn clear(&mut self) {
        self.live.clear();
        self.deadlines.clear();
        self.expiring.clear();
    }

    /// Starts tracking a session created (applied) at about `now`.
    pub fn add(&mut self, id: SessionId, timeout_ms: u32, now: Instant) {
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        self.unschedule(id);
        self.expiring.remove(&id);
        self.live.insert(id, (timeout, now + timeout));
        self.deadlines.insert((now + timeout, id));
    }

    /// Stops tracking a session (its close or expiry was applied).
    pub fn remove(&mut self, id: SessionId) {
        self.unschedule(id);
        self.expiring.remove(&id);
    }

    fn unschedule(&mut self, id: SessionId) {
        if let Some((_, deadline)) = self.live.remove(&id) {
            self.deadlines.remove(&(deadline, id));
        }
    }

    /// A heartbeat or request from the session at `now`: its deadline moves to `now + timeout`.
    /// `SessionExpired` if the session is unknown or already being expired.
    pub fn touch(&mut self, id: SessionId, now: Instant) -> Result<(), Error> {
        let Some((timeout, deadline)) = self.live.get_mut(&id) else {
            return Err(Error::SessionExpired);
        };
        let next = now + *timeout;
        // A heartbeat processed late (older `now`) must not shorten the deadline.
        if next > *deadline {
            self.deadlines.remove(&(*deadline, id));
            *deadline = next;
            self.deadlines.insert((next, id));
        }
        Ok(())
    }

    /// Sessions whose deadline is at or before `now`, oldest deadline first. They move to the
    /// expiring set: the caller must propose `ExpireSession` for each.
    pub fn poll_expired(&mut self, now: Instant) -> Vec<SessionId> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_first();
            self.live.remove(&id);
            self.expiring.insert(id);
            out.push(id);
        }
        out
    }

    /// Sessions whose expiry was decided but not applied yet, e.g. to propose again after a
    /// failed proposal.
    pub fn expiring(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.expiring.iter().copied()
    }

    /// When `poll_expired` next has something to return.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Whether `id` is tracked as live.
    pub fn is_live(&self, id: SessionId) -> bool {
        self.live.contains_key(&id)
    }
}

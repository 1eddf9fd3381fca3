//! The session liveness tracker: sans-I/O, time injected. It decides which sessions the leader
//! expires; the shell proposes one [`crate::Command::ExpireSession`] per id that
//! [`poll_expired`](SessionTracker::poll_expired) returns.
//!
//! # Heartbeat sessions ([`Liveness::Heartbeat`](super::Liveness::Heartbeat))
//!
//! Tracked by the leader only. Heartbeats [`touch`](SessionTracker::touch) them in memory, and so
//! does every write the leader receives for them. A new leader cannot know when the old one last
//! heard from each client, so [`on_become_leader`](SessionTracker::on_become_leader) gives every
//! one a full timeout from the moment of the take-over (as ZooKeeper does).
//!
//! # Committed-writes sessions ([`Liveness::CommittedWrites`](super::Liveness::CommittedWrites))
//!
//! Tracked by **every** member: each records its own monotonic instant at which it applied the
//! session's latest write (its creation counts as one) —
//! [`on_write_applied`](SessionTracker::on_write_applied). The leader also counts a write of
//! the session from the moment it receives it
//! ([`on_write_received`](SessionTracker::on_write_received)), since that write may commit
//! after the leader would otherwise have decided to expire. The session's deadline is the
//! latest of those instants plus its timeout, and the leader expires it once that passed on its
//! own clock. A new leader keeps those deadlines: no full timeout from the take-over.
//! Heartbeats are refused ([`TouchError::RenewedByWrites`]): they are not in the log, so no
//! other member could honour them.
//!
//! Why that cannot expire a session before `s + T` (`s`: when the client sent a write `W` of
//! the session that committed, `T`: its timeout): an `ExpireSession` applied after `W`...
//! - was decided by the leader that proposed `W`: it received `W` after `s` and counted it
//!   (the decision is final: once decided, it refuses the session's further writes, see
//!   [`on_write_received`](SessionTracker::on_write_received));
//! - or by a later leader: `W` is in its log before its own term's first entry (openraft
//!   commits a blank one at the start of each term), and it expires nothing of this kind
//!   before it applied an entry of its own term
//!   ([`on_own_term_applied`](SessionTracker::on_own_term_applied)). By then it has applied
//!   `W`, no earlier than `W` was proposed, so after `s`. Before that its apply times may be
//!   too old: it may still have committed entries of the session to apply.
//!
//! A member that restarted or installed a snapshot takes the time of that as every such
//! session's last write ([`on_state_replaced`](SessionTracker::on_state_replaced)), and a log
//! replay gives apply times later than the real ones: both only delay an expiry.
//!
//! # Wiring
//!
//! After a member applies `CreateSession` it calls [`add`](SessionTracker::add) (leader, heartbeat
//! sessions) or [`add_committed_writes`](SessionTracker::add_committed_writes) (every member,
//! the other kind); after `CloseSession`/`ExpireSession`, [`remove`](SessionTracker::remove).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::SessionId;

/// Why a heartbeat was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TouchError {
    /// The session is unknown or already being expired.
    #[error("session expired")]
    SessionExpired,
    /// The session is a [`Liveness::CommittedWrites`](super::Liveness::CommittedWrites) one:
    /// only its committed writes renew it.
    #[error("session is renewed by its committed writes only, not by heartbeats")]
    RenewedByWrites,
}

/// Sessions with a timeout each and a deadline, ordered by deadline.
#[derive(Debug, Default)]
struct Deadlines {
    /// Timeout and current deadline of each session.
    by_id: BTreeMap<SessionId, (Duration, Instant)>,
    /// The same deadlines, ordered, so the next expiry is the first element.
    order: BTreeSet<(Instant, SessionId)>,
}

impl Deadlines {
    fn insert(&mut self, id: SessionId, timeout: Duration, deadline: Instant) {
        self.remove(id);
        self.by_id.insert(id, (timeout, deadline));
        self.order.insert((deadline, id));
    }

    fn remove(&mut self, id: SessionId) {
        if let Some((_, deadline)) = self.by_id.remove(&id) {
            self.order.remove(&(deadline, id));
        }
    }

    /// Moves `id`'s deadline to `now + timeout` unless it is later already (an event processed
    /// late must not shorten it). False if `id` is not here.
    fn renew(&mut self, id: SessionId, now: Instant) -> bool {
        let Some((timeout, deadline)) = self.by_id.get_mut(&id) else {
            return false;
        };
        let next = now + *timeout;
        if next > *deadline {
            self.order.remove(&(*deadline, id));
            *deadline = next;
            self.order.insert((next, id));
        }
        true
    }

    fn contains(&self, id: SessionId) -> bool {
        self.by_id.contains_key(&id)
    }

    fn first(&self) -> Option<Instant> {
        self.order.first().map(|&(deadline, _)| deadline)
    }

    /// Removes and returns the sessions due at `now` (deadline, id, timeout), oldest deadline
    /// first.
    fn pop_due(&mut self, now: Instant) -> Vec<(Instant, SessionId, Duration)> {
        let mut out = Vec::new();
        while let Some(&(deadline, id)) = self.order.first() {
            if deadline > now {
                break;
            }
            self.order.pop_first();
            if let Some((timeout, _)) = self.by_id.remove(&id) {
                out.push((deadline, id, timeout));
            }
        }
        out
    }

    fn clear(&mut self) {
        self.by_id.clear();
        self.order.clear();
    }
}

/// A session whose expiry this leader decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expiring {
    Heartbeat,
    /// With its timeout and deadline, tracked again if this member steps down first.
    CommittedWrites(Duration, Instant),
}

/// Liveness bookkeeping for every live session (see the module docs).
#[derive(Debug, Default)]
pub struct SessionTracker {
    /// Heartbeat sessions not yet being expired; leader only.
    heartbeat: Deadlines,
    /// Committed-writes sessions not yet being expired: last renewal + timeout, on every member.
    committed: Deadlines,
    /// Sessions returned by `poll_expired` whose `ExpireSession` is not applied yet.
    /// Heartbeats (and, for committed-writes sessions, writes) are refused: the decision to
    /// expire is final, or the client could believe in a session the log is about to end.
    expiring: BTreeMap<SessionId, Expiring>,
    /// Whether this member acts as leader (between `on_become_leader` and `on_step_down`).
    leading: bool,
    /// Whether this leader applied an entry of its own term, so every committed entry: until
    /// then it expires no committed-writes session.
    caught_up: bool,
}

impl SessionTracker {
    /// An empty tracker.
    pub fn new() -> SessionTracker {
        SessionTracker::default()
    }

    /// This node became leader at `now`; `sessions` are the (id, timeout) pairs of the
    /// replicated session table. Every heartbeat session gets a full timeout from `now`;
    /// committed-writes sessions keep their deadlines, but none expires before
    /// [`on_own_term_applied`](Self::on_own_term_applied).
    pub fn on_become_leader(
        &mut self,
        now: Instant,
        sessions: impl IntoIterator<Item = (SessionId, u32)>,
    ) {
        self.clear_leader_state();
        self.leading = true;
        for (id, timeout_ms) in sessions {
            if !self.committed.contains(id) {
                self.add(id, timeout_ms, now);
            }
        }
    }

    /// The leader applied an entry of its own term: every entry committed before its take-over
    /// is applied, so its apply times are recent enough to expire committed-writes sessions on.
    pub fn on_own_term_applied(&mut self) {
        if self.leading {
            self.caught_up = true;
        }
    }

    /// This node is no longer leader: forget the leader's state (heartbeat deadlines, pending
    /// expiries). Committed-writes sessions stay tracked: every member tracks them.
    pub fn on_step_down(&mut self) {
        self.clear_leader_state();
    }

    fn clear_leader_state(&mut self) {
        self.heartbeat.clear();
        // A committed-writes session whose expiry was decided but not applied is tracked again:
        // the ExpireSession may never commit, and the next leader decides anew.
        for (id, expiring) in std::mem::take(&mut self.expiring) {
            if let Expiring::CommittedWrites(timeout, deadline) = expiring {
                self.committed.insert(id, timeout, deadline);
            }
        }
        self.leading = false;
        self.caught_up = false;
    }

    /// The state was replaced at `now` (start from a snapshot, snapshot installed):
    /// `committed_writes` are the (id, timeout) pairs of its committed-writes sessions, whose
    /// last write is taken to be now (later than the truth, so only ever delaying an expiry).
    pub fn on_state_replaced(
        &mut self,
        now: Instant,
        committed_writes: impl IntoIterator<Item = (SessionId, u32)>,
    ) {
        self.committed.clear();
        self.expiring
            .retain(|_, expiring| *expiring == Expiring::Heartbeat);
        for (id, timeout_ms) in committed_writes {
            self.add_committed_writes(id, timeout_ms, now);
        }
    }

    /// Starts tracking a heartbeat session created (applied) at about `now`. Leader only.
    pub fn add(&mut self, id: SessionId, timeout_ms: u32, now: Instant) {
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        self.expiring.remove(&id);
        self.heartbeat.insert(id, timeout, now + timeout);
    }

    /// Starts tracking a committed-writes session whose creation this member applied at `now`.
    /// Every member.
    pub fn add_committed_writes(&mut self, id: SessionId, timeout_ms: u32, now: Instant) {
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        self.expiring.remove(&id);
        self.committed.insert(id, timeout, now + timeout);
    }

    /// Stops tracking a session (its close or expiry was applied).
    pub fn remove(&mut self, id: SessionId) {
        self.heartbeat.remove(id);
        self.committed.remove(id);
        self.expiring.remove(&id);
    }

    /// A heartbeat from the session at `now`: a heartbeat session's deadline moves to
    /// `now + timeout`. Refused for a session unknown or being expired, and for a
    /// committed-writes session (heartbeats do not renew it).
    pub fn touch(&mut self, id: SessionId, now: Instant) -> Result<(), TouchError> {
        if self.heartbeat.renew(id, now) {
            Ok(())
        } else if self.committed.contains(id) {
            Err(TouchError::RenewedByWrites)
        } else {
            Err(TouchError::SessionExpired)
        }
    }

    /// The leader received a write of the session at `now` and is about to propose it. A
    /// heartbeat session is touched (ZooKeeper's rule: a request is proof of life), and a
    /// refusal ignored as before: the log decides whether the write still finds its session. A
    /// committed-writes session counts the write from now on, since it may commit after this
    /// leader would otherwise have expired the session; if its expiry is decided already the
    /// write is refused (`SessionExpired`), or it could commit before the `ExpireSession` and
    /// be taken as a renewal.
    pub fn on_write_received(&mut self, id: SessionId, now: Instant) -> Result<(), TouchError> {
        if let Some(Expiring::CommittedWrites(..)) = self.expiring.get(&id) {
            return Err(TouchError::SessionExpired);
        }
        if !self.committed.renew(id, now) {
            let _ = self.touch(id, now);
        }
        Ok(())
    }

    /// This member applied a committed write of the session at `now`: a committed-writes
    /// session is renewed until `now + timeout` (if its expiry is decided already, that stays
    /// decided). Nothing for a heartbeat session (the leader touched it when it received the
    /// write).
    pub fn on_write_applied(&mut self, id: SessionId, now: Instant) {
        if !self.committed.renew(id, now)
            && let Some(Expiring::CommittedWrites(timeout, deadline)) = self.expiring.get_mut(&id)
        {
            *deadline = (*deadline).max(now + *timeout);
        }
    }

    /// Sessions whose deadline is at or before `now`, oldest deadline first. They move to the
    /// expiring set: the caller must propose `ExpireSession` for each. Committed-writes
    /// sessions only once this member leads and is caught up.
    pub fn poll_expired(&mut self, now: Instant) -> Vec<SessionId> {
        let mut due: Vec<(Instant, SessionId, Expiring)> = self
            .heartbeat
            .pop_due(now)
            .into_iter()
            .map(|(at, id, _)| (at, id, Expiring::Heartbeat))
            .collect();
        if self.expires_committed_writes() {
            due.extend(
                self.committed
                    .pop_due(now)
                    .into_iter()
                    .map(|(at, id, timeout)| (at, id, Expiring::CommittedWrites(timeout, at))),
            );
            due.sort_unstable_by_key(|&(at, id, _)| (at, id));
        }
        due.into_iter()
            .map(|(_, id, expiring)| {
                self.expiring.insert(id, expiring);
                id
            })
            .collect()
    }

    fn expires_committed_writes(&self) -> bool {
        self.leading && self.caught_up
    }

    /// Sessions whose expiry was decided but not applied yet, e.g. to propose again after a
    /// failed proposal.
    pub fn expiring(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.expiring.keys().copied()
    }

    /// When `poll_expired` next has something to return.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let committed = self
            .expires_committed_writes()
            .then(|| self.committed.first())
            .flatten();
        match (self.heartbeat.first(), committed) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether `id` is tracked as live (not being expired).
    pub fn is_live(&self, id: SessionId) -> bool {
        self.heartbeat.contains(id) || self.committed.contains(id)
    }

    /// The deadline of committed-writes session `id` on this member's clock, if tracked.
    pub fn committed_writes_deadline(&self, id: SessionId) -> Option<Instant> {
        self.committed.by_id.get(&id).map(|&(_, deadline)| deadline)
    }
}

//! Sessions: the replicated session table with its retry deduplication, and (in [`tracker`]) the
//! liveness tracker that decides expiries.
//!
//! A session's [`Liveness`] is fixed when it is created and replicated with it:
//! - [`Liveness::Heartbeat`] (ZooKeeper's sessions): heartbeats are not replicated, the leader
//!   alone tracks when it last heard from each session, and a new leader gives every such
//!   session a full timeout from its take-over, since it cannot know what the old one heard.
//! - [`Liveness::CommittedWrites`]: only the session's committed writes renew it. Every member
//!   sees those in its log, so a new leader continues from when it applied the session's last
//!   write instead of starting a full timeout; heartbeats are refused.
//!
//! Either way the leader writes an [`crate::Command::ExpireSession`] to the log when a session
//! times out. The replicated state only knows which sessions exist, their timeouts and
//! liveness, and their recent responses.

pub mod tracker;

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

pub use self::tracker::{SessionTracker, TouchError};
use crate::request::Response;

/// A session id: the log index of the entry that created the session, so unique and the same
/// on every replica. 0 is never a session (it is the system's identity for cleanup writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:x}", self.0)
    }
}

/// Bounds for negotiated session timeouts (ZooKeeper: 2 and 20 ticks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionConfig {
    /// Shortest timeout granted.
    pub min_timeout_ms: u32,
    /// Longest timeout granted.
    pub max_timeout_ms: u32,
}

impl Default for SessionConfig {
    /// ZooKeeper's defaults with `tickTime = 2000`.
    fn default() -> Self {
        SessionConfig {
            min_timeout_ms: 4_000,
            max_timeout_ms: 40_000,
        }
    }
}

impl SessionConfig {
    /// `requested` clamped to `[min, max]` (a misconfigured `min > max` yields `max`).
    pub fn clamp(&self, requested: u32) -> u32 {
        requested.max(self.min_timeout_ms).min(self.max_timeout_ms)
    }
}

/// How many write responses each session keeps for retries. A client may have this many writes
/// in flight and still retry any of them safely; memory is bounded by sessions × this × the size
/// of a write response (a path and a `Stat`, or one such per operation of a multi).
pub const DEDUPE_WINDOW: usize = 16;

/// What keeps a session alive; chosen at creation, replicated, never changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Liveness {
    /// ZooKeeper's rule: heartbeats (and writes) the leader receives renew the session in its
    /// memory. A new leader gives the session a full timeout from its take-over.
    #[default]
    Heartbeat,
    /// Only the session's writes renew it (any session-bound write, `sync` included), as each
    /// member applies them; heartbeats are refused. The leader expires the session a timeout
    /// after it applied the session's last write, and a new leader continues from its own apply
    /// times instead of granting a full timeout (see [`tracker`] for why that is safe). Made
    /// for leases that are renewed by committed writes anyway, like vigil's quorum fencing.
    CommittedWrites,
}

/// A live session in the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Negotiated timeout.
    pub timeout_ms: u32,
    /// Responses to the most recent writes, by request id.
    recent: BTreeMap<u64, Response>,
    /// The highest request id evicted from `recent`. A request id at or below it that is not in
    /// `recent` may have been applied already, so it is refused.
    floor: Option<u64>,
    /// What keeps it alive. Last, so that the fields before it encode as in [`LegacySession`].
    liveness: Liveness,
}

/// A session as snapshots before [`Liveness`] stored it (postcard has no field defaults: an
/// added field is a new format). Every such session is a heartbeat session.
#[derive(Debug, Deserialize)]
pub(crate) struct LegacySession {
    timeout_ms: u32,
    recent: BTreeMap<u64, Response>,
    floor: Option<u64>,
}

impl From<LegacySession> for Session {
    fn from(old: LegacySession) -> Self {
        Session {
            timeout_ms: old.timeout_ms,
            recent: old.recent,
            floor: old.floor,
            liveness: Liveness::Heartbeat,
        }
    }
}

/// What the dedupe window says about a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Never applied: apply it.
    New,
    /// Already applied: return this response again.
    Done(Response),
    /// Too old to know: refuse.
    Stale,
}

impl Session {
    pub(crate) fn new(timeout_ms: u32, liveness: Liveness) -> Session {
        Session {
            timeout_ms,
            recent: BTreeMap::new(),
            floor: None,
            liveness,
        }
    }

    /// What keeps the session alive.
    pub fn liveness(&self) -> Liveness {
        self.liveness
    }

    pub(crate) fn lookup(&self, request_id: u64) -> Seen {
        if let Some(r) = self.recent.get(&request_id) {
            Seen::Done(r.clone())
        } else if self.floor.is_some_and(|floor| request_id <= floor) {
            Seen::Stale
        } else {
            Seen::New
        }
    }

    pub(crate) fn record(&mut self, request_id: u64, response: Response) {
        self.recent.insert(request_id, response);
        while self.recent.len() > DEDUPE_WINDOW {
            if let Some((id, _)) = self.recent.pop_first() {
                self.floor = Some(self.floor.map_or(id, |floor| floor.max(id)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{DEDUPE_WINDOW, Liveness, Seen, Session, SessionConfig};
    use crate::request::Response;

    #[test]
    fn clamps_timeouts() {
        let c = SessionConfig {
            min_timeout_ms: 1000,
            max_timeout_ms: 5000,
        };
        assert_eq!(c.clamp(10), 1000);
        assert_eq!(c.clamp(3000), 3000);
        assert_eq!(c.clamp(90_000), 5000);
    }

    #[test]
    fn window_remembers_recent_and_refuses_forgotten() {
        let mut s = Session::new(1000, Liveness::Heartbeat);
        let n = DEDUPE_WINDOW as u64 + 4;
        for id in 1..=n {
            assert_eq!(s.lookup(id), Seen::New);
            s.record(id, Response::Synced);
        }
        assert_eq!(s.lookup(n), Seen::Done(Response::Synced));
        assert_eq!(
            s.lookup(n - DEDUPE_WINDOW as u64 + 1),
            Seen::Done(Response::Synced)
        );
        assert_eq!(s.lookup(n - DEDUPE_WINDOW as u64), Seen::Stale);
        assert_eq!(s.lookup(1), Seen::Stale);
        assert_eq!(s.lookup(n + 1), Seen::New);
    }
}

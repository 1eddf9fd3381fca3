//! `StateMachine`: the replicated state (tree + sessions) and the deterministic `apply`.
//!
//! Apply reads no clock and draws no random number: a command's zxid derives from the entry's
//! log index and its position in the entry (see [`crate::zxid`]) and the time is the leader's,
//! carried in the entry. Given the same entries, every replica reaches the
//! same state, byte for byte in its snapshot.

use std::collections::BTreeMap;
use std::io::Write;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::request::{Command, OpResult, Request, Response};
use crate::session::{LegacySession, Liveness, Seen, Session, SessionId};
use crate::tree::txn::Txn;
use crate::tree::{DataTree, LegacyTree, RestoreError, TreeIn};
use crate::watch::WatchEvent;
use crate::zxid;

/// The system identity used for writes no client asked for (cleanup).
const SYSTEM: SessionId = SessionId(0);

/// The replicated state of the coordination tree.
#[derive(Debug, Clone, Default)]
pub struct StateMachine {
    tree: DataTree,
    sessions: BTreeMap<SessionId, Session>,
    last_applied: u64,
    /// Highest leader time applied so far. Leaders' clocks differ; using the maximum keeps
    /// `ctime`/`mtime` from going backwards across a leader change.
    last_time_ms: u64,
    /// Watch events of applied entries not yet drained; not part of the replicated state.
    events: Vec<WatchEvent>,
}

impl PartialEq for StateMachine {
    /// Compares the replicated state only (pending events are local).
    fn eq(&self, other: &Self) -> bool {
        self.tree == other.tree
            && self.sessions == other.sessions
            && self.last_applied == other.last_applied
            && self.last_time_ms == other.last_time_ms
    }
}

impl Eq for StateMachine {}

/// Why a snapshot could not be written.
#[derive(Debug, thiserror::Error)]
#[error("cannot write snapshot: {0}")]
pub struct SnapshotError(#[from] postcard::Error);

/// The snapshot format, versioned like log entries. Written from borrowed state (no clone of
/// a million nodes), read back into owned state; both encode identically. `V2` lists the tree
/// as breadth-first (parent, name, node) records (see `tree/snapshot.rs`); `V3` is `V2` with
/// each session's [`Liveness`]. `V1` (full paths) and `V2` are still read, so that a member
/// restarts from the snapshot an older version wrote, and never written. An older binary
/// refuses a newer snapshot ("snapshot does not decode"), so a mixed cluster must not exchange
/// snapshots: upgrade every member before the next snapshot install.
#[derive(Serialize)]
enum SnapshotOut<'a> {
    /// Holds the old formats' variant numbers; never written.
    #[allow(dead_code)]
    V1,
    #[allow(dead_code)]
    V2,
    V3 {
        last_applied: u64,
        last_time_ms: u64,
        sessions: &'a BTreeMap<SessionId, Session>,
        tree: &'a DataTree,
    },
}

#[derive(Deserialize)]
enum SnapshotIn {
    V1 {
        last_applied: u64,
        last_time_ms: u64,
        sessions: BTreeMap<SessionId, LegacySession>,
        tree: LegacyTree,
    },
    V2 {
        last_applied: u64,
        last_time_ms: u64,
        sessions: BTreeMap<SessionId, LegacySession>,
        tree: TreeIn,
    },
    V3 {
        last_applied: u64,
        last_time_ms: u64,
        sessions: BTreeMap<SessionId, Session>,
        tree: TreeIn,
    },
}

impl StateMachine {
    /// An empty tree (root only) with no sessions.
    pub fn new() -> StateMachine {
        StateMachine::default()
    }

    /// The tree, for reads.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// Index of the last applied entry (0 before any).
    pub fn last_applied(&self) -> u64 {
        self.last_applied
    }

    /// The live session `id`, if any.
    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id)
    }

    /// Every live session with its timeout, for [`crate::SessionTracker::on_become_leader`].
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, u32)> + '_ {
        self.sessions.iter().map(|(id, s)| (*id, s.timeout_ms))
    }

    /// The live sessions of `liveness` with their timeouts (for
    /// [`crate::SessionTracker::on_state_replaced`], the [`Liveness::CommittedWrites`] ones).
    pub fn sessions_of(&self, liveness: Liveness) -> impl Iterator<Item = (SessionId, u32)> + '_ {
        self.sessions
            .iter()
            .filter(move |(_, s)| s.liveness() == liveness)
            .map(|(id, s)| (*id, s.timeout_ms))
    }

    /// Watch events of the entries applied since the last call, in order. The shell feeds them
    /// to [`crate::WatchManager::handle_events`]; undrained events accumulate.
    pub fn drain_events(&mut self) -> Vec<WatchEvent> {
        std::mem::take(&mut self.events)
    }

    /// Applies the committed pre-batching ([`crate::VersionedCommand::V1`]) entry at log
    /// `index`, stamped with the leader's `leader_time_ms`: its zxid is `index`. Entries must be
    /// applied once each, in index order.
    pub fn apply(&mut self, index: u64, leader_time_ms: u64, cmd: Command) -> Response {
        let time = self.advance(index, leader_time_ms);
        self.apply_at(index, time, cmd)
    }

    /// Applies the committed batch entry ([`crate::VersionedCommand::V2`]) at log `index`:
    /// command `i` is its own transaction with zxid [`zxid::of`]`(index, i)` and gets its own
    /// response. Commands past [`zxid::MAX_BATCH`] (no leader proposes them) are refused with
    /// `BadArguments`, the same way on every replica.
    pub fn apply_batch(
        &mut self,
        index: u64,
        leader_time_ms: u64,
        commands: Vec<Command>,
    ) -> Vec<Response> {
        let time = self.advance(index, leader_time_ms);
        commands
            .into_iter()
            .enumerate()
            .map(|(position, cmd)| {
                if position < zxid::MAX_BATCH {
                    self.apply_at(zxid::of(index, position), time, cmd)
                } else {
                    Response::Error(Error::BadArguments)
                }
            })
            .collect()
    }

    /// Moves to entry `index` and returns the time its commands apply at.
    fn advance(&mut self, index: u64, leader_time_ms: u64) -> u64 {
        self.last_applied = index;
        self.last_time_ms = self.last_time_ms.max(leader_time_ms);
        self.last_time_ms
    }

    /// Applies one command as the transaction `zxid`.
    fn apply_at(&mut self, zxid: u64, time: u64, cmd: Command) -> Response {
        match cmd {
            Command::CreateSession { timeout_ms } => {
                self.create_session(zxid, timeout_ms, Liveness::Heartbeat)
            }
            Command::CreateSessionWith {
                timeout_ms,
                liveness,
            } => self.create_session(zxid, timeout_ms, liveness),
            Command::CloseSession { session } | Command::ExpireSession { session } => {
                if self.sessions.remove(&session).is_none() {
                    return Response::Error(Error::SessionExpired);
                }
                let paths: Vec<String> = self.tree.ephemerals(session).map(str::to_owned).collect();
                let mut txn = Txn::begin(&mut self.tree, zxid, time, session);
                for p in &paths {
                    txn.remove(p);
                }
                self.events.extend(txn.commit());
                Response::SessionClosed
            }
            Command::Write {
                session,
                request_id,
                request,
            } => {
                let Some(entry) = self.sessions.get(&session) else {
                    return Response::Error(Error::SessionExpired);
                };
                match entry.lookup(request_id) {
                    Seen::Done(response) => response,
                    Seen::Stale => Response::Error(Error::StaleRequest),
                    Seen::New => {
                        let response = self.write(zxid, time, session, request);
                        if let Some(entry) = self.sessions.get_mut(&session) {
                            entry.record(request_id, response.clone());
                        }
                        response
                    }
                }
            }
            Command::Reap { paths } => {
                let mut deleted = Vec::new();
                let mut txn = Txn::begin(&mut self.tree, zxid, time, SYSTEM);
                for p in paths {
                    if txn.tree().reap_due(&p, time) && txn.remove(&p) {
                        deleted.push(p);
                    }
                }
                self.events.extend(txn.commit());
                Response::Reaped { paths: deleted }
            }
        }
    }

    fn create_session(&mut self, zxid: u64, timeout_ms: u32, liveness: Liveness) -> Response {
        // Zxid 0 would make session id 0, which `Stat::ephemeral_owner` uses for "none"
        // (openraft puts its initial membership at index 0 anyway).
        if timeout_ms == 0 || zxid == 0 {
            return Response::Error(Error::BadArguments);
        }
        let id = SessionId(zxid);
        self.sessions.insert(id, Session::new(timeout_ms, liveness));
        Response::SessionCreated {
            session: id,
            timeout_ms,
        }
    }

    fn write(&mut self, zxid: u64, time: u64, session: SessionId, request: Request) -> Response {
        let mut txn = Txn::begin(&mut self.tree, zxid, time, session);
        match request {
            Request::Sync => Response::Synced,
            Request::Single(op) => match txn.apply(op) {
                Ok(result) => {
                    self.events.extend(txn.commit());
                    Response::Op(result)
                }
                Err(e) => {
                    txn.rollback();
                    Response::Error(e)
                }
            },
            Request::Multi(ops) => {
                let n = ops.len();
                let mut results = Vec::with_capacity(n);
                for op in ops {
                    match txn.apply(op) {
                        Ok(result) => results.push(result),
                        Err(e) => {
                            // ZooKeeper's shape: earlier ops "ok but undone", the failing op
                            // its error, later ops not tried.
                            txn.rollback();
                            let mut out = vec![OpResult::RolledBack; results.len()];
                            out.push(OpResult::Error(e));
                            out.resize(n, OpResult::Error(Error::RuntimeInconsistency));
                            return Response::Multi(out);
                        }
                    }
                }
                self.events.extend(txn.commit());
                Response::Multi(results)
            }
        }
    }

    fn snapshot_out(&self) -> SnapshotOut<'_> {
        SnapshotOut::V3 {
            last_applied: self.last_applied,
            last_time_ms: self.last_time_ms,
            sessions: &self.sessions,
            tree: &self.tree,
        }
    }

    /// Writes the replicated state to `w` (postcard).
    pub fn write_snapshot<W: Write>(&self, w: W) -> Result<(), SnapshotError> {
        postcard::to_io(&self.snapshot_out(), w)?;
        Ok(())
    }

    /// The replicated state as bytes (postcard).
    pub fn snapshot(&self) -> Result<Vec<u8>, SnapshotError> {
        self.snapshot_into(Vec::new())
    }

    /// Like [`StateMachine::snapshot`], appending to `buf` (give it the capacity the last
    /// snapshot needed). Three times faster than [`StateMachine::write_snapshot`] into a `Vec`,
    /// which goes through `io::Write` a few bytes at a time.
    pub fn snapshot_into(&self, buf: Vec<u8>) -> Result<Vec<u8>, SnapshotError> {
        Ok(postcard::to_extend(&self.snapshot_out(), buf)?)
    }

    /// Rebuilds the state from [`StateMachine::snapshot`] bytes, checking its invariants.
    pub fn restore(bytes: &[u8]) -> Result<StateMachine, RestoreError> {
        let decoded =
            postcard::from_bytes(bytes).map_err(|e| RestoreError::Decode(e.to_string()))?;
        let (last_applied, last_time_ms, sessions, tree) = match decoded {
            SnapshotIn::V1 {
                last_applied,
                last_time_ms,
                sessions,
                tree: LegacyTree(tree),
            }
            | SnapshotIn::V2 {
                last_applied,
                last_time_ms,
                sessions,
                tree: TreeIn(tree),
            } => (last_applied, last_time_ms, upgrade(sessions), tree),
            SnapshotIn::V3 {
                last_applied,
                last_time_ms,
                sessions,
                tree: TreeIn(tree),
            } => (last_applied, last_time_ms, sessions, tree),
        };
        let tree = tree?;
        if let Some(owner) = tree.ephemeral_owners().find(|s| !sessions.contains_key(s)) {
            return Err(RestoreError::Sessions(format!(
                "ephemerals owned by unknown session {owner}"
            )));
        }
        Ok(StateMachine {
            tree,
            sessions,
            last_applied,
            last_time_ms,
            events: Vec::new(),
        })
    }
}

/// Sessions of a snapshot written before [`Liveness`]: all heartbeat sessions.
fn upgrade(sessions: BTreeMap<SessionId, LegacySession>) -> BTreeMap<SessionId, Session> {
    sessions
        .into_iter()
        .map(|(id, s)| (id, Session::from(s)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::StateMachine;
    use crate::request::{Command, CreateMode, Op, Request};
    use crate::session::SessionId;
    use crate::tree::RestoreError;

    #[test]
    fn restore_refuses_ephemerals_of_unknown_sessions() {
        let mut sm = StateMachine::new();
        sm.apply(1, 0, Command::CreateSession { timeout_ms: 10 });
        sm.apply(
            2,
            0,
            Command::Write {
                session: SessionId(1),
                request_id: 1,
                request: Request::Single(Op::Create {
                    path: "/e".into(),
                    data: vec![],
                    mode: CreateMode::Ephemeral,
                    sequential: false,
                }),
            },
        );
        let good = sm.snapshot().expect("encode");
        assert_eq!(StateMachine::restore(&good).as_ref(), Ok(&sm));
        sm.sessions.clear();
        let bad = sm.snapshot().expect("encode");
        assert!(matches!(
            StateMachine::restore(&bad),
            Err(RestoreError::Sessions(_))
        ));
    }
}

//! [`ZnodeStore`]: openraft's `RaftStateMachine` over the znode [`StateMachine`].
//!
//! Normal entries go to [`StateMachine::apply_batch`] (or, for entries written before batching,
//! [`StateMachine::apply`]) with their log index and the leader's time carried in the
//! [`Proposal`]; blank and membership entries only move the applied log id
//! (and the membership). Both live inside every snapshot (see [`super::snapshot`]).
//!
//! Side outputs of apply, in log order:
//! - watch events go to subscribers of [`ZnodeStore::subscribe`] as [`SmEvent`]s;
//! - session creations, writes and ends update the [`SessionTracker`] under the same lock as
//!   the apply, so the tracker and the session table can never disagree: on every member for
//!   [`crate::Liveness::CommittedWrites`] sessions (with this member's apply instant), on the
//!   leader for heartbeat sessions (see [`ZnodeStore::become_leader`]). Applying an entry of
//!   the leader's own term lets it expire committed-writes sessions.
//!
//! Snapshots are encoded under the lock into one buffer (no clone of the tree), then written to
//! a file on a blocking thread while applies continue.

use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, RaftSnapshotBuilder, StorageIOError};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::broadcast;

use super::snapshot::{self, SnapshotFileError};
use super::types::typ::{Entry, LogId, Snapshot, SnapshotMeta, StorageError, StoredMembership};
use super::types::{Proposal, TypeConfig};
use crate::request::{Command, Response, VersionedCommand};
use crate::session::{Liveness, SessionId, SessionTracker};
use crate::state_machine::StateMachine;

/// What subscribers of [`ZnodeStore::subscribe`] receive, in log order: one
/// `Applied { index, events }` per applied entry (feed the events to
/// [`crate::WatchManager::handle_events`]) and `SnapshotInstalled { index }` when a snapshot
/// replaced the state (feed it to [`crate::WatchManager::handle_snapshot_installed`]). It is the
/// client API's [`crate::api::BackendEvent`], so the API layer consumes the stream unchanged.
pub type SmEvent = crate::api::BackendEvent;

/// The session liveness state, kept next to the state machine.
#[derive(Debug, Default)]
pub(crate) struct LeaderSessions {
    /// Heartbeat deadlines (empty unless `active`) and every member's committed-writes
    /// deadlines.
    pub(crate) tracker: SessionTracker,
    /// Whether this node currently acts as leader for sessions.
    pub(crate) active: bool,
    /// The term this node leads, while `active`.
    term: u64,
}

#[derive(Debug)]
struct State {
    sm: StateMachine,
    last_applied: Option<LogId>,
    membership: StoredMembership,
    /// Metadata of the snapshot in `dir/current`, if any.
    snapshot: Option<SnapshotMeta>,
    /// Commands applied since the state last went into a snapshot (a batch entry counts each
    /// of its commands); see [`ZnodeStore::commands_since_snapshot`].
    since_snapshot: u64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    state: Mutex<State>,
    sessions: Mutex<LeaderSessions>,
    events: broadcast::Sender<SmEvent>,
    /// Serializes writers of the snapshot files (build and install).
    files: tokio::sync::Mutex<()>,
    builds: AtomicU64,
    /// Size of the last encoded state, to size the next buffer in one allocation.
    last_size: AtomicUsize,
}

/// The replicated znode tree as an openraft state machine; cheap to clone (shared state).
#[derive(Debug, Clone)]
pub struct ZnodeStore {
    shared: Arc<Shared>,
}

/// A poisoned lock means a panic while applying; the state is still the last consistent one
/// because apply itself does not panic on input, so keep serving it.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read_err(meta: Option<&SnapshotMeta>, e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::read_snapshot(meta.map(SnapshotMeta::signature), e).into()
}

fn write_err(meta: Option<&SnapshotMeta>, e: &(impl std::error::Error + 'static)) -> StorageError {
    StorageIOError::write_snapshot(meta.map(SnapshotMeta::signature), e).into()
}

impl ZnodeStore {
    /// Opens the state machine whose snapshots live in `dir`, starting from the current
    /// snapshot if there is one. `event_capacity` bounds the broadcast queue of [`SmEvent`]s (a
    /// subscriber that falls further behind sees `Lagged` and must resync). Blocking.
    pub fn open(
        dir: impl AsRef<Path>,
        event_capacity: usize,
    ) -> Result<ZnodeStore, SnapshotFileError> {
        let dir = dir.as_ref().to_owned();
        let state = match snapshot::read(&dir)? {
            Some((meta, sm)) => State {
                sm,
                last_applied: meta.last_log_id,
                membership: meta.last_membership.clone(),
                snapshot: Some(meta),
                since_snapshot: 0,
            },
            None => State {
                sm: StateMachine::new(),
                last_applied: None,
                membership: StoredMembership::default(),
                snapshot: None,
                since_snapshot: 0,
            },
        };
        let (events, _) = broadcast::channel(event_capacity.max(1));
        let mut sessions = LeaderSessions::default();
        sessions.tracker.on_state_replaced(
            Instant::now(),
            state.sm.sessions_of(Liveness::CommittedWrites),
        );
        Ok(ZnodeStore {
            shared: Arc::new(Shared {
                dir,
                state: Mutex::new(state),
                sessions: Mutex::new(sessions),
                events,
                files: tokio::sync::Mutex::new(()),
                builds: AtomicU64::new(0),
                last_size: AtomicUsize::new(0),
            }),
        })
    }

    /// Watch events and snapshot installs from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<SmEvent> {
        self.shared.events.subscribe()
    }

    /// Runs `f` on the current state (a local, possibly stale read).
    pub fn read<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> T {
        f(&lock(&self.shared.state).sm)
    }

    /// The last applied log id (including blank and membership entries).
    pub fn last_applied(&self) -> Option<LogId> {
        lock(&self.shared.state).last_applied
    }

    /// Commands applied since the last snapshot was built or installed. openraft's snapshot
    /// policy counts log entries, and one batch entry may carry many commands, so the node
    /// also triggers a snapshot on this count: it bounds the log a restart has to replay.
    pub fn commands_since_snapshot(&self) -> u64 {
        lock(&self.shared.state).since_snapshot
    }

    /// Metadata of the current snapshot, if any.
    pub fn snapshot_meta(&self) -> Option<SnapshotMeta> {
        lock(&self.shared.state).snapshot.clone()
    }

    /// This node became leader of `term` at `now`: every heartbeat session gets a full timeout,
    /// and from now on applied session creations and ends update the tracker. Committed-writes
    /// sessions keep their deadlines and may expire once an entry of `term` is applied (maybe
    /// already).
    pub(crate) fn become_leader(&self, now: Instant, term: u64) {
        let state = lock(&self.shared.state);
        let mut sessions = lock(&self.shared.sessions);
        sessions.tracker.on_become_leader(now, state.sm.sessions());
        sessions.active = true;
        sessions.term = term;
        if state
            .last_applied
            .is_some_and(|applied| applied.leader_id.term >= term)
        {
            sessions.tracker.on_own_term_applied();
        }
    }

    /// This node stopped being leader: forget every deadline.
    pub(crate) fn step_down(&self) {
        let mut sessions = lock(&self.shared.sessions);
        sessions.tracker.on_step_down();
        sessions.active = false;
    }

    /// The leader's session tracker.
    pub(crate) fn sessions(&self) -> MutexGuard<'_, LeaderSessions> {
        lock(&self.shared.sessions)
    }

    fn apply_one(&self, state: &mut State, entry: Entry) -> Response {
        state.last_applied = Some(entry.log_id);
        {
            let mut sessions = lock(&self.shared.sessions);
            if sessions.active && entry.log_id.leader_id.term >= sessions.term {
                // Everything before this entry is applied, with apply times no earlier than
                // when it was proposed (see `crate::session::tracker`).
                sessions.tracker.on_own_term_applied();
            }
        }
        match entry.payload {
            // openraft wants a response per entry; nobody reads these two.
            EntryPayload::Blank => Response::Synced,
            EntryPayload::Membership(m) => {
                state.membership = StoredMembership::new(Some(entry.log_id), m);
                Response::Synced
            }
            EntryPayload::Normal(Proposal {
                leader_time_ms,
                command,
            }) => match command {
                VersionedCommand::V1(command) => {
                    let effect = SessionEffect::of(&command);
                    let response = state.sm.apply(entry.log_id.index, leader_time_ms, command);
                    self.track_sessions(&response, effect);
                    response
                }
                VersionedCommand::V2(commands) => {
                    let effects: Vec<SessionEffect> =
                        commands.iter().map(SessionEffect::of).collect();
                    let responses =
                        state
                            .sm
                            .apply_batch(entry.log_id.index, leader_time_ms, commands);
                    for (response, effect) in responses.iter().zip(effects) {
                        self.track_sessions(response, effect);
                    }
                    Response::Batch(responses)
                }
            },
        }
    }

    fn track_sessions(&self, response: &Response, effect: SessionEffect) {
        let mut sessions = lock(&self.shared.sessions);
        let now = Instant::now();
        match (effect, response) {
            (
                SessionEffect::Create(liveness),
                Response::SessionCreated {
                    session,
                    timeout_ms,
                },
            ) => match liveness {
                Liveness::CommittedWrites => {
                    sessions
                        .tracker
                        .add_committed_writes(*session, *timeout_ms, now);
                }
                Liveness::Heartbeat if sessions.active => {
                    sessions.tracker.add(*session, *timeout_ms, now);
                }
                Liveness::Heartbeat => {}
            },
            (SessionEffect::Write(id), _) => sessions.tracker.on_write_applied(id, now),
            (SessionEffect::End(id), _) => sessions.tracker.remove(id),
            _ => {}
        }
    }

    /// Opens the current snapshot file with its metadata. Call with `files` held.
    async fn open_current(&self) -> Result<Option<Snapshot>, StorageError> {
        let Some(meta) = lock(&self.shared.state).snapshot.clone() else {
            return Ok(None);
        };
        let path = snapshot::current_path(&self.shared.dir);
        let file = tokio::fs::File::open(&path)
            .await
            .map_err(|e| read_err(Some(&meta), &e))?;
        Ok(Some(Snapshot {
            meta,
            snapshot: Box::new(file),
        }))
    }
}

/// What a command does to a session, for the tracker.
#[derive(Debug, Clone, Copy)]
enum SessionEffect {
    /// Creates one of this kind (if its apply succeeds).
    Create(Liveness),
    /// A write of the session: a committed-writes session is renewed.
    Write(SessionId),
    /// Ends the session.
    End(SessionId),
    None,
}

impl SessionEffect {
    fn of(command: &Command) -> SessionEffect {
        match command {
            Command::CreateSession { .. } => SessionEffect::Create(Liveness::Heartbeat),
            Command::CreateSessionWith { liveness, .. } => SessionEffect::Create(*liveness),
            Command::Write { session, .. } => SessionEffect::Write(*session),
            Command::CloseSession { session } | Command::ExpireSession { session } => {
                SessionEffect::End(*session)
            }
            Command::Reap { .. } => SessionEffect::None,
        }
    }
}

fn newer(candidate: &SnapshotMeta, current: Option<&SnapshotMeta>) -> bool {
    current.is_none_or(|c| candidate.last_log_id > c.last_log_id)
}

impl RaftSnapshotBuilder<TypeConfig> for ZnodeStore {
    async fn build_snapshot(&mut self) -> Result<Snapshot, StorageError> {
        let files = self.shared.files.lock().await;
        let prepared = {
            let mut state = lock(&self.shared.state);
            let n = self.shared.builds.fetch_add(1, Ordering::Relaxed) + 1;
            let id = state.last_applied.map_or_else(
                || "0-0".to_owned(),
                |l| format!("{}-{}", l.leader_id.term, l.index),
            );
            let meta = SnapshotMeta {
                last_log_id: state.last_applied,
                last_membership: state.membership.clone(),
                snapshot_id: format!("{id}-{n}"),
            };
            // An installed snapshot may already cover everything applied: serve that one.
            if newer(&meta, state.snapshot.as_ref()) {
                // Encoded under the lock, which costs applies a pause, but a clone of the tree
                // would cost about as long (an allocation per node) and twice the tree's memory;
                // the encoding is about a fifth of it and goes back to the system when written.
                let buf = Vec::with_capacity(self.shared.last_size.load(Ordering::Relaxed));
                match state.sm.snapshot_into(buf) {
                    Ok(bytes) => {
                        state.since_snapshot = 0;
                        Some((meta, bytes))
                    }
                    Err(e) => return Err(write_err(Some(&meta), &io::Error::other(e))),
                }
            } else {
                None
            }
        };
        let Some((meta, bytes)) = prepared else {
            let current = self.open_current().await?;
            drop(files);
            return current.ok_or_else(|| write_err(None, &io::Error::other("snapshot vanished")));
        };
        let dir = self.shared.dir.clone();
        let written = meta.clone();
        self.shared.last_size.store(bytes.len(), Ordering::Relaxed);
        tokio::task::spawn_blocking(move || snapshot::write_encoded(&dir, &written, &bytes))
            .await
            .map_err(|e| write_err(Some(&meta), &io::Error::other(e)))?
            .map_err(|e| write_err(Some(&meta), &e))?;
        lock(&self.shared.state).snapshot = Some(meta.clone());
        tracing::info!(snapshot = %meta.snapshot_id, "built coordination snapshot");
        let current = self.open_current().await?;
        drop(files);
        current.ok_or_else(|| write_err(Some(&meta), &io::Error::other("snapshot vanished")))
    }
}

impl RaftStateMachine<TypeConfig> for ZnodeStore {
    type SnapshotBuilder = Self;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let state = lock(&self.shared.state);
        Ok((state.last_applied, state.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
    {
        let mut state = lock(&self.shared.state);
        let mut responses = Vec::new();
        for entry in entries {
            let index = entry.log_id.index;
            let response = self.apply_one(&mut state, entry);
            let commands = match &response {
                Response::Batch(each) => each.len() as u64,
                _ => 1,
            };
            state.since_snapshot = state.since_snapshot.saturating_add(commands);
            responses.push(response);
            let events = state.sm.drain_events();
            // Sent under the lock, so events leave in apply order; no subscriber is fine.
            let _ = self.shared.events.send(SmEvent::Applied { index, events });
        }
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self {
        self.clone()
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<tokio::fs::File>, StorageError> {
        // An anonymous file: created, then unlinked, so an interrupted transfer leaves nothing.
        let n = self.shared.builds.fetch_add(1, Ordering::Relaxed);
        let dir = self.shared.dir.clone();
        let file = tokio::task::spawn_blocking(move || -> io::Result<std::fs::File> {
            std::fs::create_dir_all(&dir)?;
            let path = dir.join(format!("incoming-{n}.tmp"));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(&path)?;
            std::fs::remove_file(&path)?;
            Ok(file)
        })
        .await
        .map_err(|e| write_err(None, &io::Error::other(e)))?
        .map_err(|e| write_err(None, &e))?;
        Ok(Box::new(tokio::fs::File::from_std(file)))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        mut data: Box<tokio::fs::File>,
    ) -> Result<(), StorageError> {
        let mut bytes = Vec::new();
        data.seek(SeekFrom::Start(0))
            .await
            .map_err(|e| read_err(Some(meta), &e))?;
        data.read_to_end(&mut bytes)
            .await
            .map_err(|e| read_err(Some(meta), &e))?;
        let files = self.shared.files.lock().await;
        let dir = self.shared.dir.clone();
        let expected = meta.clone();
        let sm = tokio::task::spawn_blocking(move || {
            let (inner, sm) = snapshot::decode(&bytes)?;
            if inner.last_log_id != expected.last_log_id
                || inner.last_membership != expected.last_membership
            {
                return Err(SnapshotFileError::Invalid(
                    "content does not match the metadata sent with it".into(),
                ));
            }
            snapshot::write_bytes(&dir, &bytes)?;
            Ok(sm)
        })
        .await
        .map_err(|e| read_err(Some(meta), &io::Error::other(e)))?
        .map_err(|e| read_err(Some(meta), &e))?;
        let applied = meta.last_log_id.map_or(0, |l| l.index);
        {
            let mut state = lock(&self.shared.state);
            state.sm = sm;
            // Taken under the state lock, like every apply-side tracker update.
            lock(&self.shared.sessions).tracker.on_state_replaced(
                Instant::now(),
                state.sm.sessions_of(Liveness::CommittedWrites),
            );
            state.last_applied = meta.last_log_id;
            state.membership = meta.last_membership.clone();
            state.snapshot = Some(meta.clone());
            state.since_snapshot = 0;
            let _ = self
                .shared
                .events
                .send(SmEvent::SnapshotInstalled { index: applied });
        }
        drop(files);
        tracing::info!(snapshot = %meta.snapshot_id, applied, "installed coordination snapshot");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot>, StorageError> {
        let _files = self.shared.files.lock().await;
        self.open_current().await
    }
}

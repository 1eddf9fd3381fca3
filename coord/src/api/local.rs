//! [`LocalBackend`]: one in-process [`StateMachine`], no replication.
//!
//! Indexes are assigned locally in apply order; the leader's time is the wall clock. A
//! background task (started by [`LocalBackend::start`]) plays the leader's timers: it expires
//! sessions through the [`SessionTracker`] and reaps containers and TTL nodes. Useful for tests,
//! examples and a single-node deployment; the replicated node implements the same [`Backend`].

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use super::ApiError;
use super::backend::{
    Backend, BackendEvent, ClusterStatus, Consistency, Member, MembershipChange, Role,
};
use crate::request::{Command, Response};
use crate::session::{Liveness, SessionConfig, SessionId, SessionTracker, TouchError};
use crate::state_machine::StateMachine;
use crate::tree::{Stat, path};

/// How many applied entries a slow subscriber may lag before it must resync.
const EVENT_BUFFER: usize = 4096;

/// A single-node backend. Cheap to clone; the timer task stops when the last clone is dropped.
#[derive(Clone)]
pub struct LocalBackend {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    events: broadcast::Sender<BackendEvent>,
    timer: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    sm: StateMachine,
    tracker: SessionTracker,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(mut timer) = self.timer.lock()
            && let Some(task) = timer.take()
        {
            task.abort();
        }
    }
}

impl LocalBackend {
    /// An empty tree; starts the timer task ticking every `tick` on the current tokio runtime.
    pub fn start(tick: Duration) -> LocalBackend {
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let backend = LocalBackend {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    sm: StateMachine::new(),
                    tracker: leader_tracker(),
                }),
                events,
                timer: Mutex::new(None),
            }),
        };
        let weak = Arc::downgrade(&backend.inner);
        let task = tokio::spawn(run_timers(weak, tick));
        if let Ok(mut timer) = backend.inner.timer.lock() {
            *timer = Some(task);
        }
        backend
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.inner)
    }

    /// Runs `f` on the state machine (tests and diagnostics).
    pub fn with_state_machine<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> T {
        f(&self.state().sm)
    }
}

/// The only member is the leader, and applies every entry as soon as it is committed.
fn leader_tracker() -> SessionTracker {
    let mut tracker = SessionTracker::new();
    tracker.on_become_leader(Instant::now(), []);
    tracker.on_own_term_applied();
    tracker
}

fn lock(inner: &Inner) -> MutexGuard<'_, State> {
    // A panic while holding the lock cannot leave the state machine half-applied in a way the
    // next apply would make worse than the panic itself; keep serving.
    inner
        .state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Applies `cmd` at the next index and publishes its events, all under the lock so that the
/// event stream is in index order.
fn apply(inner: &Inner, state: &mut State, cmd: Command) -> Response {
    let index = state.sm.last_applied() + 1;
    let now = Instant::now();
    let touched = match &cmd {
        Command::Write { session, .. } => Some(*session),
        _ => None,
    };
    let ended = match &cmd {
        Command::CloseSession { session } | Command::ExpireSession { session } => Some(*session),
        _ => None,
    };
    let liveness = match &cmd {
        Command::CreateSessionWith { liveness, .. } => *liveness,
        _ => Liveness::Heartbeat,
    };
    // A batch of one, so zxids are composite as on a replicated node (see `crate::zxid`).
    let response = state
        .sm
        .apply_batch(index, now_ms(), vec![cmd])
        .pop()
        .unwrap_or(Response::Error(crate::Error::RuntimeInconsistency));
    match &response {
        Response::SessionCreated {
            session,
            timeout_ms,
        } => match liveness {
            Liveness::Heartbeat => state.tracker.add(*session, *timeout_ms, now),
            Liveness::CommittedWrites => {
                state
                    .tracker
                    .add_committed_writes(*session, *timeout_ms, now);
            }
        },
        Response::SessionClosed => {
            if let Some(session) = ended {
                state.tracker.remove(session);
            }
        }
        _ => {
            if let Some(session) = touched {
                // A write is proof of life, as in ZooKeeper; an unknown session stays unknown.
                // Received, committed and applied are one moment here.
                let _ = state.tracker.on_write_received(session, now);
                state.tracker.on_write_applied(session, now);
            }
        }
    }
    let events = state.sm.drain_events();
    // No subscriber is fine: nobody is watching.
    let _ = inner.events.send(BackendEvent::Applied { index, events });
    response
}

async fn run_timers(inner: Weak<Inner>, tick: Duration) {
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let mut state = lock(&inner);
        let expired = state.tracker.poll_expired(Instant::now());
        for session in expired {
            apply(&inner, &mut state, Command::ExpireSession { session });
        }
        let paths = state.sm.tree().reapable(now_ms());
        if !paths.is_empty() {
            apply(&inner, &mut state, Command::Reap { paths });
        }
    }
}

#[async_trait]
impl Backend for LocalBackend {
    async fn write(&self, cmd: Command) -> Result<Response, ApiError> {
        let mut state = self.state();
        Ok(apply(&self.inner, &mut state, cmd))
    }

    async fn get(&self, _: Consistency, p: &str) -> Result<(Vec<u8>, Stat), ApiError> {
        let state = self.state();
        let (data, stat) = state.sm.tree().get(p).map_err(|e| ApiError::at(e, p))?;
        Ok((data.to_vec(), stat))
    }

    async fn exists(&self, _: Consistency, p: &str) -> Result<Option<Stat>, ApiError> {
        self.state()
            .sm
            .tree()
            .exists(p)
            .map_err(|e| ApiError::at(e, p))
    }

    async fn children(&self, _: Consistency, p: &str) -> Result<(Vec<String>, Stat), ApiError> {
        self.state()
            .sm
            .tree()
            .children(p)
            .map_err(|e| ApiError::at(e, p))
    }

    async fn subtree(
        &self,
        _: Consistency,
        p: &str,
        limit: usize,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let state = self.state();
        let tree = state.sm.tree();
        let mut out = Vec::new();
        let mut todo = vec![p.to_owned()];
        while let Some(at) = todo.pop() {
            let (names, _) = tree.children(&at).map_err(|e| ApiError::at(e, &at))?;
            todo.extend(names.iter().map(|n| path::join(&at, n)));
            out.push(at);
            if out.len() > limit {
                return Ok(None);
            }
        }
        Ok(Some(out))
    }

    async fn heartbeat(&self, session: SessionId) -> Result<(), ApiError> {
        self.state()
            .tracker
            .touch(session, Instant::now())
            .map_err(|e| match e {
                TouchError::SessionExpired => ApiError::from(crate::Error::SessionExpired),
                TouchError::RenewedByWrites => ApiError::BadRequest(e.to_string()),
            })
    }

    fn subscribe_events(&self) -> broadcast::Receiver<BackendEvent> {
        self.inner.events.subscribe()
    }

    fn applied_index(&self) -> u64 {
        self.state().sm.last_applied()
    }

    async fn status(&self) -> Result<ClusterStatus, ApiError> {
        let applied = self.applied_index();
        Ok(ClusterStatus {
            node_id: 1,
            leader: Some(1),
            term: 1,
            commit_index: applied,
            applied_index: applied,
            members: vec![Member {
                id: 1,
                addr: "local".into(),
                role: Role::Leader,
            }],
        })
    }

    async fn change_membership(&self, _: MembershipChange) -> Result<ClusterStatus, ApiError> {
        Err(ApiError::Unsupported(
            "a local backend has no cluster membership".into(),
        ))
    }
}

/// Session bounds for tests and demos: timeouts from 200 ms (so expiry tests run fast) to 60 s.
pub fn short_sessions() -> SessionConfig {
    SessionConfig {
        min_timeout_ms: 200,
        max_timeout_ms: 60_000,
    }
}

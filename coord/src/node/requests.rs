//! Requests that need the leader: finding it, forwarding to it, retrying while it changes, and
//! the leader-side handling of writes, read indexes and heartbeats. See the module docs of
//! [`super`] for the retry rules.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use openraft::{Raft, ServerState};

use super::{CoordError, Inner, LEADER_POLL};
use crate::raft::network::{self, ForwardError, PeerRequest, PeerResponse, Peers};
use crate::raft::types::TypeConfig;
use crate::request::{Command, Response};
use crate::session::{SessionId, TouchError};

impl Inner {
    /// The current leader, waiting for one until `deadline`.
    pub(super) async fn leader(&self, deadline: Instant) -> Result<u64, CoordError> {
        let mut metrics = self.raft.metrics();
        loop {
            {
                let m = metrics.borrow_and_update();
                if let Err(e) = &m.running_state {
                    return Err(CoordError::Stopped(e.to_string()));
                }
                if let Some(leader) = m.current_leader
                    && m.state != ServerState::Candidate
                {
                    return Ok(leader);
                }
            }
            let wait = deadline.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                return Err(CoordError::NotLeader { leader: None });
            }
            let _ = tokio::time::timeout(wait.min(LEADER_POLL * 10), metrics.changed()).await;
        }
    }

    pub(super) fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.id)
    }

    /// Sends a forwarded request to `leader` and waits for the answer.
    pub(super) async fn forward(
        &self,
        leader: u64,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, CoordError> {
        call_leader(&self.raft, &self.peers, leader, request, timeout).await
    }

    /// Retries `attempt` against the current leader while the answer is `NotLeader`.
    pub(super) async fn with_leader<T, F, Fut>(&self, mut attempt: F) -> Result<T, CoordError>
    where
        F: FnMut(u64, Duration) -> Fut,
        Fut: Future<Output = Result<T, CoordError>>,
    {
        let timeout = self.config.request_timeout;
        let deadline = Instant::now() + timeout;
        loop {
            let leader = self.leader(deadline).await?;
            let remaining = deadline.saturating_duration_since(Instant::now());
            match attempt(leader, remaining).await {
                Err(CoordError::NotLeader { .. }) if Instant::now() + LEADER_POLL < deadline => {
                    tokio::time::sleep(LEADER_POLL).await;
                }
                Err(CoordError::Unavailable(why) | CoordError::ConnectionLost(why))
                    if Instant::now() + LEADER_POLL < deadline =>
                {
                    // Not attempted (peer unreachable, no quorum yet) or lost with the connection
                    // (safe to repeat, see the module docs): the leader may be gone, look again.
                    tracing::debug!(node = self.id, leader, %why, "forwarding failed, retrying");
                    tokio::time::sleep(LEADER_POLL).await;
                }
                other => return other,
            }
        }
    }

    pub(super) async fn write(&self, cmd: Command) -> Result<Response, CoordError> {
        self.with_leader(|leader, remaining| {
            let cmd = cmd.clone();
            async move {
                if leader == self.id {
                    self.write_local(cmd, remaining).await
                } else {
                    self.forward_write(cmd, remaining).await
                }
            }
        })
        .await
    }

    /// Forwards `cmd` to the leader with the other writes this node's clients send meanwhile
    /// (see `write_batch`). The batch goes to whoever leads when it is sent; a batch that finds
    /// no leader, or this node leading, fails with `NotLeader`, which the caller retries.
    async fn forward_write(&self, cmd: Command, timeout: Duration) -> Result<Response, CoordError> {
        let leader = self.raft.metrics().borrow().current_leader;
        if let Some(leader) = leader.filter(|&l| self.batches_refused_by(l)) {
            // A leader that does not know `ClientWrites` (an older version during a rolling
            // upgrade) gets one message per write, as it expects.
            return match self
                .forward(leader, PeerRequest::ClientWrite(cmd), timeout)
                .await?
            {
                PeerResponse::ClientWrite(result) => result.map_err(CoordError::from),
                other => Err(CoordError::Unavailable(format!(
                    "unexpected answer {other:?}"
                ))),
            };
        }
        let (raft, peers, me) = (self.raft.clone(), self.peers.clone(), self.id);
        let refused = Arc::clone(&self.batch_refusal);
        let round_timeout = self.config.request_timeout;
        let send = move |commands| {
            forward_batch(
                (raft.clone(), peers.clone(), me),
                commands,
                round_timeout,
                Arc::clone(&refused),
            )
        };
        self.forwards
            .submit(cmd, send, timeout)
            .await?
            .map_err(CoordError::from)
    }

    /// Proposes `cmd` on this node, which must be the leader.
    pub(crate) async fn write_local(
        &self,
        cmd: Command,
        timeout: Duration,
    ) -> Result<Response, CoordError> {
        if let Command::Write { session, .. } = &cmd {
            // A request is as good as a heartbeat (ZooKeeper touches the session too), and a
            // committed-writes session counts it from now on; one whose expiry this leader
            // decided already gets no more writes (see `crate::session::tracker`).
            self.store
                .sessions()
                .tracker
                .on_write_received(*session, Instant::now())
                .map_err(|_| CoordError::SessionExpired)?;
        }
        // Batched with the other commands arriving meanwhile (see `write_batch`).
        self.writes
            .write(&self.raft, cmd, self.config.request_timeout, timeout)
            .await
    }

    /// [`Inner::write_local`] for a follower's forwarded batch: the commands are queued
    /// together, in order, and each gets its own result.
    pub(crate) async fn write_local_many(
        &self,
        cmds: Vec<Command>,
        timeout: Duration,
    ) -> Vec<Result<Response, CoordError>> {
        let mut results: Vec<Option<Result<Response, CoordError>>> = Vec::with_capacity(cmds.len());
        let mut accepted = Vec::with_capacity(cmds.len());
        {
            let now = Instant::now();
            let mut sessions = self.store.sessions();
            for cmd in cmds {
                // As in `write_local`, per command.
                if let Command::Write { session, .. } = &cmd
                    && sessions.tracker.on_write_received(*session, now).is_err()
                {
                    results.push(Some(Err(CoordError::SessionExpired)));
                    continue;
                }
                results.push(None);
                accepted.push(cmd);
            }
        }
        let mut answers = self
            .writes
            .write_many(&self.raft, accepted, self.config.request_timeout, timeout)
            .await
            .into_iter();
        results
            .into_iter()
            .map(|r| {
                r.or_else(|| answers.next()).unwrap_or_else(|| {
                    Err(CoordError::Unavailable(
                        "a forwarded batch lost an answer".to_owned(),
                    ))
                })
            })
            .collect()
    }

    /// Waits until this node has applied every entry committed before the call.
    pub(super) async fn sync(&self) -> Result<(), CoordError> {
        let index = self
            .with_leader(|leader, remaining| async move {
                if leader == self.id {
                    self.read_index_local(remaining).await
                } else {
                    match self
                        .forward(leader, PeerRequest::ReadIndex, remaining)
                        .await?
                    {
                        PeerResponse::ReadIndex(r) => r.map_err(CoordError::from),
                        other => Err(CoordError::Unavailable(format!(
                            "unexpected answer {other:?}"
                        ))),
                    }
                }
            })
            .await?;
        let timeout = self.config.request_timeout;
        self.raft
            .wait(Some(timeout))
            .applied_index_at_least(Some(index), "linearizable read")
            .await
            .map_err(|e| match e {
                openraft::metrics::WaitError::Timeout(..) => CoordError::Timeout(timeout),
                openraft::metrics::WaitError::ShuttingDown => CoordError::Stopped(e.to_string()),
            })?;
        Ok(())
    }

    /// The leader's read index, confirmed by a quorum in a round that started after this
    /// call; concurrent calls share rounds (see `read_batch`).
    pub(crate) async fn read_index_local(&self, timeout: Duration) -> Result<u64, CoordError> {
        self.reads
            .read_index(&self.raft, self.config.request_timeout, timeout)
            .await
    }

    pub(super) async fn heartbeat(&self, session: SessionId) -> Result<(), CoordError> {
        self.with_leader(|leader, remaining| async move {
            if leader == self.id {
                self.heartbeat_local(session)
            } else {
                match self
                    .forward(leader, PeerRequest::Heartbeat(session), remaining)
                    .await?
                {
                    PeerResponse::Heartbeat(r) => r.map_err(CoordError::from),
                    other => Err(CoordError::Unavailable(format!(
                        "unexpected answer {other:?}"
                    ))),
                }
            }
        })
        .await
    }

    pub(crate) fn heartbeat_local(&self, session: SessionId) -> Result<(), CoordError> {
        let mut sessions = self.store.sessions();
        if !sessions.active {
            return Err(CoordError::NotLeader {
                leader: self.raft.metrics().borrow().current_leader,
            });
        }
        sessions
            .tracker
            .touch(session, Instant::now())
            .map_err(|e| match e {
                TouchError::SessionExpired => CoordError::SessionExpired,
                TouchError::RenewedByWrites => CoordError::RenewedByWrites,
            })
    }
}

/// The address of `leader` in the current membership.
fn leader_addr(raft: &Raft<TypeConfig>, leader: u64) -> Option<String> {
    let m = raft.metrics();
    let m = m.borrow();
    m.membership_config
        .membership()
        .get_node(&leader)
        .map(|n| n.addr.clone())
}

/// Sends `request` to `leader` and waits up to `timeout` for the answer.
async fn call_leader(
    raft: &Raft<TypeConfig>,
    peers: &Peers,
    leader: u64,
    request: PeerRequest,
    timeout: Duration,
) -> Result<PeerResponse, CoordError> {
    let Some(addr) = leader_addr(raft, leader) else {
        return Err(CoordError::NotLeader {
            leader: Some(leader),
        });
    };
    let client = peers.client(leader, &addr);
    client.call(request, timeout).await.map_err(|e| match e {
        network::CallError::Timeout { timeout, .. } => CoordError::Timeout(timeout),
        // Nothing was sent: safe to try again.
        network::CallError::Unreachable { .. } => CoordError::Unavailable(e.to_string()),
        network::CallError::Network { .. } => CoordError::ConnectionLost(e.to_string()),
    })
}

/// How long a leader that refused a `ClientWrites` message gets single writes before batches
/// are tried on it again (it may have been upgraded meanwhile).
const BATCH_REFUSAL_FOR: Duration = Duration::from_secs(30);

/// Which leader last refused a batch of forwarded writes, and when.
pub(super) type BatchRefusal = Arc<Mutex<Option<(u64, Instant)>>>;

impl Inner {
    /// Whether `leader` refused a batch of forwarded writes in the last
    /// [`BATCH_REFUSAL_FOR`].
    fn batches_refused_by(&self, leader: u64) -> bool {
        let refusal = *self
            .batch_refusal
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        refusal.is_some_and(|(by, at)| by == leader && at.elapsed() < BATCH_REFUSAL_FOR)
    }
}

/// Sends a follower's batch of writes to the current leader as one `ClientWrites` message.
/// A leader that answers `Refused` (it does not know the message) is remembered in `refusal`
/// and the batch fails as `Unavailable`: nothing was done, so each caller's retry goes out
/// as a single write (see `forward_write`).
async fn forward_batch(
    (raft, peers, me): (Raft<TypeConfig>, Peers, u64),
    commands: Vec<Command>,
    timeout: Duration,
    refusal: BatchRefusal,
) -> Result<Vec<Result<Response, ForwardError>>, CoordError> {
    let leader = raft.metrics().borrow().current_leader;
    let Some(leader) = leader.filter(|l| *l != me) else {
        // Leadership moved since the callers looked: they look again.
        return Err(CoordError::NotLeader { leader });
    };
    match call_leader(
        &raft,
        &peers,
        leader,
        PeerRequest::ClientWrites(commands),
        timeout,
    )
    .await?
    {
        PeerResponse::ClientWrites(results) => Ok(results),
        PeerResponse::Refused(why) => {
            tracing::warn!(leader, %why, "the leader refused batched writes; sending them one by one");
            *refusal.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((leader, Instant::now()));
            Err(CoordError::Unavailable(format!(
                "leader {leader} refused batched writes: {why}"
            )))
        }
        other => Err(CoordError::Unavailable(format!(
            "unexpected answer {other:?}"
        ))),
    }
}

//! Requests that need the leader: finding it, forwarding to it, retrying while it changes, and
//! the leader-side handling of writes, read indexes and heartbeats. See the module docs of
//! [`super`] for the retry rules.

use std::time::{Duration, Instant};

use openraft::ServerState;

use super::{CoordError, Inner, LEADER_POLL};
use crate::raft::network::{self, PeerRequest, PeerResponse};
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
        let addr = {
            let m = self.raft.metrics();
            let m = m.borrow();
            m.membership_config
                .membership()
                .get_node(&leader)
                .map(|n| n.addr.clone())
        };
        let Some(addr) = addr else {
            return Err(CoordError::NotLeader {
                leader: Some(leader),
            });
        };
        let client = self.peers.client(leader, &addr);
        client.call(request, timeout).await.map_err(|e| match e {
            network::CallError::Timeout { timeout, .. } => CoordError::Timeout(timeout),
            // Nothing was sent: safe to try again.
            network::CallError::Unreachable { .. } => CoordError::Unavailable(e.to_string()),
            network::CallError::Network { .. } => CoordError::ConnectionLost(e.to_string()),
        })
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
                    match self
                        .forward(leader, PeerRequest::ClientWrite(cmd), remaining)
                        .await?
                    {
                        PeerResponse::ClientWrite(r) => r.map_err(CoordError::from),
                        other => Err(CoordError::Unavailable(format!(
                            "unexpected answer {other:?}"
                        ))),
                    }
                }
            }
        })
        .await
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

//! The leader's background work, and the handler of requests from peers.
//!
//! One task per node watches openraft's metrics, and on every node triggers a snapshot once
//! `snapshot_every` commands were applied since the last one (openraft's own policy counts
//! entries, which batching makes much larger). When this node becomes leader it gives every
//! heartbeat session a full timeout ([`crate::SessionTracker::on_become_leader`]; committed-writes
//! sessions keep the deadlines every member tracks); while leader it proposes `ExpireSession`
//! for sessions whose deadline passed and, every `reap_interval`, `Reap` for empty containers
//! and expired TTL nodes; when it stops leading it forgets the heartbeat deadlines.

use std::sync::Arc;
use std::time::{Duration, Instant};

use openraft::ServerState;

use super::{Inner, now_ms};
use crate::raft::network::{PeerHandler, PeerProbe, PeerRequest, PeerResponse};
use crate::request::Command;
use crate::session::SessionId;

/// How often the duty loop looks at everything else (snapshots, reaping, retries) and, as a
/// backstop, at session deadlines; the leader also wakes at the earliest deadline itself, so an
/// expiry is proposed when it is due rather than up to a tick later (a crashed VIP owner's
/// successor waits for exactly that expiry).
const TICK: Duration = Duration::from_millis(50);
/// How often expiries whose proposal did not go through are proposed again.
const RETRY_EXPIRY: Duration = Duration::from_secs(2);

pub(super) async fn run(inner: Arc<Inner>) {
    let mut metrics = inner.raft.metrics();
    let mut stop = inner.stop.subscribe();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The term this node leads, if it does.
    let mut leading: Option<u64> = None;
    let mut last_reap = Instant::now();
    let mut last_retry = Instant::now();
    loop {
        // A session added after this look has a full timeout ahead of it, so the tick
        // catches it well before its deadline; heartbeats only move deadlines later.
        let next_expiry = leading
            .and_then(|_| inner.store.sessions().tracker.poll_timeout())
            .map(tokio::time::Instant::from_std);
        tokio::select! {
            changed = metrics.changed() => if changed.is_err() { break },
            _ = tick.tick() => {}
            () = expiry_due(next_expiry) => {}
            _ = stop.wait_for(|s| *s) => break,
        }
        let leads = {
            let m = metrics.borrow_and_update();
            (m.state == ServerState::Leader && m.current_leader == Some(inner.id))
                .then_some(m.current_term)
        };
        if leads != leading {
            // A new term while leading means this node lost and regained leadership between
            // two looks: the tracker must start over for the new term too.
            if leading.is_some() {
                inner.store.step_down();
            }
            leading = leads;
            if let Some(term) = leading {
                tracing::info!(
                    node = inner.id,
                    term,
                    "leading: every heartbeat session gets a full timeout"
                );
                inner.store.become_leader(Instant::now(), term);
            }
        }
        if inner.store.commands_since_snapshot() >= inner.config.snapshot_every {
            // Every node snapshots its own state. openraft ignores the trigger while a build
            // runs, and the count restarts when the build encodes the state.
            let _ = inner.raft.trigger().snapshot().await;
        }
        if leading.is_none() {
            continue;
        }
        let now = Instant::now();
        let mut expire = inner.store.sessions().tracker.poll_expired(now);
        if now.duration_since(last_retry) >= RETRY_EXPIRY {
            last_retry = now;
            // `expiring` includes what `poll_expired` just returned.
            expire = inner.store.sessions().tracker.expiring().collect();
        }
        for session in expire {
            propose(&inner, Command::ExpireSession { session }, Some(session));
        }
        if now.duration_since(last_reap) >= inner.config.reap_interval {
            last_reap = now;
            let paths = inner.store.read(|sm| sm.tree().reapable(now_ms()));
            if !paths.is_empty() {
                propose(&inner, Command::Reap { paths }, None);
            }
        }
    }
    inner.store.step_down();
}

/// Resolves at `at`, or never when no session is due.
async fn expiry_due(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Proposes a leader-decided command without blocking the duty loop.
fn propose(inner: &Arc<Inner>, cmd: Command, session: Option<SessionId>) {
    let inner = Arc::clone(inner);
    tokio::spawn(async move {
        let timeout = inner.config.request_timeout;
        match inner.write_local(cmd, timeout).await {
            Ok(response) => {
                if let Some(session) = session {
                    tracing::info!(node = inner.id, %session, ?response, "session expired");
                }
            }
            Err(e) => tracing::warn!(node = inner.id, error = %e, "leader proposal failed"),
        }
    });
}

impl PeerHandler for Inner {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        let timeout = self.config.request_timeout;
        match request {
            PeerRequest::AppendEntries(rpc) => {
                PeerResponse::AppendEntries(self.raft.append_entries(rpc).await)
            }
            PeerRequest::Vote(rpc) => PeerResponse::Vote(self.raft.vote(rpc).await),
            PeerRequest::InstallSnapshot(rpc) => {
                PeerResponse::InstallSnapshot(self.raft.install_snapshot(rpc).await)
            }
            // Forwarded requests are served only by the leader itself, never forwarded again,
            // so two nodes with different views of the leader cannot bounce a request.
            PeerRequest::ClientWrite(cmd) => {
                let result = if self.is_leader() {
                    self.write_local(cmd, timeout).await
                } else {
                    Err(self.not_leader())
                };
                PeerResponse::ClientWrite(result.map_err(|e| e.to_forward()))
            }
            PeerRequest::ClientWrites(cmds) => {
                let results = if self.is_leader() {
                    self.write_local_many(cmds, timeout).await
                } else {
                    let e = self.not_leader();
                    cmds.iter().map(|_| Err(e.for_each_waiter())).collect()
                };
                PeerResponse::ClientWrites(
                    results
                        .into_iter()
                        .map(|r| r.map_err(|e| e.to_forward()))
                        .collect(),
                )
            }
            PeerRequest::Heartbeat(session) => {
                PeerResponse::Heartbeat(self.heartbeat_local(session).map_err(|e| e.to_forward()))
            }
            PeerRequest::ReadIndex => {
                let result = if self.is_leader() {
                    self.read_index_local(timeout).await
                } else {
                    Err(self.not_leader())
                };
                PeerResponse::ReadIndex(result.map_err(|e| e.to_forward()))
            }
            PeerRequest::Probe => PeerResponse::Probe(self.probe().await),
        }
    }
}

impl Inner {
    async fn probe(&self) -> PeerProbe {
        let m = self.raft.metrics().borrow().clone();
        PeerProbe {
            // A stopped Raft cannot say; claiming membership keeps the asker from bootstrapping.
            initialized: self.raft.is_initialized().await.unwrap_or(true),
            term: m.current_term,
            leader: m.current_leader,
        }
    }

    fn not_leader(&self) -> super::CoordError {
        super::CoordError::NotLeader {
            leader: self.raft.metrics().borrow().current_leader,
        }
    }
}

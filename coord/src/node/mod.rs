//! [`CoordNode`]: one member of the coordination cluster — the Raft log, the znode state
//! machine, the peer transport, and the API the client layer calls.
//!
//! # Layout
//!
//! - `mod.rs`: start-up, shutdown, writes, reads, sessions.
//! - `admin`: membership changes, snapshots, [`NodeStatus`].
//! - `backend`: the client API's [`crate::api::Backend`] for [`CoordNode`].
//! - `requests`: finding and forwarding to the leader, retries, leader-side request handling.
//! - `duties`: the leader's background work (session expiry, container/TTL reaping) and the
//!   peer request handler.
//! - `config`: [`CoordConfig`]. `error`: [`CoordError`].
//!
//! # Requests on followers
//!
//! Clients may talk to any node:
//! - writes are forwarded to the leader over the peer transport and the leader's apply
//!   responses come back; the writes a node's clients send while others are on their way go
//!   together in one `ClientWrites` message (`write_batch`);
//! - linearizable reads use the read-index protocol (ZooKeeper's "sync, then read locally"):
//!   the leader confirms its leadership with a quorum and returns its commit point, this node
//!   waits until it has applied that far, then reads its own tree. On the leader, concurrent
//!   read-index requests (local or forwarded) share quorum rounds (`read_batch`), and writes
//!   arriving while earlier ones are in flight share one log entry (`write_batch`);
//! - session heartbeats are forwarded to the leader, whose tracker alone decides expiry (of a
//!   heartbeat session; a [`Liveness::CommittedWrites`] session lives on its committed writes,
//!   which every member tracks, so a new leader does not restart its timeout).
//!
//! Failures that say nothing was done (`NotLeader`, `Unavailable`) and a connection to the
//! leader that broke mid-request (`ConnectionLost`) are retried against the current leader until
//! `request_timeout`. Repeating a command is safe: writes are deduplicated by (session, request
//! id), closes, expiries and reaps are idempotent (a repeated close answers `SessionExpired`),
//! and a repeated `CreateSession` at worst leaves an unused session that times out. A timeout is
//! returned as is: the write may still commit, and the client retries with the same request id.

mod admin;
mod backend;
mod campaign;
mod config;
mod duties;
mod error;
mod read_batch;
mod requests;
mod write_batch;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{InitializeError, RaftError};
use openraft::{BasicNode, Raft};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

pub use self::admin::{NodeStatus, Role};
pub use self::config::CoordConfig;
pub use self::error::CoordError;
use crate::raft::network::{self, NetworkFactory, PeerTls, Peers};
use crate::raft::types::TypeConfig;
use crate::raft::{LogStore, SmEvent, ZnodeStore};
use crate::request::{Command, Response};
use crate::session::{Liveness, SessionId};
use crate::state_machine::StateMachine;

/// How often a waiting request re-checks who the leader is.
const LEADER_POLL: Duration = Duration::from_millis(20);

/// A running coordination node. Cheap to clone; [`CoordNode::shutdown`] stops it (dropping
/// the handles does not: the node's tasks keep it alive).
#[derive(Clone)]
pub struct CoordNode {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    id: u64,
    config: CoordConfig,
    raft: Raft<TypeConfig>,
    store: ZnodeStore,
    peers: Peers,
    local_addr: std::net::SocketAddr,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Shares read-index rounds between concurrent linearizable reads.
    reads: read_batch::ReadBatcher,
    /// Proposes the writes arriving while others are in flight as one entry.
    writes: write_batch::WriteBatcher,
    /// Forwards this node's writes to the leader in batches (when it is not the leader).
    forwards: write_batch::ForwardBatcher,
    /// The leader that last refused such a batch (an older version), and when.
    batch_refusal: requests::BatchRefusal,
}

impl std::fmt::Debug for CoordNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CoordNode")
            .field("id", &self.inner.id)
            .field("addr", &self.inner.local_addr)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch on this (the leader's) clock, for [`Proposal`]s.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl CoordNode {
    /// Opens the node's state under `config.data_dir`, binds `config.listen` and starts Raft.
    pub async fn start(config: CoordConfig) -> Result<CoordNode, CoordError> {
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| CoordError::Io {
                op: "bind peer listener",
                source,
            })?;
        CoordNode::start_on(config, listener).await
    }

    /// Like [`CoordNode::start`] on an already bound listener (tests bind port 0 first to learn
    /// every node's address before any starts).
    pub async fn start_on(
        config: CoordConfig,
        listener: TcpListener,
    ) -> Result<CoordNode, CoordError> {
        let raft_config = config.raft_config().map_err(CoordError::Config)?;
        let local_addr = listener.local_addr().map_err(|source| CoordError::Io {
            op: "peer listener address",
            source,
        })?;
        let dir = config.data_dir.clone();
        let (log, store, tls) = {
            let options = config.log;
            let capacity = config.event_capacity;
            let tls = config.tls.clone();
            tokio::task::spawn_blocking(move || {
                let tls = tls.as_ref().map(PeerTls::load).transpose()?;
                let log = LogStore::<TypeConfig>::open(dir.join("log"), options)?;
                let store = ZnodeStore::open(dir.join("snapshot"), capacity)?;
                Ok::<_, CoordError>((log, store, tls))
            })
            .await
            .map_err(|e| CoordError::Stopped(e.to_string()))??
        };
        let peers = Peers::new(tls.clone()).bound_to(config.peer_source);
        let id = config.node_id;
        let raft = Raft::new(
            id,
            Arc::new(raft_config),
            NetworkFactory::new(id, peers.clone()),
            log,
            store.clone(),
        )
        .await
        .map_err(|e| CoordError::Stopped(e.to_string()))?;
        let (stop, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            id,
            config,
            raft,
            store,
            peers,
            local_addr,
            stop,
            tasks: std::sync::Mutex::new(Vec::new()),
            reads: read_batch::ReadBatcher::default(),
            writes: write_batch::WriteBatcher::default(),
            forwards: write_batch::ForwardBatcher::default(),
            batch_refusal: requests::BatchRefusal::default(),
        });
        let server = {
            let mut stopped = inner.stop.subscribe();
            let handler = Arc::clone(&inner);
            tokio::spawn(async move {
                let shutdown = async move {
                    let _ = stopped.wait_for(|s| *s).await;
                };
                network::serve(listener, handler, tls, shutdown).await;
            })
        };
        let duties = tokio::spawn(duties::run(Arc::clone(&inner)));
        let campaign = tokio::spawn(campaign::run(Arc::clone(&inner)));
        inner.push_task(server);
        inner.push_task(duties);
        inner.push_task(campaign);
        inner.initialize_if_new().await?;
        tracing::info!(node = id, addr = %local_addr, "coordination node started");
        Ok(CoordNode { inner })
    }

    /// This node's id.
    pub fn id(&self) -> u64 {
        self.inner.id
    }

    /// The address the peer server is bound to.
    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.inner.local_addr
    }

    /// The openraft handle, for what this API does not cover (metrics, triggers).
    pub fn raft(&self) -> &Raft<TypeConfig> {
        &self.inner.raft
    }

    /// Applied-entry events (watch events, snapshot installs) from now on, in log order.
    pub fn subscribe(&self) -> broadcast::Receiver<SmEvent> {
        self.inner.store.subscribe()
    }

    /// Replicates `cmd` through the leader (forwarding if this node is not it) and returns the
    /// response of its apply.
    pub async fn write(&self, cmd: Command) -> Result<Response, CoordError> {
        self.inner.write(cmd).await
    }

    /// Runs `f` on a state that includes every write committed before this call (read index).
    pub async fn read_linearizable<T>(
        &self,
        f: impl FnOnce(&StateMachine) -> T,
    ) -> Result<T, CoordError> {
        self.inner.sync().await?;
        Ok(self.inner.store.read(f))
    }

    /// Runs `f` on this node's state as applied so far (may lag the leader).
    pub fn read_stale<T>(&self, f: impl FnOnce(&StateMachine) -> T) -> T {
        self.inner.store.read(f)
    }

    /// Opens a heartbeat session with the requested timeout (clamped to the configured bounds).
    pub async fn create_session(&self, timeout_ms: u32) -> Result<(SessionId, u32), CoordError> {
        self.create_session_with(timeout_ms, Liveness::Heartbeat)
            .await
    }

    /// Opens a session of the given [`Liveness`] with the requested timeout (clamped to the
    /// configured bounds). A [`Liveness::CommittedWrites`] session lives on its writes (a
    /// session-bound `Request::Sync` will do); [`CoordNode::heartbeat`] refuses it.
    pub async fn create_session_with(
        &self,
        timeout_ms: u32,
        liveness: Liveness,
    ) -> Result<(SessionId, u32), CoordError> {
        let cmd = Command::create_session_with(timeout_ms, liveness, &self.inner.config.sessions);
        match self.write(cmd).await? {
            Response::SessionCreated {
                session,
                timeout_ms,
            } => Ok((session, timeout_ms)),
            other => Err(CoordError::Unavailable(format!(
                "unexpected response to CreateSession: {other:?}"
            ))),
        }
    }

    /// The heartbeat session is alive: the leader's tracker moves its deadline.
    /// [`CoordError::RenewedByWrites`] for a [`Liveness::CommittedWrites`] session, which only
    /// its committed writes renew.
    pub async fn heartbeat(&self, session: SessionId) -> Result<(), CoordError> {
        self.inner.heartbeat(session).await
    }

    /// Closes a session; its ephemeral nodes are deleted.
    pub async fn close_session(&self, session: SessionId) -> Result<(), CoordError> {
        match self.write(Command::CloseSession { session }).await? {
            Response::SessionClosed => Ok(()),
            _ => Err(CoordError::SessionExpired),
        }
    }

    /// Stops Raft, the peer server and the leader's duties. Idempotent.
    pub async fn shutdown(&self) -> Result<(), CoordError> {
        self.inner.stop.send_replace(true);
        let result = self.inner.raft.shutdown().await;
        let tasks = std::mem::take(&mut *self.inner.lock_tasks());
        for task in tasks {
            let _ = task.await;
        }
        result.map_err(|e| CoordError::Stopped(e.to_string()))
    }
}

impl Inner {
    fn push_task(&self, task: JoinHandle<()>) {
        self.lock_tasks().push(task);
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, Vec<JoinHandle<()>>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn initialize_if_new(&self) -> Result<(), CoordError> {
        let members = &self.config.initial_members;
        let Some(&lowest) = members.keys().next() else {
            return Ok(());
        };
        if !(self.config.bootstrap || lowest == self.id) {
            return Ok(());
        }
        let initialized = self
            .raft
            .is_initialized()
            .await
            .map_err(|e| CoordError::Stopped(e.to_string()))?;
        if initialized {
            return Ok(());
        }
        let nodes: BTreeMap<u64, BasicNode> = members
            .iter()
            .map(|(id, addr)| (*id, BasicNode::new(addr)))
            .collect();
        match self.raft.initialize(nodes).await {
            Ok(()) => {
                tracing::info!(
                    node = self.id,
                    ?members,
                    "initialized a new coordination cluster"
                );
                Ok(())
            }
            // Another bootstrapper got there first, or we already have a log: nothing to do.
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => Ok(()),
            Err(e) => Err(CoordError::Config(e.to_string())),
        }
    }
}

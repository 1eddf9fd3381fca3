//! The coordination node inside vigild: `[cluster]` starts a [`CoordNode`], serves its `/v1`
//! client API on `cluster.client_listen`, bootstraps a new cluster by a safe rule, and stops
//! after VRRP on shutdown.
//!
//! The rest of the daemon reaches the node through [`CoordRuntime::node`]; the supervisor starts
//! the runtime before VRRP and the load balancer, so both (and quorum fencing) can use it from
//! their first moment. A witness (`[cluster] witness = true`) runs this and nothing else.
//!
//! The node, its Raft core, log store and client API run on a thread of their own
//! (`vigil-coord`) with a single-threaded tokio runtime, as the VRRP units and the health
//! checks do. A write crosses a dozen tasks (HTTP connection, batcher, Raft core, replication
//! stream, peer connection, state machine); on one thread each hand-off is a queue push, while
//! on the daemon's two-worker runtime many were a wake-up of the other worker (futex, IPI and a
//! context switch), which a profile of a loaded 3-member cluster showed as a quarter of the
//! members' CPU. Measured with `vigil-bench coord` (bench/README.md): 64-client writes 17.5k →
//! 19–19.9k/s, linearizable reads 46k → 51k/s, watch p99 3.4 → 2.9 ms, on this 2-vCPU machine.
//! The node's handle works from any runtime: callers in the rest of the daemon talk to its
//! tasks through channels.
//!
//! Authentication: with `[api] token_file` set, the client API wants the same bearer token as
//! the control API, read from the live config snapshot (a reload that changes the token file
//! applies to both). `[cluster]` itself is read once; changing it needs a restart.
//!
//! # Layout
//!
//! - `config`: `[cluster]` → [`vigil_coord::node::CoordConfig`], the API's config, the initial
//!   members.
//! - `bootstrap`: who starts a brand-new cluster and when (the rule is in its docs).
//! - `status`: [`CoordStatus`], the coordination part of `GET /v1/status`.
//! - this file: [`CoordRuntime`] — start, client API, shutdown.

pub mod bootstrap;
pub mod config;
pub mod status;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use vigil_conf::Cluster;
use vigil_coord::api::{ApiError, ApiStats, SharedBackend};
use vigil_coord::node::{CoordError, CoordNode};
use vigil_coord::raft::network::PeerTls;

pub use self::status::CoordStatus;
use crate::exit;
use crate::supervisor::Snapshot;

/// How long the client API's open requests may run on once shutdown starts (watch streams are
/// cut at once).
const API_STOP_LIMIT: Duration = Duration::from_secs(2);

/// Why the coordination node could not start.
#[derive(Debug, thiserror::Error)]
pub enum CoordStartError {
    /// `[cluster]` cannot be used as it is (e.g. a wildcard raft_listen on the bootstrapper).
    #[error("{0}")]
    Config(String),
    /// The node failed to start: TLS files, the data directory, the Raft port.
    #[error("cannot start the coordination node: {0}")]
    Node(#[from] CoordError),
    /// The node's thread or its runtime could not be created.
    #[error("cannot start the coordination thread: {0}")]
    Thread(std::io::Error),
    /// The client API port cannot be bound.
    #[error("cannot bind the coordination client API on {addr}: {source}")]
    Bind {
        /// `[cluster] client_listen`.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
}

impl CoordStartError {
    /// The sysexits code `vigild` exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Config(_) | Self::Node(CoordError::Tls(_) | CoordError::Config(_)) => {
                exit::CONFIG
            }
            Self::Node(_) | Self::Thread(_) | Self::Bind { .. } => exit::OSERR,
        }
    }
}

/// The running coordination node and its client API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CoordRuntime {
    node: CoordNode,
    inner: Arc<RuntimeInner>,
}

#[derive(Debug)]
struct RuntimeInner {
    witness: bool,
    client_listen: SocketAddr,
    raft_listen: SocketAddr,
    /// Why the node is not a cluster member yet (see [`bootstrap::run`]); `None` once it is.
    waiting: watch::Receiver<Option<String>>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// The client API's live numbers (its watches, which the node does not see).
    api_stats: ApiStats,
    /// Ends the `vigil-coord` thread's runtime once the node has stopped.
    exit: Mutex<Option<oneshot::Sender<()>>>,
    /// Fires when that thread has dropped its runtime.
    exited: Mutex<Option<oneshot::Receiver<()>>>,
}

impl CoordRuntime {
    /// Starts the node of `cluster`, its bootstrapper and its client API on the `vigil-coord`
    /// thread (see the module docs). `snapshot` supplies the current API token.
    pub async fn start(
        cluster: &Cluster,
        snapshot: watch::Receiver<Arc<Snapshot>>,
    ) -> Result<Self, CoordStartError> {
        let cluster = cluster.clone();
        let (started_tx, started) = oneshot::channel();
        let (exit, exit_rx) = oneshot::channel::<()>();
        let (exited_tx, exited) = oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("vigil-coord".to_owned())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let _ = started_tx.send(Err(CoordStartError::Thread(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let result = Self::start_here(&cluster, snapshot).await;
                    let running = result.is_ok();
                    if started_tx.send(result).is_ok() && running {
                        // Serve until `shutdown` has stopped the node (or the handle is gone).
                        let _ = exit_rx.await;
                    }
                });
                drop(runtime);
                let _ = exited_tx.send(());
            })
            .map_err(CoordStartError::Thread)?;
        let runtime = started.await.map_err(|_| {
            CoordStartError::Thread(std::io::Error::other(
                "the coordination thread ended before the node started",
            ))
        })??;
        *lock(&runtime.inner.exit) = Some(exit);
        *lock(&runtime.inner.exited) = Some(exited);
        Ok(runtime)
    }

    /// [`CoordRuntime::start`]'s work, on the runtime that will run the node.
    async fn start_here(
        cluster: &Cluster,
        snapshot: watch::Receiver<Arc<Snapshot>>,
    ) -> Result<Self, CoordStartError> {
        let members = config::initial_members(cluster).map_err(CoordStartError::Config)?;
        let client_listen = cluster.client_listen;
        let listener =
            TcpListener::bind(client_listen)
                .await
                .map_err(|source| CoordStartError::Bind {
                    addr: client_listen,
                    source,
                })?;
        let coord_config = config::coord_config(cluster);
        let tls = coord_config.tls.clone();
        let node = CoordNode::start(coord_config).await?;
        // Loaded once more for the bootstrap probes (the node has its own copy); it loaded fine
        // a moment ago, so failing now means the files changed underneath.
        let tls = match tls.as_ref().map(PeerTls::load).transpose() {
            Ok(tls) => tls,
            Err(e) => {
                let _ = node.shutdown().await;
                return Err(CoordStartError::Node(e.into()));
            }
        };
        let (stop, stopped) = watch::channel(false);
        let (progress, waiting) = watch::channel(None);
        let every = cluster.election_timeout_max.max(Duration::from_millis(200));
        let bootstrapper = tokio::spawn(bootstrap::run(
            node.clone(),
            members,
            tls,
            every,
            progress,
            stopped.clone(),
        ));
        let (router, api_stats) = vigil_coord::api::router_with_stats(
            Arc::new(node.clone()) as SharedBackend,
            config::api_config(cluster),
        );
        let router = router.layer(middleware::from_fn_with_state(snapshot, require_token));
        let mut api_stopped = stopped;
        let api = tokio::spawn(async move {
            let shutdown = async move {
                let _ = api_stopped.wait_for(|s| *s).await;
            };
            if let Err(error) = vigil_coord::api::serve(listener, router, shutdown).await {
                tracing::error!(%error, "coordination client API failed");
            }
        });
        tracing::info!(
            node = cluster.node_id,
            raft = %cluster.raft_listen,
            api = %client_listen,
            witness = cluster.witness,
            "coordination node running"
        );
        Ok(Self {
            node,
            inner: Arc::new(RuntimeInner {
                witness: cluster.witness,
                client_listen,
                raft_listen: cluster.raft_listen,
                waiting,
                stop,
                tasks: Mutex::new(vec![bootstrapper, api]),
                api_stats,
                exit: Mutex::new(None),
                exited: Mutex::new(None),
            }),
        })
    }

    /// The in-process node: sessions, writes, reads, watches (via [`CoordNode::subscribe`]).
    pub fn node(&self) -> &CoordNode {
        &self.node
    }

    /// Whether this daemon is a witness (coordination only).
    pub fn witness(&self) -> bool {
        self.inner.witness
    }

    /// Watches registered through this node's client API now.
    pub fn watches(&self) -> u64 {
        self.inner.api_stats.watches()
    }

    /// The coordination part of `GET /v1/status`.
    pub fn status(&self) -> CoordStatus {
        CoordStatus::new(
            &self.node.status(),
            self.inner.witness,
            self.inner.raft_listen,
            self.inner.client_listen,
            self.inner.waiting.borrow().clone(),
        )
    }

    /// Stops the client API, the bootstrapper and the node. Call after VRRP has stopped: VIP
    /// owners hold their claims in the tree until then.
    pub async fn shutdown(&self) {
        self.inner.stop.send_replace(true);
        let tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(API_STOP_LIMIT, task).await.is_err() {
                abort.abort();
            }
        }
        if let Err(error) = self.node.shutdown().await {
            tracing::warn!(%error, "coordination node did not stop cleanly");
        }
        if let Some(exit) = lock(&self.inner.exit).take() {
            let _ = exit.send(());
        }
        let exited = lock(&self.inner.exited).take();
        if let Some(exited) = exited
            && tokio::time::timeout(API_STOP_LIMIT, exited).await.is_err()
        {
            tracing::warn!("the coordination thread did not end in time");
        }
        tracing::info!("coordination node stopped");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The control API's bearer token, as of the current config, guards the client API too.
async fn require_token(
    State(snapshot): State<watch::Receiver<Arc<Snapshot>>>,
    request: Request,
    next: Next,
) -> Response {
    let token = snapshot.borrow().token.clone();
    match token {
        Some(token) if !token.authorizes(request.headers()) => {
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(request).await,
    }
}

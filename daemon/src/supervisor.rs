//! The supervisor owns the running config and applies reloads; everything else reads the
//! published [`Snapshot`].
//!
//! A reload re-reads and validates the file (and the API token file). Invalid → every error is
//! logged, one line each, and the old config keeps running. Valid → it is swapped in under the
//! next generation and the [`ReloadOutcome`] is logged. The health-check/LVS runtime
//! ([`crate::lb::LbRuntime`]) is started with the initial config, applies each valid reload by
//! diff (a config it cannot use is rejected like an invalid one) and stops with the daemon.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use vigil_conf::Config;

use crate::api::{self, ApiState, auth::ApiToken, auth::TokenError};
use crate::control::{self, Control, ControlReceiver, ControlSender};
use crate::coord::{CoordRuntime, CoordStartError};
use crate::exit;
use crate::fence::{FenceRuntime, FenceSettings};
use crate::lb::{LbError, LbOptions, LbRuntime};
use crate::metrics::CoordMetrics;
use crate::notify::{self, StatusLimiter, Watchdog};
use crate::reload::{ReloadOutcome, ReloadReport};
use crate::shared_config::{self, Fragment, SharedConfig};
use crate::vrrp::{VrrpError, VrrpRuntime, VrrpView};
use crate::watchdog::{self, Beacon, Watched};

/// How long open API requests may take to finish once shutdown starts.
const API_DRAIN_LIMIT: Duration = Duration::from_secs(5);

/// How often the `STATUS=` summary is recomputed (it is sent only when it changed).
const STATUS_POLL: Duration = Duration::from_secs(1);

/// What the supervisor needs from a coordination node for metrics, `STATUS=` and the watchdog.
#[derive(Debug, Clone)]
struct CoordHooks {
    /// The node's metrics (`vigil_raft_*`, `vigil_coord_*`) and role for the summary.
    metrics: Arc<dyn CoordMetrics>,
    /// Beaten while the node's Raft core answers; the watchdog withholds pings when it stops.
    liveness: Beacon,
}

/// The daemon's state as the rest of the process sees it; replaced whole on each change.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The running config.
    pub config: Arc<Config>,
    /// 1 for the config loaded at start, +1 for each applied reload.
    pub generation: u64,
    /// The API bearer token read from `[api] token_file`, if set.
    pub token: Option<ApiToken>,
    /// The most recent reload.
    pub last_reload: Option<ReloadReport>,
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `[api] token_file` is unusable.
    #[error(transparent)]
    Token(#[from] TokenError),
    /// The control API socket cannot be bound.
    #[error("cannot bind the control API on {addr}: {source}")]
    Bind {
        /// `[api] listen`.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
    },
    /// Signal handlers cannot be installed.
    #[error("cannot install signal handlers: {0}")]
    Signals(std::io::Error),
    /// The health checks cannot be set up from the config (e.g. `script_user` is unknown).
    #[error("cannot start health checks: {0}")]
    Lb(#[from] LbError),
    /// The VRRP instances cannot be started (e.g. `script_user` is unknown).
    #[error("cannot start VRRP: {0}")]
    Vrrp(#[from] VrrpError),
    /// The coordination node cannot be started (`[cluster]`).
    #[error(transparent)]
    Coord(#[from] CoordStartError),
}

impl RunError {
    /// The sysexits code `vigild` exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Token(_) | Self::Lb(_) | Self::Vrrp(_) => exit::CONFIG,
            Self::Bind { .. } | Self::Signals(_) => exit::OSERR,
            Self::Coord(error) => error.exit_code(),
        }
    }
}

/// Runs the daemon until SIGTERM/SIGINT (a [`Control::Shutdown`]) or until `shutdown` completes.
///
/// `initial` is the already validated config read from `config_path`, which reloads re-read.
pub async fn run(
    config_path: PathBuf,
    initial: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<(), RunError> {
    let supervisor = Supervisor::new(config_path, initial)?;
    control::spawn_signal_listener(supervisor.control()).map_err(RunError::Signals)?;
    supervisor.run(shutdown).await
}

/// Holds the current config and its generation, and serves [`Control`] messages.
#[derive(Debug)]
pub struct Supervisor {
    config_path: PathBuf,
    snapshot: watch::Sender<Arc<Snapshot>>,
    control_tx: ControlSender,
    control_rx: ControlReceiver,
    /// Health checks and LVS; started by [`Supervisor::run`] (it needs the runtime).
    lb: Option<LbRuntime>,
    /// VRRP instances; started by [`Supervisor::run`], stopped before the LVS runtime.
    vrrp: Option<VrrpRuntime>,
    /// Beaten by the control loop; excused while a reload runs.
    liveness: Beacon,
    /// The last `STATUS=` line and when it went out.
    status_line: Arc<Mutex<StatusLimiter>>,
    /// The config file without fragments, and the shared-config fragments in force; the
    /// snapshot's config is the two merged.
    shared: SharedConfig,
}

impl Supervisor {
    /// A supervisor for `initial`, read from `config_path`; reads the API token file.
    pub fn new(config_path: PathBuf, initial: Config) -> Result<Self, RunError> {
        let token = load_token(&initial)?;
        let initial = Arc::new(initial);
        let shared = SharedConfig::new(Arc::clone(&initial));
        let snapshot = Snapshot {
            config: initial,
            generation: 1,
            token,
            last_reload: None,
        };
        let (control_tx, control_rx) = control::channel();
        Ok(Self {
            config_path,
            snapshot: watch::Sender::new(Arc::new(snapshot)),
            control_tx,
            control_rx,
            lb: None,
            vrrp: None,
            liveness: Beacon::new(),
            status_line: Arc::new(Mutex::new(StatusLimiter::new(notify::STATUS_MIN_GAP))),
            shared,
        })
    }

    /// A sender for [`Control`] messages (signals, API, tests).
    pub fn control(&self) -> ControlSender {
        self.control_tx.clone()
    }

    /// Follows every published [`Snapshot`].
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    /// Binds the API, reports readiness, then serves control messages until told to stop.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) -> Result<(), RunError> {
        let current = self.snapshot.borrow().clone();
        let addr = current.config.api.listen;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| RunError::Bind { addr, source })?;
        // The coordination node starts first, so that VRRP (quorum fencing) can use it from
        // its first advert; it stops last. Reach it as `coord.as_ref().map(CoordRuntime::node)`.
        let coord = match &current.config.cluster {
            Some(cluster) => Some(CoordRuntime::start(cluster, self.snapshot.subscribe()).await?),
            None => None,
        };
        let lb = LbRuntime::start(&current.config, LbOptions::netlink())?;
        self.lb = Some(lb.clone());
        // Quorum fencing of `fencing = "quorum"` VIPs, on the coordination node. Without it
        // (netlink unavailable) fenced instances stay in fault: safe, and logged.
        let fence = match (&coord, &current.config.cluster) {
            (Some(coord), Some(cluster)) => {
                let settings =
                    FenceSettings::from_cluster(current.config.global.node_name.clone(), cluster);
                FenceRuntime::start(coord.node().clone(), settings)
                    .inspect_err(|error| tracing::error!(%error, "cannot start quorum fencing"))
                    .ok()
            }
            _ => None,
        };
        let vrrp =
            VrrpRuntime::start_fenced(&current.config, fence.as_ref().map(FenceRuntime::handle))?;
        // Check-group health feeds VRRP `track_groups`.
        let mut groups = lb.watch_groups();
        let states = groups.borrow_and_update().clone();
        vrrp.set_groups(&states).await;
        let api_state = ApiState::new(
            self.control_tx.clone(),
            self.snapshot.subscribe(),
            self.config_path.display().to_string(),
        )
        .with_lb(lb.clone())
        .with_vrrp(vrrp.view());
        let api_state = match &coord {
            Some(coord) => api_state
                .with_coord_runtime(coord.clone())
                .with_shared_config(self.shared.clone()),
            None => api_state,
        };
        let api_state = match current
            .config
            .cluster
            .as_ref()
            .map(|c| crate::members::status_client(c.client_listen, current.token.as_ref()))
        {
            Some(Ok(client)) => api_state.with_members(client),
            Some(Err(error)) => {
                tracing::error!(%error, "status will not show the cluster's nodes");
                api_state
            }
            None => api_state,
        };
        // Fragments under /vigil/config, applied live (see `shared_config`).
        let fragment_watcher = coord
            .as_ref()
            .map(|c| shared_config::watcher::spawn(c.node().clone(), self.control_tx.clone()));
        let mut watched = Watched::new()
            .with("supervisor", self.liveness.clone())
            .with_vrrp(vrrp.view());
        for (name, beacon) in lb.liveness().components() {
            watched = watched.with(name, beacon);
        }
        if let Some(fence) = &fence {
            watched = watched.with("fencing", fence.liveness());
        }
        let coord_hooks = coord.as_ref().map(|c| CoordHooks {
            // The runtime rather than the bare node: it adds the client API's watches.
            metrics: Arc::new(c.clone()),
            liveness: Beacon::new(),
        });
        let api_state = match &coord_hooks {
            Some(hooks) => {
                watched = watched.with("coordination node", hooks.liveness.clone());
                api_state.with_coord(Arc::clone(&hooks.metrics))
            }
            None => api_state,
        }
        .with_liveness(watched.clone());
        let coord_probe = coord.as_ref().zip(coord_hooks.as_ref()).map(|(c, hooks)| {
            tokio::spawn(crate::metrics::node::probe_liveness(
                c.node().clone(),
                hooks.liveness.clone(),
            ))
        });
        // This node's record under /vigil/members and /vigil/nodes, for every node's status.
        let members = current.config.cluster.as_ref().map(|cluster| {
            crate::members::Publisher {
                identity: crate::members::NodeRecord {
                    node: current.config.global.node_name.clone(),
                    node_id: cluster.node_id,
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    witness: cluster.witness,
                    vrrp: Vec::new(),
                    lvs: None,
                },
                api: crate::members::local_address(cluster.client_listen).to_string(),
                token: current
                    .token
                    .as_ref()
                    .map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned()),
                session_timeout: cluster.session_timeout,
                vrrp: Some(vrrp.view()),
                lb: Some(lb.clone()),
            }
            .spawn()
        });
        let mut summarize = status_summarizer(vrrp.view(), lb.clone(), coord_hooks);
        self.vrrp = Some(vrrp);
        let (stop_api, api_stopped) = oneshot::channel::<()>();
        let api = tokio::spawn(api::serve(listener, api_state, async {
            // A dropped sender also means stop.
            let _ = api_stopped.await;
        }));

        tracing::info!(
            api = %addr,
            node = %current.config.global.node_name,
            generation = current.generation,
            "vigild ready"
        );
        let summary = summarize().await;
        notify::ready(&summary);
        self.status_lock().sent(Instant::now(), summary);
        let watchdog = tokio::spawn(watchdog::run(Watchdog::from_env(), watched));
        let status_reporter = notify::enabled().then(|| {
            tokio::spawn(notify::report_status(
                summarize,
                Arc::clone(&self.status_line),
                STATUS_POLL,
            ))
        });
        // Proves to the watchdog that this loop keeps coming round.
        let mut heartbeat = tokio::time::interval(watchdog::BEAT_EVERY);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                message = self.control_rx.recv() => match message {
                    Some(Control::Reload { reply }) => {
                        let report = self.reload().await;
                        if let Some(reply) = reply {
                            // The API client may have gone away; the outcome is logged anyway.
                            let _ = reply.send(report);
                        }
                    }
                    Some(Control::Fragments { fragments }) => self.apply_fragments(fragments).await,
                    Some(Control::Shutdown) | None => break,
                },
                _ = heartbeat.tick() => self.liveness.beat(),
                Ok(()) = groups.changed() => {
                    let states = groups.borrow_and_update().clone();
                    if let Some(vrrp) = &self.vrrp {
                        vrrp.set_groups(&states).await;
                    }
                }
            }
        }

        // No pings while stopping: TimeoutStopSec= bounds the stop, not the watchdog.
        watchdog.abort();
        for task in status_reporter
            .into_iter()
            .chain(coord_probe)
            .chain(members)
            .chain(fragment_watcher)
        {
            task.abort();
        }
        notify::stopping();
        tracing::info!("vigild stopping");
        let _ = stop_api.send(());
        match tokio::time::timeout(API_DRAIN_LIMIT, api).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => tracing::warn!(%error, "control API failed"),
            Ok(Err(error)) => tracing::warn!(%error, "control API task failed"),
            Err(_) => tracing::warn!("control API requests still open at shutdown; dropping them"),
        }
        // VIPs leave (priority-0 adverts, addresses removed) before the services behind them.
        if let Some(vrrp) = self.vrrp.take() {
            vrrp.shutdown(crate::vrrp::DEFAULT_STOP_LIMIT).await;
        }
        // Fenced VIPs are gone by now; closing the session frees the owner znodes at once.
        if let Some(fence) = fence {
            fence.shutdown().await;
        }
        // Stops the checks; the IPVS services stay or go as each one's omega says.
        lb.shutdown().await;
        // Last: VIP owners keep their claims in the tree until VRRP has let go of the VIPs.
        if let Some(coord) = &coord {
            coord.shutdown().await;
        }
        tracing::info!("vigild stopped");
        Ok(())
    }

    /// Re-reads the config file; swaps it in when valid, keeps the old one otherwise.
    async fn reload(&mut self) -> ReloadReport {
        // Stopping and starting VRRP units takes seconds; the watchdog excuses that, up to a limit.
        let _busy = self.liveness.busy();
        notify::reloading();
        let path = self.config_path.clone();
        // Parsing and reading files block; keep them off the runtime's workers.
        let loaded = tokio::task::spawn_blocking(move || load(&path)).await;
        let current = self.snapshot.borrow().clone();
        // The new file is merged with the shared-config fragments in force; a file they no
        // longer fit is refused like an invalid one.
        let fragments = self.shared.fragments();
        let loaded = match loaded {
            Ok(Ok((base, token))) => match merged(base, &fragments) {
                Ok((base, config)) => match self.apply_runtimes(&config).await {
                    Ok(()) => Ok(Ok((base, config, token))),
                    Err(errors) => Ok(Err(errors)),
                },
                Err(errors) => Ok(Err(errors)),
            },
            Ok(Err(errors)) => Ok(Err(errors)),
            Err(join_error) => Err(join_error),
        };
        let (outcome, next) = match loaded {
            Ok(Ok((base, config, token))) => {
                self.shared.set_base(base);
                let generation = current.generation + 1;
                let outcome = ReloadOutcome::Applied {
                    generation,
                    changed: *config != *current.config,
                    needs_restart: needs_restart(&current.config, &config),
                };
                (
                    outcome,
                    Snapshot {
                        config,
                        generation,
                        token,
                        last_reload: None,
                    },
                )
            }
            Ok(Err(errors)) => (
                ReloadOutcome::Rejected {
                    generation: current.generation,
                    errors,
                },
                Snapshot::clone(&current),
            ),
            Err(join_error) => (
                ReloadOutcome::Rejected {
                    generation: current.generation,
                    errors: vec![format!(
                        "internal error while loading the config: {join_error}"
                    )],
                },
                Snapshot::clone(&current),
            ),
        };
        outcome.log();
        let report = ReloadReport::now(outcome);
        self.snapshot.send_replace(Arc::new(Snapshot {
            last_reload: Some(report.clone()),
            ..next
        }));
        let summary = self.status_lock().last().unwrap_or("running").to_owned();
        notify::ready(&summary);
        report
    }

    /// Applies `config` to the LVS and VRRP runtimes, by diff (the path reloads and
    /// shared-config changes share). A config the checks cannot use (unknown script_user,
    /// unreadable CA file) is refused like an invalid one, and the old one keeps running.
    async fn apply_runtimes(&mut self, config: &Arc<Config>) -> Result<(), Vec<String>> {
        if let Some(lb) = &self.lb {
            let summary = lb.apply(config).await.map_err(|e| vec![e.to_string()])?;
            tracing::info!(
                added = summary.added,
                removed = summary.removed,
                changed = summary.changed,
                unchanged = summary.unchanged,
                "virtual servers reloaded"
            );
        }
        // VRRP by diff: unchanged instances keep running untouched, priority and tracking-weight
        // changes apply in place (see `VrrpRuntime::apply`).
        if let Some(vrrp) = self.vrrp.as_mut() {
            let summary = vrrp.apply(config).await.map_err(|e| vec![e.to_string()])?;
            tracing::info!(
                started = ?summary.started,
                stopped = ?summary.stopped,
                restarted = ?summary.restarted,
                updated = ?summary.updated,
                unchanged = summary.unchanged.len(),
                "VRRP instances reloaded"
            );
            // Restarted units assume their groups up until told otherwise.
            if let Some(lb) = &self.lb {
                let states = lb.watch_groups().borrow().clone();
                vrrp.set_groups(&states).await;
            }
        }
        Ok(())
    }

    /// Merges a new set of shared-config fragments into the base config and applies it; a set
    /// that does not merge (or apply) on this node is logged and changes nothing.
    async fn apply_fragments(&mut self, fragments: Vec<Fragment>) {
        let _busy = self.liveness.busy();
        let names: Vec<String> = fragments
            .iter()
            .map(|f| format!("{}@{}", f.name, f.version))
            .collect();
        let current = self.snapshot.borrow().clone();
        let result = match shared_config::merge(&self.shared.base(), &fragments) {
            Ok(config) if config == *current.config => Ok(None),
            Ok(config) => {
                let config = Arc::new(config);
                self.apply_runtimes(&config).await.map(|()| Some(config))
            }
            Err(errors) => Err(errors),
        };
        match result {
            Ok(config) => {
                let mut generation = current.generation;
                if let Some(config) = config {
                    generation += 1;
                    self.snapshot.send_replace(Arc::new(Snapshot {
                        config,
                        generation,
                        ..Snapshot::clone(&current)
                    }));
                }
                tracing::info!(fragments = ?names, generation, "shared config applied");
                self.shared.applied(fragments);
            }
            Err(errors) => {
                tracing::error!(
                    fragments = ?names,
                    errors = %errors.join("; "),
                    "shared config refused on this node; the previous config keeps running"
                );
                self.shared.rejected(&fragments, errors);
            }
        }
    }

    fn status_lock(&self) -> std::sync::MutexGuard<'_, StatusLimiter> {
        self.status_line
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// A function computing the `STATUS=` summary from the runtimes' views.
fn status_summarizer(
    vrrp: VrrpView,
    lb: LbRuntime,
    coord: Option<CoordHooks>,
) -> impl FnMut() -> std::pin::Pin<Box<dyn Future<Output = String> + Send>> + Send + 'static {
    move || {
        let (vrrp, lb, coord) = (vrrp.clone(), lb.clone(), coord.clone());
        Box::pin(async move {
            let lvs = lb.summary().await.ok();
            let coord = coord.map(|c| c.metrics.coord_snapshot());
            notify::summary(&vrrp.instances(), lvs.as_ref(), coord.as_ref())
        })
    }
}

/// The config file `base` shared, and it merged with `fragments`: without fragments the two are
/// one `Arc`, not two copies (each is megabytes with thousands of real servers).
fn merged(base: Config, fragments: &[Fragment]) -> Result<(Arc<Config>, Arc<Config>), Vec<String>> {
    let base = Arc::new(base);
    let config = if fragments.is_empty() {
        Arc::clone(&base)
    } else {
        Arc::new(shared_config::merge(&base, fragments)?)
    };
    Ok((base, config))
}

/// Reads and validates the config and the token file it names; errors as display lines.
fn load(path: &Path) -> Result<(Config, Option<ApiToken>), Vec<String>> {
    let config = crate::config_file::load(path)
        .map_err(|errors| errors.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let token = load_token(&config).map_err(|error| vec![error.to_string()])?;
    Ok((config, token))
}

fn load_token(config: &Config) -> Result<Option<ApiToken>, TokenError> {
    config
        .api
        .token_file
        .as_deref()
        .map(ApiToken::load)
        .transpose()
}

/// Settings read once at start-up; a reload that changes them is applied, but they keep their
/// old value until the next restart.
fn needs_restart(old: &Config, new: &Config) -> Vec<String> {
    let mut settings = Vec::new();
    if old.api.listen != new.api.listen {
        settings.push("api.listen".to_owned());
    }
    if old.global.log_format != new.global.log_format {
        settings.push("global.log_format".to_owned());
    }
    // The coordination node keeps its membership, addresses and timings until a restart.
    if old.cluster != new.cluster {
        settings.push("cluster".to_owned());
    }
    settings
}

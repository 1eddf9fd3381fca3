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
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use vigil_conf::Config;

use crate::api::{self, ApiState, auth::ApiToken, auth::TokenError};
use crate::control::{self, Control, ControlReceiver, ControlSender};
use crate::exit;
use crate::lb::{LbError, LbOptions, LbRuntime};
use crate::notify::{self, Watchdog};
use crate::reload::{ReloadOutcome, ReloadReport};
use crate::vrrp::{VrrpError, VrrpRuntime};

/// How long open API requests may take to finish once shutdown starts.
const API_DRAIN_LIMIT: Duration = Duration::from_secs(5);

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
}

impl RunError {
    /// The sysexits code `vigild` exits with.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Token(_) | Self::Lb(_) | Self::Vrrp(_) => exit::CONFIG,
            Self::Bind { .. } | Self::Signals(_) => exit::OSERR,
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
}

impl Supervisor {
    /// A supervisor for `initial`, read from `config_path`; reads the API token file.
    pub fn new(config_path: PathBuf, initial: Config) -> Result<Self, RunError> {
        let token = load_token(&initial)?;
        let snapshot = Snapshot {
            config: Arc::new(initial),
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
        let lb = LbRuntime::start(&current.config, LbOptions::netlink())?;
        self.lb = Some(lb.clone());
        let vrrp = VrrpRuntime::start(&current.config)?;
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
        notify::ready("running");

        let watchdog = Watchdog::from_env();
        let mut watchdog_tick = watchdog.interval().map(tokio::time::interval);
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
                    Some(Control::Shutdown) | None => break,
                },
                () = tick(watchdog_tick.as_mut()) => watchdog.ping(),
                Ok(()) = groups.changed() => {
                    let states = groups.borrow_and_update().clone();
                    if let Some(vrrp) = &self.vrrp {
                        vrrp.set_groups(&states).await;
                    }
                }
            }
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
        // Stops the checks; the IPVS services stay or go as each one's omega says.
        lb.shutdown().await;
        tracing::info!("vigild stopped");
        Ok(())
    }

    /// Re-reads the config file; swaps it in when valid, keeps the old one otherwise.
    async fn reload(&mut self) -> ReloadReport {
        notify::reloading();
        let path = self.config_path.clone();
        // Parsing and reading files block; keep them off the runtime's workers.
        let loaded = tokio::task::spawn_blocking(move || load(&path)).await;
        let current = self.snapshot.borrow().clone();
        let loaded = match (loaded, &self.lb) {
            // A config the checks cannot use (unknown script_user, unreadable CA file) is
            // refused like an invalid one, and the old one keeps running.
            (Ok(Ok((config, token))), Some(lb)) => match lb.apply(&config).await {
                Ok(summary) => {
                    tracing::info!(
                        added = summary.added,
                        removed = summary.removed,
                        changed = summary.changed,
                        unchanged = summary.unchanged,
                        "virtual servers reloaded"
                    );
                    Ok(Ok((config, token)))
                }
                Err(error) => Ok(Err(vec![error.to_string()])),
            },
            (other, _) => other,
        };
        // VRRP by diff: unchanged instances keep running untouched (see `VrrpRuntime::apply`).
        let loaded = match (loaded, self.vrrp.as_mut()) {
            (Ok(Ok((config, token))), Some(vrrp)) => match vrrp.apply(&config).await {
                Ok(summary) => {
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
                    Ok(Ok((config, token)))
                }
                Err(error) => Ok(Err(vec![error.to_string()])),
            },
            (other, _) => other,
        };
        let (outcome, next) = match loaded {
            Ok(Ok((config, token))) => {
                let generation = current.generation + 1;
                let outcome = ReloadOutcome::Applied {
                    generation,
                    changed: config != *current.config,
                    needs_restart: needs_restart(&current.config, &config),
                };
                (
                    outcome,
                    Snapshot {
                        config: Arc::new(config),
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
        notify::ready("running");
        report
    }
}

/// Waits for the next watchdog tick, or forever when the watchdog is off.
async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Reads and validates the config and the token file it names; errors as display lines.
fn load(path: &Path) -> Result<(Config, Option<ApiToken>), Vec<String>> {
    let config = vigil_conf::load_file(path)
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
    settings
}

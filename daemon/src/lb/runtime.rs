//! [`LbRuntime`]: one task that owns the check scheduler and the [`Balancer`], turns check
//! events into LVS state, and publishes the desired kernel table and the check-group states.
//!
//! ```text
//!  apply/status/shutdown ──► [commands] ──►┐
//!                                          ├──► Balancer ──► watch<desired> ──► kernel task
//!  Scheduler ──► [CheckEvent] ────────────►┘        │
//!     ▲  upsert/remove                              └──► watch<groups> ──► VRRP tracking
//!     └──────────────────────────────────────────────
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use vigil_checks::{
    AttemptObserver, CheckEvent, Hooks, ProbeOutcome, Scheduler, SchedulerConfig, Transition,
};
use vigil_conf as conf;
use vigil_lvs as lvs;

use super::kernel::{Desired, IpvsBackend, Kernel, KernelState};
use super::map::MapError;
use super::state::{Balancer, CheckChange, Mapped, SchedulerPlan, millis};
use super::status::{LbStatus, LbSummary};
use crate::metrics::LbCounters;
use crate::watchdog::{BEAT_EVERY, Beacon};

/// How long the kernel task waits after a change before converging, so a burst of events costs
/// one convergence.
pub const DEFAULT_DEBOUNCE: Duration = Duration::from_millis(5);

/// How often the kernel table is re-read and repaired even without health changes (reverts
/// `ipvsadm` edits to vigil's services).
pub const DEFAULT_RESYNC: Duration = Duration::from_secs(15);

/// Health of each check group (`[[virtual_server]] group`): whether its quorum holds.
pub type GroupStates = BTreeMap<String, bool>;

/// How to run the load balancer.
#[derive(Debug)]
pub struct LbOptions {
    /// The kernel table.
    pub backend: IpvsBackend,
    /// See [`DEFAULT_DEBOUNCE`].
    pub debounce: Duration,
    /// See [`DEFAULT_RESYNC`].
    pub resync: Duration,
    /// Tuning of the check scheduler.
    pub scheduler: SchedulerConfig,
    /// Where check attempts and IPVS convergences are counted (the metrics endpoint reads it).
    pub counters: Arc<LbCounters>,
    /// Beaten by the runtime's loops; the systemd watchdog judges them.
    pub liveness: LbLiveness,
}

/// The liveness beacons of the load balancer's three loops, each beaten only when its own loop
/// comes round, so a stuck one is named on its own.
#[derive(Debug, Clone, Default)]
pub struct LbLiveness {
    /// The runtime task: check events into LVS state, reloads, status.
    pub balancer: Beacon,
    /// The check scheduler's loop (`vigil_checks::Scheduler`).
    pub checks: Beacon,
    /// The kernel task converging the IPVS table.
    pub ipvs: Beacon,
}

impl LbLiveness {
    /// The beacons under the names the watchdog logs.
    pub fn components(&self) -> [(String, Beacon); 3] {
        [
            ("load balancer".to_owned(), self.balancer.clone()),
            ("check scheduler".to_owned(), self.checks.clone()),
            ("ipvs reconciler".to_owned(), self.ipvs.clone()),
        ]
    }
}

impl LbOptions {
    /// The kernel's IPVS table, default timings, a scheduler seeded from the pid and clock.
    pub fn netlink() -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self::with_backend(
            IpvsBackend::Netlink,
            SchedulerConfig {
                seed: nanos ^ u64::from(std::process::id()).rotate_left(32),
                ..SchedulerConfig::default()
            },
        )
    }

    /// Default timings with the given backend and scheduler settings.
    pub fn with_backend(backend: IpvsBackend, scheduler: SchedulerConfig) -> Self {
        Self {
            backend,
            debounce: DEFAULT_DEBOUNCE,
            resync: DEFAULT_RESYNC,
            scheduler,
            counters: Arc::default(),
            liveness: LbLiveness::default(),
        }
    }
}

/// Why the load balancer refused a request.
#[derive(Debug, thiserror::Error)]
pub enum LbError {
    /// The config cannot be mapped onto checks and LVS policies; nothing was changed.
    #[error(transparent)]
    Map(#[from] MapError),
    /// The runtime has stopped.
    #[error("the load-balancer runtime has stopped")]
    Stopped,
}

/// What a reload changed, per virtual server key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    /// Virtual servers added.
    pub added: usize,
    /// Virtual servers removed (and released from the kernel).
    pub removed: usize,
    /// Virtual servers whose settings or real servers changed.
    pub changed: usize,
    /// Virtual servers left exactly as they were.
    pub unchanged: usize,
}

enum Command {
    Apply(Box<Mapped>, oneshot::Sender<ApplySummary>),
    Status(oneshot::Sender<LbStatus>),
    Summary(oneshot::Sender<LbSummary>),
    Shutdown(oneshot::Sender<()>),
}

/// Handle to the running load balancer; cheap to clone.
#[derive(Debug, Clone)]
pub struct LbRuntime {
    commands: mpsc::UnboundedSender<Command>,
    groups: watch::Receiver<GroupStates>,
    counters: Arc<LbCounters>,
    liveness: LbLiveness,
}

impl LbRuntime {
    /// Maps `config`, starts its checks (on a thread of their own) and the kernel task (on the
    /// current tokio runtime). The runtime keeps a reference to `config`, not a copy.
    pub fn start(config: &Arc<conf::Config>, options: LbOptions) -> Result<Self, LbError> {
        let mapped = Mapped::new(config)?;
        let (events_tx, events) = mpsc::unbounded_channel();
        let counters = Arc::clone(&options.counters);
        let observer: AttemptObserver =
            Arc::new(move |kind: &'static str, outcome: &ProbeOutcome| {
                counters.attempt(kind, outcome);
            });
        let checks = options.liveness.checks.clone();
        let hooks = Hooks {
            observer: Some(observer),
            progress: Some(Arc::new(move || checks.beat())),
        };
        // The checks get a thread and a single-threaded runtime of their own (see
        // `Scheduler::spawn_on_thread`); without a thread they share the daemon's runtime.
        let scheduler = Scheduler::spawn_on_thread(
            "vigild-checks",
            options.scheduler,
            events_tx.clone(),
            hooks.clone(),
        )
        .unwrap_or_else(|error| {
            tracing::warn!(%error, "no thread for the health checks; they share the main runtime");
            Scheduler::spawn_with(options.scheduler, events_tx, hooks)
        });
        let mut balancer = Balancer::default();
        let plan = balancer.apply(mapped, Instant::now());
        let (desired_tx, mut desired_rx) = watch::channel::<Desired>(Arc::new(balancer.desired()));
        let (groups_tx, groups) = watch::channel(balancer.groups());
        let (kernel_state_tx, kernel_state) = watch::channel(KernelState {
            ipvs: "starting".to_owned(),
            last_sync: None,
        });
        // Converge the initial table at once rather than after the first health change.
        desired_rx.mark_changed();
        let kernel = Kernel::spawn(
            options.backend,
            desired_rx,
            kernel_state_tx,
            options.debounce,
            options.resync,
            Arc::clone(&options.counters),
            options.liveness.ipvs.clone(),
        );
        let mut task = Task {
            scheduler,
            balancer,
            config: Arc::clone(config),
            desired: desired_tx,
            groups: groups_tx,
            kernel_state,
        };
        task.execute(plan);
        let (commands, rx) = mpsc::unbounded_channel();
        tokio::spawn(task.run(rx, events, kernel, options.liveness.clone()));
        Ok(Self {
            commands,
            groups,
            counters: options.counters,
            liveness: options.liveness,
        })
    }

    /// Adopts a reloaded config: virtual servers, real servers and checks that stay keep their
    /// health; removed virtual servers are released from the kernel. On error nothing changed.
    pub async fn apply(&self, config: &Arc<conf::Config>) -> Result<ApplySummary, LbError> {
        let config = Arc::clone(config);
        // User lookups (NSS may ask a directory server) and CA files block.
        let mapped = tokio::task::spawn_blocking(move || Mapped::new(&config))
            .await
            .map_err(|_| LbError::Stopped)?;
        let (tx, rx) = oneshot::channel();
        self.send(Command::Apply(Box::new(mapped?), tx))?;
        rx.await.map_err(|_| LbError::Stopped)
    }

    /// The current state of every virtual server, real server and check.
    pub async fn status(&self) -> Result<LbStatus, LbError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Status(tx))?;
        rx.await.map_err(|_| LbError::Stopped)
    }

    /// The counts of [`status`](Self::status) (what `/v1/status`, `STATUS=` and membership
    /// show), without asking the scheduler for every check.
    pub async fn summary(&self) -> Result<LbSummary, LbError> {
        let (tx, rx) = oneshot::channel();
        self.send(Command::Summary(tx))?;
        rx.await.map_err(|_| LbError::Stopped)
    }

    /// Stops the checks and leaves the kernel as omega says; returns when done. Later calls on
    /// any clone fail with [`LbError::Stopped`].
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.send(Command::Shutdown(tx)).is_ok() {
            // An error means the task already ended, which is what was asked.
            let _ = rx.await;
        }
    }

    /// Whether check group `name` has its quorum; `None` for an unknown group.
    pub fn group_health(&self, name: &str) -> Option<bool> {
        self.groups.borrow().get(name).copied()
    }

    /// The runtime's counters (check attempts, IPVS convergences), for the metrics endpoint.
    pub fn counters(&self) -> &LbCounters {
        &self.counters
    }

    /// The beacons of the runtime's loops, for the systemd watchdog.
    pub fn liveness(&self) -> &LbLiveness {
        &self.liveness
    }

    /// A receiver that sees every change of the check-group states (for VRRP tracking).
    pub fn watch_groups(&self) -> watch::Receiver<GroupStates> {
        self.groups.clone()
    }

    fn send(&self, command: Command) -> Result<(), LbError> {
        self.commands.send(command).map_err(|_| LbError::Stopped)
    }
}

struct Task {
    scheduler: Scheduler,
    balancer: Balancer,
    config: Arc<conf::Config>,
    desired: watch::Sender<Desired>,
    groups: watch::Sender<GroupStates>,
    kernel_state: watch::Receiver<KernelState>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut events: mpsc::UnboundedReceiver<CheckEvent>,
        kernel: Kernel,
        liveness: LbLiveness,
    ) {
        // Makes an idle loop come round for the watchdog; a loop stuck in a command (a status
        // query the scheduler never answers) stops beating.
        let mut heartbeat = tokio::time::interval(BEAT_EVERY);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            liveness.balancer.beat();
            tokio::select! {
                _ = heartbeat.tick() => {}
                command = commands.recv() => match command {
                    Some(Command::Apply(mapped, reply)) => {
                        // The asker may have given up; the reload happened anyway.
                        let _ = reply.send(self.reload(*mapped));
                    }
                    Some(Command::Status(reply)) => {
                        let _ = reply.send(self.status().await);
                    }
                    Some(Command::Summary(reply)) => {
                        let _ = reply.send(self.summary());
                    }
                    Some(Command::Shutdown(reply)) => {
                        // Both loops stop on purpose (the kernel task retires its own).
                        liveness.balancer.retire();
                        liveness.checks.retire();
                        self.stop(kernel).await;
                        let _ = reply.send(());
                        return;
                    }
                    None => {
                        // Every handle dropped without a shutdown: leave the kernel as it is.
                        liveness.balancer.retire();
                        liveness.checks.retire();
                        return;
                    }
                },
                Some(event) = events.recv() => {
                    if let Some(change) = self.balancer.on_event(event, Instant::now()) {
                        log_change(&change);
                        self.publish();
                    }
                }
            }
        }
    }

    fn reload(&mut self, mapped: Mapped) -> ApplySummary {
        let config = Arc::clone(mapped.config());
        let diff = conf::diff(&self.config, &config).virtual_servers;
        let summary = ApplySummary {
            added: diff.added.len(),
            removed: diff.removed.len(),
            changed: diff.changed.len(),
            unchanged: diff.unchanged.len(),
        };
        for key in &diff.removed {
            tracing::info!(virtual_server = %key, "virtual server removed; releasing it");
        }
        let plan = self.balancer.apply(mapped, Instant::now());
        self.execute(plan);
        self.config = config;
        self.publish();
        summary
    }

    fn execute(&mut self, plan: SchedulerPlan) {
        for id in plan.remove {
            // A stopped scheduler means the daemon is going down; nothing left to stop.
            let _ = self.scheduler.remove(id);
        }
        for (id, spec) in plan.upsert {
            let target = spec.target;
            if let Err(e) = self.scheduler.upsert(id, spec) {
                // Mapped::new built every TLS config already, so only a stopped scheduler or a
                // CA file that changed on disk since gets here.
                tracing::error!(check = id.0, %target, error = %e, "cannot start health check");
            }
        }
        for (vs, t) in plan.transitions {
            log_policy(&vs, t, "config applied");
        }
    }

    fn publish(&self) {
        let desired = self.balancer.desired();
        self.desired.send_if_modified(|current| {
            if **current == desired {
                false
            } else {
                *current = Arc::new(desired);
                true
            }
        });
        let groups = self.balancer.groups();
        self.groups.send_if_modified(|current| {
            if *current == groups {
                false
            } else {
                *current = groups;
                true
            }
        });
    }

    async fn status(&self) -> LbStatus {
        // A stopped scheduler only costs the freshest `last` results.
        let checks: HashMap<_, _> = self
            .scheduler
            .status()
            .await
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let now = Instant::now();
        let kernel = self.kernel_state.borrow().clone();
        LbStatus {
            ipvs: kernel.ipvs,
            last_sync_secs_ago: kernel
                .last_sync
                .map(|t| now.saturating_duration_since(t).as_secs()),
            virtual_servers: self.balancer.status(&checks, now),
        }
    }

    fn summary(&self) -> LbSummary {
        let [vss, vss_up, reals, reals_up] = self.balancer.counts();
        LbSummary {
            ipvs: self.kernel_state.borrow().ipvs.clone(),
            virtual_servers: vss,
            virtual_servers_up: vss_up,
            real_servers: reals,
            real_servers_up: reals_up,
        }
    }

    async fn stop(mut self, kernel: Kernel) {
        let (keep, transitions) = self.balancer.shutdown();
        for (vs, t) in transitions {
            log_policy(&vs, t, "vigild stopping");
        }
        // Dropping the only scheduler handle stops every check.
        drop(self.scheduler);
        kernel.shutdown(keep).await;
    }
}

/// The one line per check verdict change.
fn log_change(change: &CheckChange) {
    let state = match change.transition {
        Transition::Up => "up".to_owned(),
        Transition::Down => "down".to_owned(),
        Transition::Weight(w) => format!("weight {w}"),
    };
    tracing::info!(
        virtual_server = %change.virtual_server,
        real_server = %change.real_server,
        check = %change.kind,
        state = %state,
        reason = %change.outcome.detail,
        latency_ms = millis(change.outcome.latency),
        "health check changed state"
    );
    // The effects carry the check's verdict as their reason, so each line stands alone.
    let reason = format!("{} check {}: {}", change.kind, state, change.outcome.detail);
    for t in &change.effects {
        log_policy(&change.virtual_server, *t, &reason);
    }
}

/// One line per real-server or quorum change, with why it happened.
fn log_policy(vs: &conf::VsKey, t: lvs::Transition, reason: &str) {
    let real = |d: lvs::DestKey| std::net::SocketAddr::new(d.addr, d.port);
    match t {
        lvs::Transition::RealUp(d) => {
            let real_server = real(d);
            tracing::info!(virtual_server = %vs, %real_server, state = %"up", reason, "real server up");
        }
        lvs::Transition::RealDown(d) => {
            let real_server = real(d);
            tracing::warn!(virtual_server = %vs, %real_server, state = %"down", reason, "real server down");
        }
        lvs::Transition::QuorumUp => {
            tracing::info!(virtual_server = %vs, state = %"up", reason, "virtual server quorum gained");
        }
        lvs::Transition::QuorumDown => {
            tracing::warn!(virtual_server = %vs, state = %"down", reason, "virtual server quorum lost");
        }
    }
}

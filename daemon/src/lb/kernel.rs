//! The kernel side: one task that keeps the IPVS table converged on the latest desired table.
//!
//! ```text
//!  runtime ──watch<desired>──► kernel task ──spawn_blocking──► Reconciler::converge (netlink)
//!                               │   ▲
//!                 watch<KernelState>  └── resync tick (repairs external changes)
//! ```
//!
//! A burst of health events changes the desired table many times within a few milliseconds; the
//! task waits [`LbOptions::debounce`](super::LbOptions::debounce) after the first change and then
//! converges once on the latest value. Without IPVS in the kernel (the normal case in containers
//! and on the development host) it only records why, and retries opening at every resync tick.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use vigil_lvs::{self as lvs, Ipvs, LvsError, NetlinkIpvs, Reconciler};

use crate::metrics::LbCounters;
use crate::watchdog::{BEAT_EVERY, Beacon};

/// Where the IPVS table lives.
pub enum IpvsBackend {
    /// The kernel, over generic netlink; unavailable (not fatal) when the kernel has no IPVS.
    Netlink,
    /// A given implementation (tests inject a fake).
    Given(Box<dyn Ipvs + Send>),
    /// No kernel table: compute and report the desired table only.
    Disabled(String),
}

impl std::fmt::Debug for IpvsBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Netlink => f.write_str("Netlink"),
            Self::Given(_) => f.write_str("Given(..)"),
            Self::Disabled(why) => f.debug_tuple("Disabled").field(why).finish(),
        }
    }
}

/// A boxed [`Ipvs`], so the reconciler's type does not depend on the backend.
struct DynIpvs(Box<dyn Ipvs + Send>);

impl Ipvs for DynIpvs {
    fn table(&mut self) -> Result<lvs::Table, LvsError> {
        self.0.table()
    }
    fn add_service(&mut self, svc: &lvs::Service) -> Result<(), LvsError> {
        self.0.add_service(svc)
    }
    fn edit_service(&mut self, svc: &lvs::Service) -> Result<(), LvsError> {
        self.0.edit_service(svc)
    }
    fn del_service(&mut self, key: &lvs::ServiceKey) -> Result<(), LvsError> {
        self.0.del_service(key)
    }
    fn add_dest(&mut self, svc: &lvs::ServiceKey, dest: &lvs::Destination) -> Result<(), LvsError> {
        self.0.add_dest(svc, dest)
    }
    fn edit_dest(
        &mut self,
        svc: &lvs::ServiceKey,
        dest: &lvs::Destination,
    ) -> Result<(), LvsError> {
        self.0.edit_dest(svc, dest)
    }
    fn del_dest(&mut self, svc: &lvs::ServiceKey, dest: &lvs::DestKey) -> Result<(), LvsError> {
        self.0.del_dest(svc, dest)
    }
}

/// What the kernel task last achieved, for status.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct KernelState {
    /// `ok`, `unavailable: …` or `error: …`.
    pub(crate) ipvs: String,
    /// The last successful convergence.
    pub(crate) last_sync: Option<Instant>,
}

/// The desired table shared between the runtime and the kernel task.
pub(crate) type Desired = Arc<Vec<lvs::VirtualServer>>;

/// Handle to the running kernel task.
pub(crate) struct Kernel {
    stop: oneshot::Sender<Vec<lvs::VirtualServer>>,
    task: tokio::task::JoinHandle<()>,
}

impl Kernel {
    /// Starts the task.
    pub(crate) fn spawn(
        backend: IpvsBackend,
        desired: watch::Receiver<Desired>,
        state: watch::Sender<KernelState>,
        debounce: Duration,
        resync: Duration,
        counters: Arc<LbCounters>,
        beacon: Beacon,
    ) -> Self {
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(run(
            backend,
            desired,
            state,
            stop_rx,
            Pace { debounce, resync },
            counters,
            beacon,
        ));
        Self { stop, task }
    }

    /// Leaves `keep` in the kernel and deletes every other service vigil owns, then stops.
    pub(crate) async fn shutdown(self, keep: Vec<lvs::VirtualServer>) {
        // The task may already have ended (it only ends on stop); nothing to wait for then.
        if self.stop.send(keep).is_ok()
            && let Err(e) = self.task.await
        {
            tracing::error!(error = %e, "LVS kernel task failed during shutdown");
        }
    }
}

async fn open(backend: &mut IpvsBackend) -> Result<Reconciler<DynIpvs>, String> {
    match std::mem::replace(backend, IpvsBackend::Netlink) {
        IpvsBackend::Netlink => match tokio::task::spawn_blocking(NetlinkIpvs::open).await {
            Ok(Ok(ipvs)) => Ok(Reconciler::new(DynIpvs(Box::new(ipvs)))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("netlink open task failed: {e}")),
        },
        IpvsBackend::Given(ipvs) => {
            // It cannot be given twice; if its reconciler is ever lost, stay without a kernel.
            *backend = IpvsBackend::Disabled("the injected IPVS backend failed".to_owned());
            Ok(Reconciler::new(DynIpvs(ipvs)))
        }
        IpvsBackend::Disabled(why) => {
            *backend = IpvsBackend::Disabled(why.clone());
            Err(why)
        }
    }
}

/// The kernel task's timings (see [`LbOptions`](super::LbOptions)).
struct Pace {
    debounce: Duration,
    resync: Duration,
}

async fn run(
    mut backend: IpvsBackend,
    mut desired: watch::Receiver<Desired>,
    state: watch::Sender<KernelState>,
    mut stop: oneshot::Receiver<Vec<lvs::VirtualServer>>,
    Pace { debounce, resync }: Pace,
    counters: Arc<LbCounters>,
    beacon: Beacon,
) {
    // Opened when the first virtual server appears, so a node without LVS config never touches
    // IPVS (opening may make the kernel load ip_vs). After a failure, retried at resync ticks.
    let mut reconciler = None;
    let mut tried = false;
    state.send_modify(|s| "unused: no virtual servers configured".clone_into(&mut s.ipvs));
    let mut tick = tokio::time::interval_at(Instant::now() + resync, resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_logged: Option<String> = None;
    // Makes an idle loop come round for the watchdog. A convergence blocked in netlink holds
    // the loop, and with it the beats: the daemon is not keeping its table converged.
    let mut heartbeat = tokio::time::interval(BEAT_EVERY);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        beacon.beat();
        let mut ticked = false;
        tokio::select! {
            _ = heartbeat.tick() => continue,
            keep = &mut stop => {
                beacon.retire();
                let keep = keep.unwrap_or_default();
                if let Some(r) = reconciler {
                    let (_, result) = converge(r, keep, true).await;
                    report(&state, result, &mut last_logged, &counters);
                }
                return;
            }
            changed = desired.changed() => {
                if changed.is_err() {
                    // The runtime is gone without a stop: leave the kernel as it is.
                    beacon.retire();
                    return;
                }
                tokio::time::sleep(debounce).await;
            }
            _ = tick.tick() => ticked = true,
        }
        let want = desired.borrow_and_update().as_ref().clone();
        let retry = ticked && matches!(backend, IpvsBackend::Netlink);
        if reconciler.is_none() && !want.is_empty() && (!tried || retry) {
            match open(&mut backend).await {
                Ok(r) => {
                    if tried {
                        tracing::info!("IPVS became available");
                    }
                    reconciler = Some(r);
                }
                Err(why) => {
                    if !tried {
                        tracing::warn!(
                            reason = %why,
                            "IPVS unavailable: computing the desired LVS table only"
                        );
                    }
                    set_unavailable(&state, &why);
                }
            }
            tried = true;
        }
        if let Some(r) = reconciler.take() {
            let (r, result) = converge(r, want, false).await;
            reconciler = r;
            report(&state, result, &mut last_logged, &counters);
        }
    }
}

fn set_unavailable(state: &watch::Sender<KernelState>, why: &str) {
    state.send_modify(|s| s.ipvs = format!("unavailable: {why}"));
}

type ConvergeResult = Result<lvs::Outcome, String>;

/// Runs one convergence on a blocking thread (netlink calls block). Hands the reconciler back
/// unless the blocking task panicked, which leaves the kernel side unavailable.
async fn converge(
    mut r: Reconciler<DynIpvs>,
    want: Vec<lvs::VirtualServer>,
    shutdown: bool,
) -> (Option<Reconciler<DynIpvs>>, ConvergeResult) {
    let job = tokio::task::spawn_blocking(move || {
        let result = if shutdown {
            r.shutdown(&want)
        } else {
            r.converge(&want)
        };
        (r, result.map_err(|e| e.to_string()))
    });
    match job.await {
        Ok((r, result)) => (Some(r), result),
        Err(e) => (None, Err(format!("reconciler task failed: {e}"))),
    }
}

fn report(
    state: &watch::Sender<KernelState>,
    result: ConvergeResult,
    last_logged: &mut Option<String>,
    counters: &LbCounters,
) {
    match result {
        Ok(outcome) => {
            counters.converged(&outcome.applied, outcome.recovered.len());
            if !outcome.applied.is_empty() {
                tracing::info!(
                    ops = outcome.applied.len(),
                    recovered = outcome.recovered.len(),
                    "IPVS table converged"
                );
                for op in &outcome.applied {
                    tracing::debug!(op = %op, "IPVS op applied");
                }
            }
            *last_logged = None;
            state.send_modify(|s| {
                "ok".clone_into(&mut s.ipvs);
                s.last_sync = Some(Instant::now());
            });
        }
        Err(e) => {
            counters.convergence_failed();
            // The same failure every resync is one log line, not one every 15 s.
            if last_logged.as_deref() != Some(e.as_str()) {
                tracing::warn!(error = %e, "IPVS table did not converge");
                *last_logged = Some(e.clone());
            }
            state.send_modify(|s| s.ipvs = format!("error: {e}"));
        }
    }
}

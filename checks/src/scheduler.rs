//! The one scheduler for every check: a single tokio task that keeps a timer heap of due rounds
//! and polls all in-flight probes together. No task or thread per check, so ten thousand real
//! servers cost ten thousand small futures, not ten thousand stacks.
//!
//! ```text
//!  add/remove/status ──► [command channel] ──►┐
//!                                             │   ┌──────────────┐  due   ┌───────────────┐
//!                                             ├──►│ timer heap   │──────►│ in-flight     │
//!                                             │   │ (round/retry)│◄──────│ probes (≤ cap)│
//!                                             │   └──────────────┘ done  └───────────────┘
//!                                             └──► rise/fall ──► CheckEvent ──► consumers
//! ```

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::health::{Health, Transition};
use crate::probe::{self, Prepared, ProbeOutcome, TlsError};
use crate::spec::CheckSpec;

/// Caller-chosen identity of a check (the daemon derives it from virtual/real server keys).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(pub u64);

/// A health change, sent to consumers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    /// Which check.
    pub id: CheckId,
    /// What changed.
    pub transition: Transition,
    /// The attempt that decided it.
    pub outcome: ProbeOutcome,
}

/// Point-in-time view of one check, for `vigilctl status` and metrics.
#[derive(Debug, Clone)]
pub struct CheckStatus {
    /// Which check.
    pub id: CheckId,
    /// Checker kind (`tcp`, `http`, …).
    pub kind: &'static str,
    /// Probed address.
    pub target: std::net::SocketAddr,
    /// Current verdict.
    pub up: bool,
    /// Dynamic weight, if a script reported one.
    pub weight: Option<u32>,
    /// The last finished attempt.
    pub last: Option<ProbeOutcome>,
    /// When the verdict last changed (or the check was added).
    pub since: Instant,
}

/// Tuning of the scheduler itself.
#[derive(Debug, Clone, Copy)]
pub struct SchedulerConfig {
    /// Most probes in flight at once; further due attempts queue. Bounds file descriptors.
    pub max_in_flight: usize,
    /// Seed of the jitter generator (tests pin it; the daemon uses its pid and start time).
    pub seed: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            max_in_flight: 4096,
            seed: 0x5eed,
        }
    }
}

/// Sees every finished attempt (its check kind and outcome), e.g. to feed a latency histogram.
/// It runs on the scheduler task, so it must be cheap and must not block.
pub type AttemptObserver = Arc<dyn Fn(&'static str, &ProbeOutcome) + Send + Sync>;

/// Told each time the scheduler's loop comes round (a command, a finished probe, a due timer,
/// or at least every [`PROGRESS_EVERY`] when idle), e.g. to beat a liveness watchdog. A loop
/// that is stuck (an observer or a probe blocking the task) stops calling it. Runs on the
/// scheduler task: it must be cheap and must not block.
pub type ProgressHook = Arc<dyn Fn() + Send + Sync>;

/// Longest gap between two [`ProgressHook`] calls of an idle but healthy scheduler.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(500);

/// Optional callbacks of a scheduler.
#[derive(Clone, Default)]
pub struct Hooks {
    /// Sees every finished attempt.
    pub observer: Option<AttemptObserver>,
    /// Proof that the loop is making progress.
    pub progress: Option<ProgressHook>,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("observer", &self.observer.is_some())
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// Handle to a running scheduler; cheap to clone. Dropping every handle stops the scheduler.
#[derive(Debug, Clone)]
pub struct Scheduler {
    tx: mpsc::UnboundedSender<Command>,
}

/// The scheduler task has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the check scheduler has stopped")]
pub struct Stopped;

/// Why a check could not be added.
#[derive(Debug, thiserror::Error)]
pub enum AddError {
    /// Its TLS configuration is unusable.
    #[error("{0}")]
    Tls(#[from] TlsError),
    /// The scheduler has stopped.
    #[error("{0}")]
    Stopped(#[from] Stopped),
}

enum Command {
    Upsert(CheckId, Arc<CheckSpec>, Arc<Prepared>),
    Remove(CheckId),
    Status(oneshot::Sender<Vec<CheckStatus>>),
}

impl Scheduler {
    /// Starts the scheduler task on the current runtime; events go to `events`.
    pub fn spawn(config: SchedulerConfig, events: mpsc::UnboundedSender<CheckEvent>) -> Self {
        Self::spawn_observed(config, events, None)
    }

    /// [`spawn`](Self::spawn), with `observer` told about every finished attempt (retries
    /// included; attempts of a replaced or removed check are not).
    pub fn spawn_observed(
        config: SchedulerConfig,
        events: mpsc::UnboundedSender<CheckEvent>,
        observer: Option<AttemptObserver>,
    ) -> Self {
        Self::spawn_with(
            config,
            events,
            Hooks {
                observer,
                progress: None,
            },
        )
    }

    /// [`spawn`](Self::spawn), with `hooks`.
    pub fn spawn_with(
        config: SchedulerConfig,
        events: mpsc::UnboundedSender<CheckEvent>,
        hooks: Hooks,
    ) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(Core::new(config, events, hooks, Network).run(rx));
        Scheduler { tx }
    }

    /// [`spawn_with`](Self::spawn_with), but on a thread of its own (named `name`) with a
    /// single-threaded runtime, which stops when every handle is dropped.
    ///
    /// Why: every probe's socket wakes the scheduler task. On a shared multi-threaded runtime
    /// each wake-up may hand the task to another worker (a futex wake and a context switch per
    /// finished attempt), and the scheduler competes with every other task for its timers. On
    /// its own thread the loop that waits for socket events is the one that polls the probes.
    ///
    /// # Errors
    /// The runtime or the thread could not be created; nothing was started.
    pub fn spawn_on_thread(
        name: &str,
        config: SchedulerConfig,
        events: mpsc::UnboundedSender<CheckEvent>,
        hooks: Hooks,
    ) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let core = Core::new(config, events, hooks, Network);
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || runtime.block_on(core.run(rx)))?;
        Ok(Scheduler { tx })
    }

    /// Adds a check, or replaces the spec of an existing one while keeping its health (so a
    /// reload that only changes a weight does not reset rise/fall).
    pub fn upsert(&self, id: CheckId, spec: CheckSpec) -> Result<(), AddError> {
        let prepared = Prepared::new(&spec)?;
        self.tx
            .send(Command::Upsert(id, Arc::new(spec), Arc::new(prepared)))
            .map_err(|_| Stopped)?;
        Ok(())
    }

    /// Removes a check; an attempt in flight is abandoned and reports nothing.
    pub fn remove(&self, id: CheckId) -> Result<(), Stopped> {
        self.tx.send(Command::Remove(id)).map_err(|_| Stopped)
    }

    /// Status of every check, sorted by id.
    pub async fn status(&self) -> Result<Vec<CheckStatus>, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Command::Status(tx)).map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }
}

struct Entry {
    spec: Arc<CheckSpec>,
    prepared: Arc<Prepared>,
    health: Health,
    /// Bumped on every replace, so results of attempts started before are ignored.
    generation: u64,
    round_start: Instant,
    attempt: u32,
    last: Option<ProbeOutcome>,
    since: Instant,
}

type Attempt = Pin<Box<dyn Future<Output = (CheckId, u64, ProbeOutcome)> + Send>>;

/// Runs attempts: the scheduler's only I/O, so that its timing rules can be tested against a
/// simulated network in simulated time.
trait Prober: Send + 'static {
    fn probe(
        &self,
        spec: Arc<CheckSpec>,
        prepared: Arc<Prepared>,
        seq: u16,
    ) -> impl Future<Output = ProbeOutcome> + Send + 'static;
}

/// The real network.
struct Network;

impl Prober for Network {
    fn probe(
        &self,
        spec: Arc<CheckSpec>,
        prepared: Arc<Prepared>,
        seq: u16,
    ) -> impl Future<Output = ProbeOutcome> + Send + 'static {
        probe_owned(spec, prepared, seq)
    }
}

/// [`probe::probe`] on what it borrows, so that the attempt owns everything it needs.
async fn probe_owned(spec: Arc<CheckSpec>, prepared: Arc<Prepared>, seq: u16) -> ProbeOutcome {
    probe::probe(&spec, &prepared, seq).await
}

struct Core<P> {
    config: SchedulerConfig,
    events: mpsc::UnboundedSender<CheckEvent>,
    checks: HashMap<CheckId, Entry, BuildHasherDefault<IdHasher>>,
    /// (due, id, generation); stale generations are skipped when popped.
    timers: BinaryHeap<Reverse<(Instant, CheckId, u64)>>,
    ready: VecDeque<(CheckId, u64)>,
    in_flight: FuturesUnordered<Attempt>,
    rng: SplitMix64,
    seq: u16,
    observer: Option<AttemptObserver>,
    progress: Option<ProgressHook>,
    prober: P,
}

impl<P: Prober> Core<P> {
    fn new(
        config: SchedulerConfig,
        events: mpsc::UnboundedSender<CheckEvent>,
        hooks: Hooks,
        prober: P,
    ) -> Self {
        Core {
            config,
            events,
            checks: HashMap::default(),
            timers: BinaryHeap::new(),
            ready: VecDeque::new(),
            in_flight: FuturesUnordered::new(),
            rng: SplitMix64(config.seed),
            seq: 0,
            observer: hooks.observer,
            progress: hooks.progress,
            prober,
        }
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Command>) {
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        // Only there to make an idle loop come round for the progress hook.
        let mut idle = tokio::time::interval(PROGRESS_EVERY);
        idle.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let beats = self.progress.is_some();
        let mut armed = None;
        loop {
            let next = self.timers.peek().map(|Reverse((t, _, _))| *t);
            if let Some(t) = next
                && armed != Some(t)
            {
                sleep.as_mut().reset(t);
                armed = Some(t);
            }
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => return,
                },
                Some((id, generation, outcome)) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    let now = Instant::now();
                    self.finished(id, generation, outcome, now);
                    // Every other attempt that has finished too, in this same pass: at 10,000
                    // checks a second, one pass of the whole loop (channel, timers, hook) per
                    // attempt is most of the scheduler's own CPU time. `poll!` polls with this
                    // task's waker, so nothing that becomes ready later is missed.
                    while let Poll::Ready(Some((id, generation, outcome))) =
                        futures::poll!(self.in_flight.next())
                    {
                        self.finished(id, generation, outcome, now);
                    }
                }
                () = &mut sleep, if next.is_some() => self.fire_due(),
                _ = idle.tick(), if beats => {}
            }
            self.start_ready();
            if let Some(progress) = &self.progress {
                progress();
            }
        }
    }

    fn command(&mut self, cmd: Command) {
        let now = Instant::now();
        match cmd {
            Command::Upsert(id, spec, prepared) => {
                let warmup = spec.timing.warmup;
                let generation = if let Some(e) = self.checks.get_mut(&id) {
                    e.generation += 1;
                    e.attempt = 0;
                    e.spec = spec;
                    e.prepared = prepared;
                    e.generation
                } else {
                    let entry = Entry {
                        health: Health::new(spec.start_down),
                        spec,
                        prepared,
                        generation: 0,
                        round_start: now,
                        attempt: 0,
                        last: None,
                        since: now,
                    };
                    self.checks.insert(id, entry);
                    0
                };
                let delay = self.rng.below(warmup);
                self.timers.push(Reverse((now + delay, id, generation)));
            }
            Command::Remove(id) => {
                self.checks.remove(&id);
            }
            Command::Status(reply) => {
                let mut all: Vec<CheckStatus> = self
                    .checks
                    .iter()
                    .map(|(id, e)| CheckStatus {
                        id: *id,
                        kind: e.spec.kind.name(),
                        target: e.spec.target,
                        up: e.health.is_up(),
                        weight: e.health.weight(),
                        last: e.last.clone(),
                        since: e.since,
                    })
                    .collect();
                all.sort_by_key(|s| s.id);
                // The asker may have given up; nothing to do then.
                let _ = reply.send(all);
            }
        }
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((due, id, generation))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            if self
                .checks
                .get(&id)
                .is_some_and(|e| e.generation == generation)
            {
                self.ready.push_back((id, generation));
            }
        }
    }

    fn start_ready(&mut self) {
        while self.in_flight.len() < self.config.max_in_flight {
            let Some((id, generation)) = self.ready.pop_front() else {
                return;
            };
            let Some(entry) = self.checks.get_mut(&id) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            if entry.attempt == 0 {
                entry.round_start = Instant::now();
            }
            self.seq = self.seq.wrapping_add(1);
            let attempt = self
                .prober
                .probe(entry.spec.clone(), entry.prepared.clone(), self.seq);
            self.in_flight
                .push(Box::pin(async move { (id, generation, attempt.await) }));
        }
    }

    fn finished(&mut self, id: CheckId, generation: u64, outcome: ProbeOutcome, now: Instant) {
        let Some(entry) = self.checks.get_mut(&id) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        if let Some(observe) = &self.observer {
            observe(entry.spec.kind.name(), &outcome);
        }
        // Off unless asked for (`--log-level vigil_checks=trace`): when each attempt of one
        // check ended and how, to tell a late round from a slow probe.
        tracing::trace!(check = id.0, target = %entry.spec.target, attempt = entry.attempt, ok = outcome.ok, latency_us = outcome.latency.as_micros() as u64, detail = %outcome.detail, "attempt finished");
        let timing = entry.spec.timing;
        // Retries protect an up server from one lost packet. A down server is out of the table
        // already: a failure confirms the verdict, retries would only add probes of a dead
        // server, and a retry's success would count as a whole good round towards `rise`
        // (keepalived's MISC_CHECK and DNS_CHECK retry only while up too; its TCP_CHECK retries
        // a down server as well).
        if !outcome.ok && entry.health.is_up() && entry.attempt < timing.retries {
            entry.attempt += 1;
            entry.last = Some(outcome);
            self.timers
                .push(Reverse((now + timing.retry_delay, id, generation)));
            return;
        }
        entry.attempt = 0;
        let transition = entry
            .health
            .record(outcome.ok, outcome.weight, timing.rise, timing.fall);
        if let Some(t) = transition {
            if !matches!(t, Transition::Weight(_)) {
                entry.since = now;
            }
            tracing::debug!(check = id.0, target = %entry.spec.target, ?t, detail = %outcome.detail, "check state changed");
            // A consumer that has gone away cannot be helped; the scheduler keeps its own view.
            let _ = self.events.send(CheckEvent {
                id,
                transition: t,
                outcome: outcome.clone(),
            });
        }
        entry.last = Some(outcome);
        // Fixed rate from the start of the round, up to 2% early so that checks that started
        // together drift apart instead of firing in lockstep forever. Early, never late: a
        // server that fails just after a round started is tried again within one interval, so
        // it is down within interval + timeout (+ its retries) of the failure.
        let jitter = self.rng.below(timing.interval / 50);
        let next = (entry.round_start + timing.interval - jitter).max(now);
        self.timers.push(Reverse((next, id, generation)));
    }
}

/// Hashes a [`CheckId`] with one multiply and shift. Every attempt looks its check up three
/// times (due, started, finished); SipHash's resistance to chosen keys buys nothing for ids the
/// daemon derives itself (hashes already) or tests number from zero, and costs more than the
/// rest of the lookup.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }

    fn finish(&self) -> u64 {
        // The table takes its bucket from the low bits and a tag from the high ones; fold the
        // multiply's well-mixed high half into the low.
        self.0 ^ (self.0 >> 32)
    }
}

/// Tiny seeded generator for jitter (no cryptographic needs, no dependency).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly random duration in `[0, max)`, or zero when `max` is zero.
    fn below(&mut self, max: Duration) -> Duration {
        let nanos = max.as_nanos().min(u128::from(u64::MAX)) as u64;
        if nanos == 0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.next() % nanos)
        }
    }
}

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;

//! The one scheduler for every check: a single tokio task that keeps the timers of due rounds
//! and polls all in-flight probes together. No task or thread per check, so ten thousand real
//! servers cost ten thousand small futures, not ten thousand stacks.
//!
//! ```text
//!  add/remove/status ──► [command channel] ──►┐
//!                                             │   ┌──────────────┐  due   ┌───────────────┐
//!                                             ├──►│ timers       │──────►│ in-flight     │
//!                                             │   │ (round/retry)│◄──────│ probes (≤ cap)│
//!                                             │   └──────────────┘ done  └───────────────┘
//!                                             └──► rise/fall ──► CheckEvent ──► consumers
//! ```

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::health::{Health, Transition};
use crate::probe::{
    self, DetailOf, Prepared, ProbeError, ProbeOutcome, SYN_TICK, SynProber, TlsError, Verdict,
};
use crate::rng::SplitMix64;
use crate::spec::{CheckKind, CheckSpec};

#[path = "scheduler_attempts.rs"]
mod attempts;
#[path = "scheduler_timers.rs"]
mod timers;
use attempts::{Attempts, Ticket};
use timers::{Timer, Timers};

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
        tokio::spawn(Core::new(config, events, hooks, probe_owned).run(rx));
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
        let core = Core::new(config, events, hooks, probe_owned);
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
    /// What wrote `last`'s detail, to keep it when the next attempt fails the same way.
    last_of: DetailOf,
    since: Instant,
}

/// [`probe::attempt`] on what it borrows, so that the attempt owns everything it needs: the
/// prober of the real network. Also returns when the attempt's work began (its first poll, after
/// the attempts started before it in the same batch have opened their sockets), which is where
/// its latency counts from.
fn probe_owned(
    spec: Arc<CheckSpec>,
    prepared: Arc<Prepared>,
    seq: u16,
    syn: &Arc<SynProber>,
) -> impl Future<Output = Timed> + Send + use<> {
    let syn = Arc::clone(syn);
    // A half-open check's SYN is queued now and leaves with the others of this batch when the
    // loop flushes (one `sendmmsg`), before it sleeps.
    let queued = matches!(spec.kind, CheckKind::TcpHalfOpen)
        .then(|| (Instant::now(), syn.queue(spec.target, &spec.source)));
    async move {
        if let Some((start, ack)) = queued {
            return (start, probe::half_open(syn, ack).await);
        }
        let start = Instant::now();
        (start, probe::attempt(&spec, &prepared, seq, &syn).await)
    }
}

/// An attempt's verdict and when its work began.
type Timed = (Instant, Verdict);

/// Distinct timeouts whose queues are kept while empty.
const MAX_IDLE_DEADLINES: usize = 8;

/// The deadlines of attempts started with one timeout, in the order they started, and so in
/// the order they fall due. Attempts start in time order, so a queue per timeout keeps them
/// sorted for the cost of a push and a pop, where a runtime timer per attempt costs a timer
/// wheel entry made and removed under the driver's lock. A finished attempt's deadline stays
/// queued, stale, until it reaches the front.
struct Deadlines {
    timeout: Duration,
    queue: VecDeque<(Instant, Ticket)>,
}

/// The scheduler's state. `P` starts attempts, which are `F`s: it is the scheduler's only I/O,
/// so that its timing rules can be tested against a simulated network in simulated time. A
/// function rather than a trait so that the attempts' type, an `async fn`'s future that has no
/// name, is inferred and the in-flight set can hold it inline.
struct Core<P, F> {
    config: SchedulerConfig,
    events: mpsc::UnboundedSender<CheckEvent>,
    checks: HashMap<CheckId, Entry, BuildHasherDefault<IdHasher>>,
    /// Stale generations are skipped when taken.
    timers: Timers,
    ready: VecDeque<(CheckId, u64)>,
    /// Tagged with the check's id and generation and when the attempt was started (its
    /// deadline counts from then).
    in_flight: Attempts<(CheckId, u64, Instant), F>,
    /// One queue per distinct timeout among the attempts in flight: few.
    deadlines: Vec<Deadlines>,
    rng: SplitMix64,
    seq: u16,
    observer: Option<AttemptObserver>,
    progress: Option<ProgressHook>,
    prober: P,
    /// The half-open checks' raw sockets, which the loop drains (their attempts only wait).
    syn: Arc<SynProber>,
}

impl<P, F> Core<P, F>
where
    P: Fn(Arc<CheckSpec>, Arc<Prepared>, u16, &Arc<SynProber>) -> F,
    F: Future<Output = Timed>,
{
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
            timers: Timers::new(Instant::now()),
            ready: VecDeque::new(),
            in_flight: Attempts::new(),
            deadlines: Vec::new(),
            rng: SplitMix64(config.seed),
            seq: 0,
            observer: hooks.observer,
            progress: hooks.progress,
            prober,
            syn: Arc::default(),
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
        let mut drained = Instant::now();
        loop {
            // Half-open answers are read here, not awaited one by one (see
            // `probe::half_open`): on every pass, and at least every tick while probes are out.
            let syn_out = self.syn.in_flight();
            if syn_out {
                self.syn.drain();
                drained = Instant::now();
            }
            // Deadlines of attempts that have finished are dropped first, so that the loop wakes
            // only for an attempt that is late, not once for every attempt.
            for d in &mut self.deadlines {
                while d
                    .queue
                    .front()
                    .is_some_and(|(_, ticket)| !self.in_flight.is_live(*ticket))
                {
                    d.queue.pop_front();
                }
            }
            let late = self
                .deadlines
                .iter()
                .filter_map(|d| d.queue.front().map(|(due, _)| *due))
                .min();
            let next = [
                self.timers.next_due(),
                late,
                syn_out.then(|| drained + SYN_TICK),
            ]
            .into_iter()
            .flatten()
            .min();
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
                Some(((id, generation, _), (start, verdict))) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.finished(id, generation, start, verdict, Instant::now());
                    // Every other attempt that has finished too, in this same pass: at 10,000
                    // checks a second, one pass of the whole loop (channel, timers, hook) per
                    // attempt is most of the scheduler's own CPU time. `poll!` polls with this
                    // task's waker, so nothing that becomes ready later is missed.
                    while let Poll::Ready(Some(((id, generation, _), (start, verdict)))) =
                        futures::poll!(self.in_flight.next())
                    {
                        self.finished(id, generation, start, verdict, Instant::now());
                    }
                }
                () = &mut sleep, if next.is_some() => {
                    let now = Instant::now();
                    self.expire_late(now);
                    self.fire_due(now);
                }
                _ = idle.tick(), if beats => {}
            }
            self.start_ready();
            self.syn.flush();
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
                        last_of: DetailOf::default(),
                        since: now,
                    };
                    self.checks.insert(id, entry);
                    0
                };
                let delay = self.rng.below(warmup);
                self.timers.push(Timer {
                    due: now + delay,
                    id,
                    generation,
                });
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

    /// Ends every attempt that has run into its timeout.
    fn expire_late(&mut self, now: Instant) {
        for i in 0..self.deadlines.len() {
            let timeout = self.deadlines[i].timeout;
            while let Some(&(due, ticket)) = self.deadlines[i].queue.front() {
                if due > now {
                    break;
                }
                self.deadlines[i].queue.pop_front();
                if let Some((id, generation, start)) = self.in_flight.cancel(ticket) {
                    let late = Err(ProbeError::Timeout(timeout));
                    self.finished(id, generation, start, late, now);
                }
            }
        }
        // An emptied queue is kept with its buffer for the next attempts of its timeout; only
        // timeouts that a reload left behind in numbers are dropped.
        if self.deadlines.len() > MAX_IDLE_DEADLINES {
            self.deadlines.retain(|d| !d.queue.is_empty());
        }
    }

    /// Starts the rounds and retries that are due, and those due within their check's
    /// [`ahead`] of now: at 10,000 checks a second the timers fall a tenth of a millisecond
    /// apart, and waking for each millisecond's share costs more than the checks themselves.
    fn fire_due(&mut self, now: Instant) {
        let (checks, ready) = (&self.checks, &mut self.ready);
        self.timers.take_due(now + AHEAD, |t| {
            let Some(entry) = checks.get(&t.id).filter(|e| e.generation == t.generation) else {
                // Stale: its check was replaced or removed.
                return true;
            };
            if t.due > now + ahead(entry.spec.timing.interval) {
                return false;
            }
            ready.push_back((t.id, t.generation));
            true
        });
    }

    fn start_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        // One reading for the whole batch: starting the others is part of each one's wait.
        let now = Instant::now();
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
                entry.round_start = now;
            }
            self.seq = self.seq.wrapping_add(1);
            let attempt = (self.prober)(
                entry.spec.clone(),
                entry.prepared.clone(),
                self.seq,
                &self.syn,
            );
            let ticket = self.in_flight.push((id, generation, now), attempt);
            let timeout = entry.spec.timing.timeout;
            let due = now + timeout;
            match self.deadlines.iter_mut().find(|d| d.timeout == timeout) {
                Some(d) => d.queue.push_back((due, ticket)),
                None => self.deadlines.push(Deadlines {
                    timeout,
                    queue: VecDeque::from([(due, ticket)]),
                }),
            }
        }
    }

    fn finished(
        &mut self,
        id: CheckId,
        generation: u64,
        start: Instant,
        verdict: Verdict,
        now: Instant,
    ) {
        let Some(entry) = self.checks.get_mut(&id) else {
            return;
        };
        if entry.generation != generation {
            return;
        }
        let latency = now.saturating_duration_since(start);
        // Overwritten in place: a check whose outcome reads the same as last time allocates
        // nothing for it.
        let outcome = entry
            .last
            .get_or_insert_with(|| ProbeOutcome::new(Ok(("".into(), None)), latency));
        outcome.update(verdict, latency, &mut entry.last_of);
        let outcome = &*outcome;
        if let Some(observe) = &self.observer {
            observe(entry.spec.kind.name(), outcome);
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
            self.timers.push(Timer {
                due: now + timing.retry_delay,
                id,
                generation,
            });
            return;
        }
        entry.attempt = 0;
        let (ok, weight) = (outcome.ok, outcome.weight);
        let transition = entry.health.record(ok, weight, timing.rise, timing.fall);
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
        // Fixed rate from the start of the round, up to 2% early (with what `fire_due` may
        // start ahead) so that checks that started together drift apart instead of firing in
        // lockstep forever. Early, never late: a server that fails just after a round started
        // is tried again within one interval, so it is down within interval + timeout (+ its
        // retries) of the failure.
        let jitter = self
            .rng
            .below((timing.interval / 50).saturating_sub(ahead(timing.interval)));
        let next = (entry.round_start + timing.interval - jitter).max(now);
        self.timers.push(Timer {
            due: next,
            id,
            generation,
        });
    }
}

/// The most a timer is started before it is due, so that one wake-up starts all that fall due
/// within it (see [`Core::fire_due`]).
const AHEAD: Duration = Duration::from_millis(8);

/// How early a timer of a check with `interval` may start: [`AHEAD`], or a hundredth of the
/// interval if less, so that it and the round's jitter stay within 2% of the interval.
fn ahead(interval: Duration) -> Duration {
    AHEAD.min(interval / 100)
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

#[cfg(test)]
#[path = "scheduler_tests.rs"]
mod tests;

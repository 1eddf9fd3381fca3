//! The systemd watchdog, driven by the runtime's own liveness rather than a timer.
//!
//! A `WATCHDOG=1` ping promises systemd that vigild is doing its job, so it is sent only when
//! every component proves progress: each one owns a [`Beacon`] and beats it from inside its own
//! loop (the supervisor's control loop, every VRRP unit task, the coordination node's probe,
//! the load balancer's runtime task, check scheduler and IPVS reconciler, the fencing task),
//! at least every [`BEAT_EVERY`]. The watchdog task wakes at half of `WatchdogSec`, asks
//! [`assess`] whether every beacon beat within that half, and pings only then. Otherwise it
//! logs which component is silent, and for how long, and lets systemd's deadline pass: a wedged
//! VRRP task must not keep advertising a healthy daemon while its VIPs are stale.
//!
//! A component that is legitimately busy for longer than a beat (the supervisor applying a
//! reload that stops and starts VRRP units) holds a [`Busy`] guard: it is excused up to
//! [`Policy::busy_limit`], and a reload that hangs beyond that still stops the pings.
//!
//! The decision is a pure function of the readings and an injected `now`, tested below.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::notify::Watchdog;
use crate::vrrp::VrrpView;

/// How often a component beats when nothing else wakes it.
pub const BEAT_EVERY: Duration = Duration::from_millis(500);

/// How long a [`Busy`] component is excused by default (a reload stopping several VRRP units,
/// each within its 5 s limit).
pub const DEFAULT_BUSY_LIMIT: Duration = Duration::from_mins(2);

/// The instant beacons count from; milliseconds since it fit an atomic.
pub(crate) fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn millis_since_epoch(at: Instant) -> u64 {
    // +1 so that 0 can mean "not busy".
    u64::try_from(at.saturating_duration_since(epoch()).as_millis()).unwrap_or(u64::MAX) + 1
}

#[derive(Debug)]
struct BeaconState {
    last: AtomicU64,
    busy_since: AtomicU64,
    retired: AtomicBool,
}

/// One component's proof of progress; clones share it.
#[derive(Debug, Clone)]
pub struct Beacon(Arc<BeaconState>);

impl Default for Beacon {
    fn default() -> Self {
        Self::new()
    }
}

impl Beacon {
    /// A beacon that has just beaten (a component starting is making progress).
    pub fn new() -> Self {
        Self::new_at(Instant::now())
    }

    /// A beacon that beat at `at` (tests inject the clock).
    pub fn new_at(at: Instant) -> Self {
        Self(Arc::new(BeaconState {
            last: AtomicU64::new(millis_since_epoch(at)),
            busy_since: AtomicU64::new(0),
            retired: AtomicBool::new(false),
        }))
    }

    /// The component made progress now.
    pub fn beat(&self) {
        self.beat_at(Instant::now());
    }

    /// The component made progress at `at`.
    pub fn beat_at(&self, at: Instant) {
        self.0
            .last
            .fetch_max(millis_since_epoch(at), Ordering::Relaxed);
    }

    /// Excuses the component while the guard lives (up to [`Policy::busy_limit`]); it counts
    /// as beating when the guard drops.
    pub fn busy(&self) -> Busy {
        self.busy_at(Instant::now())
    }

    /// [`busy`](Self::busy) starting at `at`.
    pub fn busy_at(&self, at: Instant) -> Busy {
        self.0
            .busy_since
            .store(millis_since_epoch(at), Ordering::Relaxed);
        Busy(self.clone())
    }

    /// The component ended on purpose (e.g. a VRRP instance whose config cannot run): it is no
    /// longer expected to beat.
    pub fn retire(&self) {
        self.0.retired.store(true, Ordering::Relaxed);
    }

    /// Since the last beat at `now`; `None` once retired.
    pub fn silent_for(&self, now: Instant) -> Option<Duration> {
        let (last, _) = self.reading()?;
        Some(Duration::from_millis(
            millis_since_epoch(now).saturating_sub(last),
        ))
    }

    fn reading(&self) -> Option<(u64, Option<u64>)> {
        if self.0.retired.load(Ordering::Relaxed) {
            return None;
        }
        let busy = self.0.busy_since.load(Ordering::Relaxed);
        Some((
            self.0.last.load(Ordering::Relaxed),
            (busy != 0).then_some(busy),
        ))
    }
}

/// Keeps a [`Beacon`] excused; see [`Beacon::busy`].
#[derive(Debug)]
#[must_use = "the component is excused only while the guard lives"]
pub struct Busy(Beacon);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.0.busy_since.store(0, Ordering::Relaxed);
        self.0.beat();
    }
}

/// How silent a component may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Longest time without a beat.
    pub limit: Duration,
    /// Longest time a component may stay [`Busy`].
    pub busy_limit: Duration,
}

impl Policy {
    /// For pings every `interval` (half of `WatchdogSec`): a component must have beaten within
    /// that interval, and never less than three beats, so that a short `WatchdogSec` does not
    /// turn scheduling jitter into a kill.
    pub fn for_interval(interval: Duration) -> Self {
        Self {
            limit: interval.max(BEAT_EVERY * 3),
            busy_limit: DEFAULT_BUSY_LIMIT,
        }
    }
}

/// A component that did not beat in time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stall {
    /// Its name, e.g. `vrrp unit VI_1`.
    pub component: String,
    /// Since its last beat (or since it became busy).
    pub silent_for: Duration,
    /// Whether it was busy past [`Policy::busy_limit`] rather than silent.
    pub busy: bool,
}

/// Whether to ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Every component beat in time.
    Live,
    /// These did not.
    Stalled(Vec<Stall>),
}

/// Judges `components` at `now`.
pub fn assess(now: Instant, policy: Policy, components: &[(String, Beacon)]) -> Verdict {
    let now_ms = millis_since_epoch(now);
    let age = |since: u64| Duration::from_millis(now_ms.saturating_sub(since));
    let stalls: Vec<Stall> = components
        .iter()
        .filter_map(|(name, beacon)| {
            let (last, busy) = beacon.reading()?;
            let (since, limit) = match busy {
                Some(since) => (since, policy.busy_limit),
                None => (last, policy.limit),
            };
            (age(since) > limit).then(|| Stall {
                component: name.clone(),
                silent_for: age(since),
                busy: busy.is_some(),
            })
        })
        .collect();
    if stalls.is_empty() {
        Verdict::Live
    } else {
        Verdict::Stalled(stalls)
    }
}

/// What the watchdog watches.
#[derive(Debug, Clone, Default)]
pub struct Watched {
    /// Fixed components: the supervisor loop, the coordination node, …
    components: Vec<(String, Beacon)>,
    /// The VRRP units, which come and go with reloads.
    vrrp: Option<VrrpView>,
}

impl Watched {
    /// Nothing watched yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches `beacon` under `name`.
    #[must_use]
    pub fn with(mut self, name: impl Into<String>, beacon: Beacon) -> Self {
        self.components.push((name.into(), beacon));
        self
    }

    /// Watches every VRRP unit the view shows (following reloads).
    #[must_use]
    pub fn with_vrrp(mut self, vrrp: VrrpView) -> Self {
        self.vrrp = Some(vrrp);
        self
    }

    /// Every beacon to judge now.
    pub fn beacons(&self) -> Vec<(String, Beacon)> {
        let mut all = self.components.clone();
        if let Some(vrrp) = &self.vrrp {
            all.extend(
                vrrp.beacons()
                    .into_iter()
                    .map(|(unit, beacon)| (format!("vrrp unit {unit}"), beacon)),
            );
        }
        all
    }
}

/// Pings systemd every `watchdog.interval()` while [`assess`] says the components are live;
/// runs until aborted. Does nothing when systemd does not watch this process.
pub async fn run(watchdog: Watchdog, watched: Watched) {
    let Some(interval) = watchdog.interval() else {
        return;
    };
    supervise(interval, &watched, || watchdog.ping()).await;
}

/// Every `interval`: [`assess`] the watched components, `ping` when they are live, log the
/// silent ones otherwise. Runs until aborted.
async fn supervise(interval: Duration, watched: &Watched, mut ping: impl FnMut()) {
    let policy = Policy::for_interval(interval);
    tracing::info!(
        interval_ms = interval.as_millis() as u64,
        limit_ms = policy.limit.as_millis() as u64,
        "systemd watchdog armed: pinging while the runtime makes progress"
    );
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled = false;
    loop {
        tick.tick().await;
        match assess(Instant::now(), policy, &watched.beacons()) {
            Verdict::Live => {
                if stalled {
                    tracing::warn!(
                        "every component is making progress again; watchdog pings resume"
                    );
                    stalled = false;
                }
                ping();
            }
            Verdict::Stalled(stalls) => {
                stalled = true;
                for stall in stalls {
                    tracing::error!(
                        component = %stall.component,
                        silent_ms = stall.silent_for.as_millis() as u64,
                        busy = stall.busy,
                        "watchdog ping withheld: {} has made no progress for {:.1} s{}",
                        stall.component,
                        stall.silent_for.as_secs_f64(),
                        if stall.busy { " (busy past its limit)" } else { "" }
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Policy = Policy {
        limit: Duration::from_secs(5),
        busy_limit: Duration::from_mins(1),
    };

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A whole number of milliseconds after the epoch, so fake ages are exact.
    fn start() -> Instant {
        epoch() + secs(1)
    }

    #[test]
    fn live_while_everyone_beats_within_the_limit() {
        let t0 = start();
        let sup = Beacon::new_at(t0);
        let unit = Beacon::new_at(t0);
        let all = [
            ("supervisor".to_owned(), sup.clone()),
            ("vrrp unit a".to_owned(), unit.clone()),
        ];
        assert_eq!(assess(t0 + secs(5), POLICY, &all), Verdict::Live);
        sup.beat_at(t0 + secs(4));
        unit.beat_at(t0 + secs(4));
        assert_eq!(assess(t0 + secs(9), POLICY, &all), Verdict::Live);
    }

    #[test]
    fn a_silent_component_is_named_and_stops_the_ping() {
        let t0 = start();
        let sup = Beacon::new_at(t0);
        let unit = Beacon::new_at(t0);
        let all = [
            ("supervisor".to_owned(), sup.clone()),
            ("vrrp unit a".to_owned(), unit),
        ];
        sup.beat_at(t0 + secs(6));
        assert_eq!(
            assess(t0 + secs(7), POLICY, &all),
            Verdict::Stalled(vec![Stall {
                component: "vrrp unit a".to_owned(),
                silent_for: secs(7),
                busy: false,
            }])
        );
    }

    #[test]
    fn beats_never_go_backwards() {
        let t0 = start();
        let b = Beacon::new_at(t0 + secs(10));
        b.beat_at(t0); // a late, older reading must not age the beacon
        let all = [("x".to_owned(), b)];
        assert_eq!(assess(t0 + secs(14), POLICY, &all), Verdict::Live);
    }

    #[test]
    fn busy_is_excused_up_to_its_own_limit() {
        let t0 = start();
        let sup = Beacon::new_at(t0);
        let all = [("supervisor".to_owned(), sup.clone())];
        let guard = sup.busy_at(t0 + secs(1));
        assert_eq!(assess(t0 + secs(30), POLICY, &all), Verdict::Live);
        assert_eq!(
            assess(t0 + secs(62), POLICY, &all),
            Verdict::Stalled(vec![Stall {
                component: "supervisor".to_owned(),
                silent_for: secs(61),
                busy: true,
            }])
        );
        drop(guard); // beats now (real clock), so it is live again
        assert_eq!(assess(Instant::now(), POLICY, &all), Verdict::Live);
    }

    #[test]
    fn retired_components_are_not_judged() {
        let t0 = start();
        let gone = Beacon::new_at(t0);
        gone.retire();
        let all = [("vrrp unit broken".to_owned(), gone)];
        assert_eq!(assess(t0 + secs(3600), POLICY, &all), Verdict::Live);
    }

    #[tokio::test]
    async fn the_task_pings_while_components_beat_and_stops_when_one_goes_silent() {
        use std::sync::atomic::AtomicUsize;

        let steady = Beacon::new();
        let stalling = Beacon::new();
        let watched = Watched::new()
            .with("steady", steady.clone())
            .with("stalling", stalling.clone());
        let pings = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pings);
        let started = Instant::now();
        let task = tokio::spawn(async move {
            supervise(Duration::from_millis(50), &watched, || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .await;
        });
        // 50 ms pings, but a component may be silent for the 3-beat floor (1.5 s).
        let limit = BEAT_EVERY * 3;
        assert_eq!(limit, Duration::from_millis(1_500));
        let count = || pings.load(Ordering::Relaxed);
        // `steady` beats every 20 ms until `until`; `stalling` only when told.
        let run_until = |until: Duration, both: bool| {
            let (steady, stalling) = (steady.clone(), stalling.clone());
            async move {
                while started.elapsed() < until {
                    steady.beat();
                    if both {
                        stalling.beat();
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        };
        run_until(Duration::from_millis(800), false).await;
        let early = count();
        assert!(
            early > 0,
            "no ping while every component was within its limit"
        );
        // Past the limit (with a 500 ms margin either side), the pings have stopped.
        run_until(limit + Duration::from_millis(500), false).await;
        let stalled = count();
        run_until(limit + Duration::from_secs(1), false).await;
        assert_eq!(count(), stalled, "pinged while `stalling` was silent");
        // Once it beats again, so do the pings.
        run_until(limit + Duration::from_millis(1_400), true).await;
        assert!(count() > stalled, "pings did not resume");
        task.abort();
    }

    /// A check scheduler whose loop is blocked (here by an attempt observer that does not
    /// return) stops beating: the watchdog names it and withholds the ping until it recovers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 3)]
    async fn a_blocked_check_scheduler_is_named_and_the_ping_withheld() {
        use std::sync::Mutex;
        use std::sync::atomic::AtomicUsize;
        use std::sync::mpsc;

        use vigil_checks::{
            CheckId, CheckKind, CheckSpec, Hooks, Scheduler, SchedulerConfig, Source, Timing,
        };

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let target = listener.local_addr().expect("address");
        let accept = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
        let checks = Beacon::new();
        let (entered_tx, entered_rx) = mpsc::channel::<()>();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let gate = Mutex::new((entered_tx, release_rx));
        let beat = checks.clone();
        let (events, _events) = tokio::sync::mpsc::unbounded_channel();
        let scheduler = Scheduler::spawn_with(
            SchedulerConfig::default(),
            events,
            Hooks {
                // Bounded, so that a failing test still ends.
                observer: Some(Arc::new(
                    move |_: &'static str, _: &vigil_checks::ProbeOutcome| {
                        let gate = gate
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner);
                        let _ = gate.0.send(());
                        let _ = gate.1.recv_timeout(Duration::from_secs(20));
                    },
                )),
                progress: Some(Arc::new(move || beat.beat())),
            },
        );
        let supervisor = Beacon::new();
        let watched = Watched::new()
            .with("supervisor", supervisor.clone())
            .with("check scheduler", checks.clone());
        let pings = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pings);
        let task = tokio::spawn(async move {
            supervise(Duration::from_millis(50), &watched, || {
                counter.fetch_add(1, Ordering::Relaxed);
            })
            .await;
        });
        let count = || pings.load(Ordering::Relaxed);
        // The supervisor loop keeps beating throughout, as the real one does.
        let beating = {
            let supervisor = supervisor.clone();
            tokio::spawn(async move {
                loop {
                    supervisor.beat();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        tokio::time::sleep(BEAT_EVERY * 2).await;
        assert!(count() > 0, "no ping while both components beat");

        scheduler
            .upsert(
                CheckId(1),
                CheckSpec {
                    target,
                    kind: CheckKind::Tcp,
                    timing: Timing {
                        warmup: Duration::ZERO,
                        ..Timing::default()
                    },
                    source: Source::default(),
                    start_down: false,
                },
            )
            .expect("upsert");
        tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(10)))
            .await
            .expect("join")
            .expect("the scheduler ran its first attempt");
        let blocked_at = Instant::now();
        let limit = Policy::for_interval(Duration::from_millis(50)).limit;
        tokio::time::sleep(limit + BEAT_EVERY).await;
        let now = Instant::now();
        let Verdict::Stalled(stalls) = assess(
            now,
            Policy::for_interval(Duration::from_millis(50)),
            &Watched::new()
                .with("supervisor", supervisor.clone())
                .with("check scheduler", checks.clone())
                .beacons(),
        ) else {
            panic!("a blocked scheduler was judged live");
        };
        assert_eq!(stalls.len(), 1, "{stalls:?}");
        assert_eq!(stalls[0].component, "check scheduler");
        // Beats are kept in whole milliseconds, so the age may read up to 1 ms short.
        assert!(
            stalls[0].silent_for + Duration::from_millis(1) >= now - blocked_at,
            "{stalls:?}"
        );
        let withheld = count();
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(count(), withheld, "pinged while the scheduler was blocked");

        // Released (and never blocked again): its loop beats, the pings resume.
        drop(release_tx);
        tokio::time::sleep(BEAT_EVERY * 2).await;
        assert!(count() > withheld, "pings did not resume");
        task.abort();
        beating.abort();
        accept.abort();
    }

    #[test]
    fn short_watchdog_intervals_still_allow_three_beats() {
        assert_eq!(
            Policy::for_interval(Duration::from_millis(200)).limit,
            BEAT_EVERY * 3
        );
        assert_eq!(Policy::for_interval(secs(15)).limit, secs(15));
    }
}

//! Simulation support for tests: a virtual LAN of VRRP routers on a virtual clock.
//!
//! Not part of the daemon's API; it is public so tests in this crate and in others (the
//! split-brain work, benchmarks) can reuse it. Nothing here sleeps or reads a clock: the caller
//! picks one epoch `Instant` and [`Lan`] only adds durations to it, jumping from wakeup to wakeup
//! like quinn-proto's test `Pair`.
//!
//! Every advert goes to every other live, reachable router after a random delay within
//! `[min, max]`, or is lost with a configured probability. Randomness comes from one seed, so a
//! failing seed replays exactly.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use crate::config::{ConfigError, InstanceConfig};
use crate::instance::{Action, Input, InputError, Instance, State};
use crate::packet::Advertisement;

/// SplitMix64: tiny, seedable and good enough to pick delays and losses.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator that replays for the same seed.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`; `n` must not be 0.
    pub fn below(&mut self, n: u64) -> u64 {
        // Modulo bias is irrelevant at the sizes tests use.
        self.next_u64() % n
    }

    /// Uniform in `[min, max]`.
    pub fn duration(&mut self, min: Duration, max: Duration) -> Duration {
        let span = max.saturating_sub(min).as_nanos() as u64;
        min + Duration::from_nanos(if span == 0 { 0 } else { self.below(span + 1) })
    }

    /// `true` with probability `ppm` per million.
    pub fn chance_ppm(&mut self, ppm: u32) -> bool {
        self.below(1_000_000) < u64::from(ppm)
    }
}

/// One router on the LAN.
#[derive(Debug)]
pub struct Router {
    /// Its VRRP instance.
    pub instance: Instance,
    /// `false` after [`Lan::crash`]: silent, deaf, its VIPs gone with the host.
    pub alive: bool,
    /// Whether the router has its VIPs configured (from AddVips/RemoveVips).
    pub holds_vips: bool,
}

/// Something a router did, with the virtual time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// When.
    pub at: Instant,
    /// Which router.
    pub router: usize,
    /// What.
    pub action: Action,
}

#[derive(Debug)]
struct Delivery {
    to: usize,
    src: IpAddr,
    advert: Advertisement,
}

/// N routers on one simulated segment.
#[derive(Debug)]
pub struct Lan {
    epoch: Instant,
    now: Instant,
    routers: Vec<Router>,
    /// In-flight adverts keyed by (arrival, sequence) so equal arrival times keep send order.
    wire: BTreeMap<(Instant, u64), Delivery>,
    seq: u64,
    rng: Rng,
    delay: (Duration, Duration),
    loss_ppm: u32,
    /// Directed pairs (from, to) whose packets are dropped.
    cut: HashSet<(usize, usize)>,
    events: Vec<Event>,
    /// Wakeups in a row without time moving; a livelock if it grows without bound.
    stalled: u32,
    /// Wakeups processed so far, and the most allowed (see [`Lan::set_step_budget`]).
    steps: u64,
    step_budget: u64,
}

/// Wakeups at one instant after which [`Lan::step`] declares a livelock (quinn's `drive_bounded`).
const LIVELOCK_STEPS: u32 = 100_000;

impl Lan {
    /// An empty LAN at `epoch`, no delay, no loss.
    pub fn new(seed: u64, epoch: Instant) -> Self {
        Self {
            epoch,
            now: epoch,
            routers: Vec::new(),
            wire: BTreeMap::new(),
            seq: 0,
            rng: Rng::new(seed),
            delay: (Duration::ZERO, Duration::ZERO),
            loss_ppm: 0,
            cut: HashSet::new(),
            events: Vec::new(),
            stalled: 0,
            steps: 0,
            step_budget: u64::MAX,
        }
    }

    /// Every advert takes between `min` and `max` to arrive.
    pub fn set_delay(&mut self, min: Duration, max: Duration) {
        self.delay = (min, max.max(min));
    }

    /// Each advert is lost, independently per receiver, with this probability per million.
    pub fn set_loss_ppm(&mut self, ppm: u32) {
        self.loss_ppm = ppm;
    }

    /// Panics once more than `budget` wakeups have run: routers trading packets in a tight loop
    /// with tiny delays would otherwise crawl through virtual time instead of failing.
    pub fn set_step_budget(&mut self, budget: u64) {
        self.step_budget = budget;
    }

    /// Cuts (or restores) the link in both directions between two routers.
    pub fn set_reachable(&mut self, a: usize, b: usize, reachable: bool) {
        for pair in [(a, b), (b, a)] {
            if reachable {
                self.cut.remove(&pair);
            } else {
                self.cut.insert(pair);
            }
        }
    }

    /// Adds a router (in Initialize) and returns its index.
    pub fn add(&mut self, config: InstanceConfig) -> Result<usize, ConfigError> {
        let instance = Instance::new(config, self.now)?;
        self.routers.push(Router {
            instance,
            alive: true,
            holds_vips: false,
        });
        Ok(self.routers.len() - 1)
    }

    /// Virtual now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the epoch, for traces.
    pub fn elapsed(&self) -> Duration {
        self.now - self.epoch
    }

    /// The harness's random generator, to draw scenario parameters from the same seed.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Router `i`.
    pub fn router(&self, i: usize) -> &Router {
        &self.routers[i]
    }

    /// Router `i`'s instance.
    pub fn instance(&self, i: usize) -> &Instance {
        &self.routers[i].instance
    }

    /// Number of routers, dead or alive.
    pub fn len(&self) -> usize {
        self.routers.len()
    }

    /// Whether the LAN has no routers.
    pub fn is_empty(&self) -> bool {
        self.routers.is_empty()
    }

    /// Everything routers did so far.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// Live routers in Master state.
    pub fn masters(&self) -> Vec<usize> {
        self.live()
            .filter(|&i| self.routers[i].instance.state() == State::Master)
            .collect()
    }

    /// Live routers holding the VIPs.
    pub fn vip_holders(&self) -> Vec<usize> {
        self.live()
            .filter(|&i| self.routers[i].holds_vips)
            .collect()
    }

    /// Indices of live routers.
    pub fn live(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.routers.len()).filter(|&i| self.routers[i].alive)
    }

    /// Feeds an input to router `i` now and sends what it produces.
    pub fn input(&mut self, i: usize, input: Input) -> Result<(), InputError> {
        let result = self.routers[i].instance.handle(self.now, input);
        self.flush(i);
        result
    }

    /// Starts every router.
    pub fn start_all(&mut self) {
        for i in 0..self.routers.len() {
            // Startup never fails.
            let _ = self.input(i, Input::Startup);
        }
    }

    /// The host dies silently: no priority-0 advert, its VIPs vanish with it, packets to it are
    /// lost.
    pub fn crash(&mut self, i: usize) {
        let router = &mut self.routers[i];
        router.alive = false;
        router.holds_vips = false;
    }

    /// A crashed router boots again with the same configuration and starts.
    pub fn reboot(&mut self, i: usize) -> Result<(), ConfigError> {
        let config = self.routers[i].instance.config().clone();
        self.routers[i] = Router {
            instance: Instance::new(config, self.now)?,
            alive: true,
            holds_vips: false,
        };
        // Startup never fails.
        let _ = self.input(i, Input::Startup);
        Ok(())
    }

    /// The next moment something happens: a delivery or a live router's timer.
    pub fn next_wakeup(&self) -> Option<Instant> {
        let wire = self.wire.keys().next().map(|&(at, _)| at);
        let timers = self
            .live()
            .filter_map(|i| self.routers[i].instance.poll_timeout());
        wire.into_iter().chain(timers).min()
    }

    /// Jumps to the next wakeup and processes everything due then. `false` when idle.
    ///
    /// Panics on a livelock (or past the step budget): routers answering each other forever without time advancing (which
    /// zero-delay links would turn into an endless loop rather than a failing test).
    pub fn step(&mut self) -> bool {
        let Some(at) = self.next_wakeup() else {
            return false;
        };
        self.steps += 1;
        assert!(
            self.steps <= self.step_budget,
            "step budget exhausted at {:?}",
            self.elapsed()
        );
        if at > self.now {
            self.stalled = 0;
        } else {
            self.stalled += 1;
            assert!(
                self.stalled < LIVELOCK_STEPS,
                "livelock at {:?}",
                self.elapsed()
            );
        }
        self.now = self.now.max(at);
        while let Some(entry) = self.wire.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let Delivery { to, src, advert } = entry.remove();
            if self.routers[to].alive {
                // Malformed-input errors are impossible for adverts.
                let _ = self.input(
                    to,
                    Input::Advert {
                        src,
                        ttl: 255,
                        advert,
                    },
                );
            }
        }
        for i in 0..self.routers.len() {
            let due = self.routers[i]
                .instance
                .poll_timeout()
                .is_some_and(|t| t <= self.now);
            if self.routers[i].alive && due {
                self.routers[i].instance.handle_timeout(self.now);
                self.flush(i);
            }
        }
        true
    }

    /// Processes every wakeup up to and including `deadline`, then sets the clock to it.
    pub fn run_until(&mut self, deadline: Instant) {
        while self.next_wakeup().is_some_and(|t| t <= deadline) {
            self.step();
        }
        self.now = self.now.max(deadline);
    }

    /// [`run_until`](Self::run_until) `now + d`.
    pub fn run_for(&mut self, d: Duration) {
        self.run_until(self.now + d);
    }

    /// Runs until `deadline`, calling `check` after every wakeup; stops at the first `Err`.
    pub fn run_checked<E>(
        &mut self,
        deadline: Instant,
        mut check: impl FnMut(&Lan) -> Result<(), E>,
    ) -> Result<(), E> {
        while self.next_wakeup().is_some_and(|t| t <= deadline) {
            self.step();
            check(self)?;
        }
        self.now = self.now.max(deadline);
        Ok(())
    }

    fn flush(&mut self, i: usize) {
        while let Some(action) = self.routers[i].instance.poll_action() {
            if !self.routers[i].alive {
                continue;
            }
            match &action {
                Action::SendAdvert(advert) => self.transmit(i, advert),
                Action::AddVips(_) => self.routers[i].holds_vips = true,
                Action::RemoveVips(_) => self.routers[i].holds_vips = false,
                _ => {}
            }
            self.events.push(Event {
                at: self.now,
                router: i,
                action,
            });
        }
    }

    fn transmit(&mut self, from: usize, advert: &Advertisement) {
        let src = self.routers[from].instance.config().primary_address;
        for to in 0..self.routers.len() {
            if to == from || !self.routers[to].alive || self.cut.contains(&(from, to)) {
                continue;
            }
            if self.rng.chance_ppm(self.loss_ppm) {
                continue;
            }
            let at = self.now + self.rng.duration(self.delay.0, self.delay.1);
            self.seq += 1;
            self.wire.insert(
                (at, self.seq),
                Delivery {
                    to,
                    src,
                    advert: advert.clone(),
                },
            );
        }
    }
}

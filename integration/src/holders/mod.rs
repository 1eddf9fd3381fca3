//! [`HolderRecorder`]: who holds a VIP, when, on one clock, precise enough to prove "never two
//! holders at once".
//!
//! Sampling `ip addr` in a subprocess takes tens of milliseconds per host; instead each watched
//! host gets two route-netlink sockets opened inside its namespace, each read by a thread:
//!
//! - a notification socket subscribed to `RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR`: every add
//!   and removal of the VIP (by a daemon, by `ip`, or by the kernel when the address's
//!   `valid_lft` runs out) is timestamped when read;
//! - a dump socket: every `period` (5 ms by default) the thread asks for the whole address
//!   table, an independent sampled view.
//!
//! All timestamps come from one monotonic clock (`Instant`, CLOCK_MONOTONIC) relative to the
//! recorder's start. The [`HolderReport`] derives holding intervals from each view separately
//! and reports every overlap with its duration; the dumps also cross-check the notifications
//! (a dump state that no notification explains = lost events, reported as `mismatches`).
//!
//! Precision: a notification is stamped when the thread reads it, normally well under a
//! millisecond after the change (the thread blocks in `recv`, and runs `SCHED_FIFO` so a loaded
//! machine does not delay it); a scheduling delay would show in
//! [`HolderReport::worst_dump_gap`] (the dumps of a delayed thread are late too).

mod recorder;
pub mod timeline;

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::Host;
use crate::lab::lock;
use recorder::{Shared, Sockets};
use timeline::{Interval, Observation, Overlap, Source};

/// Default dump period: the "sampling every ≤ 5 ms" of the fault tests.
pub const DUMP_PERIOD: Duration = Duration::from_millis(5);
/// How far a notification's read time may trail a dump that already saw its change.
const MISMATCH_SLACK: Duration = Duration::from_millis(50);

/// Records which of a set of hosts hold one VIP, until stopped (also when dropped).
#[derive(Debug)]
pub struct HolderRecorder {
    hosts: Vec<String>,
    vip: IpAddr,
    epoch: Instant,
    stop: Arc<AtomicBool>,
    shared: Arc<Shared>,
    /// The threads' observations, moved into `seen` whenever a reader looks.
    incoming: Mutex<Receiver<Observation>>,
    seen: Mutex<Vec<Observation>>,
    threads: Vec<JoinHandle<std::io::Result<()>>>,
}

impl HolderRecorder {
    /// Starts watching `vip` on `hosts`, dumping every [`DUMP_PERIOD`].
    pub fn start(hosts: &[&Host], vip: IpAddr) -> Result<Self> {
        Self::with_period(hosts, vip, DUMP_PERIOD)
    }

    /// [`HolderRecorder::start`] with another dump period.
    pub fn with_period(hosts: &[&Host], vip: IpAddr, period: Duration) -> Result<Self> {
        let sockets = hosts
            .iter()
            .map(|h| Sockets::open(h))
            .collect::<Result<Vec<_>>>()?;
        let epoch = Instant::now();
        let stop = Arc::new(AtomicBool::new(false));
        let shared = Arc::new(Shared::default());
        let (tx, incoming) = channel();
        let mut threads = Vec::new();
        for (index, sockets) in sockets.into_iter().enumerate() {
            let Sockets { events, dumps } = sockets;
            let name = hosts[index].name();
            let watch = |tx| recorder::Watch {
                host: index,
                vip,
                epoch,
                stop: Arc::clone(&stop),
                shared: Arc::clone(&shared),
                out: tx,
            };
            let on_events = watch(tx.clone());
            threads.push(spawn(&format!("holders-ev-{name}"), move || {
                recorder::watch_events(&events, &on_events)
            })?);
            let on_dumps = watch(tx.clone());
            threads.push(spawn(&format!("holders-dump-{name}"), move || {
                recorder::watch_dumps(&dumps, period, &on_dumps)
            })?);
        }
        let recorder = Self {
            hosts: hosts.iter().map(|h| h.name().to_owned()).collect(),
            vip,
            epoch,
            stop,
            shared,
            incoming: Mutex::new(incoming),
            seen: Mutex::new(Vec::new()),
            threads,
        };
        // Every host's first dump is its initial state; wait for them so callers start from a
        // known state.
        crate::wait_for(
            "the first address dump of every host",
            Duration::from_secs(5),
            || {
                let seen = recorder
                    .observations()
                    .iter()
                    .filter(|o| matches!(o.source, Source::Dump { .. }))
                    .fold(vec![false; recorder.hosts.len()], |mut seen, o| {
                        seen[o.host] = true;
                        seen
                    });
                seen.iter().all(|&s| s)
            },
        )?;
        Ok(recorder)
    }

    /// Everything observed so far, in arrival order.
    fn observations(&self) -> Vec<Observation> {
        let mut seen = lock(&self.seen);
        seen.extend(lock(&self.incoming).try_iter());
        seen.clone()
    }

    /// Time since the recorder started, on the clock of its observations.
    pub fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// The hosts holding the VIP now, by the notifications seen so far (initial state from the
    /// first dumps).
    pub fn holders(&self) -> Vec<String> {
        let state = timeline::current(&self.observations(), self.hosts.len());
        self.hosts
            .iter()
            .zip(state)
            .filter(|(_, held)| *held)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// Waits until exactly `host` holds the VIP and has held it alone for `stable`.
    pub fn wait_sole_holder(&self, host: &str, stable: Duration, timeout: Duration) -> Result<()> {
        let mut since: Option<Instant> = None;
        crate::wait_for(
            &format!("{host} alone holding {} for {stable:?}", self.vip),
            timeout,
            || {
                if self.holders() == [host] {
                    let since = *since.get_or_insert_with(Instant::now);
                    since.elapsed() >= stable
                } else {
                    since = None;
                    false
                }
            },
        )
    }

    /// Waits until some single host holds the VIP alone for `stable`; returns its name.
    pub fn wait_settled(&self, stable: Duration, timeout: Duration) -> Result<String> {
        let mut current: Option<(String, Instant)> = None;
        crate::wait_for_value(
            &format!("one holder of {} for {stable:?}", self.vip),
            timeout,
            || {
                let holders = self.holders();
                match (holders.as_slice(), &current) {
                    ([one], Some((name, since))) if one == name => {
                        (since.elapsed() >= stable).then(|| name.clone())
                    }
                    ([one], _) => {
                        current = Some((one.clone(), Instant::now()));
                        None
                    }
                    _ => {
                        current = None;
                        None
                    }
                }
            },
        )
    }

    /// The analysis of everything observed so far.
    pub fn report(&self) -> HolderReport {
        let end = self.now();
        let observations = self.observations();
        HolderReport::new(
            self.hosts.clone(),
            observations,
            end,
            self.shared.overruns.load(Ordering::Relaxed),
            self.shared.dumps.load(Ordering::Relaxed),
            Duration::from_micros(self.shared.worst_dump_gap_us.load(Ordering::Relaxed)),
        )
    }

    /// Stops the threads and returns the final analysis; a thread's socket error is returned.
    pub fn finish(mut self) -> Result<HolderReport> {
        let errors = self.join();
        let report = self.report();
        match errors.into_iter().next() {
            Some(source) => Err(LabError::Netns {
                netns: "(recorder)".to_owned(),
                what: "watch addresses",
                source,
            }),
            None => Ok(report),
        }
    }

    fn join(&mut self) -> Vec<std::io::Error> {
        self.stop.store(true, Ordering::Relaxed);
        let mut errors = Vec::new();
        for thread in self.threads.drain(..) {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => errors.push(e),
                Err(_) => errors.push(std::io::Error::other("recorder thread panicked")),
            }
        }
        errors
    }
}

fn spawn(
    name: &str,
    f: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> Result<JoinHandle<std::io::Result<()>>> {
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(f)
        .map_err(|e| LabError::io("spawn recorder thread", name, e))
}

impl Drop for HolderRecorder {
    fn drop(&mut self) {
        self.join();
    }
}

/// What a recording shows.
#[derive(Debug, Clone)]
pub struct HolderReport {
    /// Host names, by index.
    pub hosts: Vec<String>,
    /// Every observation, in recording order per host.
    pub observations: Vec<Observation>,
    /// The recording's length.
    pub end: Duration,
    /// Holding intervals from the notifications.
    pub event_intervals: Vec<Interval>,
    /// Double holding according to the notifications (the precise view).
    pub event_overlaps: Vec<Overlap>,
    /// Double holding according to the periodic dumps (the sampled view).
    pub dump_overlaps: Vec<Overlap>,
    /// Dumps whose state no notification explains (lost events); should be empty.
    pub mismatches: Vec<Observation>,
    /// Notification overruns the kernel reported.
    pub overruns: u64,
    /// Dumps done, all hosts together.
    pub dumps: u64,
    /// The longest time between two dumps of one host (the sampling's real resolution).
    pub worst_dump_gap: Duration,
    /// The longest a dump took to answer: when it approaches `worst_dump_gap`, the gaps come
    /// from the kernel (the address table locked by another namespace's changes, during which
    /// no address can change either), not from the recorder being scheduled late.
    pub longest_dump: Duration,
}

impl HolderReport {
    fn new(
        hosts: Vec<String>,
        observations: Vec<Observation>,
        end: Duration,
        overruns: u64,
        dumps: u64,
        worst_dump_gap: Duration,
    ) -> Self {
        // The first dump of each host is its initial state: seed the event view with it.
        let mut seeded = observations.clone();
        for host in 0..hosts.len() {
            if let Some(first) = observations
                .iter()
                .filter(|o| o.host == host && matches!(o.source, Source::Dump { .. }))
                .min_by_key(|o| o.at)
            {
                seeded.push(Observation {
                    source: Source::Event,
                    ..*first
                });
            }
        }
        let longest_dump = observations
            .iter()
            .filter_map(|o| match o.source {
                Source::Dump { until } => Some(until.saturating_sub(o.at)),
                Source::Event => None,
            })
            .max()
            .unwrap_or_default();
        let event_intervals = timeline::intervals(&seeded, false, end);
        let dump_intervals = timeline::intervals(&observations, true, end);
        Self {
            event_overlaps: timeline::overlaps(&event_intervals),
            dump_overlaps: timeline::overlaps(&dump_intervals),
            mismatches: timeline::mismatches(&seeded, MISMATCH_SLACK),
            event_intervals,
            hosts,
            observations,
            end,
            overruns,
            dumps,
            worst_dump_gap,
            longest_dump,
        }
    }

    /// Double-holder episodes: the larger of the two views' counts.
    pub fn double_holder_count(&self) -> usize {
        self.event_overlaps.len().max(self.dump_overlaps.len())
    }

    /// Total double-holding time by the notifications.
    pub fn double_holder_time(&self) -> Duration {
        self.event_overlaps.iter().map(Overlap::duration).sum()
    }

    /// Whether neither view ever saw two holders.
    pub fn never_two_holders(&self) -> bool {
        self.event_overlaps.is_empty() && self.dump_overlaps.is_empty()
    }

    /// The shortest hand-over gap between hosts (notifications).
    pub fn closest_handover(&self) -> Option<Duration> {
        timeline::closest_handover(&self.event_intervals)
    }

    /// A readable account of the holding intervals and overlaps, for failure messages.
    pub fn describe(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        for i in &self.event_intervals {
            let _ = writeln!(
                s,
                "  {:>8} held {:>9.3}s .. {:>9.3}s",
                self.hosts[i.host],
                i.from.as_secs_f64(),
                i.to.as_secs_f64()
            );
        }
        for (view, list) in [
            ("events", &self.event_overlaps),
            ("dumps", &self.dump_overlaps),
        ] {
            for o in list {
                let names: Vec<&str> = o.hosts.iter().map(|&h| self.hosts[h].as_str()).collect();
                let _ = writeln!(
                    s,
                    "  DOUBLE ({view}) {} at {:.3}s for {:.1} ms",
                    names.join("+"),
                    o.from.as_secs_f64(),
                    o.duration().as_secs_f64() * 1e3
                );
            }
        }
        let _ = writeln!(
            s,
            "  {} dumps, worst dump gap {:.1} ms (longest dump {:.1} ms), {} overruns, {} mismatches",
            self.dumps,
            self.worst_dump_gap.as_secs_f64() * 1e3,
            self.longest_dump.as_secs_f64() * 1e3,
            self.overruns,
            self.mismatches.len()
        );
        s
    }
}

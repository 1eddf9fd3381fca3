//! One task per *unit*: a sync group, or a lone instance (a group of one).
//!
//! ```text
//!  socket reader (per member) ──┐
//!  track sources (per member) ──┼──> mpsc<UnitEvent> ──> unit task ──> SyncGroup (sans-I/O)
//!  VrrpRuntime (groups, stop) ──┘                           │  ▲ one tokio sleep at poll_timeout
//!                                                            v
//!                      actions: adverts, VIPs (netlink), GARP/NA, logs, notify queue
//! ```
//!
//! Sync-group members must share one state machine, hence one task per group. A lone instance
//! gets a task of its own, so that a slow netlink call or the restart of one instance never
//! delays another's adverts. [`vigil_vrrp::sync_group::SyncGroup`] with one member behaves as the
//! bare instance (its rules only involve *other* members).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vigil_conf as conf;
use vigil_net::{NetError, Received};
use vigil_vrrp::instance::{Action, Input, Instance, State};
use vigil_vrrp::packet::Advertisement;
use vigil_vrrp::sync_group::SyncGroup;

use super::config::{ConvertError, instance_config, interface_key, is_fenced, parse_file_value};
use super::network::Network;
use super::notify::{NotifyQueue, Transition};
use super::realtime::Realtime;
use super::script::ScriptIdentity;
use super::status::{InstanceStatus, ShellStats, StatusCell, StatusPublisher};
use super::track::TrackSources;
use super::vmac::Vmac;
use crate::fence::{FenceHandle, FenceMember, FenceStatus, QUORUM_TRACK};
use crate::watchdog::Beacon;

/// Wait between attempts to open an instance's sockets (the interface may appear later).
const OPEN_RETRY: Duration = Duration::from_secs(1);
/// A broken socket is retried after this, rather than spinning on its error.
const RECV_BACKOFF: Duration = Duration::from_millis(500);
/// Configuration mismatches are logged at most this often per instance.
pub(super) const MISMATCH_LOG_EVERY: Duration = Duration::from_mins(1);
/// Events queued for one unit before senders wait.
const QUEUE: usize = 256;
/// A unit that wakes this much after its timer's deadline says so (see [`Lateness`]).
const LATE_WAKE: Duration = Duration::from_millis(10);
/// At most one "woke late" line per unit this often; the lines in between are counted.
const LATE_LOG_EVERY: Duration = Duration::from_secs(10);

/// Everything that reaches a unit task.
#[derive(Debug)]
pub(crate) enum UnitEvent {
    /// An input for one member (tracking, faults).
    Input {
        /// Index into [`UnitSpec::instances`].
        member: usize,
        /// The input.
        input: Input,
    },
    /// A packet (or a receive error) from a member's socket.
    Packet {
        member: usize,
        result: Result<Received, NetError>,
    },
    /// A reload changed a member only in what applies in place (see `VrrpRuntime::apply`).
    Update {
        /// Index into [`UnitSpec::instances`].
        member: usize,
        /// The member's new config.
        instance: Box<conf::VrrpInstance>,
        /// The inputs that turn the running state machine into the new config.
        inputs: Vec<Input>,
        /// When what the member tracks changed: the unit's track-script definitions after the
        /// reload and who they run as. The unit then moves the member's track sources in place
        /// and gives the state machine the new track set ([`Input::SetTracks`]).
        retrack: Option<Retrack>,
        /// Who the unit's scripts run as after the reload (notify scripts take it in place).
        identity: ScriptIdentity,
    },
    /// A fenced member's fencing status changed (forwarded from the shared runtime, so that the
    /// unit never reads the fencing task's lock).
    Fence {
        /// Index into [`UnitSpec::instances`].
        member: usize,
        /// The new status.
        status: Box<FenceStatus>,
    },
    /// A fenced member's second announcement burst is due (see `second_burst`).
    SecondBurst {
        /// Index into [`UnitSpec::instances`].
        member: usize,
    },
    /// Shut down cleanly: priority-0 adverts, VIPs removed, stop scripts.
    Shutdown,
}

/// A member's tracking after a reload (see [`UnitEvent::Update`]).
#[derive(Debug, Clone)]
pub(crate) struct Retrack {
    /// The unit's track-script definitions.
    pub(crate) scripts: Vec<conf::TrackScript>,
    /// Who track scripts run as.
    pub(crate) identity: ScriptIdentity,
}

/// What a unit runs; two equal specs mean a reload leaves the unit alone.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UnitSpec {
    /// The sync group's name, or the lone instance's.
    pub(crate) name: String,
    /// Members, in index order.
    pub(crate) instances: Vec<conf::VrrpInstance>,
    /// The track scripts the members reference.
    pub(crate) scripts: Vec<conf::TrackScript>,
    /// Who scripts run as.
    pub(crate) identity: ScriptIdentity,
}

impl UnitSpec {
    /// A config holding just what the members need (for track-script lookups).
    fn scripts_config(&self, base: &conf::Config) -> conf::Config {
        let mut config = base.clone();
        config.track_scripts.clone_from(&self.scripts);
        config
    }
}

/// The runtime's handle on a running unit.
#[derive(Debug)]
pub(crate) struct UnitHandle {
    pub(crate) spec: UnitSpec,
    pub(crate) tx: mpsc::Sender<UnitEvent>,
    pub(crate) statuses: Vec<StatusCell>,
    pub(crate) task: JoinHandle<()>,
    /// Beaten by the unit's loop; the systemd watchdog checks it.
    pub(crate) beacon: Beacon,
}

/// Starts the unit task.
pub(crate) fn spawn(
    spec: UnitSpec,
    config: &conf::Config,
    fence: Option<FenceHandle>,
) -> UnitHandle {
    let (tx, rx) = mpsc::channel(QUEUE);
    let mut senders = Vec::new();
    let mut statuses = Vec::new();
    for instance in &spec.instances {
        let (cell, publisher) = StatusCell::new(InstanceStatus::pending(instance));
        senders.push(publisher);
        statuses.push(cell);
    }
    let rt = Realtime::of(config);
    let config = spec.scripts_config(config);
    let beacon = Beacon::new();
    // The fencing status is forwarded from the runtime `spawn` runs on (see `forward_fence`).
    let fencing = fence.map(|handle| Fencing {
        handle,
        shared: tokio::runtime::Handle::current(),
    });
    let unit = run(
        spec.clone(),
        config,
        tx.clone(),
        rx,
        senders,
        beacon.clone(),
        fencing,
    );
    let task = spawn_thread(&spec.name, rt, unit);
    UnitHandle {
        spec,
        tx,
        statuses,
        task,
        beacon,
    }
}

/// Runs `unit` on a thread of its own with a current-thread runtime, under `SCHED_RR` when `rt`
/// asks for it (the default; see [`super::realtime`]). The returned task ends with the unit;
/// aborting it stops the unit.
///
/// Why a thread: on a starved CPU the shared runtime's workers also run the API, health checks
/// and coordination, and an advert or a Master_Down timer waits behind them (a false failover).
/// On its own thread everything of the unit runs on its one scheduler: timers, the socket
/// reader, adverts out, state transitions, the netlink connection that adds and removes VIPs,
/// gratuitous ARP/NA bursts, track sources and the notify queue. A received advert wakes one
/// thread instead of two, and real-time scheduling applies to VRRP alone. Scripts, and any
/// thread started from here, run with normal scheduling (`SCHED_RESET_ON_FORK`). Fenced VIPs are
/// added by the fencing task on the shared runtime: they wait for a quorum round trip anyway.
fn spawn_thread(
    name: &str,
    rt: Realtime,
    unit: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let (abort_tx, abort_rx) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    let unit_name = name.to_owned();
    // Linux keeps 15 bytes of a thread name.
    let thread_name: String = format!("vrrp {name}").chars().take(15).collect();
    let spawned = std::thread::Builder::new()
        .name(thread_name)
        .spawn(move || {
            // Before anything logs: the unit's lines never wait for stderr.
            crate::logging::enter_nonblocking();
            super::realtime::enter(&unit_name, rt);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            match runtime {
                Ok(runtime) => runtime.block_on(async move {
                    tokio::select! {
                        () = unit => {}
                        // Dropped by an abort of the task below: the unit stops where it is.
                        _ = abort_rx => {}
                    }
                }),
                Err(e) => {
                    tracing::error!(unit = %unit_name, error = %e, "cannot build the VRRP unit's runtime; the unit does not run");
                }
            }
            drop(done_tx);
        });
    if let Err(e) = spawned {
        tracing::error!(unit = %name, error = %e, "cannot start the VRRP unit's thread; the unit does not run");
    }
    tokio::spawn(async move {
        let _abort = abort_tx;
        let _ = done_rx.await;
    })
}

/// Reports a unit thread that woke well after its timer was due: the CPU (or the hypervisor)
/// kept it from running, which delays adverts on a master and Master_Down on a backup. Rate
/// limited, with the worst lateness and the count since the last line, so a starved machine
/// leaves a trace in the log without flooding it.
#[derive(Default)]
struct Lateness {
    last_log: Option<Instant>,
    count: u32,
    worst: Duration,
}

impl Lateness {
    fn woke(&mut self, unit: &str, due: Instant, now: Instant) {
        let late = now.saturating_duration_since(due);
        if late < LATE_WAKE {
            return;
        }
        self.count += 1;
        self.worst = self.worst.max(late);
        if self
            .last_log
            .is_some_and(|at| now.duration_since(at) < LATE_LOG_EVERY)
        {
            return;
        }
        tracing::warn!(
            unit,
            late_ms = late.as_secs_f64() * 1e3,
            worst_ms = self.worst.as_secs_f64() * 1e3,
            times = self.count,
            "VRRP timer fired late: this thread did not get a CPU in time"
        );
        (self.last_log, self.count, self.worst) = (Some(now), 0, Duration::ZERO);
    }
}

/// One member's I/O shell.
pub(super) struct Member {
    pub(super) conf: conf::VrrpInstance,
    pub(super) net: Arc<Network>,
    pub(super) notify: NotifyQueue,
    /// Who the notify scripts run as (the unit's script user as last configured).
    notify_identity: ScriptIdentity,
    pub(super) shell: ShellStats,
    status: StatusPublisher,
    _reader: AbortOnDrop,
    tracks: TrackSources,
    /// The master we last deferred to, for the "why" of the next transition.
    pub(super) last_master: Option<IpAddr>,
    /// Source and priority of the last advert of our VRID: tells a priority-0 handover or a
    /// preemption apart from a silent master.
    pub(super) last_advert: Option<(IpAddr, u8)>,
    pub(super) last_mismatch_log: Option<Instant>,
    started: Instant,
    /// `fencing = "quorum"`: the VIPs are the fencing task's to add and remove.
    pub(super) fence: Option<FenceMember>,
    /// The fencing task's last status of this member, as forwarded ([`UnitEvent::Fence`]).
    pub(super) fence_status: FenceStatus,
    /// The unit's own queue, for the delayed second announcement burst.
    events: mpsc::Sender<UnitEvent>,
    _fence_forward: Option<AbortOnDrop>,
    /// Whether the fencing task held the VIPs at the last look (announce on the rising edge).
    fence_holding: bool,
    /// A fenced master's "master" notification waits for the VIPs and their token.
    pub(super) pending_master: Option<Transition>,
    /// `use_vmac`: the macvlan, deleted when the unit stops.
    vmac: Option<Vmac>,
}

impl Member {
    /// Takes in the fencing task's view: VIPs held, announcements and the deferred "master"
    /// notification once the VIPs are up, the status shown.
    fn follow_fence(&mut self, member: usize) {
        if self.fence.is_none() {
            return;
        }
        let status = self.fence_status.clone();
        let addrs: Vec<IpAddr> = self.conf.vips.iter().map(|v| v.addr).collect();
        if status.holding && !self.fence_holding {
            for e in self.net.announce(&addrs, self.conf.garp.count) {
                tracing::warn!(instance = %self.conf.name, error = %e, "cannot announce VIPs");
                self.shell.error(e);
            }
            if let Some(delay) = self.conf.garp.delay {
                second_burst(self.events.clone(), member, delay);
            }
            if let Some(mut transition) = self.pending_master.take() {
                transition.fencing_token = status.token;
                self.notify.push(transition);
            }
        }
        self.fence_holding = status.holding;
        self.shell.vips_held = if status.holding { addrs } else { Vec::new() };
        self.shell.fencing = Some(status);
    }
}

/// keepalived's second gratuitous burst (`garp_master_delay`) counts from becoming master; a
/// fenced master becomes one for the network only once it holds the VIPs, which after a crashed
/// owner is a session timeout later, when the core's own delayed burst is long past (it is
/// skipped while the VIPs are not held). So the burst is repeated `delay` after the VIPs came
/// up, if they are still held then ([`UnitEvent::SecondBurst`]). The periodic refresh
/// (`garp_master_refresh`) needs nothing extra: the core keeps asking for it while master, and
/// it goes out whenever the VIPs are held.
fn second_burst(events: mpsc::Sender<UnitEvent>, member: usize, delay: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(delay).await;
        // A closed queue: the unit is gone.
        let _ = events.send(UnitEvent::SecondBurst { member }).await;
    });
}

/// The fencing task, and the shared runtime the unit's fencing statuses are read on.
struct Fencing {
    handle: FenceHandle,
    shared: tokio::runtime::Handle,
}

/// Stops the socket reader with its member.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Events handled in a row before due timers are fired anyway (see the unit loop).
const MAX_EVENT_STREAK: u32 = 64;

async fn run(
    spec: UnitSpec,
    config: conf::Config,
    tx: mpsc::Sender<UnitEvent>,
    mut rx: mpsc::Receiver<UnitEvent>,
    mut status: Vec<StatusPublisher>,
    beacon: Beacon,
    fence: Option<Fencing>,
) {
    let Some(nets) = open_all(&spec, &mut rx, &mut status, &beacon).await else {
        return;
    };
    let mut instances = Vec::new();
    let mut members = Vec::new();
    let now = Instant::now();
    for (index, ((instance, (net, vmac)), mut status)) in
        spec.instances.iter().zip(nets).zip(status).enumerate()
    {
        let mut shell = ShellStats::default();
        match net.remove_leftovers().await {
            Ok(removed) if !removed.is_empty() => {
                tracing::warn!(instance = %instance.name, vips = ?removed, "removed VIPs left over from an earlier run");
            }
            Ok(_) => {}
            Err(e) => shell.error(format!("remove leftover VIPs: {e}")),
        }
        let files = read_tracked_files(instance).await;
        match instance_config(instance, &config, net.source(), |path| lookup(&files, path))
            .and_then(|c| Instance::new(c, now).map_err(ConvertError::from))
        {
            Ok(built) => instances.push(built),
            Err(e) => {
                tracing::error!(instance = %instance.name, error = %e, "cannot run VRRP instance");
                let mut pending = InstanceStatus::pending(instance);
                pending.last_error = Some(e.to_string());
                status.publish(pending);
                // Not running on purpose: the watchdog must not wait for this unit.
                beacon.retire();
                return;
            }
        }
        let fenced = match (is_fenced(instance), &fence) {
            (true, Some(fencing)) => Some(fencing.handle.register(instance)),
            (true, None) => {
                tracing::error!(instance = %instance.name, "fencing = \"quorum\" without a coordination node: the instance stays in fault");
                None
            }
            (false, _) => None,
        };
        // On the shared runtime: reading the status takes the lock the fencing task writes
        // under, which the real-time unit thread must never wait for.
        let fence_forward = fenced.as_ref().zip(fence.as_ref()).map(|(f, fencing)| {
            let forward = forward_fence(f.status(), index, tx.clone());
            AbortOnDrop(fencing.shared.spawn(forward))
        });
        let reader = tokio::spawn(read_packets(Arc::clone(&net), index, tx.clone()));
        members.push(Member {
            conf: instance.clone(),
            notify: NotifyQueue::spawn(instance.notify.clone(), spec.identity),
            notify_identity: spec.identity,
            tracks: TrackSources::spawn(instance, &config, spec.identity, index, tx.clone()),
            net,
            shell,
            status,
            _reader: AbortOnDrop(reader),
            last_master: None,
            last_advert: None,
            last_mismatch_log: None,
            started: now,
            fence: fenced,
            fence_status: FenceStatus::default(),
            events: tx.clone(),
            _fence_forward: fence_forward,
            fence_holding: false,
            pending_master: None,
            vmac,
        });
    }
    drop(tx);
    let mut unit = Unit {
        group: SyncGroup::new(spec.name.clone(), instances),
        members,
        config,
    };
    for member in 0..unit.members.len() {
        unit.input(member, Input::Startup);
    }
    unit.drain().await;
    // Proves to the watchdog that this loop comes round even when no timer or packet is due
    // (a backup hearing a steady master, an instance in fault).
    let mut heartbeat = tokio::time::interval(crate::watchdog::BEAT_EVERY);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Events handled since timers were last looked at.
    let mut streak = 0u32;
    let mut lateness = Lateness::default();
    loop {
        let deadline = unit.group.poll_timeout();
        let event = tokio::select! {
            // Events first: an advert that is already here must count before a timer fires.
            biased;
            event = rx.recv() => event.unwrap_or(UnitEvent::Shutdown),
            () = sleep_until(deadline) => {
                if let Some(due) = deadline {
                    lateness.woke(&spec.name, due, Instant::now());
                }
                // On a starved CPU the Master_Down timer and the master's advert become ready
                // together; acting on the timer first makes a false failover that the advert
                // undoes a moment later. So first everything the reader queued, then every
                // packet still in the sockets (read here, not left to the reader task, which
                // the scheduler may run after us), and only then the timers still due.
                let mut stop = false;
                while let Ok(event) = rx.try_recv() {
                    match event {
                        UnitEvent::Shutdown => {
                            stop = true;
                            break;
                        }
                        UnitEvent::Input { member, input } => unit.input(member, input),
                        UnitEvent::Packet { member, result } => unit.packet(member, result),
                        UnitEvent::Update { member, instance, inputs, retrack, identity } => {
                            unit.update(member, *instance, inputs, retrack, identity).await;
                        }
                        UnitEvent::Fence { member, status } => unit.fence(member, *status),
                        UnitEvent::SecondBurst { member } => unit.second_burst(member),
                    }
                }
                if stop {
                    unit.drain().await;
                    break;
                }
                unit.read_waiting();
                unit.drain().await;
                let now = Instant::now();
                streak = 0;
                if unit.group.poll_timeout().is_some_and(|at| at <= now) {
                    unit.group.handle_timeout(now);
                    unit.drain().await;
                }
                beacon.beat();
                continue;
            }
            _ = heartbeat.tick() => {
                // A status a reader kept back goes out now at the latest.
                unit.flush_statuses();
                beacon.beat();
                continue;
            }
        };
        match event {
            UnitEvent::Shutdown => break,
            UnitEvent::Input { member, input } => unit.input(member, input),
            UnitEvent::Packet { member, result } => unit.packet(member, result),
            UnitEvent::Update {
                member,
                instance,
                inputs,
                retrack,
                identity,
            } => {
                unit.update(member, *instance, inputs, retrack, identity)
                    .await;
            }
            UnitEvent::Fence { member, status } => unit.fence(member, *status),
            UnitEvent::SecondBurst { member } => unit.second_burst(member),
        }
        unit.drain().await;
        // `biased` must not let a flood of packets starve the timers: once the queue is empty,
        // or after a bounded run of events, due timers fire.
        streak += 1;
        let now = Instant::now();
        if (rx.is_empty() || streak >= MAX_EVENT_STREAK)
            && unit.group.poll_timeout().is_some_and(|at| at <= now)
        {
            streak = 0;
            // As above: adverts already in the sockets count before the timer.
            unit.read_waiting();
            unit.drain().await;
            let now = Instant::now();
            if unit.group.poll_timeout().is_some_and(|at| at <= now) {
                unit.group.handle_timeout(now);
                unit.drain().await;
            }
        }
    }
    beacon.retire();
    unit.shutdown().await;
}

/// Opens every member's network (after its vmac, with `use_vmac`), retrying until it works or
/// the unit is told to stop.
async fn open_all(
    spec: &UnitSpec,
    rx: &mut mpsc::Receiver<UnitEvent>,
    status: &mut [StatusPublisher],
    beacon: &Beacon,
) -> Option<Vec<(Arc<Network>, Option<Vmac>)>> {
    loop {
        beacon.beat();
        let mut nets = Vec::new();
        let mut failed = false;
        for (instance, status) in spec.instances.iter().zip(status.iter_mut()) {
            let opened = match Vmac::create(instance).await {
                Ok(vmac) => match Network::open(instance) {
                    Ok(net) => Ok((Arc::new(net), vmac)),
                    Err(e) => {
                        if let Some(vmac) = vmac {
                            vmac.remove().await;
                        }
                        Err(e)
                    }
                },
                Err(e) => Err(e),
            };
            match opened {
                Ok(net) => nets.push(net),
                Err(e) => {
                    failed = true;
                    tracing::error!(instance = %instance.name, interface = %instance.interface, error = %e, "cannot open VRRP sockets; retrying");
                    let mut pending = InstanceStatus::pending(instance);
                    pending.last_error = Some(e.to_string());
                    status.publish(pending);
                }
            }
        }
        if !failed {
            return Some(nets);
        }
        // Nothing runs half-opened: the next attempt starts over.
        for (_, vmac) in nets {
            if let Some(vmac) = vmac {
                vmac.remove().await;
            }
        }
        // Inputs that arrive meanwhile are moot: the sources restart with the instance.
        let deadline = tokio::time::Instant::now() + OPEN_RETRY;
        loop {
            tokio::select! {
                event = rx.recv() => match event {
                    None | Some(UnitEvent::Shutdown) => return None,
                    Some(_) => {}
                },
                () = tokio::time::sleep_until(deadline) => break,
            }
            beacon.beat();
        }
    }
}

/// Forwards a fenced instance's fencing status to its unit at start and on every change: the
/// unit keeps it (VIPs held, token) and feeds the lease state to the state machine as the
/// `quorum` tracked object.
async fn forward_fence(
    mut status: tokio::sync::watch::Receiver<FenceStatus>,
    member: usize,
    tx: mpsc::Sender<UnitEvent>,
) {
    loop {
        let current = Box::new(status.borrow_and_update().clone());
        let event = UnitEvent::Fence {
            member,
            status: current,
        };
        if tx.send(event).await.is_err() || status.changed().await.is_err() {
            return;
        }
    }
}

async fn read_packets(net: Arc<Network>, member: usize, tx: mpsc::Sender<UnitEvent>) {
    loop {
        let result = net.recv().await;
        let broken = result.as_ref().is_err_and(|e| !e.is_packet_error());
        if tx.send(UnitEvent::Packet { member, result }).await.is_err() {
            return;
        }
        if broken {
            tokio::time::sleep(RECV_BACKOFF).await;
        }
    }
}

/// Reads `instance`'s tracked files off the unit's thread (a slow file system must not hold up
/// adverts): path → the integer each holds, `None` when unreadable or not a number.
async fn read_tracked_files(
    instance: &conf::VrrpInstance,
) -> Vec<(std::path::PathBuf, Option<i64>)> {
    let mut files = Vec::new();
    for file in &instance.track.files {
        let value = tokio::fs::read_to_string(&file.path)
            .await
            .ok()
            .and_then(|t| parse_file_value(&t));
        files.push((file.path.clone(), value));
    }
    files
}

fn lookup(files: &[(std::path::PathBuf, Option<i64>)], path: &std::path::Path) -> Option<i64> {
    files.iter().find(|(p, _)| p == path).and_then(|(_, v)| *v)
}

/// The failing tracks shown after a new track set: what was shown and is still tracked (or is
/// the instance's own interface, a fault rather than a track) and still down, plus the new
/// set's objects that are down, sorted.
fn tracks_down_after_retrack(
    shown: &[String],
    own_interface: &str,
    set: &[String],
    is_up: impl Fn(&str) -> Option<bool>,
) -> Vec<String> {
    let mut down: BTreeSet<String> = shown
        .iter()
        .filter(|k| *k == own_interface || is_up(k) == Some(false))
        .cloned()
        .collect();
    down.extend(set.iter().filter(|k| is_up(k) == Some(false)).cloned());
    down.into_iter().collect()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

struct Unit {
    group: SyncGroup,
    members: Vec<Member>,
    /// The config the members' tracking is built from (its track scripts are the unit's).
    config: conf::Config,
}

impl Unit {
    fn input(&mut self, member: usize, input: Input) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if let Input::SetPriority(priority) = input {
            m.conf.priority = priority;
        }
        let down = match &input {
            Input::Track { name, up } => Some((name.clone(), !*up)),
            Input::Fault { active } => Some((interface_key(&m.conf.interface), *active)),
            _ => None,
        };
        if let Err(e) = self.group.handle(Instant::now(), member, input) {
            tracing::warn!(instance = %m.conf.name, error = %e, "input refused");
            return;
        }
        if let Some((key, is_down)) = down {
            let mut set: BTreeSet<String> = m.shell.tracks_down.drain(..).collect();
            if is_down {
                set.insert(key);
            } else {
                set.remove(&key);
            }
            m.shell.tracks_down = set.into_iter().collect();
        }
    }

    /// Applies a reload to a running member: its network learns the new VIPs first (the state
    /// machine may add them at once), forgets the dropped ones after they were removed. With
    /// `retrack` (its tracking changed), its track sources move in place and the state machine
    /// gets the new track set.
    async fn update(
        &mut self,
        member: usize,
        mut instance: conf::VrrpInstance,
        mut inputs: Vec<Input>,
        retrack: Option<Retrack>,
        identity: ScriptIdentity,
    ) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if m.conf.notify != instance.notify || m.notify_identity != identity {
            // Through the queue: scripts of transitions already queued run as they were.
            m.notify.reconfigure(instance.notify.clone(), identity);
            m.notify_identity = identity;
            tracing::info!(instance = %instance.name, "notify scripts updated in place");
        }
        if let Err(e) = m.net.extend_vips(&instance) {
            tracing::error!(instance = %instance.name, error = %e, "reloaded VIPs cannot be placed; keeping the old list");
            m.shell.error(format!("reloaded VIPs: {e}"));
            inputs.retain(|i| !matches!(i, Input::SetAddresses(_)));
            instance.vips.clone_from(&m.conf.vips);
        }
        let mut tracked = None;
        if let Some(retrack) = retrack {
            match self.retrack(member, &instance, retrack).await {
                Some((set, names)) => {
                    inputs.push(set);
                    tracked = Some(names);
                }
                None => {
                    if let Some(m) = self.members.get(member) {
                        instance.track.clone_from(&m.conf.track);
                    }
                }
            }
        }
        tracing::info!(instance = %instance.name, changes = ?inputs, "VRRP instance updated in place");
        if let Some(m) = self.members.get_mut(member) {
            m.conf = instance;
        }
        for input in inputs {
            self.input(member, input);
        }
        if let (Some(names), Some(m), Some(state)) = (
            tracked,
            self.members.get_mut(member),
            self.group.member(member),
        ) {
            m.shell.tracks_down = tracks_down_after_retrack(
                &m.shell.tracks_down,
                &interface_key(&m.conf.interface),
                &names,
                |key| state.track_is_up(key),
            );
        }
        self.drain().await;
        if let Some(m) = self.members.get_mut(member) {
            m.net.retain_vips(&m.conf);
        }
    }

    /// Moves member `member`'s track sources to what the reloaded `instance` tracks (with the
    /// unit's new track-script definitions and script user) and builds the [`Input::SetTracks`] for
    /// its state machine, with the names of the new set. `None` when the new tracking cannot be
    /// built (logged; the old tracking keeps running).
    async fn retrack(
        &mut self,
        member: usize,
        instance: &conf::VrrpInstance,
        retrack: Retrack,
    ) -> Option<(Input, Vec<String>)> {
        let mut config = self.config.clone();
        config.track_scripts = retrack.scripts;
        let primary = self.group.member(member)?.config().primary_address;
        let files = read_tracked_files(instance).await;
        let built = instance_config(instance, &config, primary, |path| lookup(&files, path));
        let tracks = match built {
            Ok(built) => built.tracks,
            Err(e) => {
                tracing::error!(instance = %instance.name, error = %e, "reloaded tracking cannot be used; keeping the old one");
                if let Some(m) = self.members.get_mut(member) {
                    m.shell.error(format!("reloaded tracking: {e}"));
                }
                return None;
            }
        };
        let state = self.group.member(member)?;
        let m = self.members.get_mut(member)?;
        let changes = m.tracks.update(instance, &config, retrack.identity, |key| {
            state.track_is_up(key)
        });
        tracing::info!(
            instance = %instance.name,
            kept = changes.kept,
            started = changes.started,
            stopped = changes.stopped,
            "VRRP track sources moved in place"
        );
        self.config = config;
        let names = tracks.iter().map(|t| t.name.clone()).collect();
        let set = Input::SetTracks {
            tracks,
            reset: changes.reset,
        };
        Some((set, names))
    }

    /// Handles every packet already waiting in the members' sockets, without waiting for more
    /// (at most [`QUEUE`] per member, so a flood cannot hold the timers off).
    fn read_waiting(&mut self) {
        for member in 0..self.members.len() {
            for _ in 0..QUEUE {
                let Some(result) = self.members[member].net.try_recv() else {
                    break;
                };
                self.packet(member, result);
            }
        }
    }

    fn packet(&mut self, member: usize, result: Result<Received, NetError>) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        let received = match result {
            Ok(received) => received,
            Err(e) if e.is_packet_error() => {
                m.shell.discard("malformed");
                tracing::debug!(instance = %m.conf.name, error = %e, "bad packet");
                return;
            }
            Err(e) => {
                m.shell.error(format!("receive: {e}"));
                tracing::warn!(instance = %m.conf.name, error = %e, "VRRP socket receive failed");
                return;
            }
        };
        if !m.net.accepts_from(received.src) {
            m.shell.discard("unknown_peer");
            return;
        }
        let advert = match Advertisement::decode(
            &received.payload,
            received.src,
            received.dst,
            m.net.checksum(),
        ) {
            Ok(advert) => advert,
            Err(e) => {
                m.shell.discard("malformed");
                tracing::debug!(instance = %m.conf.name, error = %e, "undecodable advert");
                return;
            }
        };
        // Other virtual routers on the link: expected, counted, not logged.
        if advert.vrid != m.conf.vrid {
            m.shell.discard("other_vrid");
            return;
        }
        m.last_advert = Some((received.src, advert.priority));
        let input = Input::Advert {
            src: received.src,
            ttl: received.ttl_or_hop_limit,
            advert,
        };
        if let Err(e) = self.group.handle(Instant::now(), member, input) {
            tracing::warn!(instance = %m.conf.name, error = %e, "advert refused");
        }
    }

    /// Executes every pending action, then publishes the statuses.
    async fn drain(&mut self) {
        while let Some((member, action)) = self.group.poll_action() {
            let Some(instance) = self.group.member(member) else {
                continue;
            };
            let priority = instance.effective_priority();
            let master = instance.master_address();
            let Some(m) = self.members.get_mut(member) else {
                continue;
            };
            if let Action::StateChanged { from, to, reason } = &action {
                m.shell
                    .transition(from.as_str(), to.as_str(), reason.as_str());
            }
            super::actions::execute(m, action, priority, master).await;
        }
        let now = Instant::now();
        let wall = SystemTime::now();
        for (i, m) in self.members.iter_mut().enumerate() {
            m.follow_fence(i);
            if let Some(instance) = self.group.member(i) {
                if instance.state() == State::Backup && instance.master_address().is_some() {
                    m.last_master = instance.master_address();
                }
                let status =
                    InstanceStatus::capture(instance, &m.conf, &m.shell, m.started, now, wall);
                m.status.publish(status);
            }
        }
    }

    /// Takes in a fenced member's new fencing status: kept for the next drain
    /// (`follow_fence`), the lease state fed to the state machine.
    fn fence(&mut self, member: usize, status: FenceStatus) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        let up = status.quorum;
        m.fence_status = status;
        let input = Input::Track {
            name: QUORUM_TRACK.to_owned(),
            up,
        };
        self.input(member, input);
    }

    /// A fenced member's delayed second burst: only if it still holds the VIPs.
    fn second_burst(&mut self, member: usize) {
        let Some(m) = self.members.get_mut(member) else {
            return;
        };
        if !m.fence_status.holding {
            return;
        }
        let addrs: Vec<IpAddr> = m.conf.vips.iter().map(|v| v.addr).collect();
        for e in m.net.announce(&addrs, m.conf.garp.count) {
            tracing::warn!(instance = %m.conf.name, error = %e, "cannot announce VIPs");
            m.shell.error(e);
        }
    }

    /// Publishes the statuses readers kept back (see [`StatusCell`]).
    fn flush_statuses(&mut self) {
        for m in &mut self.members {
            m.status.flush();
        }
    }

    async fn shutdown(mut self) {
        for member in 0..self.members.len() {
            let _ = self.group.handle(Instant::now(), member, Input::Shutdown);
        }
        self.drain().await;
        let limit = self
            .members
            .iter()
            .map(|m| m.conf.notify.timeout)
            .max()
            .unwrap_or_default();
        for m in self.members {
            let Member {
                notify,
                vmac,
                _reader: reader,
                ..
            } = m;
            // The priority-0 adverts and the VIP removal above went out through the vmac.
            drop(reader);
            if let Some(vmac) = vmac {
                vmac.remove().await;
            }
            notify.close(limit).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::{LATE_LOG_EVERY, LATE_WAKE, Lateness, tracks_down_after_retrack};

    #[test]
    fn late_wake_ups_are_reported_at_most_once_per_period_with_what_came_between() {
        let mut l = Lateness::default();
        let t0 = Instant::now();
        // On time, or late by less than the threshold: nothing.
        assert!(Duration::from_millis(9) < LATE_WAKE);
        l.woke("u", t0, t0 + Duration::from_millis(9));
        assert_eq!((l.last_log, l.count), (None, 0));
        // The first late wake-up is reported at once, and the tally starts again.
        let first = t0 + Duration::from_millis(30);
        l.woke("u", t0, first);
        assert_eq!(
            (l.last_log, l.count, l.worst),
            (Some(first), 0, Duration::ZERO)
        );
        // Within the period: counted, worst kept, no new line.
        l.woke("u", first, first + Duration::from_millis(25));
        l.woke("u", first, first + Duration::from_millis(12));
        assert_eq!(
            (l.last_log, l.count, l.worst),
            (Some(first), 2, Duration::from_millis(25))
        );
        // After it: reported, tally reset.
        let later = first + LATE_LOG_EVERY;
        assert!(later - (first + Duration::from_secs(9)) >= LATE_WAKE);
        l.woke("u", first + Duration::from_secs(9), later);
        assert_eq!((l.last_log, l.count), (Some(later), 0));
    }

    #[test]
    fn failing_tracks_shown_follow_the_new_set() {
        let shown = [
            "interface:vnet0".to_owned(),
            "script:gone".to_owned(),
            "script:kept".to_owned(),
        ];
        let set = [
            "script:kept".to_owned(),
            "file:/run/m".to_owned(),
            "script:new".to_owned(),
        ];
        let down = tracks_down_after_retrack(&shown, "interface:vnet0", &set, |key| match key {
            "script:kept" | "file:/run/m" => Some(false),
            "script:new" => Some(true),
            _ => None,
        });
        // The own interface's fault stays; the removed script goes; the file read down shows.
        assert_eq!(down, ["file:/run/m", "interface:vnet0", "script:kept"]);
    }
}

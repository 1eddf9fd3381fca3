//! The load balancer's live model, without I/O: per virtual server its [`VsState`] (policy and
//! real-server aliveness), per real server its checks' verdicts. The runtime feeds it check
//! events and configs and executes what it returns (scheduler upserts/removes, log lines,
//! kernel convergence).
//!
//! A real server with several checks is alive only while all of them pass; one with no checks is
//! always alive.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use vigil_checks::{CheckEvent, CheckId, CheckSpec, CheckStatus, ProbeOutcome, Transition};
use vigil_conf as conf;
use vigil_lvs::{self as lvs, Health, VsState};

use super::map::{self, MapError, ScriptIdentity};
use super::status::{CheckView, DesiredDest, RsStatus, VsStatus};

/// A config, mapped and validated, ready to be applied in one step.
///
/// The config itself is shared, not copied: the supervisor, the runtime and every virtual
/// server's entry hold the same `Arc` (with 10,000 checked real servers each copy is ~3 MB).
/// Virtual servers, real servers and checks are found in it by position.
#[derive(Debug)]
pub(crate) struct Mapped {
    config: Arc<conf::Config>,
    /// One per `config.virtual_servers`, in order.
    vss: Vec<MappedVs>,
}

#[derive(Debug)]
struct MappedVs {
    policy: lvs::VsPolicy,
    /// One per real server, one check each per `checks` entry, in order.
    reals: Vec<Vec<MappedCheck>>,
}

#[derive(Debug)]
struct MappedCheck {
    id: CheckId,
    spec: CheckSpec,
}

impl Mapped {
    /// Maps every virtual server and check of `config`; nothing is applied if anything fails.
    pub(crate) fn new(config: &Arc<conf::Config>) -> Result<Self, MapError> {
        let script = ScriptIdentity::resolve_if_needed(config)?;
        let mut seen = HashMap::new();
        let mut vss = Vec::with_capacity(config.virtual_servers.len());
        for vs in &config.virtual_servers {
            let mut reals = Vec::with_capacity(vs.real_servers.len());
            for rs in &vs.real_servers {
                let addr = SocketAddr::new(rs.addr, rs.port);
                let mut checks = Vec::with_capacity(rs.checks.len());
                for (index, check) in rs.checks.iter().enumerate() {
                    let spec =
                        map::check_spec(vs, rs, index, check, script, &config.global.script_user)?;
                    // Builds the TLS config now, so a bad CA file refuses the whole config
                    // instead of failing half-way through applying it.
                    vigil_checks::Prepared::new(&spec).map_err(|e| MapError::Tls {
                        virtual_server: vs.service,
                        real_server: addr,
                        index,
                        message: e.to_string(),
                    })?;
                    let id = map::check_id(&vs.service, addr, index);
                    if let Some(other) = seen.insert(id, (vs.service, addr, index)) {
                        return Err(MapError::IdCollision(format!(
                            "{} {} #{} and {} {} #{}",
                            other.0, other.1, other.2, vs.service, addr, index
                        )));
                    }
                    checks.push(MappedCheck { id, spec });
                }
                reals.push(checks);
            }
            vss.push(MappedVs {
                policy: map::vs_policy(vs),
                reals,
            });
        }
        Ok(Self {
            config: Arc::clone(config),
            vss,
        })
    }

    /// The config this was mapped from.
    pub(crate) fn config(&self) -> &Arc<conf::Config> {
        &self.config
    }
}

/// What the runtime must do with the check scheduler after [`Balancer::apply`].
#[derive(Debug, Default)]
pub(crate) struct SchedulerPlan {
    /// Checks to add or replace (the scheduler keeps the health of replaced ones).
    pub(crate) upsert: Vec<(CheckId, CheckSpec)>,
    /// Checks to stop.
    pub(crate) remove: Vec<CheckId>,
    /// Policy transitions the reload caused, per virtual server.
    pub(crate) transitions: Vec<(conf::VsKey, lvs::Transition)>,
}

/// A check verdict that changed, for the log.
#[derive(Debug)]
pub(crate) struct CheckChange {
    pub(crate) virtual_server: conf::VsKey,
    pub(crate) real_server: SocketAddr,
    pub(crate) kind: &'static str,
    pub(crate) transition: Transition,
    pub(crate) outcome: ProbeOutcome,
    /// What the verdict did to the virtual server.
    pub(crate) effects: Vec<lvs::Transition>,
}

#[derive(Debug)]
struct VsEntry {
    /// The config this entry was last applied from; its settings are `virtual_servers[index]`.
    config: Arc<conf::Config>,
    index: usize,
    service: conf::VsKey,
    state: VsState,
    /// One per real server of the config entry, in order.
    reals: Vec<RealEntry>,
}

impl VsEntry {
    fn conf(&self) -> &conf::VirtualServer {
        &self.config.virtual_servers[self.index]
    }
}

#[derive(Debug)]
struct RealEntry {
    key: lvs::DestKey,
    /// One per check of the config entry, in order.
    checks: Vec<CheckSlot>,
    since: Instant,
}

impl RealEntry {
    fn all_up(&self) -> bool {
        self.checks.iter().all(|c| c.up)
    }
}

#[derive(Debug)]
struct CheckSlot {
    id: CheckId,
    kind: &'static str,
    target: SocketAddr,
    up: bool,
    since: Instant,
    last: Option<ProbeOutcome>,
}

/// Every virtual server, in config order, and where each check lives.
#[derive(Debug, Default)]
pub(crate) struct Balancer {
    vss: Vec<VsEntry>,
    /// Check → (virtual server index, real server index, check index).
    index: HashMap<CheckId, (usize, usize, usize)>,
}

impl Balancer {
    /// Adopts a new config. Virtual servers and real servers that stay keep their health;
    /// unchanged checks are not touched at all, changed ones are replaced in place.
    pub(crate) fn apply(&mut self, mapped: Mapped, now: Instant) -> SchedulerPlan {
        let mut plan = SchedulerPlan::default();
        let mut old: HashMap<conf::VsKey, VsEntry> =
            self.vss.drain(..).map(|vs| (vs.service, vs)).collect();
        let config = mapped.config;
        for (index, (vs, m)) in config.virtual_servers.iter().zip(mapped.vss).enumerate() {
            let key = vs.service;
            // The previous entry's state, its config (the old checks' settings, found by
            // position) and its real servers by key, with their positions.
            let (state, previous_conf, mut old_reals) = match old.remove(&key) {
                Some(entry) => {
                    let VsEntry {
                        config: old_config,
                        index: old_index,
                        mut state,
                        reals,
                        ..
                    } = entry;
                    let transitions = state.reconfigure(m.policy);
                    plan.transitions
                        .extend(transitions.into_iter().map(|t| (key, t)));
                    let reals: HashMap<lvs::DestKey, (usize, RealEntry)> = reals
                        .into_iter()
                        .enumerate()
                        .map(|(r, real)| (real.key, (r, real)))
                        .collect();
                    (state, Some((old_config, old_index)), reals)
                }
                None => (VsState::new(m.policy), None, HashMap::new()),
            };
            let previous_vs = previous_conf
                .as_ref()
                .map(|(config, index)| &config.virtual_servers[*index]);
            let mut reals = Vec::with_capacity(m.reals.len());
            for (rs, checks) in vs.real_servers.iter().zip(m.reals) {
                let key = map::dest_key(rs);
                let mut previous = old_reals.remove(&key);
                let old_r = previous.as_ref().map_or(0, |(r, _)| *r);
                let mut old_slots: HashMap<CheckId, (usize, CheckSlot)> = previous
                    .as_mut()
                    .map(|(_, real)| {
                        real.checks
                            .drain(..)
                            .enumerate()
                            .map(|(c, slot)| (slot.id, (c, slot)))
                            .collect()
                    })
                    .unwrap_or_default();
                let slots = checks
                    .into_iter()
                    .zip(&rs.checks)
                    .map(|(c, check)| match old_slots.remove(&c.id) {
                        Some((old_c, slot))
                            if previous_vs
                                .is_some_and(|p| p.real_servers[old_r].checks[old_c] == *check)
                                && slot.target == c.spec.target =>
                        {
                            slot
                        }
                        Some((_, mut slot)) => {
                            slot.kind = c.spec.kind.name();
                            slot.target = c.spec.target;
                            plan.upsert.push((c.id, c.spec));
                            slot
                        }
                        None => {
                            let slot = CheckSlot {
                                id: c.id,
                                kind: c.spec.kind.name(),
                                target: c.spec.target,
                                up: !c.spec.start_down,
                                since: now,
                                last: None,
                            };
                            plan.upsert.push((c.id, c.spec));
                            slot
                        }
                    })
                    .collect();
                plan.remove.extend(old_slots.into_keys());
                reals.push(RealEntry {
                    key,
                    checks: slots,
                    since: previous.map_or(now, |(_, p)| p.since),
                });
            }
            for (_, gone) in old_reals.into_values() {
                plan.remove.extend(gone.checks.iter().map(|c| c.id));
            }
            let mut entry = VsEntry {
                config: Arc::clone(&config),
                index,
                service: key,
                state,
                reals,
            };
            // Checks added to or dropped from a real server can change its verdict, and a real
            // server without checks is alive even under alpha.
            for real in &mut entry.reals {
                let up = real.all_up();
                if entry.state.is_alive(&real.key) != Some(up) {
                    real.since = now;
                    let health = if up { Health::Up } else { Health::Down };
                    let transitions = entry.state.handle(real.key, health);
                    plan.transitions
                        .extend(transitions.into_iter().map(|t| (key, t)));
                }
            }
            self.vss.push(entry);
        }
        for gone in old.into_values() {
            plan.remove
                .extend(gone.reals.iter().flat_map(|r| &r.checks).map(|c| c.id));
        }
        self.reindex();
        plan
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (v, vs) in self.vss.iter().enumerate() {
            for (r, real) in vs.reals.iter().enumerate() {
                for (c, check) in real.checks.iter().enumerate() {
                    self.index.insert(check.id, (v, r, c));
                }
            }
        }
    }

    /// Applies one check event; `None` if the check is no longer configured (an event that
    /// raced a reload).
    pub(crate) fn on_event(&mut self, event: CheckEvent, now: Instant) -> Option<CheckChange> {
        let &(v, r, c) = self.index.get(&event.id)?;
        let vs = &mut self.vss[v];
        let real = &mut vs.reals[r];
        let slot = &mut real.checks[c];
        match event.transition {
            Transition::Up => slot.up = true,
            Transition::Down => slot.up = false,
            Transition::Weight(_) => {}
        }
        if !matches!(event.transition, Transition::Weight(_)) {
            slot.since = now;
        }
        slot.last = Some(event.outcome.clone());
        let kind = slot.kind;
        let mut effects = Vec::new();
        if let Transition::Weight(w) = event.transition {
            effects.extend(vs.state.handle(real.key, Health::Weight(w)));
        }
        let up = real.all_up();
        if vs.state.is_alive(&real.key) != Some(up) {
            real.since = now;
            let health = if up { Health::Up } else { Health::Down };
            effects.extend(vs.state.handle(real.key, health));
        }
        Some(CheckChange {
            virtual_server: vs.service,
            real_server: SocketAddr::new(real.key.addr, real.key.port),
            kind,
            transition: event.transition,
            outcome: event.outcome,
            effects,
        })
    }

    /// The kernel table every virtual server should have now, in config order.
    pub(crate) fn desired(&self) -> Vec<lvs::VirtualServer> {
        self.vss.iter().map(|vs| vs.state.desired()).collect()
    }

    /// Whether each check group's virtual server has its quorum.
    pub(crate) fn groups(&self) -> BTreeMap<String, bool> {
        self.vss
            .iter()
            .filter_map(|vs| Some((vs.conf().group.clone()?, vs.state.quorum_up())))
            .collect()
    }

    /// At stop: what to leave in the kernel (see omega), and the transitions to report.
    pub(crate) fn shutdown(
        &mut self,
    ) -> (Vec<lvs::VirtualServer>, Vec<(conf::VsKey, lvs::Transition)>) {
        let mut keep = Vec::new();
        let mut transitions = Vec::new();
        for vs in &mut self.vss {
            let s = vs.state.shutdown();
            keep.extend(s.keep);
            transitions.extend(s.transitions.into_iter().map(|t| (vs.service, t)));
        }
        (keep, transitions)
    }

    /// The status view; `checks` is the scheduler's own view (fresher `last` results), keyed
    /// by id, and may miss checks (then the last event's outcome is shown).
    /// Virtual servers, those whose quorum holds, real servers and those alive: the counts of
    /// [`LbSummary`](super::LbSummary), without building the per-check view [`status`] needs
    /// the scheduler for. The `STATUS=` line, membership and `/v1/status` ask for it often, and
    /// with 10,000 real servers the full view is megabytes.
    ///
    /// [`status`]: Self::status
    pub(crate) fn counts(&self) -> [usize; 4] {
        let mut counts = [self.vss.len(), 0, 0, 0];
        for vs in &self.vss {
            counts[1] += usize::from(vs.state.quorum_up());
            counts[2] += vs.reals.len();
            counts[3] += vs
                .reals
                .iter()
                .filter(|r| vs.state.is_alive(&r.key).unwrap_or(false))
                .count();
        }
        counts
    }

    pub(crate) fn status(
        &self,
        checks: &HashMap<CheckId, CheckStatus>,
        now: Instant,
    ) -> Vec<VsStatus> {
        self.vss
            .iter()
            .map(|vs| {
                let desired = vs.state.desired();
                let quorum_up = vs.state.quorum_up();
                let conf = vs.conf();
                VsStatus {
                    key: vs.service.to_string(),
                    group: conf.group.clone(),
                    scheduler: conf.scheduler.to_string(),
                    forwarding: conf.forwarding.to_string(),
                    quorum: conf.quorum,
                    quorum_up,
                    alive_weight: vs.state.alive_weight(),
                    sorry_server: conf.sorry_server.map(|s| s.to_string()),
                    sorry_active: !quorum_up && conf.sorry_server.is_some(),
                    real_servers: vs
                        .reals
                        .iter()
                        .zip(&conf.real_servers)
                        .map(|(real, rs)| RsStatus {
                            addr: SocketAddr::new(real.key.addr, real.key.port).to_string(),
                            weight: rs.weight,
                            desired_weight: desired
                                .dests
                                .iter()
                                .find(|d| d.key == real.key)
                                .map(|d| d.weight),
                            up: vs.state.is_alive(&real.key).unwrap_or(false),
                            since_secs_ago: secs_since(now, real.since),
                            checks: real
                                .checks
                                .iter()
                                .map(|slot| check_view(slot, checks.get(&slot.id), now))
                                .collect(),
                        })
                        .collect(),
                    desired: desired
                        .dests
                        .iter()
                        .map(|d| DesiredDest {
                            addr: SocketAddr::new(d.key.addr, d.key.port).to_string(),
                            weight: d.weight,
                        })
                        .collect(),
                }
            })
            .collect()
    }
}

fn check_view(slot: &CheckSlot, live: Option<&CheckStatus>, now: Instant) -> CheckView {
    let last = live.and_then(|s| s.last.as_ref()).or(slot.last.as_ref());
    CheckView {
        kind: slot.kind.to_owned(),
        target: slot.target.to_string(),
        up: live.map_or(slot.up, |s| s.up),
        last_ok: last.map(|o| o.ok),
        last_detail: last.map(|o| o.detail.clone()),
        latency_ms: last.map(|o| millis(o.latency)),
        since_secs_ago: secs_since(now, live.map_or(slot.since, |s| s.since)),
    }
}

/// Milliseconds with microsecond resolution, for latencies.
pub(crate) fn millis(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

fn secs_since(now: Instant, then: Instant) -> u64 {
    now.saturating_duration_since(then).as_secs()
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

//! The load balancer's live model, without I/O: per virtual server its [`VsState`] (policy and
//! real-server aliveness), per real server its checks' verdicts. The runtime feeds it check
//! events and configs and executes what it returns (scheduler upserts/removes, log lines,
//! kernel convergence).
//!
//! A real server with several checks is alive only while all of them pass; one with no checks is
//! always alive.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;
use vigil_checks::{CheckEvent, CheckId, CheckSpec, CheckStatus, ProbeOutcome, Transition};
use vigil_conf as conf;
use vigil_lvs::{self as lvs, Health, VsState};

use super::map::{self, MapError, ScriptIdentity};
use super::status::{CheckView, DesiredDest, RsStatus, VsStatus};

/// A config, mapped and validated, ready to be applied in one step.
#[derive(Debug)]
pub(crate) struct Mapped {
    vss: Vec<MappedVs>,
}

#[derive(Debug)]
struct MappedVs {
    conf: conf::VirtualServer,
    policy: lvs::VsPolicy,
    reals: Vec<Vec<MappedCheck>>,
}

#[derive(Debug)]
struct MappedCheck {
    id: CheckId,
    conf: conf::Check,
    spec: CheckSpec,
}

impl Mapped {
    /// Maps every virtual server and check of `config`; nothing is applied if anything fails.
    pub(crate) fn new(config: &conf::Config) -> Result<Self, MapError> {
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
                    checks.push(MappedCheck {
                        id,
                        conf: check.clone(),
                        spec,
                    });
                }
                reals.push(checks);
            }
            vss.push(MappedVs {
                policy: map::vs_policy(vs),
                conf: vs.clone(),
                reals,
            });
        }
        Ok(Self { vss })
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
    conf: conf::VirtualServer,
    state: VsState,
    reals: Vec<RealEntry>,
}

#[derive(Debug)]
struct RealEntry {
    key: lvs::DestKey,
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
    conf: conf::Check,
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
            self.vss.drain(..).map(|vs| (vs.conf.service, vs)).collect();
        for m in mapped.vss {
            let key = m.conf.service;
            let (state, mut old_reals) = match old.remove(&key) {
                Some(mut entry) => {
                    let transitions = entry.state.reconfigure(m.policy);
                    plan.transitions
                        .extend(transitions.into_iter().map(|t| (key, t)));
                    let reals: HashMap<lvs::DestKey, RealEntry> =
                        entry.reals.drain(..).map(|r| (r.key, r)).collect();
                    (entry.state, reals)
                }
                None => (VsState::new(m.policy), HashMap::new()),
            };
            let mut reals = Vec::with_capacity(m.reals.len());
            for (rs, checks) in m.conf.real_servers.iter().zip(m.reals) {
                let key = map::dest_key(rs);
                let mut previous = old_reals.remove(&key);
                let mut old_slots: HashMap<CheckId, CheckSlot> = previous
                    .as_mut()
                    .map(|r| r.checks.drain(..).map(|c| (c.id, c)).collect())
                    .unwrap_or_default();
                let slots = checks
                    .into_iter()
                    .map(|c| match old_slots.remove(&c.id) {
                        Some(slot) if slot.conf == c.conf && slot.target == c.spec.target => slot,
                        Some(mut slot) => {
                            slot.conf = c.conf;
                            slot.kind = c.spec.kind.name();
                            slot.target = c.spec.target;
                            plan.upsert.push((c.id, c.spec));
                            slot
                        }
                        None => {
                            let slot = CheckSlot {
                                id: c.id,
                                conf: c.conf,
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
                    since: previous.map_or(now, |p| p.since),
                });
            }
            for gone in old_reals.into_values() {
                plan.remove.extend(gone.checks.iter().map(|c| c.id));
            }
            let mut entry = VsEntry {
                conf: m.conf,
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
            virtual_server: vs.conf.service,
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
            .filter_map(|vs| Some((vs.conf.group.clone()?, vs.state.quorum_up())))
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
            transitions.extend(s.transitions.into_iter().map(|t| (vs.conf.service, t)));
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
                VsStatus {
                    key: vs.conf.service.to_string(),
                    group: vs.conf.group.clone(),
                    scheduler: vs.conf.scheduler.to_string(),
                    forwarding: vs.conf.forwarding.to_string(),
                    quorum: vs.conf.quorum,
                    quorum_up,
                    alive_weight: vs.state.alive_weight(),
                    sorry_server: vs.conf.sorry_server.map(|s| s.to_string()),
                    sorry_active: !quorum_up && vs.conf.sorry_server.is_some(),
                    real_servers: vs
                        .reals
                        .iter()
                        .zip(&vs.conf.real_servers)
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

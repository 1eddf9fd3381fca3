//! The LVS policy: from real-server health, the destinations a virtual server should have.
//!
//! Semantics follow keepalived's `check` subsystem:
//!
//! - **inhibit_on_failure**: a failed real server stays in the table with weight 0 (existing
//!   connections drain, no new ones) instead of being removed.
//! - **quorum / hysteresis**: the *alive weight* is the sum of the current weights of alive real
//!   servers. Quorum is lost when it drops to 0 or below `quorum − hysteresis`, and regained when
//!   it is positive and reaches `quorum + hysteresis`; in between the state holds, so a flapping
//!   server near the threshold does not flap the service. At start the state is "up" iff the
//!   alive weight is positive and ≥ `quorum` (there is no history yet to hold).
//! - **sorry server**: while quorum is lost, the sorry server is in the table and every real
//!   server is out (weight 0 if it has inhibit_on_failure). With `sorry_server_inhibit` it stays
//!   in at weight 0 while quorum holds. Without a sorry server, losing quorum only emits
//!   [`Transition::QuorumDown`]; the real servers stay as their health says.
//! - **alpha**: real servers start down and join at their first successful check; without it they
//!   start up (and leave at their first failure).
//! - **omega**: when vigil stops, the virtual server and its real servers are removed from the
//!   kernel ([`VsState::shutdown`] returns no service to keep, plus the down transitions so the
//!   notifiers run). Without omega the service is left exactly as it is, so traffic keeps flowing
//!   while vigil restarts. Either way only vigil's own services are concerned: vigil never
//!   flushes the table (see [`crate::Reconciler::shutdown`]).
//!
//! Everything here is pure; the caller feeds health events and passes [`VsState::desired`] to
//! the reconciler.

use crate::model::{DestKey, Destination, Service, VirtualServer};

/// A configured real server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealServer {
    /// Its destination entry; `weight` is the configured weight.
    pub dest: Destination,
    /// Keep it at weight 0 instead of removing it when it fails.
    pub inhibit_on_failure: bool,
}

/// The policy of one virtual server (from config).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsPolicy {
    /// The service.
    pub service: Service,
    /// Its real servers; keys should be unique and differ from the sorry server's.
    pub reals: Vec<RealServer>,
    /// Where traffic goes while quorum is lost.
    pub sorry_server: Option<Destination>,
    /// Keep the sorry server in at weight 0 while quorum holds.
    pub sorry_server_inhibit: bool,
    /// Minimum alive weight (keepalived default 1).
    pub quorum: u32,
    /// Tolerance around `quorum` (keepalived default 0).
    pub hysteresis: u32,
    /// Real servers start down until their first successful check.
    pub alpha: bool,
    /// Remove the service from the kernel when vigil stops.
    pub omega: bool,
}

/// A health-check verdict for one real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    /// The check succeeded (rise reached).
    Up,
    /// The check failed (fall reached).
    Down,
    /// A dynamic weight from the checker (e.g. a script's exit code); does not change aliveness.
    Weight(u32),
}

/// A state change worth a log line, a metric and a notify script.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// A real server became alive.
    RealUp(DestKey),
    /// A real server failed.
    RealDown(DestKey),
    /// The alive weight reached `quorum + hysteresis`.
    QuorumUp,
    /// The alive weight fell below `quorum − hysteresis` (or to 0).
    QuorumDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RealState {
    alive: bool,
    weight: u32,
}

/// The live state of one virtual server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsState {
    policy: VsPolicy,
    reals: Vec<RealState>,
    quorum_up: bool,
}

impl VsState {
    /// The state at start: see the module docs for alpha and the initial quorum.
    pub fn new(policy: VsPolicy) -> Self {
        let reals = policy
            .reals
            .iter()
            .map(|r| RealState {
                alive: !policy.alpha,
                weight: r.dest.weight,
            })
            .collect();
        let mut this = Self {
            policy,
            reals,
            quorum_up: false,
        };
        let w = this.alive_weight();
        this.quorum_up = w > 0 && w >= u64::from(this.policy.quorum);
        this
    }

    /// Adopts a reloaded policy for the same virtual server without forgetting health: a real
    /// server that is still configured keeps its aliveness (and its dynamic weight, unless its
    /// configured weight changed); a new one starts as alpha says. The quorum state carries over
    /// and is re-evaluated with hysteresis, so a reload alone does not flap the sorry server.
    pub fn reconfigure(&mut self, policy: VsPolicy) -> Vec<Transition> {
        let reals = policy
            .reals
            .iter()
            .map(|r| match self.index(&r.dest.key) {
                Some(i) => RealState {
                    alive: self.reals[i].alive,
                    weight: if self.policy.reals[i].dest.weight == r.dest.weight {
                        self.reals[i].weight
                    } else {
                        r.dest.weight
                    },
                },
                None => RealState {
                    alive: !policy.alpha,
                    weight: r.dest.weight,
                },
            })
            .collect();
        self.policy = policy;
        self.reals = reals;
        self.update_quorum().into_iter().collect()
    }

    /// The policy this state follows.
    pub fn policy(&self) -> &VsPolicy {
        &self.policy
    }

    /// Whether quorum currently holds.
    pub fn quorum_up(&self) -> bool {
        self.quorum_up
    }

    /// Sum of the current weights of alive real servers.
    pub fn alive_weight(&self) -> u64 {
        self.reals
            .iter()
            .filter(|r| r.alive)
            .map(|r| u64::from(r.weight))
            .sum()
    }

    /// Whether the real server `key` is alive; `None` if it is not configured.
    pub fn is_alive(&self, key: &DestKey) -> Option<bool> {
        self.index(key).map(|i| self.reals[i].alive)
    }

    fn index(&self, key: &DestKey) -> Option<usize> {
        self.policy.reals.iter().position(|r| r.dest.key == *key)
    }

    /// Applies a health verdict for `real`; unknown servers are ignored (a check for a server
    /// that a reload just removed).
    pub fn handle(&mut self, real: DestKey, health: Health) -> Vec<Transition> {
        let Some(i) = self.index(&real) else {
            return Vec::new();
        };
        let state = &mut self.reals[i];
        let mut out = Vec::new();
        match health {
            Health::Up if !state.alive => {
                state.alive = true;
                out.push(Transition::RealUp(real));
            }
            Health::Down if state.alive => {
                state.alive = false;
                out.push(Transition::RealDown(real));
            }
            Health::Weight(w) => state.weight = w,
            Health::Up | Health::Down => {}
        }
        out.extend(self.update_quorum());
        out
    }

    fn update_quorum(&mut self) -> Option<Transition> {
        let w = self.alive_weight();
        let quorum = u64::from(self.policy.quorum);
        let hysteresis = u64::from(self.policy.hysteresis);
        if self.quorum_up && (w == 0 || w < quorum.saturating_sub(hysteresis)) {
            self.quorum_up = false;
            Some(Transition::QuorumDown)
        } else if !self.quorum_up && w > 0 && w >= quorum + hysteresis {
            self.quorum_up = true;
            Some(Transition::QuorumUp)
        } else {
            None
        }
    }

    /// The virtual server as it should be in the kernel now.
    pub fn desired(&self) -> VirtualServer {
        let sorry_active = !self.quorum_up && self.policy.sorry_server.is_some();
        let mut dests = Vec::with_capacity(self.reals.len() + 1);
        for (real, state) in self.policy.reals.iter().zip(&self.reals) {
            let serving = state.alive && !sorry_active;
            if serving || real.inhibit_on_failure {
                let weight = if serving { state.weight } else { 0 };
                dests.push(Destination {
                    weight,
                    ..real.dest
                });
            }
        }
        if let Some(sorry) = self.policy.sorry_server {
            if sorry_active {
                dests.push(sorry);
            } else if self.policy.sorry_server_inhibit {
                dests.push(Destination { weight: 0, ..sorry });
            }
        }
        VirtualServer {
            service: self.policy.service.clone(),
            dests,
        }
    }

    /// What to do with this virtual server when vigil stops (see omega in the module docs).
    /// With omega, every server is marked down.
    pub fn shutdown(&mut self) -> Shutdown {
        if !self.policy.omega {
            return Shutdown {
                keep: Some(self.desired()),
                transitions: Vec::new(),
            };
        }
        let mut transitions = Vec::new();
        for (real, state) in self.policy.reals.iter().zip(&mut self.reals) {
            if state.alive {
                state.alive = false;
                transitions.push(Transition::RealDown(real.dest.key));
            }
        }
        if self.quorum_up {
            self.quorum_up = false;
            transitions.push(Transition::QuorumDown);
        }
        Shutdown {
            keep: None,
            transitions,
        }
    }
}

/// A virtual server's fate at shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shutdown {
    /// The service to leave in the kernel, or `None` to remove it (omega). Pass the kept ones to
    /// [`crate::Reconciler::shutdown`].
    pub keep: Option<VirtualServer>,
    /// State changes to report (omega: everything goes down).
    pub transitions: Vec<Transition>,
}

#[cfg(test)]
#[path = "policy_tests.rs"]
mod tests;

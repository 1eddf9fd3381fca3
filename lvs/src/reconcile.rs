//! The reconciler: compares the desired virtual servers with the kernel's table and applies only
//! the differences, for the services vigil owns.
//!
//! # Ownership
//!
//! The kernel's table is shared: an operator or another tool may have services of their own, and
//! vigil must never touch those. A service is *owned* when its key is in the current config
//! ([`plan`] always treats desired keys as owned) or in the [`OwnedSet`] the [`Reconciler`]
//! carries over from the previous config. On a reload, the old config's keys stay owned until a
//! convergence succeeds, so services dropped from the config are deleted (and retried if the
//! delete fails); after that only the new config's keys are owned. A service present in the kernel
//! under an owned key is taken over, whoever created it. Ownership is not persisted: after a
//! restart, services that were removed from the config while vigil was down look foreign and are
//! left alone (the daemon may persist [`Reconciler::owned`] and pass it to
//! [`Reconciler::with_owned`] to close that gap).
//!
//! # Convergence
//!
//! [`Reconciler::converge`] reads the table, plans, applies every op (a failed op does not stop
//! the others), and reads again, until a read yields an empty plan: at most `max_rounds` rounds,
//! then one checking read. Re-reading after applying is what makes it robust: a netlink error or
//! a race with `ipvsadm` shows up as a fresh difference in the next round. Calling `converge`
//! periodically reverts external changes to owned services. Desired values are put in the form
//! the kernel reads back before comparing (checked against a real kernel by
//! `tests/it/kernel.rs`), so an unchanged config costs one table read and no writes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use crate::client::{Ipvs, LvsError};
use crate::model::{
    DestKey, Destination, Family, Forwarding, Service, ServiceKey, Table, TunnelType, VirtualServer,
};

/// One change to the kernel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a service (its destinations follow as [`Op::AddDest`]).
    AddService(Service),
    /// Change scheduler, flags or persistence.
    EditService(Service),
    /// Delete a service and its destinations.
    DelService(ServiceKey),
    /// Add a destination.
    AddDest(ServiceKey, Destination),
    /// Change a destination's weight, forwarding or thresholds.
    EditDest(ServiceKey, Destination),
    /// Remove a destination.
    DelDest(ServiceKey, DestKey),
}

impl Op {
    /// Performs the op.
    pub fn apply(&self, ipvs: &mut impl Ipvs) -> Result<(), LvsError> {
        match self {
            Self::AddService(s) => ipvs.add_service(s),
            Self::EditService(s) => ipvs.edit_service(s),
            Self::DelService(k) => ipvs.del_service(k),
            Self::AddDest(k, d) => ipvs.add_dest(k, d),
            Self::EditDest(k, d) => ipvs.edit_dest(k, d),
            Self::DelDest(k, d) => ipvs.del_dest(k, d),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::client::describe;
        match self {
            Self::AddService(s) => f.write_str(&describe::service("add", &s.key)),
            Self::EditService(s) => f.write_str(&describe::service("edit", &s.key)),
            Self::DelService(k) => f.write_str(&describe::service("delete", k)),
            Self::AddDest(k, d) => f.write_str(&describe::dest("add", k, &d.key)),
            Self::EditDest(k, d) => f.write_str(&describe::dest("edit", k, &d.key)),
            Self::DelDest(k, d) => f.write_str(&describe::dest("delete", k, d)),
        }
    }
}

/// Keys of services vigil may change or delete besides those in the current config.
pub type OwnedSet = BTreeSet<ServiceKey>;

/// The ops that turn `observed` into `desired` for owned services, and nothing else.
///
/// Order: deletions of services no longer desired, then per desired service (in key order) its
/// creation or edit, then new destinations, edited ones, and removed ones last, so that a swap
/// (sorry server in, real servers out) never leaves the service without a destination.
/// Duplicate keys in `desired` (services or destinations): the last one wins.
pub fn plan(desired: &[VirtualServer], observed: &Table, owned: &OwnedSet) -> Vec<Op> {
    let desired: BTreeMap<ServiceKey, &VirtualServer> =
        desired.iter().map(|vs| (vs.service.key, vs)).collect();
    let mut ops: Vec<Op> = observed
        .services
        .keys()
        .filter(|k| owned.contains(k) && !desired.contains_key(k))
        .map(|k| Op::DelService(*k))
        .collect();
    for (key, vs) in desired {
        let service = normalize_service(&vs.service);
        let dests: BTreeMap<DestKey, Destination> = vs
            .dests
            .iter()
            .map(|d| (d.key, normalize_dest(d)))
            .collect();
        let Some(current) = observed.services.get(&key) else {
            ops.push(Op::AddService(service));
            ops.extend(dests.into_values().map(|d| Op::AddDest(key, d)));
            continue;
        };
        if current.service != service {
            ops.push(Op::EditService(service));
        }
        let mut edits = Vec::new();
        for (dkey, dest) in &dests {
            match current.dests.get(dkey) {
                None => ops.push(Op::AddDest(key, *dest)),
                Some(o) if o.dest != *dest => edits.push(Op::EditDest(key, *dest)),
                Some(_) => {}
            }
        }
        ops.extend(edits);
        ops.extend(
            current
                .dests
                .keys()
                .filter(|k| !dests.contains_key(k))
                .map(|k| Op::DelDest(key, *k)),
        );
    }
    ops
}

/// The form the kernel reads back, so that equal intents compare equal: the persistence prefix is
/// clamped to the family's width.
fn normalize_service(svc: &Service) -> Service {
    let mut svc = svc.clone();
    if let Some(p) = &mut svc.persistence {
        let max = if svc.key.family() == Family::V4 {
            32
        } else {
            128
        };
        p.netmask_prefix = p.netmask_prefix.min(max);
    }
    svc
}

/// Tunnel encapsulation means nothing (and is read back as IP-in-IP) for other methods.
fn normalize_dest(dest: &Destination) -> Destination {
    let mut dest = *dest;
    if dest.fwd != Forwarding::Tunnel {
        dest.tunnel = TunnelType::Ipip;
    }
    dest
}

/// What a convergence did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Ops that succeeded, in order (for logs and metrics).
    pub applied: Vec<Op>,
    /// Table reads, including the final one that found nothing to do.
    pub reads: usize,
    /// Errors met on the way and recovered from by re-reading.
    pub recovered: Vec<LvsError>,
}

/// The table could not be brought to the desired state within the round limit.
#[derive(Debug, thiserror::Error)]
#[error("IPVS table did not converge after {reads} table reads: {last}")]
pub struct ConvergeError {
    /// Table reads attempted.
    pub reads: usize,
    /// The last error.
    pub last: LvsError,
    /// What was applied before giving up (it stays applied).
    pub applied: Vec<Op>,
}

/// Keeps the kernel table converged on the desired state through an [`Ipvs`] implementation.
#[derive(Debug)]
pub struct Reconciler<I> {
    ipvs: I,
    owned: OwnedSet,
    max_rounds: usize,
}

impl<I: Ipvs> Reconciler<I> {
    /// A reconciler that owns nothing until the first [`Reconciler::converge`].
    pub fn new(ipvs: I) -> Self {
        Self::with_owned(ipvs, [])
    }

    /// A reconciler that also owns `owned` (e.g. persisted from a previous run).
    pub fn with_owned(ipvs: I, owned: impl IntoIterator<Item = ServiceKey>) -> Self {
        Self {
            ipvs,
            owned: owned.into_iter().collect(),
            max_rounds: 5,
        }
    }

    /// Changes how many read-plan-apply rounds [`Reconciler::converge`] tries before its final
    /// checking read (at least 1; default 5).
    #[must_use]
    pub fn max_rounds(mut self, rounds: usize) -> Self {
        self.max_rounds = rounds.max(1);
        self
    }

    /// The keys vigil currently owns besides those it is asked to converge on.
    pub fn owned(&self) -> &OwnedSet {
        &self.owned
    }

    /// The client, e.g. to inspect a fake in tests.
    pub fn ipvs(&self) -> &I {
        &self.ipvs
    }

    /// Mutable access to the client (tests use it to play external changes).
    pub fn ipvs_mut(&mut self) -> &mut I {
        &mut self.ipvs
    }

    /// Brings owned services to `desired`; see the module docs.
    ///
    /// Up to `max_rounds` rounds of read, plan, apply; then one last read that only checks.
    pub fn converge(&mut self, desired: &[VirtualServer]) -> Result<Outcome, ConvergeError> {
        let owned: OwnedSet = self
            .owned
            .iter()
            .copied()
            .chain(desired.iter().map(|vs| vs.service.key))
            .collect();
        self.owned.clone_from(&owned);
        let mut outcome = Outcome::default();
        for round in 0..=self.max_rounds {
            outcome.reads += 1;
            let observed = match self.ipvs.table() {
                Ok(table) => table,
                Err(e) => {
                    outcome.recovered.push(e);
                    continue;
                }
            };
            let ops = plan(desired, &observed, &owned);
            if ops.is_empty() {
                self.owned = desired.iter().map(|vs| vs.service.key).collect();
                return Ok(outcome);
            }
            if round == self.max_rounds {
                break;
            }
            for op in ops {
                match op.apply(&mut self.ipvs) {
                    Ok(()) => outcome.applied.push(op),
                    Err(e) => outcome.recovered.push(e),
                }
            }
        }
        let last = outcome.recovered.pop().unwrap_or(LvsError::Protocol {
            request: "converge".to_owned(),
            what: "the table kept changing under vigil",
        });
        Err(ConvergeError {
            reads: outcome.reads,
            last,
            applied: outcome.applied,
        })
    }

    /// At shutdown: leaves the services in `keep` as they are and deletes every other owned
    /// service (the omega ones, see [`crate::policy`]). It is a last convergence, so foreign
    /// services stay and nothing is flushed; afterwards vigil owns only `keep`.
    pub fn shutdown(&mut self, keep: &[VirtualServer]) -> Result<Outcome, ConvergeError> {
        self.converge(keep)
    }
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;

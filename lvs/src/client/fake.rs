//! [`FakeIpvs`]: an in-memory IPVS table that answers like `ip_vs_ctl.c` does.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::{Ipvs, LvsError, describe};
use crate::model::{
    DestKey, Destination, Family, Forwarding, ObservedDest, Scheduler, Service, ServiceKey, Table,
};
use crate::reconcile::Op;

/// Scheduler modules the fake "has loaded"; any other name fails with `ENOENT`, as the kernel does
/// when `request_module("ip_vs_<name>")` finds nothing.
const KNOWN_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "mh", "sed", "nq", "fo", "ovf", "twos",
];

/// An in-memory IPVS table for tests, with the kernel's validation and errno values.
///
/// Tests can edit [`FakeIpvs::table`] directly to play "someone ran ipvsadm", queue failures with
/// [`FakeIpvs::fail_next`], and read back every successful mutation in [`FakeIpvs::applied`].
#[derive(Debug, Default, Clone)]
pub struct FakeIpvs {
    /// The current table; edit it to simulate external changes.
    pub table: Table,
    /// Every mutation that succeeded, in order.
    pub applied: Vec<Op>,
    /// Errnos the next calls (reads or mutations) fail with, without side effects.
    faults: VecDeque<i32>,
}

impl FakeIpvs {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next call fail with `errno` (e.g. `libc::ENOBUFS`) and change nothing. Queued
    /// faults are consumed one per call, reads included.
    pub fn fail_next(&mut self, errno: i32) {
        self.faults.push_back(errno);
    }

    fn fault(&mut self, request: impl FnOnce() -> String) -> Result<(), LvsError> {
        match self.faults.pop_front() {
            Some(errno) => Err(kernel(request(), errno)),
            None => Ok(()),
        }
    }

    fn check_service(svc: &Service, request: &dyn Fn() -> String) -> Result<(), LvsError> {
        if let Scheduler::Other(name) = &svc.scheduler
            && !KNOWN_SCHEDULERS.contains(&name.as_str())
        {
            return Err(kernel(request(), libc::ENOENT));
        }
        if svc.pe_name.as_deref().is_some_and(|pe| pe != "sip") {
            return Err(kernel(request(), libc::ENOENT));
        }
        // ip_vs_add_service/ip_vs_edit_service: IPv6 persistence netmask is a prefix length 1..=128.
        if let Some(p) = svc.persistence
            && svc.key.family() == Family::V6
            && !(1..=128).contains(&p.netmask_prefix)
        {
            return Err(kernel(request(), libc::EINVAL));
        }
        Ok(())
    }

    fn check_dest(
        svc: &ServiceKey,
        dest: &Destination,
        request: &dyn Fn() -> String,
    ) -> Result<(), LvsError> {
        // ip_vs_add_dest/ip_vs_edit_dest: weight is an int; thresholds ordered.
        if i32::try_from(dest.weight).is_err() || dest.lower_threshold > dest.upper_threshold {
            return Err(kernel(request(), libc::ERANGE));
        }
        // ip_vs_new_dest: the address must be unicast (or local).
        let unicast = match dest.key.addr {
            IpAddr::V4(a) => !(a.is_unspecified() || a.is_broadcast() || a.is_multicast()),
            IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
        };
        if !unicast {
            return Err(kernel(request(), libc::EINVAL));
        }
        // Mixed address families only through a tunnel.
        if Family::of(dest.key.addr) != svc.family() && dest.fwd != Forwarding::Tunnel {
            return Err(kernel(request(), libc::EINVAL));
        }
        Ok(())
    }
}

fn kernel(request: String, errno: i32) -> LvsError {
    LvsError::Kernel {
        request,
        errno,
        message: None,
    }
}

impl Ipvs for FakeIpvs {
    fn table(&mut self) -> Result<Table, LvsError> {
        self.fault(|| "list services".to_owned())?;
        Ok(self.table.clone())
    }

    fn add_service(&mut self, svc: &Service) -> Result<(), LvsError> {
        let request = || describe::service("add", &svc.key);
        self.fault(request)?;
        if self.table.services.contains_key(&svc.key) {
            return Err(kernel(request(), libc::EEXIST));
        }
        Self::check_service(svc, &request)?;
        self.table.services.insert(svc.key, svc.clone().into());
        self.applied.push(Op::AddService(svc.clone()));
        Ok(())
    }

    fn edit_service(&mut self, svc: &Service) -> Result<(), LvsError> {
        let request = || describe::service("edit", &svc.key);
        self.fault(request)?;
        Self::check_service(svc, &request)?;
        let Some(current) = self.table.services.get_mut(&svc.key) else {
            return Err(kernel(request(), libc::ESRCH));
        };
        current.service = svc.clone();
        self.applied.push(Op::EditService(svc.clone()));
        Ok(())
    }

    fn del_service(&mut self, key: &ServiceKey) -> Result<(), LvsError> {
        let request = || describe::service("delete", key);
        self.fault(request)?;
        if self.table.services.remove(key).is_none() {
            return Err(kernel(request(), libc::ESRCH));
        }
        self.applied.push(Op::DelService(*key));
        Ok(())
    }

    fn add_dest(&mut self, svc: &ServiceKey, dest: &Destination) -> Result<(), LvsError> {
        let request = || describe::dest("add", svc, &dest.key);
        self.fault(request)?;
        let Some(current) = self.table.services.get_mut(svc) else {
            return Err(kernel(request(), libc::ESRCH));
        };
        Self::check_dest(svc, dest, &request)?;
        if current.dests.contains_key(&dest.key) {
            return Err(kernel(request(), libc::EEXIST));
        }
        current.dests.insert(dest.key, ObservedDest::from(*dest));
        self.applied.push(Op::AddDest(*svc, *dest));
        Ok(())
    }

    fn edit_dest(&mut self, svc: &ServiceKey, dest: &Destination) -> Result<(), LvsError> {
        let request = || describe::dest("edit", svc, &dest.key);
        self.fault(request)?;
        let Some(current) = self.table.services.get_mut(svc) else {
            return Err(kernel(request(), libc::ESRCH));
        };
        Self::check_dest(svc, dest, &request)?;
        let Some(existing) = current.dests.get_mut(&dest.key) else {
            return Err(kernel(request(), libc::ENOENT));
        };
        // Counters survive an edit, as in the kernel.
        existing.dest = *dest;
        self.applied.push(Op::EditDest(*svc, *dest));
        Ok(())
    }

    fn del_dest(&mut self, svc: &ServiceKey, dest: &DestKey) -> Result<(), LvsError> {
        let request = || describe::dest("delete", svc, dest);
        self.fault(request)?;
        let Some(current) = self.table.services.get_mut(svc) else {
            return Err(kernel(request(), libc::ESRCH));
        };
        if current.dests.remove(dest).is_none() {
            return Err(kernel(request(), libc::ENOENT));
        }
        self.applied.push(Op::DelDest(*svc, *dest));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Persistence;

    fn key() -> ServiceKey {
        ServiceKey::Tcp([10, 0, 0, 1].into(), 80)
    }

    #[test]
    fn errnos_match_the_kernel() {
        let mut f = FakeIpvs::new();
        let svc = Service::new(key(), Scheduler::Rr);
        let d = Destination::new([10, 0, 0, 2].into(), 80, 1, Forwarding::DirectRoute);
        assert_eq!(f.edit_service(&svc).unwrap_err().errno(), Some(libc::ESRCH));
        assert_eq!(
            f.del_service(&key()).unwrap_err().errno(),
            Some(libc::ESRCH)
        );
        assert_eq!(
            f.add_dest(&key(), &d).unwrap_err().errno(),
            Some(libc::ESRCH)
        );
        f.add_service(&svc).unwrap();
        assert_eq!(f.add_service(&svc).unwrap_err().errno(), Some(libc::EEXIST));
        assert_eq!(
            f.edit_dest(&key(), &d).unwrap_err().errno(),
            Some(libc::ENOENT)
        );
        assert_eq!(
            f.del_dest(&key(), &d.key).unwrap_err().errno(),
            Some(libc::ENOENT)
        );
        f.add_dest(&key(), &d).unwrap();
        assert_eq!(
            f.add_dest(&key(), &d).unwrap_err().errno(),
            Some(libc::EEXIST)
        );

        let mut bad = d;
        bad.lower_threshold = 5; // above the (unlimited = 0) upper threshold
        assert_eq!(
            f.edit_dest(&key(), &bad).unwrap_err().errno(),
            Some(libc::ERANGE)
        );
        bad = d;
        bad.weight = u32::MAX;
        assert_eq!(
            f.edit_dest(&key(), &bad).unwrap_err().errno(),
            Some(libc::ERANGE)
        );
        let mcast = Destination::new([224, 0, 0, 1].into(), 80, 1, Forwarding::DirectRoute);
        assert_eq!(
            f.add_dest(&key(), &mcast).unwrap_err().errno(),
            Some(libc::EINVAL)
        );
        let v6 = Destination::new("2001:db8::2".parse().unwrap(), 80, 1, Forwarding::Nat);
        assert_eq!(
            f.add_dest(&key(), &v6).unwrap_err().errno(),
            Some(libc::EINVAL)
        );

        let mut s = svc.clone();
        s.scheduler = Scheduler::Other("nosuch".into());
        assert_eq!(f.edit_service(&s).unwrap_err().errno(), Some(libc::ENOENT));
        let mut s6 = Service::new(
            ServiceKey::Tcp("2001:db8::1".parse().unwrap(), 80),
            Scheduler::Rr,
        );
        s6.persistence = Some(Persistence {
            timeout_s: 60,
            netmask_prefix: 0,
        });
        assert_eq!(f.add_service(&s6).unwrap_err().errno(), Some(libc::EINVAL));

        // Only the two successful mutations were recorded; deleting a service drops its dests.
        assert_eq!(f.applied, [Op::AddService(svc), Op::AddDest(key(), d)]);
        f.del_service(&key()).unwrap();
        assert!(f.table.services.is_empty());
    }

    #[test]
    fn queued_faults_fail_without_side_effects() {
        let mut f = FakeIpvs::new();
        f.fail_next(libc::ENOBUFS);
        let svc = Service::new(key(), Scheduler::Wrr);
        assert_eq!(
            f.add_service(&svc).unwrap_err().errno(),
            Some(libc::ENOBUFS)
        );
        assert!(f.table.services.is_empty() && f.applied.is_empty());
        f.add_service(&svc).unwrap();
        f.fail_next(libc::EINTR);
        assert!(f.table().is_err());
        assert_eq!(f.table().unwrap().services.len(), 1);
    }
}

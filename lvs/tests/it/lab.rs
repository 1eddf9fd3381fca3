//! The scenario harness: a reconciler on a private kernel table that checks, after every
//! convergence, that the kernel holds exactly what was asked for (plus the services others made)
//! by two independent readers, `ipvsadm -Ln` and vigil's own netlink client; and the policies
//! the scenarios share.

use std::collections::BTreeMap;
use std::net::IpAddr;

use vigil_lvs::{
    DestKey, Destination, Forwarding, Ipvs, NetlinkIpvs, Op, RealServer, Reconciler, Scheduler,
    Service, ServiceKey, Table, VirtualServer, VsPolicy, VsState,
};

use crate::ipvsadm;
use crate::netns::cannot_run;

/// A kernel table reduced to what config sets, comparable with the desired state.
type Shape = BTreeMap<ServiceKey, (Service, BTreeMap<DestKey, Destination>)>;

fn read_back(t: &Table) -> Shape {
    t.services
        .iter()
        .map(|(k, s)| {
            let dests = s.dests.iter().map(|(dk, d)| (*dk, d.dest)).collect();
            (*k, (s.service.clone(), dests))
        })
        .collect()
}

fn shape_of(vss: &[VirtualServer]) -> Shape {
    vss.iter()
        .map(|vs| {
            let dests = vs.dests.iter().map(|d| (d.key, *d)).collect();
            (vs.service.key, (vs.service.clone(), dests))
        })
        .collect()
}

/// The reconciler on a private kernel table, and the services others put there.
pub(crate) struct Lab {
    pub(crate) r: Reconciler<NetlinkIpvs>,
    /// Services created with `ipvsadm`, which vigil must leave exactly as they are.
    foreign: Vec<VirtualServer>,
}

impl Lab {
    /// A lab on `ipvs`; needs `ipvsadm` (`None` after saying so when it is missing).
    pub(crate) fn new(name: &str, ipvs: NetlinkIpvs) -> Option<Self> {
        if !ipvsadm::available() {
            cannot_run(name, "no ipvsadm to cross-check with");
            return None;
        }
        Some(Self {
            r: Reconciler::new(ipvs),
            foreign: Vec::new(),
        })
    }

    /// Converges on the states' desired servers, checks the kernel, returns the applied ops.
    pub(crate) fn converge(&mut self, states: &[&VsState]) -> Vec<Op> {
        let desired: Vec<VirtualServer> = states.iter().map(|s| s.desired()).collect();
        let outcome = self
            .r
            .converge(&desired)
            .unwrap_or_else(|e| panic!("converge: {e}"));
        assert!(
            outcome.recovered.is_empty(),
            "a private table has no races: {:?}",
            outcome.recovered
        );
        self.check(&desired);
        outcome.applied
    }

    /// The kernel holds exactly `desired` plus the foreign services, says ipvsadm and says
    /// vigil's own client.
    pub(crate) fn check(&mut self, desired: &[VirtualServer]) {
        let all: Vec<VirtualServer> = desired.iter().chain(&self.foreign).cloned().collect();
        assert_eq!(
            ipvsadm::list(),
            ipvsadm::expected(&all),
            "ipvsadm -Ln (left) vs desired (right)"
        );
        let table = self.r.ipvs_mut().table().unwrap();
        assert_eq!(
            read_back(&table),
            shape_of(&all),
            "netlink read-back (left) vs desired (right)"
        );
    }

    /// Someone else's service, made with ipvsadm: TCP 192.0.2.99:22, one NAT real server.
    pub(crate) fn add_foreign(&mut self) {
        ipvsadm::run("-A -t 192.0.2.99:22 -s lc");
        ipvsadm::run("-a -t 192.0.2.99:22 -r 10.9.0.1:22 -m -w 4");
        self.foreign.push(VirtualServer {
            service: Service::new(ServiceKey::Tcp(ip("192.0.2.99"), 22), Scheduler::Lc),
            dests: vec![Destination::new(ip("10.9.0.1"), 22, 4, Forwarding::Nat)],
        });
    }
}

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub(crate) fn key(addr: &str, port: u16) -> DestKey {
    DestKey {
        addr: ip(addr),
        port,
    }
}

pub(crate) fn real(
    addr: &str,
    port: u16,
    weight: u32,
    fwd: Forwarding,
    inhibit: bool,
) -> RealServer {
    RealServer {
        dest: Destination::new(ip(addr), port, weight, fwd),
        inhibit_on_failure: inhibit,
    }
}

/// keepalived's defaults: quorum 1, no hysteresis, no sorry server, no alpha, no omega.
pub(crate) fn policy(service: Service, reals: Vec<RealServer>) -> VsPolicy {
    VsPolicy {
        service,
        reals,
        sorry_server: None,
        sorry_server_inhibit: false,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
        omega: false,
    }
}

pub(crate) fn web_key() -> ServiceKey {
    ServiceKey::Tcp(ip("192.0.2.1"), 80)
}

/// TCP 192.0.2.1:80 wrr over three direct-routed servers; the third has inhibit_on_failure.
pub(crate) fn web() -> VsPolicy {
    policy(
        Service::new(web_key(), Scheduler::Wrr),
        vec![
            real("10.0.0.1", 80, 3, Forwarding::DirectRoute, false),
            real("10.0.0.2", 80, 2, Forwarding::DirectRoute, false),
            real("10.0.0.3", 80, 1, Forwarding::DirectRoute, true),
        ],
    )
}

pub(crate) fn dns_key() -> ServiceKey {
    ServiceKey::Udp(ip("192.0.2.1"), 53)
}

/// UDP 192.0.2.1:53 rr over one direct-routed server.
pub(crate) fn dns() -> VsPolicy {
    policy(
        Service::new(dns_key(), Scheduler::Rr),
        vec![real("10.0.0.53", 53, 1, Forwarding::DirectRoute, false)],
    )
}

/// The web real server `last` (1..=3) at `weight`.
pub(crate) fn web_dest(last: u8, weight: u32) -> Destination {
    Destination::new([10, 0, 0, last].into(), 80, weight, Forwarding::DirectRoute)
}

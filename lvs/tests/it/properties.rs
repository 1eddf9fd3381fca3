//! Property tests of the reconciler against the fake kernel table: for random desired and
//! observed tables and random ownership, applying the plan yields exactly the desired state for
//! owned services, changes nothing else, and touches no service that is already right.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv6Addr};

use proptest::prelude::*;
use vigil_lvs::{
    DestKey, Destination, FakeIpvs, Family, Forwarding, Ipvs, ObservedDest, ObservedService, Op,
    OwnedSet, Persistence, Reconciler, Scheduler, Service, ServiceFlags, ServiceKey, Table,
    TunnelType, VirtualServer, plan,
};

fn ip(family: Family, n: u8) -> IpAddr {
    match family {
        Family::V4 => IpAddr::from([10, 0, 0, n]),
        Family::V6 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
    }
}

fn family() -> impl Strategy<Value = Family> {
    prop_oneof![3 => Just(Family::V4), 1 => Just(Family::V6)]
}

fn vip() -> impl Strategy<Value = IpAddr> {
    (family(), 100u8..=101).prop_map(|(f, n)| ip(f, n))
}

/// A small key space so that desired, observed and owned keys collide often.
fn service_key() -> impl Strategy<Value = ServiceKey> {
    prop_oneof![
        (vip(), prop::sample::select(vec![80u16, 443])).prop_map(|(a, p)| ServiceKey::Tcp(a, p)),
        vip().prop_map(|a| ServiceKey::Udp(a, 53)),
        vip().prop_map(|a| ServiceKey::Sctp(a, 3868)),
        (1u32..=3, family()).prop_map(|(m, f)| ServiceKey::Fwmark(m, f)),
    ]
}

fn service(key: ServiceKey) -> impl Strategy<Value = Service> {
    let max_prefix = if key.family() == Family::V4 { 32 } else { 128 };
    (
        prop::sample::select(vec![
            Scheduler::Rr,
            Scheduler::Wrr,
            Scheduler::Wlc,
            Scheduler::Sh,
            Scheduler::Mh,
            Scheduler::Twos,
        ]),
        prop::sample::select(vec![
            ServiceFlags::empty(),
            ServiceFlags::ONE_PACKET,
            ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT,
            ServiceFlags::SCHED3,
        ]),
        prop::option::of((1u32..=3600, 1u8..=max_prefix)),
        prop::option::of(Just("sip".to_owned())),
    )
        .prop_map(move |(scheduler, flags, persistence, pe_name)| Service {
            key,
            scheduler,
            flags,
            persistence: persistence.map(|(timeout_s, netmask_prefix)| Persistence {
                timeout_s,
                netmask_prefix,
            }),
            pe_name,
        })
}

fn destination(family: Family) -> impl Strategy<Value = Destination> {
    let tunnel = prop_oneof![
        Just(TunnelType::Ipip),
        (1u16.., 0u16..4).prop_map(|(port, flags)| TunnelType::Gue { port, flags }),
        (0u16..4).prop_map(|flags| TunnelType::Gre { flags }),
    ];
    let fwd = prop::sample::select(vec![
        Forwarding::Nat,
        Forwarding::DirectRoute,
        Forwarding::Tunnel,
    ]);
    (
        1u8..=4,
        prop::sample::select(vec![80u16, 8080]),
        0u32..=100,
        fwd,
        tunnel,
        0u32..50,
        0u32..50,
    )
        .prop_map(move |(n, port, weight, fwd, tunnel, a, b)| Destination {
            key: DestKey {
                addr: ip(family, n),
                port,
            },
            weight,
            fwd,
            upper_threshold: a.max(b),
            lower_threshold: a.min(b),
            tunnel: if fwd == Forwarding::Tunnel {
                tunnel
            } else {
                TunnelType::Ipip
            },
        })
}

fn virtual_server() -> impl Strategy<Value = VirtualServer> {
    service_key().prop_flat_map(|key| {
        (
            service(key),
            prop::collection::vec(destination(key.family()), 0..5),
        )
            .prop_map(|(service, dests)| VirtualServer { service, dests })
    })
}

/// An observed table (with live counters, which foreign services must keep) and an ownership
/// mask over its keys.
fn observed() -> impl Strategy<Value = (Table, OwnedSet)> {
    (prop::collection::vec((virtual_server(), any::<bool>(), 0u32..1000), 0..6)).prop_map(|vss| {
        let mut table = Table::default();
        let mut owned = OwnedSet::new();
        for (vs, own, conns) in vss {
            let mut svc = ObservedService::from(vs.service.clone());
            for d in vs.dests {
                svc.dests.insert(
                    d.key,
                    ObservedDest {
                        active_conns: conns,
                        ..d.into()
                    },
                );
            }
            if own {
                owned.insert(vs.service.key);
            }
            table.services.insert(vs.service.key, svc);
        }
        (table, owned)
    })
}

/// What each desired key should look like: the last definition wins, destinations by key.
fn expected(
    desired: &[VirtualServer],
) -> BTreeMap<ServiceKey, (Service, BTreeMap<DestKey, Destination>)> {
    desired
        .iter()
        .map(|vs| {
            (
                vs.service.key,
                (
                    vs.service.clone(),
                    vs.dests.iter().map(|d| (d.key, *d)).collect(),
                ),
            )
        })
        .collect()
}

fn op_key(op: &Op) -> ServiceKey {
    match op {
        Op::AddService(s) | Op::EditService(s) => s.key,
        Op::DelService(k) | Op::AddDest(k, _) | Op::EditDest(k, _) | Op::DelDest(k, _) => *k,
    }
}

/// The checks shared by both properties; `after` is the table once the plan has been applied.
fn check_result(
    desired: &[VirtualServer],
    before: &Table,
    owned: &OwnedSet,
    after: &Table,
) -> Result<(), TestCaseError> {
    let want = expected(desired);
    for (key, (svc, dests)) in &want {
        let got = after.services.get(key);
        prop_assert!(got.is_some(), "desired {key} missing");
        let got = got.unwrap();
        prop_assert_eq!(&got.service, svc);
        let got_dests: BTreeMap<DestKey, Destination> =
            got.dests.iter().map(|(k, d)| (*k, d.dest)).collect();
        prop_assert_eq!(&got_dests, dests);
    }
    for (key, svc) in &before.services {
        if want.contains_key(key) {
            continue;
        }
        if owned.contains(key) {
            prop_assert!(!after.services.contains_key(key), "owned {key} not removed");
        } else {
            prop_assert_eq!(
                after.services.get(key),
                Some(svc),
                "foreign {} changed",
                key
            );
        }
    }
    let allowed: BTreeSet<ServiceKey> =
        want.keys().chain(before.services.keys()).copied().collect();
    prop_assert!(after.services.keys().all(|k| allowed.contains(k)));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn applying_the_plan_yields_the_desired_table(
        desired in prop::collection::vec(virtual_server(), 0..5),
        (before, owned) in observed(),
    ) {
        let ops = plan(&desired, &before, &owned);
        let mut fake = FakeIpvs::new();
        fake.table = before.clone();
        for op in &ops {
            let res = op.apply(&mut fake);
            prop_assert!(res.is_ok(), "{} failed: {:?}", op, res);
        }
        check_result(&desired, &before, &owned, &fake.table)?;
        // Only differences: a desired service already exactly right gets no op at all.
        let want = expected(&desired);
        for op in &ops {
            let key = op_key(op);
            if let (Some((svc, dests)), Some(cur)) = (want.get(&key), before.services.get(&key)) {
                let cur_dests: BTreeMap<DestKey, Destination> =
                    cur.dests.iter().map(|(k, d)| (*k, d.dest)).collect();
                prop_assert!(cur.service != *svc || cur_dests != *dests, "needless {}", op);
            }
        }
        // And the result is a fixed point.
        prop_assert_eq!(plan(&desired, &fake.table, &owned), vec![]);
    }

    #[test]
    fn reconciler_converges_through_netlink_errors(
        desired in prop::collection::vec(virtual_server(), 0..5),
        (before, owned) in observed(),
        faults in prop::collection::vec(prop::sample::select(vec![libc_enobufs(), libc_eintr()]), 0..4),
    ) {
        let mut fake = FakeIpvs::new();
        fake.table = before.clone();
        for errno in faults {
            fake.fail_next(errno);
        }
        let mut r = Reconciler::with_owned(fake, owned.iter().copied());
        let res = r.converge(&desired);
        prop_assert!(res.is_ok(), "{:?}", res.err());
        check_result(&desired, &before, &owned, &r.ipvs_mut().table().unwrap())?;
    }
}

// libc is not a dependency of the test binary; these are the x86-64/aarch64 Linux values.
fn libc_enobufs() -> i32 {
    105
}

fn libc_eintr() -> i32 {
    4
}

use super::*;
use crate::client::FakeIpvs;
use crate::model::{ObservedService, Scheduler};
use crate::policy::{Health, RealServer, VsPolicy, VsState};

fn vip(port: u16) -> ServiceKey {
    ServiceKey::Tcp([192, 0, 2, 1].into(), port)
}

fn dest(last: u8, weight: u32) -> Destination {
    Destination::new([10, 0, 0, last].into(), 80, weight, Forwarding::DirectRoute)
}

fn vs(port: u16, dests: &[Destination]) -> VirtualServer {
    VirtualServer {
        service: Service::new(vip(port), Scheduler::Wrr),
        dests: dests.to_vec(),
    }
}

/// The observed shape of the owned services, for comparing with what was asked.
fn shape(table: &Table, key: &ServiceKey) -> Option<(Service, Vec<Destination>)> {
    table.services.get(key).map(|s| {
        (
            s.service.clone(),
            s.dests.values().map(|d| d.dest).collect(),
        )
    })
}

fn converged(desired: &[VirtualServer]) -> Reconciler<FakeIpvs> {
    let mut r = Reconciler::new(FakeIpvs::new());
    r.converge(desired).unwrap();
    r.ipvs_mut().applied.clear();
    r
}

#[test]
fn creates_service_and_destinations() {
    let want = [vs(80, &[dest(2, 1), dest(1, 1)])];
    let mut r = Reconciler::new(FakeIpvs::new());
    let out = r.converge(&want).unwrap();
    assert_eq!(
        out.reads, 2,
        "apply, then a read that finds nothing left to do"
    );
    assert_eq!(
        r.ipvs().applied,
        [
            Op::AddService(want[0].service.clone()),
            Op::AddDest(vip(80), dest(1, 1)),
            Op::AddDest(vip(80), dest(2, 1)),
        ]
    );
    assert_eq!(out.applied, r.ipvs().applied);
    assert_eq!(
        shape(&r.ipvs().table, &vip(80)),
        Some((want[0].service.clone(), vec![dest(1, 1), dest(2, 1)]))
    );
    // Converging again is a no-op.
    let out = r.converge(&want).unwrap();
    assert!(out.applied.is_empty() && out.reads == 1);
}

#[test]
fn only_the_difference_is_applied() {
    let mut r = converged(&[vs(80, &[dest(1, 1), dest(2, 1), dest(3, 1)])]);
    let mut svc = Service::new(vip(80), Scheduler::Sh);
    svc.flags = crate::ServiceFlags::SH_PORT;
    let want = VirtualServer {
        service: svc.clone(),
        dests: vec![dest(1, 1), dest(2, 9), dest(4, 1)],
    };
    r.converge(std::slice::from_ref(&want)).unwrap();
    assert_eq!(
        r.ipvs().applied,
        [
            Op::EditService(svc),
            Op::AddDest(vip(80), dest(4, 1)),
            Op::EditDest(vip(80), dest(2, 9)),
            Op::DelDest(vip(80), dest(3, 1).key),
        ]
    );
}

#[test]
fn inhibit_on_failure_edits_weight_instead_of_deleting() {
    let reals = vec![
        RealServer {
            dest: dest(1, 5),
            inhibit_on_failure: true,
        },
        RealServer {
            dest: dest(2, 5),
            inhibit_on_failure: false,
        },
    ];
    let policy = VsPolicy {
        service: Service::new(vip(80), Scheduler::Wlc),
        reals,
        sorry_server: None,
        sorry_server_inhibit: false,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
        omega: false,
    };
    let mut state = VsState::new(policy);
    let mut r = converged(&[state.desired()]);
    state.handle(dest(1, 0).key, Health::Down);
    state.handle(dest(2, 0).key, Health::Down);
    r.converge(&[state.desired()]).unwrap();
    assert_eq!(
        r.ipvs().applied,
        [
            Op::EditDest(vip(80), dest(1, 0)),
            Op::DelDest(vip(80), dest(2, 0).key)
        ]
    );
}

#[test]
fn sorry_server_swaps_in_and_out_with_hysteresis() {
    let sorry = Destination::new([10, 0, 9, 9].into(), 80, 1, Forwarding::Nat);
    let policy = VsPolicy {
        service: Service::new(vip(80), Scheduler::Wlc),
        reals: (1..=3)
            .map(|i| RealServer {
                dest: dest(i, 1),
                inhibit_on_failure: false,
            })
            .collect(),
        sorry_server: Some(sorry),
        sorry_server_inhibit: false,
        quorum: 2,
        hysteresis: 1,
        alpha: false,
        omega: false,
    };
    let mut state = VsState::new(policy);
    let mut r = converged(&[state.desired()]);
    state.handle(dest(1, 0).key, Health::Down);
    state.handle(dest(2, 0).key, Health::Down); // alive weight 1, still ≥ 2 − 1
    r.converge(&[state.desired()]).unwrap();
    let applied = std::mem::take(&mut r.ipvs_mut().applied);
    assert_eq!(
        applied,
        [
            Op::DelDest(vip(80), dest(1, 0).key),
            Op::DelDest(vip(80), dest(2, 0).key)
        ]
    );

    state.handle(dest(3, 0).key, Health::Down); // 0: quorum lost
    r.converge(&[state.desired()]).unwrap();
    let applied = std::mem::take(&mut r.ipvs_mut().applied);
    // The sorry server goes in before the last real server goes out.
    assert_eq!(
        applied,
        [
            Op::AddDest(vip(80), sorry),
            Op::DelDest(vip(80), dest(3, 0).key)
        ]
    );

    state.handle(dest(1, 0).key, Health::Up);
    state.handle(dest(2, 0).key, Health::Up); // 2 < 2 + 1: still lost
    r.converge(&[state.desired()]).unwrap();
    assert!(r.ipvs().applied.is_empty());
    state.handle(dest(3, 0).key, Health::Up);
    r.converge(&[state.desired()]).unwrap();
    let applied = std::mem::take(&mut r.ipvs_mut().applied);
    assert_eq!(
        applied,
        [
            Op::AddDest(vip(80), dest(1, 1)),
            Op::AddDest(vip(80), dest(2, 1)),
            Op::AddDest(vip(80), dest(3, 1)),
            Op::DelDest(vip(80), sorry.key),
        ]
    );
}

#[test]
fn external_changes_to_owned_services_are_reverted() {
    let want = [vs(80, &[dest(1, 1), dest(2, 1)])];
    let mut r = converged(&want);
    // Someone ran: ipvsadm -e -t 192.0.2.1:80 -r 10.0.0.1 -w 50; -d ... 10.0.0.2; -a ... 10.0.0.7
    // and -E -s rr.
    let t = &mut r.ipvs_mut().table;
    let svc = t.services.get_mut(&vip(80)).unwrap();
    svc.service.scheduler = Scheduler::Rr;
    svc.dests.get_mut(&dest(1, 1).key).unwrap().dest.weight = 50;
    svc.dests.remove(&dest(2, 1).key);
    svc.dests.insert(dest(7, 1).key, dest(7, 1).into());
    r.converge(&want).unwrap();
    assert_eq!(
        r.ipvs().applied,
        [
            Op::EditService(want[0].service.clone()),
            Op::AddDest(vip(80), dest(2, 1)),
            Op::EditDest(vip(80), dest(1, 1)),
            Op::DelDest(vip(80), dest(7, 1).key),
        ]
    );
    // Someone deleted the whole service: it is recreated.
    r.ipvs_mut().table.services.clear();
    r.ipvs_mut().applied.clear();
    r.converge(&want).unwrap();
    assert_eq!(r.ipvs().applied.len(), 3);
}

#[test]
fn foreign_services_are_never_touched() {
    let mut fake = FakeIpvs::new();
    let mut foreign = ObservedService::from(Service::new(vip(8080), Scheduler::Lc));
    foreign.dests.insert(dest(5, 3).key, dest(5, 3).into());
    fake.table.services.insert(vip(8080), foreign.clone());
    let mut r = Reconciler::new(fake);
    r.converge(&[vs(80, &[dest(1, 1)])]).unwrap();
    r.converge(&[]).unwrap(); // our service dropped from the config
    assert_eq!(r.ipvs().table.services.len(), 1);
    assert_eq!(r.ipvs().table.services.get(&vip(8080)), Some(&foreign));
    r.shutdown(&[]).unwrap();
    assert_eq!(r.ipvs().table.services.get(&vip(8080)), Some(&foreign));
    assert!(
        r.ipvs()
            .applied
            .iter()
            .all(|op| !format!("{op}").contains(":8080"))
    );
}

#[test]
fn ownership_follows_reloads() {
    let mut r = converged(&[vs(80, &[dest(1, 1)]), vs(443, &[dest(1, 1)])]);
    assert_eq!(r.owned().len(), 2);
    // Reload without :443: it was ours, so it is deleted, and is no longer owned afterwards.
    r.converge(&[vs(80, &[dest(1, 1)])]).unwrap();
    assert_eq!(r.ipvs().applied, [Op::DelService(vip(443))]);
    assert_eq!(r.owned().iter().copied().collect::<Vec<_>>(), [vip(80)]);
    // Someone else now creates :443 by hand: it is theirs.
    r.ipvs_mut()
        .add_service(&Service::new(vip(443), Scheduler::Rr))
        .unwrap();
    r.ipvs_mut().applied.clear();
    r.converge(&[vs(80, &[dest(1, 1)])]).unwrap();
    assert!(r.ipvs().applied.is_empty());
    // A reload whose deletion fails keeps the old key owned, so the deletion is retried.
    let mut r = converged(&[vs(80, &[]), vs(443, &[])]).max_rounds(1);
    r.ipvs_mut().fail_next(libc::EBUSY); // the table read of the only round
    assert!(r.converge(&[vs(80, &[])]).is_err());
    assert!(r.owned().contains(&vip(443)));
    r.converge(&[vs(80, &[])]).unwrap();
    assert_eq!(r.ipvs().applied, [Op::DelService(vip(443))]);
}

#[test]
fn netlink_errors_are_recovered_by_resyncing() {
    let want = [vs(80, &[dest(1, 1), dest(2, 1)])];
    let mut r = Reconciler::new(FakeIpvs::new());
    r.ipvs_mut().fail_next(libc::ENOBUFS); // the first read
    r.ipvs_mut().fail_next(libc::EINTR); // the service add
    let out = r.converge(&want).unwrap();
    assert_eq!(out.recovered.len(), 2);
    assert_eq!(out.recovered[0].errno(), Some(libc::ENOBUFS));
    // Round 2: add service fails, both dest adds fail with ESRCH; round 3 redoes all; round 4 reads.
    assert_eq!(out.recovered.len() + r.ipvs().applied.len(), 2 + 3);
    assert_eq!(shape(&r.ipvs().table, &vip(80)).map(|s| s.1.len()), Some(2));
    assert!(r.converge(&want).unwrap().applied.is_empty());
}

#[test]
fn a_persistent_refusal_is_reported_after_the_round_limit() {
    let mut bad = vs(80, &[dest(1, 1)]);
    bad.service.scheduler = Scheduler::Other("nosuch".into());
    let mut r = Reconciler::new(FakeIpvs::new()).max_rounds(3);
    let err = r.converge(&[bad, vs(443, &[dest(1, 1)])]).unwrap_err();
    assert_eq!(err.reads, 4, "three rounds and a final check");
    assert_eq!(
        err.last.errno(),
        Some(libc::ESRCH),
        "the dest add after the refused service"
    );
    // The good service was still set up: one failure does not block the rest.
    assert!(r.ipvs().table.services.contains_key(&vip(443)));
    assert!(
        err.to_string()
            .contains("did not converge after 4 table reads"),
        "{err}"
    );
}

#[test]
fn equal_intents_do_not_cause_endless_edits() {
    let mut d = dest(1, 1);
    d.tunnel = crate::TunnelType::Gue {
        port: 5555,
        flags: 0,
    }; // meaningless for DR
    let mut want = vs(80, &[d]);
    want.service.persistence = Some(crate::Persistence {
        timeout_s: 300,
        netmask_prefix: 40,
    });
    let mut r = converged(std::slice::from_ref(&want));
    let p = r.ipvs().table.services[&vip(80)]
        .service
        .persistence
        .unwrap();
    assert_eq!(p.netmask_prefix, 32);
    assert!(r.converge(&[want]).unwrap().applied.is_empty());
}

#[test]
fn shutdown_removes_omega_services_only() {
    let kept = vs(80, &[dest(1, 1)]);
    let omega = vs(443, &[dest(1, 1)]);
    let mut r = converged(&[kept.clone(), omega]);
    r.shutdown(std::slice::from_ref(&kept)).unwrap();
    assert_eq!(r.ipvs().applied, [Op::DelService(vip(443))]);
    assert_eq!(r.owned().iter().copied().collect::<Vec<_>>(), [vip(80)]);
    assert!(r.shutdown(&[kept]).unwrap().applied.is_empty());
}

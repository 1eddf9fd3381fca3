use super::*;
use crate::model::{Forwarding, Scheduler, ServiceKey};

fn real(last: u8, weight: u32, inhibit: bool) -> RealServer {
    RealServer {
        dest: Destination::new([10, 0, 1, last].into(), 80, weight, Forwarding::DirectRoute),
        inhibit_on_failure: inhibit,
    }
}

fn key(last: u8) -> DestKey {
    DestKey {
        addr: [10, 0, 1, last].into(),
        port: 80,
    }
}

fn sorry() -> Destination {
    Destination::new([10, 0, 9, 9].into(), 80, 1, Forwarding::Nat)
}

fn policy(reals: Vec<RealServer>) -> VsPolicy {
    VsPolicy {
        service: Service::new(ServiceKey::Tcp([192, 0, 2, 1].into(), 80), Scheduler::Wlc),
        reals,
        sorry_server: None,
        sorry_server_inhibit: false,
        quorum: 1,
        hysteresis: 0,
        alpha: false,
        omega: false,
    }
}

/// (address last octet, weight) of each desired destination, in order.
fn table(state: &VsState) -> Vec<(u8, u32)> {
    state
        .desired()
        .dests
        .iter()
        .map(|d| match d.key.addr {
            std::net::IpAddr::V4(a) => (a.octets()[3], d.weight),
            std::net::IpAddr::V6(_) => unreachable!("tests use IPv4"),
        })
        .collect()
}

#[test]
fn failure_removes_or_inhibits() {
    let mut s = VsState::new(policy(vec![real(1, 3, false), real(2, 5, true)]));
    assert_eq!(table(&s), [(1, 3), (2, 5)]);
    assert_eq!(
        s.handle(key(1), Health::Down),
        [Transition::RealDown(key(1))]
    );
    assert_eq!(
        s.handle(key(2), Health::Down),
        [Transition::RealDown(key(2)), Transition::QuorumDown]
    );
    // 1 is removed, 2 (inhibit_on_failure) stays at weight 0; no sorry server configured.
    assert_eq!(table(&s), [(2, 0)]);
    assert_eq!(
        s.handle(key(2), Health::Down),
        [],
        "repeated verdicts are no transitions"
    );
    assert_eq!(
        s.handle(key(2), Health::Up),
        [Transition::RealUp(key(2)), Transition::QuorumUp]
    );
    assert_eq!(table(&s), [(2, 5)]);
}

#[test]
fn quorum_hysteresis_swaps_sorry_server() {
    let mut p = policy((1..=4).map(|i| real(i, 1, i == 4)).collect());
    p.quorum = 3;
    p.hysteresis = 1;
    p.sorry_server = Some(sorry());
    let mut s = VsState::new(p);
    assert!(s.quorum_up());
    // Lost only below quorum - hysteresis = 2.
    s.handle(key(1), Health::Down);
    s.handle(key(2), Health::Down);
    assert_eq!((s.alive_weight(), s.quorum_up()), (2, true));
    assert_eq!(table(&s), [(3, 1), (4, 1)]);
    assert_eq!(
        s.handle(key(3), Health::Down),
        [Transition::RealDown(key(3)), Transition::QuorumDown]
    );
    // Sorry server in; real servers out, the inhibit one at weight 0 although it is alive.
    assert_eq!(table(&s), [(4, 0), (9, 1)]);
    // Regained only at quorum + hysteresis = 4.
    s.handle(key(1), Health::Up);
    s.handle(key(2), Health::Up);
    assert_eq!((s.alive_weight(), s.quorum_up()), (3, false));
    assert_eq!(table(&s), [(4, 0), (9, 1)]);
    assert_eq!(
        s.handle(key(3), Health::Up),
        [Transition::RealUp(key(3)), Transition::QuorumUp]
    );
    assert_eq!(table(&s), [(1, 1), (2, 1), (3, 1), (4, 1)]);
}

#[test]
fn alpha_starts_down_until_first_success() {
    let mut p = policy(vec![real(1, 2, false), real(2, 2, true)]);
    p.alpha = true;
    p.sorry_server = Some(sorry());
    p.sorry_server_inhibit = true;
    let mut s = VsState::new(p.clone());
    assert!(!s.quorum_up());
    assert_eq!(s.is_alive(&key(1)), Some(false));
    assert_eq!(table(&s), [(2, 0), (9, 1)]);
    assert_eq!(
        s.handle(key(1), Health::Up),
        [Transition::RealUp(key(1)), Transition::QuorumUp]
    );
    // Sorry server stays in at weight 0 (sorry_server_inhibit).
    assert_eq!(table(&s), [(1, 2), (2, 0), (9, 0)]);

    p.alpha = false;
    let s = VsState::new(p);
    assert!(s.quorum_up());
    assert_eq!(table(&s), [(1, 2), (2, 2), (9, 0)]);
}

#[test]
fn dynamic_weight_counts_towards_quorum() {
    let mut p = policy(vec![real(1, 2, false), real(2, 2, false)]);
    p.quorum = 3;
    let mut s = VsState::new(p);
    assert!(s.quorum_up());
    assert_eq!(
        s.handle(key(1), Health::Weight(0)),
        [Transition::QuorumDown]
    );
    assert_eq!(
        table(&s),
        [(1, 0), (2, 2)],
        "alive at weight 0 is still in the table"
    );
    assert_eq!(s.handle(key(1), Health::Weight(7)), [Transition::QuorumUp]);
    assert_eq!(table(&s), [(1, 7), (2, 2)]);
    assert_eq!(
        s.handle(key(99), Health::Down),
        [],
        "unknown servers are ignored"
    );
}

#[test]
fn omega_removes_the_service_at_shutdown() {
    let mut p = policy(vec![real(1, 1, false), real(2, 1, false)]);
    let mut s = VsState::new(p.clone());
    s.handle(key(2), Health::Down);
    let desired = s.desired();
    let out = s.shutdown();
    assert_eq!(
        out.keep,
        Some(desired),
        "without omega the service stays as it is"
    );
    assert!(out.transitions.is_empty());
    assert!(s.quorum_up());
    p.omega = true;
    let mut s = VsState::new(p);
    s.handle(key(2), Health::Down);
    let out = s.shutdown();
    assert_eq!(out.keep, None);
    assert_eq!(
        out.transitions,
        [Transition::RealDown(key(1)), Transition::QuorumDown]
    );
    assert_eq!(s.alive_weight(), 0);
}

#[test]
fn quorum_zero_does_not_flap_on_zero_weight() {
    let mut p = policy(vec![real(1, 1, false)]);
    p.quorum = 0;
    let mut s = VsState::new(p);
    assert_eq!(
        s.handle(key(1), Health::Down),
        [Transition::RealDown(key(1)), Transition::QuorumDown]
    );
    assert!(!s.quorum_up());
    assert_eq!(s.handle(key(1), Health::Weight(3)), []);
    assert!(!s.quorum_up());
}

#[test]
fn reload_keeps_health_and_quorum() {
    let mut p = policy(vec![
        real(1, 2, false),
        real(2, 2, false),
        real(3, 2, false),
    ]);
    p.quorum = 4;
    p.hysteresis = 1;
    p.sorry_server = Some(sorry());
    let mut s = VsState::new(p.clone());
    s.handle(key(1), Health::Down);
    s.handle(key(2), Health::Weight(9));
    // Reload: real 3 removed, real 4 added (alpha: starts down), real 2 unchanged, real 1's
    // configured weight changed.
    p.alpha = true;
    p.reals = vec![real(1, 5, false), real(2, 2, false), real(4, 2, false)];
    assert_eq!(s.reconfigure(p.clone()), []);
    assert_eq!(
        s.is_alive(&key(1)),
        Some(false),
        "still down after the reload"
    );
    assert_eq!(s.is_alive(&key(4)), Some(false), "alpha");
    assert_eq!(s.is_alive(&key(3)), None);
    assert_eq!(
        table(&s),
        [(2, 9)],
        "dynamic weight kept: configured weight unchanged"
    );
    // Dropping real 2 leaves no alive weight: quorum lost, sorry server in.
    p.reals.remove(1);
    assert_eq!(s.reconfigure(p), [Transition::QuorumDown]);
    assert_eq!(table(&s), [(9, 1)]);
    assert_eq!(
        s.handle(key(1), Health::Up),
        [Transition::RealUp(key(1)), Transition::QuorumUp]
    );
    assert_eq!(table(&s), [(1, 5)], "the new configured weight");
}

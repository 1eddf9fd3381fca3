//! Sync groups (keepalived `vrrp_sync_group` semantics; see `vigil_vrrp::sync_group`).

use std::time::Instant;

use vigil_vrrp::instance::{Action, Input, Instance, Reason, State};
use vigil_vrrp::packet::Version;
use vigil_vrrp::sync_group::{SyncGroup, SyncGroupError};

use super::support::{SECOND, advert, config, epoch, from};

/// Two members (priorities `p0`, `p1`), started, actions drained.
fn group(p0: u8, p1: u8, t0: Instant) -> SyncGroup {
    let members = [(p0, 1), (p1, 2)]
        .into_iter()
        .map(|(p, host)| {
            let mut cfg = config(Version::V3, p, host);
            cfg.vrid = host;
            Instance::new(cfg, t0).expect("valid")
        })
        .collect();
    let mut g = SyncGroup::new("g", members);
    for m in 0..2 {
        g.handle(t0, m, Input::Startup).expect("startup");
    }
    drain(&mut g);
    g
}

fn drain(g: &mut SyncGroup) -> Vec<(usize, Action)> {
    std::iter::from_fn(|| g.poll_action()).collect()
}

fn states(g: &SyncGroup) -> Vec<State> {
    g.members().iter().map(Instance::state).collect()
}

/// Fires group timers at their exact deadlines up to `now`.
fn advance(g: &mut SyncGroup, now: Instant) {
    while let Some(at) = g.poll_timeout().filter(|&at| at <= now) {
        g.handle_timeout(at);
    }
}

/// An advert for member `m`'s VRID from 10.0.0.9.
fn peer_advert(m: usize, priority: u8) -> Input {
    let mut a = advert(Version::V3, priority, 100);
    a.vrid = m as u8 + 1;
    a.addresses = vec![super::support::vip()];
    from(9, a)
}

#[test]
fn first_member_to_become_master_promotes_the_others() {
    let t0 = epoch();
    // Member 0 (priority 200) has the shorter Master_Down_Interval.
    let mut g = group(200, 50, t0);
    let first = g.poll_timeout().expect("armed");
    g.handle_timeout(first);
    assert_eq!(states(&g), [State::Master, State::Master]);
    let actions = drain(&mut g);
    assert!(actions.contains(&(
        1,
        Action::StateChanged {
            from: State::Backup,
            to: State::Master,
            reason: Reason::SyncGroup
        }
    )));
    assert!(actions.contains(&(1, Action::AddVips(vec![super::support::vip()]))));
}

#[test]
fn a_member_beaten_on_its_link_takes_the_group_to_backup() {
    let t0 = epoch();
    let mut g = group(100, 100, t0);
    advance(&mut g, t0 + 4 * SECOND);
    assert_eq!(states(&g), [State::Master, State::Master]);
    g.handle(t0 + 4 * SECOND, 1, peer_advert(1, 200))
        .expect("advert");
    assert_eq!(states(&g), [State::Backup, State::Backup]);
}

#[test]
fn a_fault_in_one_member_faults_the_group_until_it_clears() {
    let t0 = epoch();
    let mut g = group(100, 100, t0);
    advance(&mut g, t0 + 4 * SECOND);
    drain(&mut g);
    let now = t0 + 5 * SECOND;
    g.handle(now, 0, Input::Fault { active: true })
        .expect("fault");
    assert_eq!(states(&g), [State::Fault, State::Fault]);
    let actions = drain(&mut g);
    assert!(actions.contains(&(1, Action::RemoveVips(vec![super::support::vip()]))));
    g.handle(now, 0, Input::Fault { active: false })
        .expect("clear");
    assert_eq!(states(&g), [State::Backup, State::Backup]);
}

#[test]
fn a_member_deferring_to_a_live_master_holds_the_others_back() {
    let t0 = epoch();
    let mut g = group(100, 100, t0);
    // Member 0 hears a better master every second; member 1's link is silent.
    for s in 0..10 {
        let now = t0 + s * SECOND;
        advance(&mut g, now);
        g.handle(now, 0, peer_advert(0, 200)).expect("advert");
        assert_eq!(states(&g), [State::Backup, State::Backup], "at {s} s");
    }
    // The better master leaves: member 0 takes over after Skew_Time and brings member 1 along.
    let now = t0 + 10 * SECOND;
    g.handle(now, 0, peer_advert(0, 0)).expect("advert");
    advance(&mut g, now + SECOND);
    assert_eq!(states(&g), [State::Master, State::Master]);
}

#[test]
fn bad_member_index_and_bad_inputs_are_errors() {
    let t0 = epoch();
    let mut g = group(100, 100, t0);
    assert!(matches!(
        g.handle(t0, 5, Input::Startup),
        Err(SyncGroupError::NoMember { member: 5, .. })
    ));
    assert!(matches!(
        g.handle(t0, 0, Input::SetPriority(0)),
        Err(SyncGroupError::Input { .. })
    ));
}

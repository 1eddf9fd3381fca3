//! Master rules (RFC 9568 §6.4.3), shutdown, gratuitous ARP timers and counters.

use std::time::Duration;

use vigil_vrrp::instance::{Action, Input, Reason, State};
use vigil_vrrp::packet::Version;

use super::support::{
    SECOND, advance, advert, config, drain, epoch, feed, from, ip, master, sent_priorities,
    transitions, vip,
};

#[test]
fn master_advertises_every_interval() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let actions = advance(&mut vi, at + 3 * SECOND);
    assert_eq!(sent_priorities(&actions), [100, 100, 100]);
    assert_eq!(vi.poll_timeout(), Some(at + 4 * SECOND));
}

#[test]
fn higher_priority_advert_sends_the_master_to_backup() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let now = at + Duration::from_millis(300);
    let actions = feed(&mut vi, now, from(2, advert(Version::V3, 150, 200)));
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Backup, Reason::Preempted)]
    );
    assert!(actions.contains(&Action::RemoveVips(vec![vip()])));
    assert!(sent_priorities(&actions).is_empty());
    // The new Master_Adver_Interval (2 s, v3) drives Master_Down_Timer.
    assert_eq!(
        vi.master_down_interval(),
        6 * SECOND + Duration::from_micros(1_218_750)
    );
    assert_eq!(vi.poll_timeout(), Some(now + vi.master_down_interval()));
    assert_eq!(vi.master_address(), Some(ip(2)));
}

#[test]
fn equal_priority_tie_break_favours_the_higher_address() {
    let t0 = epoch();
    // We are 10.0.0.5: an equal priority from 10.0.0.9 wins …
    let (mut vi, at) = master(config(Version::V3, 100, 5), t0);
    let actions = feed(&mut vi, at, from(9, advert(Version::V3, 100, 100)));
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Backup, Reason::Preempted)]
    );
    // … one from 10.0.0.3 loses, and the master asserts itself at once.
    let (mut vi, at) = master(config(Version::V3, 100, 5), t0);
    let now = at + Duration::from_millis(400);
    let actions = feed(&mut vi, now, from(3, advert(Version::V3, 100, 100)));
    assert!(transitions(&actions).is_empty());
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(vi.poll_timeout(), Some(now + SECOND));
}

#[test]
fn master_hearing_a_lower_priority_advertises_at_once() {
    // RFC 9568 §6.4.3: discard, then send an advert immediately and reset Adver_Timer.
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 200, 1), t0);
    let now = at + Duration::from_millis(250);
    let actions = feed(&mut vi, now, from(2, advert(Version::V3, 100, 100)));
    assert_eq!(vi.state(), State::Master);
    assert_eq!(sent_priorities(&actions), [200]);
    assert_eq!(vi.poll_timeout(), Some(now + SECOND));
}

#[test]
fn master_hearing_priority_zero_advertises_at_once() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let now = at + Duration::from_millis(10);
    let actions = feed(&mut vi, now, from(2, advert(Version::V3, 0, 100)));
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn shutdown_sends_priority_zero_and_drops_the_vips() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let actions = feed(&mut vi, at + SECOND / 2, Input::Shutdown);
    assert_eq!(
        actions,
        [
            Action::StateChanged {
                from: State::Master,
                to: State::Initialize,
                reason: Reason::Shutdown
            },
            Action::SendAdvert(super::support::advert(Version::V3, 0, 100)),
            Action::RemoveVips(vec![vip()]),
        ]
    );
    assert_eq!(vi.poll_timeout(), None);
    assert_eq!(vi.stats().priority_zero_tx, 1);
    // A backup shuts down silently.
    let mut backup = super::support::started(config(Version::V3, 100, 2), t0);
    let actions = feed(&mut backup, t0, Input::Shutdown);
    assert!(sent_priorities(&actions).is_empty());
    assert_eq!(backup.state(), State::Initialize);
}

#[test]
fn master_priority_change_is_advertised_at_once() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let actions = feed(&mut vi, at + SECOND / 3, Input::SetPriority(50));
    assert_eq!(sent_priorities(&actions), [50]);
    assert!(
        vi.handle(at, Input::SetPriority(0)).is_err(),
        "priority 0 is reserved"
    );
    assert_eq!(vi.effective_priority(), 50);
}

#[test]
fn gratuitous_bursts_repeat_after_the_delay_and_refresh_periodically() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 255, 1);
    cfg.garp.repeat = 3;
    cfg.garp.delay = Some(2 * SECOND);
    cfg.garp.refresh = Some(10 * SECOND);
    cfg.garp.refresh_repeat = 1;
    let mut vi = vigil_vrrp::instance::Instance::new(cfg, t0).expect("valid");
    let mut actions = feed(&mut vi, t0, Input::Startup);
    actions.extend(advance(&mut vi, t0 + 25 * SECOND));
    let bursts: Vec<u32> = actions
        .iter()
        .filter_map(|a| match a {
            Action::SendGratuitous { count, .. } => Some(*count),
            _ => None,
        })
        .collect();
    // At 0 s (3), at 2 s (3), then refreshes at 10 s and 20 s (1 each).
    assert_eq!(bursts, [3, 3, 1, 1]);
    assert_eq!(sent_priorities(&actions).len(), 26, "adverts at 0..=25 s");
}

#[test]
fn counters_track_traffic_transitions_and_master() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    advance(&mut vi, at + 2 * SECOND);
    feed(
        &mut vi,
        at + 2 * SECOND,
        from(2, advert(Version::V3, 200, 100)),
    );
    let stats = vi.stats().clone();
    assert_eq!(stats.adverts_tx, 3);
    assert_eq!(stats.adverts_rx, 1);
    assert_eq!(stats.transitions, 3, "initialize→backup→master→backup");
    assert_eq!(stats.became_master, 1);
    assert_eq!(stats.last_transition, Some(at + 2 * SECOND));
    assert_eq!(vi.master_address(), Some(ip(2)));
    assert!(drain(&mut vi).is_empty());
}

#[test]
fn accept_mode_is_carried_for_the_daemon() {
    let t0 = epoch();
    let (vi, _) = master(config(Version::V3, 100, 1), t0);
    assert!(!vi.accept_mode());
    let mut cfg = config(Version::V3, 100, 1);
    cfg.accept_mode = true;
    let (vi, _) = master(cfg, t0);
    assert!(vi.accept_mode());
}

#[test]
fn time_going_backwards_is_treated_as_the_latest_time_seen() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let later = at + SECOND / 2;
    feed(
        &mut vi,
        later,
        super::support::from(2, advert(Version::V3, 50, 100)),
    );
    // An input stamped earlier than one already handled must not schedule into the past.
    feed(
        &mut vi,
        t0,
        super::support::from(2, advert(Version::V3, 50, 100)),
    );
    assert_eq!(vi.poll_timeout(), Some(later + SECOND));
}

//! Initialize (RFC 9568 §6.4.1) and Backup (§6.4.2) rules, and the timer formulas (§6.1).

use std::time::Duration;

use vigil_vrrp::instance::{
    Action, Input, Instance, Reason, State, master_down_interval, skew_time,
};
use vigil_vrrp::packet::Version;

use super::support::{
    SECOND, advance, advert, config, drain, epoch, feed, from, ip, sent_priorities, started,
    transitions, vip,
};

#[test]
fn skew_and_master_down_follow_rfc_9568_for_v3() {
    // ((256 − 100) · 100 cs) / 256 = 60.9375 cs.
    assert_eq!(
        skew_time(Version::V3, 100, SECOND),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down_interval(Version::V3, 100, SECOND),
        Duration::from_micros(3_609_375)
    );
    // 10 ms intervals keep a distinct skew per priority (no rounding to whole centiseconds).
    let ten_ms = Duration::from_millis(10);
    assert_eq!(
        skew_time(Version::V3, 1, ten_ms),
        Duration::from_nanos(9_960_937)
    );
    assert!(skew_time(Version::V3, 254, ten_ms) < skew_time(Version::V3, 253, ten_ms));
    assert_eq!(
        skew_time(Version::V3, 255, ten_ms),
        Duration::from_nanos(39_062)
    );
}

#[test]
fn v2_skew_is_a_fraction_of_one_second_regardless_of_interval() {
    // RFC 3768 §6.1: Skew_Time = (256 − Priority) / 256 seconds.
    let three = Duration::from_secs(3);
    assert_eq!(
        skew_time(Version::V2, 100, three),
        Duration::from_micros(609_375)
    );
    assert_eq!(
        master_down_interval(Version::V2, 100, three),
        Duration::from_micros(9_609_375)
    );
}

#[test]
fn startup_below_255_goes_backup_and_arms_master_down() {
    let t0 = epoch();
    let mut vi = Instance::new(config(Version::V3, 100, 1), t0).expect("valid");
    assert_eq!(vi.state(), State::Initialize);
    assert_eq!(vi.poll_timeout(), None);
    let actions = feed(&mut vi, t0, Input::Startup);
    assert_eq!(
        transitions(&actions),
        [(State::Initialize, State::Backup, Reason::Startup)]
    );
    assert!(sent_priorities(&actions).is_empty(), "a backup is silent");
    assert_eq!(
        vi.poll_timeout(),
        Some(t0 + Duration::from_micros(3_609_375))
    );
}

#[test]
fn address_owner_goes_straight_to_master() {
    let t0 = epoch();
    let mut vi = Instance::new(config(Version::V3, 255, 1), t0).expect("valid");
    let actions = feed(&mut vi, t0, Input::Startup);
    assert_eq!(
        actions,
        [
            Action::StateChanged {
                from: State::Initialize,
                to: State::Master,
                reason: Reason::AddressOwner
            },
            Action::SendAdvert(advert(Version::V3, 255, 100)),
            Action::AddVips(vec![vip()]),
            Action::SendGratuitous {
                addresses: vec![vip()],
                count: 5
            },
        ]
    );
    assert!(
        vi.is_owner() && vi.accept_mode(),
        "the owner always accepts"
    );
    // Adver_Timer = Advertisement_Interval; the second GARP burst waits 5 s.
    assert_eq!(vi.poll_timeout(), Some(t0 + SECOND));
}

#[test]
fn backup_becomes_master_when_master_down_fires() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    let deadline = vi.poll_timeout().expect("armed");
    assert_eq!(deadline, t0 + vi.master_down_interval());
    vi.handle_timeout(
        t0 + vi
            .master_down_interval()
            .saturating_sub(Duration::from_nanos(1)),
    );
    assert_eq!(vi.state(), State::Backup, "not before the deadline");
    vi.handle_timeout(deadline);
    let actions = drain(&mut vi);
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Master, Reason::MasterDown)]
    );
    assert_eq!(sent_priorities(&actions), [100]);
    assert!(actions.contains(&Action::AddVips(vec![vip()])));
    assert_eq!(
        vi.poll_timeout(),
        Some(deadline + SECOND),
        "Adver_Timer armed"
    );
}

#[test]
fn advert_from_a_better_master_resets_master_down() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    let at = t0 + 2 * SECOND;
    assert!(feed(&mut vi, at, from(2, advert(Version::V3, 150, 100))).is_empty());
    assert_eq!(vi.poll_timeout(), Some(at + vi.master_down_interval()));
    assert_eq!(vi.master_address(), Some(ip(2)));
    assert!(vi.yields_to_master());
}

#[test]
fn v3_backup_adopts_the_masters_interval() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    let actions = feed(&mut vi, t0, from(2, advert(Version::V3, 150, 50)));
    // The mismatch is only logged (RFC 9568 §7.1) …
    assert!(matches!(actions.as_slice(), [Action::Mismatch { .. }]));
    assert_eq!(vi.stats().interval_mismatches, 1);
    // … and Master_Down_Interval now uses 0.5 s: 1.5 s + (156 · 0.5 s)/256.
    let expected = Duration::from_millis(1500) + Duration::from_nanos(304_687_500);
    assert_eq!(vi.master_down_interval(), expected);
    assert_eq!(vi.poll_timeout(), Some(t0 + expected));
}

#[test]
fn priority_zero_makes_the_backup_wait_only_skew() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    feed(&mut vi, t0, from(2, advert(Version::V3, 150, 100)));
    let at = t0 + SECOND;
    feed(&mut vi, at, from(2, advert(Version::V3, 0, 100)));
    assert_eq!(
        vi.poll_timeout(),
        Some(at + skew_time(Version::V3, 100, SECOND))
    );
    assert_eq!(vi.stats().priority_zero_rx, 1);
    assert_eq!(vi.master_address(), None);
}

#[test]
fn preempting_backup_ignores_a_lower_master_and_takes_over() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 200, 1), t0);
    let armed = vi.poll_timeout();
    feed(&mut vi, t0 + SECOND, from(2, advert(Version::V3, 100, 100)));
    assert_eq!(
        vi.poll_timeout(),
        armed,
        "lower-priority advert discarded, timer not reset"
    );
    assert!(!vi.yields_to_master());
    vi.handle_timeout(armed.expect("armed"));
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn nopreempt_backup_keeps_deferring_to_a_lower_master() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 200, 1);
    cfg.preempt = false;
    let mut vi = started(cfg, t0);
    for s in 1..20 {
        let now = t0 + s * SECOND;
        advance(&mut vi, now);
        feed(&mut vi, now, from(2, advert(Version::V3, 100, 100)));
        assert_eq!(vi.state(), State::Backup, "at {s} s");
    }
    assert!(vi.yields_to_master());
}

#[test]
fn preempt_delay_defers_preemption_for_the_configured_time() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 200, 1);
    cfg.preempt_delay = 10 * SECOND;
    let mut vi = started(cfg, t0);
    // Lower-priority adverts every second from t0+1s: accepted until t0+11s, then discarded.
    for s in 1..=30 {
        let now = t0 + s * SECOND;
        advance(&mut vi, now);
        if vi.state() == State::Master {
            // The last accepted advert was at 10 s; Master_Down_Interval at priority 200 is
            // 3 s + 56/256 s, so the takeover happens between 13 s and 14 s.
            assert_eq!(s, 14);
            let takeover = vi.stats().last_transition.expect("transitioned");
            assert_eq!(takeover, t0 + 10 * SECOND + vi.master_down_interval());
            return;
        }
        feed(&mut vi, now, from(2, advert(Version::V3, 100, 100)));
    }
    panic!("never preempted");
}

#[test]
fn address_owner_preempts_even_with_preempt_off() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.preempt = false;
    let mut vi = started(cfg, t0);
    feed(&mut vi, t0, Input::SetPriority(255));
    let armed = vi.poll_timeout();
    feed(&mut vi, t0 + SECOND, from(2, advert(Version::V3, 200, 100)));
    assert_eq!(
        vi.poll_timeout(),
        armed,
        "the owner discards a non-owner master's advert"
    );
    vi.handle_timeout(armed.expect("armed"));
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.effective_priority(), 255);
}

#[test]
fn equal_priority_advert_is_accepted_by_a_backup() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 9), t0);
    let at = t0 + SECOND;
    // RFC 9568 §6.4.2 defers on "greater than or equal"; the address tie-break is for masters.
    feed(&mut vi, at, from(2, advert(Version::V3, 100, 100)));
    assert_eq!(vi.poll_timeout(), Some(at + vi.master_down_interval()));
}

#[test]
fn a_stalled_backup_that_reads_its_queued_advert_before_its_timer_stays_backup() {
    // The daemon's order after a scheduling stall (daemon/src/vrrp/task.rs): the master's
    // advert sat in the socket while the Master_Down_Timer expired; handled first, at the late
    // `now`, it restarts the timer, and nothing is due any more.
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    feed(&mut vi, t0, from(2, advert(Version::V3, 150, 100)));
    let deadline = vi.poll_timeout().expect("master-down armed");
    let now = deadline + SECOND;
    let actions = feed(&mut vi, now, from(2, advert(Version::V3, 150, 100)));
    vi.handle_timeout(now);
    let actions: Vec<Action> = actions.into_iter().chain(drain(&mut vi)).collect();
    assert_eq!(transitions(&actions), []);
    assert_eq!(vi.state(), State::Backup);
    assert!(vi.poll_timeout().is_some_and(|at| at > now));

    // The other order is the false failover the daemon avoids: master for a moment, then
    // preempted by the advert that was already there.
    let mut vi = started(config(Version::V3, 100, 1), t0);
    feed(&mut vi, t0, from(2, advert(Version::V3, 150, 100)));
    vi.handle_timeout(now);
    let mut actions = drain(&mut vi);
    actions.extend(feed(&mut vi, now, from(2, advert(Version::V3, 150, 100))));
    assert_eq!(
        transitions(&actions),
        [
            (State::Backup, State::Master, Reason::MasterDown),
            (State::Master, State::Backup, Reason::Preempted)
        ]
    );
}

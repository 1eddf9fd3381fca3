//! Fault state and tracked objects (keepalived semantics; see `vigil_vrrp::track`).

use vigil_vrrp::config::TrackConfig;
use vigil_vrrp::instance::{Action, Input, InputError, Instance, Reason, State};
use vigil_vrrp::packet::Version;

use super::support::{
    SECOND, advert, config, drain, epoch, feed, master, sent_priorities, started, transitions, vip,
};

fn track(name: &str, weight: i32) -> TrackConfig {
    TrackConfig {
        name: name.into(),
        weight,
        up: true,
    }
}

fn down(name: &str) -> Input {
    Input::Track {
        name: name.into(),
        up: false,
    }
}

fn up(name: &str) -> Input {
    Input::Track {
        name: name.into(),
        up: true,
    }
}

#[test]
fn fault_takes_a_master_down_with_priority_zero_and_clears_to_backup() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let actions = feed(&mut vi, at, Input::Fault { active: true });
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Fault, Reason::Fault)]
    );
    assert_eq!(
        sent_priorities(&actions),
        [0],
        "backups take over after skew, not master-down"
    );
    assert!(actions.contains(&Action::RemoveVips(vec![vip()])));
    assert_eq!(vi.poll_timeout(), None, "Fault is silent");
    let later = at + 5 * SECOND;
    let actions = feed(&mut vi, later, Input::Fault { active: false });
    assert_eq!(
        transitions(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
    assert_eq!(vi.poll_timeout(), Some(later + vi.master_down_interval()));
}

#[test]
fn fault_present_at_startup_enters_fault_directly() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 255, 1);
    cfg.tracks = vec![TrackConfig {
        name: "eth0".into(),
        weight: 0,
        up: false,
    }];
    let mut vi = Instance::new(cfg, t0).expect("valid");
    let actions = feed(&mut vi, t0, Input::Startup);
    assert_eq!(
        transitions(&actions),
        [(State::Initialize, State::Fault, Reason::Fault)]
    );
    // The owner leaves Fault straight to Master.
    let actions = feed(&mut vi, t0, up("eth0"));
    assert_eq!(
        transitions(&actions),
        [(State::Fault, State::Master, Reason::FaultCleared)]
    );
}

#[test]
fn weight_zero_object_down_is_a_fault() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.tracks = vec![track("eth0", 0)];
    let mut vi = started(cfg, t0);
    let actions = feed(&mut vi, t0, down("eth0"));
    assert_eq!(
        transitions(&actions),
        [(State::Backup, State::Fault, Reason::Fault)]
    );
    assert_eq!(vi.effective_priority(), 100);
    // The interface fault and the track fault are independent sources.
    feed(&mut vi, t0, Input::Fault { active: true });
    feed(&mut vi, t0, up("eth0"));
    assert_eq!(vi.state(), State::Fault);
    feed(&mut vi, t0, Input::Fault { active: false });
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn weights_move_the_advertised_priority() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.tracks = vec![track("chk", 20), track("uplink", -50)];
    let (mut vi, at) = master(cfg, t0);
    assert_eq!(
        vi.effective_priority(),
        120,
        "positive weight counts while up"
    );
    let actions = feed(&mut vi, at, down("uplink"));
    assert_eq!(sent_priorities(&actions), [70], "advertised at once");
    let actions = feed(&mut vi, at, down("chk"));
    assert_eq!(sent_priorities(&actions), [50]);
    let actions = feed(
        &mut vi,
        at,
        Input::TrackWeight {
            name: "uplink".into(),
            weight: -200,
        },
    );
    assert_eq!(sent_priorities(&actions), [1], "clamped to 1, never 0");
    // An unchanged priority sends nothing extra.
    assert!(feed(&mut vi, at, down("chk")).is_empty());
}

#[test]
fn a_new_weight_moves_a_masters_priority_in_place_without_a_transition() {
    // A shared-config push changes a weight on a running master: no VIP flap.
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.tracks = vec![track("chk", 10)];
    let (mut vi, at) = master(cfg, t0);
    assert_eq!(vi.effective_priority(), 110);
    let actions = feed(
        &mut vi,
        at,
        Input::TrackWeight {
            name: "chk".into(),
            weight: 40,
        },
    );
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.effective_priority(), 140);
    assert_eq!(sent_priorities(&actions), [140], "advertised at once");
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::RemoveVips(_) | Action::AddVips(_))),
        "the VIPs stay: {actions:?}"
    );
    // Later up/down reports use the new weight.
    let actions = feed(&mut vi, at, down("chk"));
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn tracking_cannot_raise_above_254_and_the_owner_stays_255() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 250, 1);
    cfg.tracks = vec![track("chk", 100)];
    let vi = started(cfg, t0);
    assert_eq!(vi.effective_priority(), 254);
    let mut cfg = config(Version::V3, 255, 1);
    cfg.tracks = vec![TrackConfig {
        name: "uplink".into(),
        weight: -100,
        up: false,
    }];
    let vi = started(cfg, t0);
    assert_eq!(vi.effective_priority(), 255);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn tracked_priority_drop_lets_a_backup_preempt() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 150, 2);
    cfg.tracks = vec![track("uplink", -100)];
    let mut vi = started(cfg, t0);
    // While up, 150 beats the peer's 120 …
    let armed = vi.poll_timeout();
    feed(
        &mut vi,
        t0 + SECOND,
        super::support::from(3, advert(Version::V3, 120, 100)),
    );
    assert_eq!(vi.poll_timeout(), armed);
    // … once down, 50 defers to it.
    feed(&mut vi, t0 + SECOND, down("uplink"));
    feed(
        &mut vi,
        t0 + 2 * SECOND,
        super::support::from(3, advert(Version::V3, 120, 100)),
    );
    assert_eq!(
        vi.poll_timeout(),
        Some(t0 + 2 * SECOND + vi.master_down_interval())
    );
    assert!(vi.yields_to_master());
}

#[test]
fn unknown_track_is_refused_without_side_effects() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    let err = vi.handle(t0, down("nope")).expect_err("unknown");
    assert!(matches!(err, InputError::Track { .. }));
    assert!(drain(&mut vi).is_empty());
    assert_eq!(vi.state(), State::Backup);
}

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

fn set_tracks(tracks: Vec<TrackConfig>) -> Input {
    Input::SetTracks {
        tracks,
        reset: Vec::new(),
    }
}

fn vip_changes(actions: &[Action]) -> usize {
    actions
        .iter()
        .filter(|a| matches!(a, Action::RemoveVips(_) | Action::AddVips(_)))
        .count()
}

#[test]
fn a_new_track_set_applies_to_a_running_master_without_a_transition() {
    // A reload adds a track script and re-weighs a kept one on a master: no VIP flap.
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.tracks = vec![track("chk", -10), track("gone", -30)];
    let (mut vi, at) = master(cfg, t0);
    feed(&mut vi, at, down("chk"));
    assert_eq!(vi.effective_priority(), 90);
    let actions = feed(
        &mut vi,
        at,
        set_tracks(vec![track("chk", -20), track("new", 0)]),
    );
    assert_eq!(vi.state(), State::Master);
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert_eq!(vip_changes(&actions), 0, "the VIPs stay: {actions:?}");
    // `chk` kept its reported "down" and took its new weight; the new weight-0 track starts up
    // (no fault before it has failed); `gone` no longer counts. Advertised at once.
    assert_eq!(vi.track_is_up("chk"), Some(false));
    assert_eq!(vi.track_is_up("new"), Some(true));
    assert_eq!(vi.track_is_up("gone"), None);
    assert_eq!(sent_priorities(&actions), [80]);
    // The new track works like any other: its failure faults the master.
    let actions = feed(&mut vi, at + SECOND, down("new"));
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Fault, Reason::Fault)]
    );
    assert_eq!(sent_priorities(&actions), [0]);
    // A report for a removed track is refused.
    assert!(matches!(
        vi.handle(at + SECOND, down("gone")),
        Err(InputError::Track { .. })
    ));
}

#[test]
fn an_unchanged_priority_sends_nothing_and_a_reset_name_starts_over() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.tracks = vec![track("file", -10)];
    let (mut vi, at) = master(cfg, t0);
    feed(&mut vi, at, down("file"));
    // Same set, same weights: nothing to say.
    assert!(feed(&mut vi, at, set_tracks(vec![track("file", -10)])).is_empty());
    // The file's source restarted and read it again: its status is what the new set says.
    let actions = feed(
        &mut vi,
        at,
        Input::SetTracks {
            tracks: vec![track("file", -10)],
            reset: vec!["file".into()],
        },
    );
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(vi.track_is_up("file"), Some(true));
}

#[test]
fn a_new_track_that_starts_down_lowers_a_master_which_then_yields_to_a_better_peer() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let mut maintenance = track("file:/run/maint", -60);
    maintenance.up = false;
    let actions = feed(&mut vi, at, set_tracks(vec![maintenance]));
    assert_eq!(sent_priorities(&actions), [40], "advertised at once");
    assert_eq!(vi.state(), State::Master);
    // RFC 9568 §6.4.3: the peer at 90 now beats us.
    let actions = feed(
        &mut vi,
        at + SECOND,
        super::support::from(2, advert(Version::V3, 90, 100)),
    );
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Backup, Reason::Preempted)]
    );
}

#[test]
fn a_new_weight_zero_track_that_starts_down_faults_and_a_bad_set_changes_nothing() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let err = vi
        .handle(at, set_tracks(vec![track("a", 10), track("a", 20)]))
        .expect_err("duplicate names");
    assert!(matches!(err, InputError::Config(_)), "{err:?}");
    let err = vi
        .handle(at, set_tracks(vec![track("a", 300)]))
        .expect_err("weight out of range");
    assert!(matches!(err, InputError::Config(_)), "{err:?}");
    assert!(drain(&mut vi).is_empty());
    assert_eq!(vi.track_is_up("a"), None);
    let mut link = track("interface:eth1", 0);
    link.up = false;
    let actions = feed(&mut vi, at, set_tracks(vec![link]));
    assert_eq!(
        transitions(&actions),
        [(State::Master, State::Fault, Reason::Fault)]
    );
    // Removing it again clears the fault.
    let actions = feed(&mut vi, at + SECOND, set_tracks(Vec::new()));
    assert_eq!(
        transitions(&actions),
        [(State::Fault, State::Backup, Reason::FaultCleared)]
    );
}

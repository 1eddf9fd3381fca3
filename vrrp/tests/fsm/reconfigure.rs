//! Reconfiguring a running instance (a reload): advert interval and address list change in
//! place, without a transition and without touching the addresses that stay.

use vigil_vrrp::instance::{Action, Input, InputError, State};
use vigil_vrrp::packet::Version;

use super::support::{
    SECOND, advance, advert, config, epoch, feed, from, ip, master, sent_priorities, started,
    transitions, vip,
};

fn adverts(actions: &[Action]) -> Vec<(u16, Vec<std::net::IpAddr>)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(ad) => Some((ad.max_advert_int, ad.addresses.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_master_advertises_a_new_interval_at_once_and_keeps_to_it() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let now = at + SECOND / 4;
    let actions = feed(&mut vi, now, Input::SetAdvertInterval(50));
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert_eq!(adverts(&actions), [(50, vec![vip()])]);
    // No VIP is touched.
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::AddVips(_) | Action::RemoveVips(_))),
        "{actions:?}"
    );
    assert_eq!(vi.poll_timeout(), Some(now + SECOND / 2));
    let actions = advance(&mut vi, now + 2 * SECOND);
    assert_eq!(sent_priorities(&actions).len(), 4);
    assert_eq!(vi.state(), State::Master);
}

#[test]
fn a_v3_backup_keeps_its_masters_interval_and_adopts_the_new_one_from_its_adverts() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    feed(&mut vi, t0, from(2, advert(Version::V3, 150, 100)));
    let before = vi.master_down_interval();
    let actions = feed(&mut vi, t0, Input::SetAdvertInterval(20));
    assert!(actions.iter().all(|a| !matches!(a, Action::SendAdvert(_))));
    assert_eq!(
        vi.master_down_interval(),
        before,
        "the master's interval rules"
    );
    // The master is reloaded too and advertises 20 cs: the backup follows it.
    feed(
        &mut vi,
        t0 + SECOND / 10,
        from(2, advert(Version::V3, 150, 20)),
    );
    assert!(vi.master_down_interval() < SECOND);
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn an_invalid_interval_is_refused_and_changes_nothing() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V2, 100, 1), t0);
    // v2 carries whole seconds only.
    let refused = vi.handle(at, Input::SetAdvertInterval(50));
    assert!(matches!(refused, Err(InputError::Config(_))), "{refused:?}");
    assert_eq!(vi.config().advert_interval_cs, 100);
    assert!(vi.poll_action().is_none());
    assert!(matches!(
        vi.handle(at, Input::SetAdvertInterval(0)),
        Err(InputError::Config(_))
    ));
}

#[test]
fn a_master_changes_only_the_addresses_that_changed() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.addresses = vec![vip(), ip(101)];
    let (mut vi, at) = master(cfg, t0);
    let now = at + SECOND / 3;
    let actions = feed(&mut vi, now, Input::SetAddresses(vec![vip(), ip(102)]));
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    let repeat = vi.config().garp.repeat;
    assert_eq!(
        actions,
        [
            Action::RemoveVips(vec![ip(101)]),
            Action::AddVips(vec![ip(102)]),
            Action::SendGratuitous {
                addresses: vec![ip(102)],
                count: repeat
            },
            Action::SendAdvert(vigil_vrrp::packet::Advertisement {
                addresses: vec![vip(), ip(102)],
                ..advert(Version::V3, 100, 100)
            }),
        ]
    );
    assert_eq!(vi.poll_timeout(), Some(now + SECOND));
    // The same addresses in another order are no change at all.
    assert!(feed(&mut vi, now, Input::SetAddresses(vec![ip(102), vip()])).is_empty());
    // Stepping down releases the current list.
    let actions = feed(&mut vi, now, Input::Shutdown);
    assert!(
        actions.contains(&Action::RemoveVips(vec![ip(102), vip()])),
        "{actions:?}"
    );
}

#[test]
fn a_backup_only_remembers_new_addresses_and_bad_lists_are_refused() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 100, 1), t0);
    let actions = feed(&mut vi, t0, Input::SetAddresses(vec![ip(102)]));
    assert!(actions.is_empty(), "{actions:?}");
    assert_eq!(vi.config().addresses, [ip(102)]);
    // Becoming master later takes the new list.
    let actions = advance(&mut vi, t0 + 5 * SECOND);
    assert!(
        actions.contains(&Action::AddVips(vec![ip(102)])),
        "{actions:?}"
    );
    for bad in [vec![], vec!["fd00::1".parse().expect("address")]] {
        assert!(matches!(
            vi.handle(t0 + 5 * SECOND, Input::SetAddresses(bad)),
            Err(InputError::Config(_))
        ));
    }
    assert_eq!(vi.config().addresses, [ip(102)]);
}

fn options(preempt: bool, preempt_delay: std::time::Duration) -> Input {
    Input::SetOptions {
        preempt,
        preempt_delay,
        accept_mode: false,
        garp: vigil_vrrp::config::GarpConfig::default(),
    }
}

#[test]
fn preemption_settings_change_in_place_and_apply_from_the_next_advert() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 150, 1);
    cfg.preempt_delay = 10 * SECOND;
    let mut vi = started(cfg, t0);
    // A lower master: we would preempt it 10 s after its first advert.
    let mut now = t0;
    for _ in 0..3 {
        now += SECOND;
        assert!(
            transitions(&feed(&mut vi, now, from(3, advert(Version::V3, 100, 100)))).is_empty()
        );
    }
    // Preemption off (a reload): no transition now, and the lower master is kept for good.
    let actions = feed(&mut vi, now, options(false, 10 * SECOND));
    assert!(actions.is_empty(), "{actions:?}");
    for _ in 0..15 {
        now += SECOND;
        feed(&mut vi, now, from(3, advert(Version::V3, 100, 100)));
        advance(&mut vi, now);
    }
    assert_eq!(vi.state(), State::Backup);
    assert!(vi.yields_to_master());
    // Preemption on without a delay: the next lower advert is discarded and the
    // Master_Down_Timer makes us master.
    feed(&mut vi, now, options(true, std::time::Duration::ZERO));
    now += SECOND;
    feed(&mut vi, now, from(3, advert(Version::V3, 100, 100)));
    let actions = advance(&mut vi, now + 4 * SECOND);
    assert_eq!(
        transitions(&actions),
        [(
            State::Backup,
            State::Master,
            vigil_vrrp::instance::Reason::MasterDown
        )]
    );
}

#[test]
fn a_master_takes_a_new_refresh_period_without_a_transition() {
    let t0 = epoch();
    let quiet = vigil_vrrp::config::GarpConfig {
        delay: None,
        ..vigil_vrrp::config::GarpConfig::default()
    };
    let mut cfg = config(Version::V3, 100, 1);
    cfg.garp = quiet;
    let (mut vi, at) = master(cfg, t0);
    let garp = vigil_vrrp::config::GarpConfig {
        refresh: Some(3 * SECOND),
        refresh_repeat: 2,
        ..quiet
    };
    let set = Input::SetOptions {
        preempt: true,
        preempt_delay: std::time::Duration::ZERO,
        accept_mode: true,
        garp,
    };
    assert!(feed(&mut vi, at, set).is_empty());
    assert!(vi.accept_mode());
    let actions = advance(&mut vi, at + 3 * SECOND);
    assert!(transitions(&actions).is_empty(), "{actions:?}");
    assert!(
        actions.contains(&Action::SendGratuitous {
            addresses: vec![vip()],
            count: 2
        }),
        "{actions:?}"
    );
    // Refresh off again: no more bursts.
    let off = Input::SetOptions {
        preempt: true,
        preempt_delay: std::time::Duration::ZERO,
        accept_mode: false,
        garp: quiet,
    };
    feed(&mut vi, at + 3 * SECOND, off);
    let actions = advance(&mut vi, at + 10 * SECOND);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::SendGratuitous { .. })),
        "{actions:?}"
    );
    assert_eq!(vi.state(), State::Master);
}

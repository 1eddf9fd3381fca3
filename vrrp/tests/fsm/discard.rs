//! Receive checks (RFC 9568 §7.1, RFC 3768 §7.1): what is discarded, what is only logged.

use vigil_vrrp::instance::{Action, Input, State};
use vigil_vrrp::packet::{Auth, Version};
use vigil_vrrp::stats::{DiscardReason, Mismatch};

use super::support::{SECOND, advert, config, epoch, feed, from, ip, master, started, transitions};

/// A master at priority 100 fed a would-be-winning advert must ignore it for `reason`.
fn assert_discarded(input: Input, reason: DiscardReason) {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let src = match &input {
        Input::Advert { src, .. } => *src,
        other => panic!("not an advert: {other:?}"),
    };
    let actions = feed(&mut vi, at, input);
    assert_eq!(actions, [Action::Discarded { src, reason }]);
    assert_eq!(vi.state(), State::Master);
    assert_eq!(vi.stats().discarded(reason), 1);
    assert_eq!(vi.stats().discarded_total(), 1);
    assert_eq!(vi.stats().adverts_rx, 1);
}

#[test]
fn ttl_or_hop_limit_below_255_is_discarded() {
    let input = Input::Advert {
        src: ip(2),
        ttl: 254,
        advert: advert(Version::V3, 200, 100),
    };
    assert_discarded(input, DiscardReason::Ttl);
}

#[test]
fn wrong_vrid_is_discarded() {
    let mut a = advert(Version::V3, 200, 100);
    a.vrid += 1;
    assert_discarded(from(2, a), DiscardReason::Vrid);
}

#[test]
fn wrong_version_is_discarded() {
    assert_discarded(
        from(2, advert(Version::V2, 200, 100)),
        DiscardReason::Version,
    );
}

#[test]
fn own_looped_back_advert_is_discarded() {
    assert_discarded(
        from(1, advert(Version::V3, 200, 100)),
        DiscardReason::OwnAdvert,
    );
}

#[test]
fn other_family_source_is_discarded() {
    let input = Input::Advert {
        src: std::net::Ipv6Addr::LOCALHOST.into(),
        ttl: 255,
        advert: advert(Version::V3, 200, 100),
    };
    assert_discarded(input, DiscardReason::Family);
}

#[test]
fn zero_v3_interval_is_discarded() {
    assert_discarded(
        from(2, advert(Version::V3, 200, 0)),
        DiscardReason::ZeroInterval,
    );
}

#[test]
fn v2_auth_mismatch_is_discarded_and_a_match_is_processed() {
    let t0 = epoch();
    let mut cfg = config(Version::V2, 100, 1);
    cfg.auth = Auth::SimpleText(*b"secret\0\0");
    let (mut vi, at) = master(cfg.clone(), t0);
    let actions = feed(&mut vi, at, from(2, advert(Version::V2, 200, 100)));
    assert_eq!(
        actions,
        [Action::Discarded {
            src: ip(2),
            reason: DiscardReason::Auth
        }]
    );
    let mut good = advert(Version::V2, 200, 100);
    good.auth = cfg.auth;
    let actions = feed(&mut vi, at, from(2, good));
    assert_eq!(transitions(&actions).len(), 1);
    assert_eq!(vi.state(), State::Backup);
}

#[test]
fn v2_interval_mismatch_is_discarded() {
    let t0 = epoch();
    let mut vi = started(config(Version::V2, 100, 1), t0);
    let armed = vi.poll_timeout();
    let actions = feed(&mut vi, t0 + SECOND, from(2, advert(Version::V2, 200, 200)));
    assert_eq!(
        actions,
        [Action::Discarded {
            src: ip(2),
            reason: DiscardReason::Interval
        }]
    );
    assert_eq!(
        vi.poll_timeout(),
        armed,
        "the master-down timer was not reset"
    );
}

#[test]
fn address_list_mismatch_is_logged_and_still_processed() {
    let t0 = epoch();
    let (mut vi, at) = master(config(Version::V3, 100, 1), t0);
    let mut a = advert(Version::V3, 200, 100);
    a.addresses.push(ip(101));
    let actions = feed(&mut vi, at, from(2, a));
    assert_eq!(
        actions[0],
        Action::Mismatch {
            src: ip(2),
            mismatch: Mismatch::AddressList
        }
    );
    assert_eq!(vi.state(), State::Backup, "RFC 9568 §7.1 only asks to log");
    assert_eq!(vi.stats().address_list_mismatches, 1);
    assert_eq!(vi.stats().discarded_total(), 0);
}

#[test]
fn address_order_does_not_count_as_a_mismatch() {
    let t0 = epoch();
    let mut cfg = config(Version::V3, 100, 1);
    cfg.addresses.push(ip(101));
    let mut vi = started(cfg, t0);
    let mut a = advert(Version::V3, 200, 100);
    a.addresses.insert(0, ip(101));
    assert!(feed(&mut vi, t0, from(2, a)).is_empty());
}

#[test]
fn owner_conflict_is_logged() {
    let t0 = epoch();
    let mut vi = started(config(Version::V3, 255, 1), t0);
    let actions = feed(&mut vi, t0, from(2, advert(Version::V3, 255, 100)));
    assert_eq!(
        actions[0],
        Action::Mismatch {
            src: ip(2),
            mismatch: Mismatch::OwnerConflict
        }
    );
    assert_eq!(vi.stats().owner_conflicts, 1);
}

#[test]
fn initialize_and_fault_do_not_listen() {
    let t0 = epoch();
    let mut vi = vigil_vrrp::instance::Instance::new(config(Version::V3, 100, 1), t0).expect("ok");
    let actions = feed(&mut vi, t0, from(2, advert(Version::V3, 200, 100)));
    assert_eq!(
        actions,
        [Action::Discarded {
            src: ip(2),
            reason: DiscardReason::NotListening
        }]
    );
    feed(&mut vi, t0, Input::Startup);
    feed(&mut vi, t0, Input::Fault { active: true });
    let actions = feed(&mut vi, t0, from(2, advert(Version::V3, 200, 100)));
    assert_eq!(
        actions,
        [Action::Discarded {
            src: ip(2),
            reason: DiscardReason::NotListening
        }]
    );
    assert_eq!(vi.poll_timeout(), None);
}

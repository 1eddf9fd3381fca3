//! Builders shared by the state-machine tests.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use vigil_vrrp::config::InstanceConfig;
use vigil_vrrp::instance::{Action, Input, Instance, Reason, State};
use vigil_vrrp::packet::{Advertisement, Auth, Version};

pub(crate) const VRID: u8 = 7;
pub(crate) const SECOND: Duration = Duration::from_secs(1);

/// 10.0.0.`host`.
pub(crate) fn ip(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, host))
}

/// The VIP every test instance protects.
pub(crate) fn vip() -> IpAddr {
    ip(100)
}

/// An instance config with primary address 10.0.0.`host`, interval 1 s.
pub(crate) fn config(version: Version, priority: u8, host: u8) -> InstanceConfig {
    InstanceConfig::new(
        format!("vi{host}"),
        VRID,
        version,
        priority,
        ip(host),
        vec![vip()],
    )
}

/// The one clock read of a test: its epoch.
pub(crate) fn epoch() -> Instant {
    Instant::now()
}

/// An advert from a peer for our VRID and VIP.
pub(crate) fn advert(version: Version, priority: u8, interval_cs: u16) -> Advertisement {
    Advertisement {
        version,
        vrid: VRID,
        priority,
        max_advert_int: interval_cs,
        auth: Auth::None,
        addresses: vec![vip()],
    }
}

/// An advert input from 10.0.0.`host` with TTL 255.
pub(crate) fn from(host: u8, advert: Advertisement) -> Input {
    Input::Advert {
        src: ip(host),
        ttl: 255,
        advert,
    }
}

/// Drains every pending action.
pub(crate) fn drain(instance: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| instance.poll_action()).collect()
}

/// A new instance after Startup, its actions drained.
pub(crate) fn started(config: InstanceConfig, now: Instant) -> Instance {
    let mut instance = Instance::new(config, now).expect("valid test config");
    instance.handle(now, Input::Startup).expect("startup");
    drain(&mut instance);
    instance
}

/// An instance that became master through its Master_Down_Timer; returns the takeover time.
pub(crate) fn master(config: InstanceConfig, t0: Instant) -> (Instance, Instant) {
    let mut instance = started(config, t0);
    let at = instance.poll_timeout().expect("master-down timer armed");
    instance.handle_timeout(at);
    drain(&mut instance);
    assert_eq!(instance.state(), State::Master);
    (instance, at)
}

/// Handles `input` and returns the actions it produced.
pub(crate) fn feed(instance: &mut Instance, now: Instant, input: Input) -> Vec<Action> {
    instance.handle(now, input).expect("input accepted");
    drain(instance)
}

/// The state changes among `actions`.
pub(crate) fn transitions(actions: &[Action]) -> Vec<(State, State, Reason)> {
    actions
        .iter()
        .filter_map(|a| match *a {
            Action::StateChanged { from, to, reason } => Some((from, to, reason)),
            _ => None,
        })
        .collect()
}

/// The priorities of the adverts among `actions`.
pub(crate) fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(advert) => Some(advert.priority),
            _ => None,
        })
        .collect()
}

/// Fires every timer up to `now` at its exact deadline, as a daemon with a precise timer would;
/// returns the actions.
pub(crate) fn advance(instance: &mut Instance, now: Instant) -> Vec<Action> {
    let mut actions = Vec::new();
    while let Some(at) = instance.poll_timeout().filter(|&at| at <= now) {
        instance.handle_timeout(at);
        actions.extend(drain(instance));
    }
    actions
}

//! Seeded simulations on the `Lan` harness: 2–5 routers with random priorities, random delays
//! (and loss where stated) must end with exactly one master — one of the highest priority, and
//! the only VIP holder — within 3·interval + skew + 2·(delay bound) after the last change, and
//! stay that way. Changes: staggered start-up, silent master crash, master shutdown (priority 0),
//! priority change, reboot. A failure names its seed; the same seed replays the same run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use vigil_vrrp::instance::{Input, State, master_down_interval};
use vigil_vrrp::packet::Version;
use vigil_vrrp::testing::{Lan, Rng};

use super::support::{config, epoch};

/// Seeds per configuration; `VIGIL_SIM_SEEDS` raises it for a soak run.
fn seeds() -> u64 {
    std::env::var("VIGIL_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[derive(Debug, Clone, Copy)]
struct Timing {
    version: Version,
    interval: Duration,
    delay_max: Duration,
}

impl Timing {
    fn random(rng: &mut Rng, version: Version) -> (Self, u16) {
        let cs: u16 = match version {
            Version::V2 => [100, 200, 300][rng.below(3) as usize],
            // 10 ms (keepalived's floor), common values, and anything up to 4 s.
            Version::V3 => [1, 1, 5, 10, 100, 1 + rng.below(400) as u16][rng.below(6) as usize],
        };
        let interval = Duration::from_millis(u64::from(cs) * 10);
        let delay_max = rng.duration(Duration::ZERO, interval / 10);
        (
            Self {
                version,
                interval,
                delay_max,
            },
            cs,
        )
    }

    /// Master_Down_Interval at the lowest priority (largest skew), plus one delay for the
    /// winner's advert to arrive and one for a simultaneous winner's reply.
    fn bound(self) -> Duration {
        master_down_interval(self.version, 1, self.interval)
            + 2 * self.delay_max
            + Duration::from_micros(1)
    }
}

/// Exactly one master among the running routers, of the highest priority, alone with the VIPs.
fn one_master(lan: &Lan) -> Result<(), String> {
    let masters = lan.masters();
    let [master] = masters.as_slice() else {
        return Err(format!("masters {masters:?}"));
    };
    let running = lan
        .live()
        .filter(|&i| lan.instance(i).state() != State::Initialize);
    let best = running
        .map(|i| lan.instance(i).effective_priority())
        .max()
        .unwrap_or(0);
    let got = lan.instance(*master).effective_priority();
    if got != best {
        return Err(format!(
            "master {master} has priority {got}, best is {best}"
        ));
    }
    if lan.vip_holders() != masters {
        return Err(format!(
            "VIP holders {:?} != masters {masters:?}",
            lan.vip_holders()
        ));
    }
    Ok(())
}

/// After a change at `changed`: converged by the bound, then stable for five intervals.
fn assert_converges(lan: &mut Lan, timing: Timing, changed: Instant, trace: &str) {
    lan.run_until(changed + timing.bound());
    if let Err(e) = one_master(lan) {
        panic!(
            "not converged {:?} after the last change: {e}\n{trace}",
            timing.bound()
        );
    }
    let end = lan.now() + 5 * timing.interval;
    if let Err(e) = lan.run_checked(end, one_master) {
        panic!("converged, then broke: {e}\n{trace}");
    }
}

/// Builds a LAN of 2–5 routers and starts them at staggered times; returns it converged.
fn start(seed: u64, version: Version, lossy: bool) -> (Lan, Timing, String) {
    let t0 = epoch();
    let mut lan = Lan::new(seed, t0);
    // A correct run takes a few thousand wakeups; a packet storm fails fast instead of crawling.
    lan.set_step_budget(200_000);
    let (timing, cs) = Timing::random(lan.rng(), version);
    let delay_min = lan.rng().duration(Duration::ZERO, timing.delay_max);
    lan.set_delay(delay_min, timing.delay_max);
    let n = 2 + lan.rng().below(4) as u8;
    let mut trace = format!("seed {seed}: {timing:?}, {n} routers, delay ≥ {delay_min:?}\n");
    for host in 1..=n {
        // Narrow ranges make equal priorities (the address tie-break) common.
        let mut priority = [
            1 + lan.rng().below(254) as u8,
            100 + lan.rng().below(3) as u8,
        ][lan.rng().below(2) as usize];
        if host == 1 && lan.rng().below(8) == 0 {
            priority = 255;
        }
        let mut cfg = config(version, priority, host);
        cfg.advert_interval_cs = cs;
        cfg.garp.delay = None;
        lan.add(cfg).expect("valid config");
        let _ = writeln!(trace, "router {} at priority {priority}", host - 1);
    }
    for i in 0..lan.len() {
        let at = t0 + lan.rng().duration(Duration::ZERO, timing.interval);
        lan.run_until(at);
        lan.input(i, Input::Startup).expect("startup");
    }
    if lossy {
        let loss = lan.rng().below(200_000) as u32;
        lan.set_loss_ppm(loss);
        lan.run_for(50 * timing.interval);
        lan.set_loss_ppm(0);
        trace.push_str("lossy phase over\n");
    }
    let now = lan.now();
    assert_converges(&mut lan, timing, now, &trace);
    (lan, timing, trace)
}

/// Applies one random change; returns its description.
fn change(lan: &mut Lan) -> String {
    let master = lan.masters()[0];
    let running: Vec<usize> = lan
        .live()
        .filter(|&i| lan.instance(i).state() != State::Initialize)
        .collect();
    let stopped: Vec<usize> = (0..lan.len()).filter(|i| !running.contains(i)).collect();
    let pick = if running.len() == 1 {
        3
    } else {
        lan.rng().below(4)
    };
    match pick {
        0 => {
            lan.crash(master);
            format!("crash master {master}")
        }
        1 => {
            lan.input(master, Input::Shutdown).expect("shutdown");
            format!("shutdown master {master}")
        }
        2 => {
            let who = running[lan.rng().below(running.len() as u64) as usize];
            let priority = 1 + lan.rng().below(254) as u8;
            lan.input(who, Input::SetPriority(priority))
                .expect("priority");
            format!("router {who} priority → {priority}")
        }
        _ if !stopped.is_empty() => {
            let who = stopped[lan.rng().below(stopped.len() as u64) as usize];
            if lan.router(who).alive {
                lan.input(who, Input::Startup).expect("startup");
            } else {
                lan.reboot(who).expect("valid config");
            }
            format!("restart router {who}")
        }
        _ => {
            let who = running[lan.rng().below(running.len() as u64) as usize];
            lan.input(who, Input::SetPriority(254)).expect("priority");
            format!("router {who} priority → 254")
        }
    }
}

fn run(version: Version, lossy: bool) {
    for seed in 0..seeds() {
        let (mut lan, timing, mut trace) = start(seed, version, lossy);
        for _ in 0..4 {
            // Let the segment settle for a random while, then change something.
            let settle = lan.rng().duration(Duration::ZERO, 3 * timing.interval);
            lan.run_for(settle);
            let what = change(&mut lan);
            let _ = writeln!(trace, "at {:?}: {what}", lan.elapsed());
            let now = lan.now();
            assert_converges(&mut lan, timing, now, &trace);
        }
    }
}

#[test]
fn v3_lans_converge_to_one_master() {
    run(Version::V3, false);
}

#[test]
fn v2_lans_converge_to_one_master() {
    run(Version::V2, false);
}

#[test]
fn lans_converge_once_packet_loss_stops() {
    run(Version::V3, true);
}

#[test]
fn the_same_seed_replays_the_same_run() {
    let run = |seed| {
        let (mut lan, _, _) = start(seed, Version::V3, true);
        change(&mut lan);
        lan.run_for(Duration::from_secs(5));
        lan.events().to_vec()
    };
    let events = run(42);
    assert!(events.len() > 10);
    let relative = |evs: &[vigil_vrrp::testing::Event]| -> Vec<_> {
        let base = evs[0].at;
        evs.iter()
            .map(|e| (e.at - base, e.router, e.action.clone()))
            .collect()
    };
    assert_eq!(relative(&events), relative(&run(42)));
    assert_ne!(relative(&events), relative(&run(43)));
}

#[test]
fn a_partition_splits_the_segment_and_healing_reunites_it() {
    // Plain VRRP has no quorum: each side of a cut elects its own master. The quorum-gated VIP
    // work builds on this harness to forbid exactly that.
    for seed in 0..seeds() {
        let (mut lan, timing, trace) = start(seed, Version::V3, false);
        let master = lan.masters()[0];
        for other in 0..lan.len() {
            lan.set_reachable(master, other, false);
        }
        lan.run_for(timing.bound());
        assert_eq!(lan.masters().len(), 2, "one master per side\n{trace}");
        assert!(lan.masters().contains(&master), "{trace}");
        for other in 0..lan.len() {
            lan.set_reachable(master, other, true);
        }
        let now = lan.now();
        assert_converges(&mut lan, timing, now, &trace);
    }
}

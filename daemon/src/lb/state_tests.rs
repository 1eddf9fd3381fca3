use super::*;

fn config(extra: &str) -> conf::Config {
    let src = format!(
        r#"
[[virtual_server]]
address = "192.0.2.10:80"
group = "web"
quorum = 2
sorry_server = "192.0.2.250:80"

[[virtual_server.real_server]]
address = "192.0.2.21"
[[virtual_server.real_server.check]]
type = "tcp"
[[virtual_server.real_server.check]]
type = "http"

[[virtual_server.real_server]]
address = "192.0.2.22"
[[virtual_server.real_server.check]]
type = "tcp"
{extra}"#
    );
    match conf::load_str(&src, "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}"),
    }
}

const SECOND_VS: &str = r#"
[[virtual_server]]
address = "192.0.2.11:443"
alpha = true
[[virtual_server.real_server]]
address = "192.0.2.31"
"#;

fn vs_key(s: &str) -> conf::VsKey {
    conf::VsKey::Addr {
        addr: s.parse().unwrap(),
        protocol: conf::Protocol::Tcp,
    }
}

fn event(vs: &str, real: &str, index: usize, transition: Transition) -> CheckEvent {
    CheckEvent {
        id: map::check_id(&vs_key(vs), real.parse().unwrap(), index),
        transition,
        outcome: ProbeOutcome {
            ok: transition != Transition::Down,
            latency: Duration::from_millis(3),
            detail: "test".into(),
            weight: None,
        },
    }
}

/// `config` mapped, as the runtime does with the config it shares.
fn mapped(config: &conf::Config) -> Mapped {
    Mapped::new(&Arc::new(config.clone())).unwrap()
}

fn balancer(config: &conf::Config) -> (Balancer, SchedulerPlan) {
    let mut b = Balancer::default();
    let plan = b.apply(mapped(config), Instant::now());
    (b, plan)
}

fn dests(b: &Balancer) -> Vec<(String, u32)> {
    b.desired()[0]
        .dests
        .iter()
        .map(|d| {
            (
                SocketAddr::new(d.key.addr, d.key.port).to_string(),
                d.weight,
            )
        })
        .collect()
}

#[test]
fn first_apply_starts_every_check() {
    let (b, plan) = balancer(&config(""));
    assert_eq!(plan.upsert.len(), 3);
    assert!(plan.remove.is_empty());
    assert_eq!(
        dests(&b),
        [("192.0.2.21:80".into(), 1), ("192.0.2.22:80".into(), 1)]
    );
    assert_eq!(b.groups().get("web"), Some(&true));
}

#[test]
fn a_real_server_is_up_only_while_all_its_checks_pass() {
    let (mut b, _) = balancer(&config(""));
    let now = Instant::now();
    let vs = "192.0.2.10:80";
    let rs = "192.0.2.21:80";
    let change = b.on_event(event(vs, rs, 1, Transition::Down), now).unwrap();
    assert_eq!(change.kind, "http");
    assert_eq!(change.real_server, rs.parse().unwrap());
    assert!(
        change
            .effects
            .contains(&lvs::Transition::RealDown(lvs::DestKey {
                addr: "192.0.2.21".parse().unwrap(),
                port: 80
            }))
    );
    // Quorum 2 lost: the sorry server replaces everyone.
    assert!(change.effects.contains(&lvs::Transition::QuorumDown));
    assert_eq!(dests(&b), [("192.0.2.250:80".into(), 1)]);
    assert_eq!(b.groups().get("web"), Some(&false));
    // The other check failing too, then recovering, leaves the server down: http still fails.
    b.on_event(event(vs, rs, 0, Transition::Down), now).unwrap();
    let change = b.on_event(event(vs, rs, 0, Transition::Up), now).unwrap();
    assert!(change.effects.is_empty(), "{:?}", change.effects);
    let change = b.on_event(event(vs, rs, 1, Transition::Up), now).unwrap();
    assert!(change.effects.contains(&lvs::Transition::QuorumUp));
    assert_eq!(dests(&b).len(), 2);
}

#[test]
fn events_for_unknown_checks_are_ignored() {
    let (mut b, _) = balancer(&config(""));
    assert!(
        b.on_event(
            event("192.0.2.99:80", "192.0.2.21:80", 0, Transition::Down),
            Instant::now()
        )
        .is_none()
    );
}

#[test]
fn reload_that_adds_a_virtual_server_keeps_health() {
    let (mut b, _) = balancer(&config(""));
    let now = Instant::now();
    b.on_event(
        event("192.0.2.10:80", "192.0.2.22:80", 0, Transition::Down),
        now,
    )
    .unwrap();
    let plan = b.apply(mapped(&config(SECOND_VS)), now);
    // Existing checks untouched; the new server has no checks at all, so nothing to start.
    assert!(plan.upsert.is_empty(), "{:?}", plan.upsert);
    assert!(plan.remove.is_empty());
    assert!(
        plan.transitions
            .iter()
            .all(|(k, _)| *k == vs_key("192.0.2.11:443"))
    );
    let status = b.status(&HashMap::new(), now);
    assert!(!status[0].real_servers[1].up, "still down after the reload");
    assert_eq!(status[0].real_servers[1].desired_weight, None);
    // alpha without checks: nothing could ever bring it up, so it is up from the start.
    assert!(status[1].real_servers[0].up);
    assert_eq!(b.desired()[1].dests.len(), 1);
}

#[test]
fn reload_replaces_changed_checks_in_place_and_removes_dropped_ones() {
    let (mut b, _) = balancer(&config(""));
    let now = Instant::now();
    let vs = "192.0.2.10:80";
    b.on_event(event(vs, "192.0.2.21:80", 1, Transition::Down), now)
        .unwrap();
    // Same real servers; the http check of .21 gets a new path; .22 loses its only check.
    let mut next = config("");
    let conf::CheckKind::Http(h) = &mut next.virtual_servers[0].real_servers[0].checks[1].kind
    else {
        panic!("second check is http")
    };
    h.path = "/health".into();
    next.virtual_servers[0].real_servers[1].checks.clear();
    let plan = b.apply(mapped(&next), now);
    let changed = map::check_id(&vs_key(vs), "192.0.2.21:80".parse().unwrap(), 1);
    let dropped = map::check_id(&vs_key(vs), "192.0.2.22:80".parse().unwrap(), 0);
    assert_eq!(
        plan.upsert.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
        [changed]
    );
    assert_eq!(plan.remove, [dropped]);
    let status = b.status(&HashMap::new(), now);
    assert!(
        !status[0].real_servers[0].up,
        "health kept across the change"
    );
    assert!(!status[0].real_servers[0].checks[1].up);
}

#[test]
fn reload_without_a_virtual_server_releases_it() {
    let (mut b, _) = balancer(&config(SECOND_VS));
    let plan = b.apply(mapped(&config("")), Instant::now());
    assert!(plan.remove.is_empty(), "the second one had no checks");
    assert_eq!(b.desired().len(), 1);
    let plan = b.apply(
        mapped(&conf::load_str("", "empty.toml").unwrap()),
        Instant::now(),
    );
    assert_eq!(plan.remove.len(), 3);
    assert!(b.desired().is_empty());
    assert!(b.groups().is_empty());
}

#[test]
fn shutdown_keeps_services_without_omega() {
    let (mut b, _) = balancer(&config(""));
    let (keep, transitions) = b.shutdown();
    assert_eq!(keep.len(), 1);
    assert!(transitions.is_empty());
    let mut omega = config("");
    omega.virtual_servers[0].omega = true;
    let (mut b, _) = balancer(&omega);
    let (keep, transitions) = b.shutdown();
    assert!(keep.is_empty());
    assert!(transitions.contains(&(vs_key("192.0.2.10:80"), lvs::Transition::QuorumDown)));
}

#[test]
fn dynamic_weight_changes_the_desired_weight() {
    let (mut b, _) = balancer(&config(""));
    let change = b
        .on_event(
            event("192.0.2.10:80", "192.0.2.22:80", 0, Transition::Weight(9)),
            Instant::now(),
        )
        .unwrap();
    assert!(change.effects.is_empty(), "aliveness unchanged");
    assert_eq!(
        dests(&b),
        [("192.0.2.21:80".into(), 1), ("192.0.2.22:80".into(), 9)]
    );
}

#[test]
fn a_shared_config_fragment_update_applies_by_diff_and_keeps_health() {
    // What a `vigilctl config push` does to the LVS side: the merged config changes only the
    // fragment's virtual server; unchanged real servers keep their checks and their health.
    let base = config("");
    let merged = |weight: u32| {
        let fragment = format!(
            "[[virtual_server]]\naddress = \"192.0.2.11:443\"\n\
             [[virtual_server.real_server]]\naddress = \"192.0.2.31\"\n\
             [[virtual_server.real_server.check]]\ntype = \"tcp\"\n\
             [[virtual_server.real_server]]\naddress = \"192.0.2.32\"\nweight = {weight}\n"
        );
        conf::merge_fragments(&base, &[("/vigil/config/web", &fragment)])
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let (mut b, _) = balancer(&merged(1));
    let now = Instant::now();
    b.on_event(
        event("192.0.2.10:80", "192.0.2.22:80", 0, Transition::Down),
        now,
    )
    .unwrap();
    b.on_event(
        event("192.0.2.11:443", "192.0.2.31:443", 0, Transition::Down),
        now,
    )
    .unwrap();
    let plan = b.apply(mapped(&merged(7)), now);
    assert!(
        plan.upsert.is_empty(),
        "no check restarted: {:?}",
        plan.upsert
    );
    assert!(plan.remove.is_empty(), "{:?}", plan.remove);
    let status = b.status(&HashMap::new(), now);
    assert!(
        !status[0].real_servers[1].up,
        "the base's server is still down"
    );
    assert!(
        !status[1].real_servers[0].up,
        "the fragment's server is still down"
    );
    let weights: Vec<(String, u32)> = b.desired()[1]
        .dests
        .iter()
        .map(|d| {
            (
                SocketAddr::new(d.key.addr, d.key.port).to_string(),
                d.weight,
            )
        })
        .collect();
    assert_eq!(weights, [("192.0.2.32:443".to_owned(), 7)]);
}

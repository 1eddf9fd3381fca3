use std::time::Duration;

use vigil_checks::CheckKind as K;

use super::*;

/// Every check kind, with non-default timing, on one real server.
const ALL_KINDS: &str = r#"
[global]
node_name = "lb1"
script_user = "root"

[[virtual_server]]
address = "192.0.2.10:80"
scheduler = "sh"
scheduler_flags = ["fallback", "port"]
forwarding = "nat"
persistence_timeout = "300s"
persistence_netmask = 24
quorum = 3
hysteresis = 1
sorry_server = "192.0.2.250:8080"
inhibit_on_failure = true
alpha = true
omega = true

[[virtual_server.real_server]]
address = "192.0.2.21"
weight = 7
upper_threshold = 100
lower_threshold = 50

[[virtual_server.real_server.check]]
type = "tcp"
interval = "2s"
timeout = "750ms"
retries = 2
retry_delay = "300ms"
rise = 3
fall = 4
warmup = "1s"
port = 8080
bind = "192.0.2.2"
bind_device = "vnet0"

[[virtual_server.real_server.check]]
type = "http"
path = "/healthz"
status = [200, "300-302"]
body_regex = "^ok"
host = "www.example.com"
digest = "md5:d41d8cd98f00b204e9800998ecf8427e"

[[virtual_server.real_server.check]]
type = "https"
path = "/"
sni = "tls.example.com"
verify_cert = false
ca_file = "/etc/vigil/ca.pem"
digest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

[[virtual_server.real_server.check]]
type = "script"
command = ["/bin/true", "x"]
dynamic_weight = true

[[virtual_server.real_server.check]]
type = "dns"
name = "health.example.com"
query_type = "AAAA"

[[virtual_server.real_server.check]]
type = "udp"
port = 7
payload = "ping"
expect = "pong"

[[virtual_server.real_server.check]]
type = "smtp"
helo = "probe.example.com"

[[virtual_server.real_server.check]]
type = "https"
host = "h.example.com"
"#;

fn load(src: &str) -> conf::Config {
    match conf::load_str(src, "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}"),
    }
}

fn specs(config: &conf::Config) -> Vec<CheckSpec> {
    let script = ScriptIdentity::resolve_if_needed(config).unwrap();
    let vs = &config.virtual_servers[0];
    let rs = &vs.real_servers[0];
    rs.checks
        .iter()
        .enumerate()
        .map(|(i, c)| check_spec(vs, rs, i, c, script, &config.global.script_user).unwrap())
        .collect()
}

#[test]
fn timing_source_and_alpha_are_carried_over() {
    let config = load(ALL_KINDS);
    let s = &specs(&config)[0];
    assert!(matches!(s.kind, K::Tcp));
    assert_eq!(s.target, "192.0.2.21:8080".parse().unwrap());
    assert_eq!(
        s.timing,
        Timing {
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(750),
            retries: 2,
            retry_delay: Duration::from_millis(300),
            rise: 3,
            fall: 4,
            warmup: Duration::from_secs(1),
        }
    );
    assert_eq!(s.source.bind_addr, Some("192.0.2.2".parse().unwrap()));
    assert_eq!(s.source.bind_device.as_deref(), Some("vnet0"));
    assert!(s.start_down, "alpha = true starts checks down");
}

#[test]
fn http_status_regex_digest_and_host() {
    let config = load(ALL_KINDS);
    let all = specs(&config);
    let K::Http(h) = &all[1].kind else {
        panic!("expected http, got {:?}", all[1].kind)
    };
    assert_eq!(all[1].target, "192.0.2.21:80".parse().unwrap());
    assert_eq!(h.path, "/healthz");
    assert_eq!(h.host.as_deref(), Some("www.example.com"));
    assert!(h.status_ok(200) && h.status_ok(301) && !h.status_ok(201) && !h.status_ok(303));
    assert!(h.body_regex.as_ref().unwrap().is_match("ok\n"));
    assert!(!h.body_regex.as_ref().unwrap().is_match("not ok"));
    let md5_empty = [
        0xd4, 0x1d, 0x8c, 0xd9, 0x8f, 0x00, 0xb2, 0x04, 0xe9, 0x80, 0x09, 0x98, 0xec, 0xf8, 0x42,
        0x7e,
    ];
    assert_eq!(h.digest, Some(vigil_checks::Digest::Md5(md5_empty)));
    assert!(h.tls.is_none());
    assert_eq!(all[1].kind.name(), "http");
}

#[test]
fn https_tls_options_and_sni_default() {
    let config = load(ALL_KINDS);
    let all = specs(&config);
    let K::Http(h) = &all[2].kind else {
        panic!("expected https")
    };
    assert_eq!(all[2].kind.name(), "https");
    let tls = h.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("tls.example.com"));
    assert!(!tls.verify);
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/vigil/ca.pem"))
    );
    assert!(matches!(
        h.digest,
        Some(vigil_checks::Digest::Sha256(d)) if d[0] == 0xe3 && d[31] == 0x55
    ));
    // Without `sni`, the Host setting is the name sent.
    let K::Http(h) = &all[7].kind else {
        panic!("expected https")
    };
    let tls = h.tls.as_ref().unwrap();
    assert_eq!(tls.sni.as_deref(), Some("h.example.com"));
    assert!(tls.verify, "verify_cert defaults to true");
    assert!(tls.ca_file.is_none());
}

#[test]
fn script_runs_as_the_resolved_user() {
    let config = load(ALL_KINDS);
    let all = specs(&config);
    let K::Script(s) = &all[3].kind else {
        panic!("expected script")
    };
    assert_eq!(s.argv, ["/bin/true", "x"]);
    assert!(s.dynamic_weight);
    // "root" is uid 0 and its primary group gid 0 on every Linux.
    assert_eq!((s.uid, s.gid), (Some(0), Some(0)));
}

#[test]
fn script_without_identity_is_refused() {
    let config = load(ALL_KINDS);
    let vs = &config.virtual_servers[0];
    let rs = &vs.real_servers[0];
    let err = check_spec(vs, rs, 3, &rs.checks[3], None, "nobody").unwrap_err();
    assert!(matches!(err, MapError::UnknownUser(u) if u == "nobody"));
}

#[test]
fn unknown_script_user_or_group_is_an_error() {
    let mut config = load(ALL_KINDS);
    config.global.script_user = "vigil-no-such-user-xyz".into();
    assert!(matches!(
        ScriptIdentity::resolve_if_needed(&config),
        Err(MapError::UnknownUser(_))
    ));
    config.global.script_user = "root".into();
    config.global.script_group = Some("vigil-no-such-group-xyz".into());
    assert!(matches!(
        ScriptIdentity::resolve(&config.global),
        Err(MapError::UnknownGroup(_))
    ));
    // Without script checks nothing is looked up, so a missing user does not matter.
    config.global.script_user = "vigil-no-such-user-xyz".into();
    config.virtual_servers[0].real_servers[0].checks.remove(3);
    assert_eq!(ScriptIdentity::resolve_if_needed(&config).unwrap(), None);
}

#[test]
fn dns_udp_smtp() {
    let config = load(ALL_KINDS);
    let all = specs(&config);
    let K::Dns(d) = &all[4].kind else {
        panic!("expected dns")
    };
    assert_eq!((d.name.as_str(), d.qtype), ("health.example.com", 28));
    let K::Udp(u) = &all[5].kind else {
        panic!("expected udp")
    };
    assert_eq!(all[5].target.port(), 7);
    assert_eq!(&*u.payload, b"ping");
    assert_eq!(u.expect_prefix.as_deref(), Some(&b"pong"[..]));
    let K::Smtp(s) = &all[6].kind else {
        panic!("expected smtp")
    };
    assert_eq!(s.helo, "probe.example.com");
}

#[test]
fn dns_types_match_iana_numbers() {
    use conf::DnsType as T;
    let got: Vec<u16> = [
        T::A,
        T::Aaaa,
        T::Cname,
        T::Mx,
        T::Ns,
        T::Ptr,
        T::Soa,
        T::Srv,
        T::Txt,
    ]
    .into_iter()
    .map(dns_qtype)
    .collect();
    assert_eq!(got, [1, 28, 5, 15, 2, 12, 6, 33, 16]);
}

#[test]
fn policy_from_virtual_server() {
    let config = load(ALL_KINDS);
    let p = vs_policy(&config.virtual_servers[0]);
    assert_eq!(
        p.service.key,
        lvs::ServiceKey::Tcp("192.0.2.10".parse().unwrap(), 80)
    );
    assert_eq!(p.service.scheduler, lvs::Scheduler::Sh);
    assert_eq!(
        p.service.flags,
        lvs::ServiceFlags::SH_FALLBACK | lvs::ServiceFlags::SH_PORT
    );
    assert_eq!(
        p.service.persistence,
        Some(lvs::Persistence {
            timeout_s: 300,
            netmask_prefix: 24
        })
    );
    assert_eq!(
        (p.quorum, p.hysteresis, p.alpha, p.omega),
        (3, 1, true, true)
    );
    let real = &p.reals[0];
    assert!(real.inhibit_on_failure);
    assert_eq!(real.dest.weight, 7);
    assert_eq!(real.dest.fwd, lvs::Forwarding::Nat);
    assert_eq!(
        (real.dest.upper_threshold, real.dest.lower_threshold),
        (100, 50)
    );
    assert_eq!(real.dest.key.port, 80, "port defaults to the service's");
    let sorry = p.sorry_server.unwrap();
    assert_eq!(sorry.key.port, 8080);
    assert_eq!((sorry.weight, sorry.fwd), (1, lvs::Forwarding::Nat));
}

#[test]
fn fwmark_and_protocol_keys() {
    let config = load(
        r#"
[[virtual_server]]
fwmark = 25
family = "ipv6"
forwarding = "tun"
[[virtual_server.real_server]]
address = "2001:db8::25"
port = 25

[[virtual_server]]
address = "192.0.2.53:53"
protocol = "udp"
scheduler = "rr"
[[virtual_server.real_server]]
address = "192.0.2.31"

[[virtual_server]]
address = "[2001:db8::1]:9"
protocol = "sctp"
[[virtual_server.real_server]]
address = "2001:db8::2"
"#,
    );
    let keys: Vec<_> = config
        .virtual_servers
        .iter()
        .map(|vs| vs_policy(vs).service.key)
        .collect();
    assert_eq!(
        keys,
        [
            lvs::ServiceKey::Fwmark(25, lvs::Family::V6),
            lvs::ServiceKey::Udp("192.0.2.53".parse().unwrap(), 53),
            lvs::ServiceKey::Sctp("2001:db8::1".parse().unwrap(), 9),
        ]
    );
    let p = vs_policy(&config.virtual_servers[0]);
    assert_eq!(p.reals[0].dest.fwd, lvs::Forwarding::Tunnel);
    assert_eq!(
        p.service.scheduler,
        lvs::Scheduler::Wlc,
        "default scheduler"
    );
    assert!(p.sorry_server.is_none() && p.service.persistence.is_none());
}

#[test]
fn check_ids_are_stable_and_distinct() {
    let config = load(ALL_KINDS);
    let vs = config.virtual_servers[0].service;
    let rs: SocketAddr = "192.0.2.21:80".parse().unwrap();
    // Same inputs, same id: what lets a reload keep checker state.
    assert_eq!(check_id(&vs, rs, 0), check_id(&vs, rs, 0));
    let other_vs = conf::VsKey::Addr {
        addr: "192.0.2.10:443".parse().unwrap(),
        protocol: conf::Protocol::Tcp,
    };
    let udp_vs = conf::VsKey::Addr {
        addr: "192.0.2.10:80".parse().unwrap(),
        protocol: conf::Protocol::Udp,
    };
    let ids = [
        check_id(&vs, rs, 0),
        check_id(&vs, rs, 1),
        check_id(&vs, "192.0.2.21:81".parse().unwrap(), 0),
        check_id(&vs, "192.0.2.22:80".parse().unwrap(), 0),
        check_id(&other_vs, rs, 0),
        check_id(&udp_vs, rs, 0),
    ];
    let unique: std::collections::BTreeSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "{ids:?}");
}

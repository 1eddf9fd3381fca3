//! keepalived.conf import: realistic fixtures converted to TOML that vigil accepts, with the
//! converted values checked and every unconverted line listed at its exact position.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use proptest::prelude::*;
use vigil_conf::import::{Import, ImportError, Unconverted, import_file, import_str};
use vigil_conf::{
    Auth, CheckKind, Config, Digest, Forwarding, Scheduler, StatusRange, VrrpVersion, VsKey,
    load_str,
};

mod vrrp;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keepalived")
        .join(name)
}

/// The generated TOML must always pass vigil's own validation.
pub(super) fn loaded(import: &Import) -> Config {
    match load_str(&import.toml, "imported.toml") {
        Ok(c) => c,
        Err(e) => panic!("imported TOML refused:\n{e}\n---\n{}", import.toml),
    }
}

pub(super) fn file(name: &str) -> (Import, Config) {
    let import = import_file(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let config = loaded(&import);
    (import, config)
}

pub(super) fn text(src: &str) -> (Import, Config) {
    let import = import_str(src, "t.conf").unwrap_or_else(|e| panic!("{e}"));
    let config = loaded(&import);
    (import, config)
}

pub(super) fn lines(u: &[Unconverted]) -> Vec<usize> {
    u.iter().map(|u| u.line).collect()
}

pub(super) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

pub(super) fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

#[test]
fn classic_lvs_dr_example() {
    let (import, c) = file("lvs_dr.conf");
    assert!(
        import
            .toml
            .starts_with("# vigil configuration imported from")
    );
    assert!(import.toml.contains("lvs_dr.conf"));
    assert_eq!(c.global.router_id, "LVS_DEVEL");

    let vi = c.vrrp_instance("VI_1").expect("VI_1 converted");
    assert_eq!(
        (vi.interface.as_str(), vi.vrid, vi.priority),
        ("eth0", 51, 150)
    );
    // keepalived's default VRRP version is 2; vigil's is 3, so it must be explicit.
    assert_eq!(vi.version, VrrpVersion::V2);
    assert_eq!(vi.advert_interval, secs(1));
    assert_eq!(vi.auth, Some(Auth::SimplePassword("1111".into())));
    assert_eq!(vi.vips.len(), 1);
    assert_eq!(
        (vi.vips[0].addr, vi.vips[0].prefix_len),
        (ip("192.168.200.100"), 32)
    );
    assert_eq!(vi.fencing, vigil_conf::Fencing::Off);
    assert!(vi.preempt);

    assert_eq!(c.virtual_servers.len(), 1);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.service,
        VsKey::Addr {
            addr: "192.168.200.100:80".parse().expect("addr"),
            protocol: vigil_conf::Protocol::Tcp
        }
    );
    assert_eq!(vs.scheduler, Scheduler::Rr);
    assert_eq!(vs.forwarding, Forwarding::Dr);
    assert_eq!(vs.persistence.as_ref().map(|p| p.timeout), Some(secs(50)));
    let servers: Vec<(IpAddr, u16, u32)> = vs
        .real_servers
        .iter()
        .map(|r| (r.addr, r.port, r.weight))
        .collect();
    assert_eq!(
        servers,
        [(ip("192.168.200.2"), 80, 1), (ip("192.168.200.3"), 80, 1)]
    );
    for rs in &vs.real_servers {
        let [check] = rs.checks.as_slice() else {
            panic!("one check per server")
        };
        assert_eq!(check.kind, CheckKind::Tcp);
        assert_eq!(check.interval, secs(6), "delay_loop");
        assert_eq!(check.timeout, secs(3), "connect_timeout");
        assert_eq!((check.retries, check.retry_delay), (3, secs(3)));
        assert_eq!(check.port, Some(80));
    }

    // The mail settings and the initial state, each at its own line.
    assert_eq!(lines(&import.unconverted), [5, 9, 10, 11, 16]);
    let state = &import.unconverted[4];
    assert_eq!(state.text, "state MASTER");
    assert!(
        state.reason.contains("elects by priority"),
        "{}",
        state.reason
    );
    assert!(import.unconverted[0].reason.contains("e-mail"));
    assert!(
        import.unconverted[0]
            .reason
            .contains("whole block, lines 5-8,")
    );
    let shown = state.to_string();
    assert!(shown.ends_with("lvs_dr.conf:16: state MASTER — vigil has no configured initial state: it elects by priority"), "{shown}");
}

#[test]
fn http_get_with_digest_and_ssl_get() {
    let (import, c) = file("http_ssl.conf");
    assert!(import.unconverted.is_empty(), "{:#?}", import.unconverted);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        (vs.scheduler, vs.forwarding),
        (Scheduler::Wlc, Forwarding::Nat)
    );
    assert_eq!(
        vs.sorry_server,
        Some("10.1.0.99:8443".parse().expect("addr"))
    );
    assert_eq!((vs.quorum, vs.hysteresis), (2, 1));
    let p = vs.persistence.as_ref().expect("persistence");
    assert_eq!((p.timeout, p.prefix_len), (secs(300), 24));
    // Every real server sets inhibit_on_failure, so the service does.
    assert!(vs.inhibit_on_failure);

    let rs1 = &vs.real_servers[0];
    assert_eq!((rs1.port, rs1.weight), (8443, 5));
    assert_eq!(rs1.checks.len(), 2, "one check per url");
    let CheckKind::Http(h) = &rs1.checks[0].kind else {
        panic!("http")
    };
    assert_eq!(h.path, "/healthz");
    let mut md5 = [0u8; 16];
    for (i, b) in md5.iter_mut().enumerate() {
        *b = u8::from_str_radix(&"9b3a0c85a887a256d6939da88aabd8cd"[2 * i..2 * i + 2], 16)
            .expect("hex");
    }
    assert_eq!(h.digest, Some(Digest::Md5(md5)));
    assert_eq!(h.status, [StatusRange { from: 200, to: 200 }]);
    assert_eq!(h.host.as_deref(), Some("www.example.org"));
    assert!(h.tls.is_none());
    let CheckKind::Http(ready) = &rs1.checks[1].kind else {
        panic!("http")
    };
    assert_eq!(
        (ready.path.as_str(), ready.status.as_slice()),
        ("/ready", &[StatusRange { from: 200, to: 204 }][..])
    );
    for check in &rs1.checks {
        assert_eq!((check.interval, check.timeout), (secs(10), secs(2)));
        assert_eq!(
            (check.retries, check.retry_delay),
            (2, Duration::from_millis(1500))
        );
    }

    let rs2 = &vs.real_servers[1];
    let [ssl] = rs2.checks.as_slice() else {
        panic!("one check")
    };
    let CheckKind::Http(h) = &ssl.kind else {
        panic!("https")
    };
    let tls = h.tls.as_ref().expect("SSL_GET is https");
    assert!(!tls.verify_cert, "keepalived does not verify certificates");
    assert_eq!((ssl.port, ssl.bind), (Some(8443), Some(ip("10.1.0.2"))));
    // keepalived defaults: 5s connect timeout, one retry.
    assert_eq!((ssl.timeout, ssl.retries), (secs(5), 1));
}

#[test]
fn misc_check_with_misc_dynamic_on_a_fwmark_service() {
    let (import, c) = file("misc.conf");
    assert!(import.unconverted.is_empty(), "{:#?}", import.unconverted);
    let vs = &c.virtual_servers[0];
    assert!(matches!(vs.service, VsKey::Fwmark { mark: 7, .. }));
    assert_eq!(
        (vs.scheduler, vs.forwarding),
        (Scheduler::Sh, Forwarding::Tun)
    );
    assert!(vs.sched_flags.port && !vs.sched_flags.fallback);
    let [check] = vs.real_servers[0].checks.as_slice() else {
        panic!("one check")
    };
    let expected = [
        "/usr/local/bin/check_app",
        "--host",
        "192.0.2.31",
        "--name",
        "app one",
    ];
    assert_eq!(
        check.kind,
        CheckKind::Script {
            command: expected.iter().map(|s| (*s).to_owned()).collect(),
            dynamic_weight: true
        }
    );
    assert_eq!(
        (check.interval, check.timeout, check.retries),
        (secs(15), secs(5), 0)
    );
}

#[test]
fn includes_nested_and_globbed_with_positions_from_each_file() {
    let (import, c) = file("main_include.conf");
    assert_eq!(c.global.router_id, "inc-test");
    let vi = c.vrrp_instance("VI_A").expect("from inc/10-vrrp.conf");
    assert_eq!(vi.vrid, 21);
    let vs = &c.virtual_servers[0];
    assert_eq!(vs.scheduler, Scheduler::Lc);
    let check = &vs.real_servers[0].checks[0];
    assert_eq!(
        (check.interval, check.timeout, check.retries),
        (secs(60), secs(5), 1)
    );
    assert_eq!(check.port, None, "the real server's port applies");

    let found: Vec<(String, usize, &str)> = import
        .unconverted
        .iter()
        .map(|u| {
            let name = PathBuf::from(&u.file);
            let short = name
                .strip_prefix(fixture(""))
                .map_or(u.file.clone(), |p| p.display().to_string());
            (short, u.line, u.text.as_str())
        })
        .collect();
    assert_eq!(
        found,
        [
            (
                "main_include.conf".to_owned(),
                5,
                "include missing-file.conf"
            ),
            ("inc/nested/extra-vips.inc".to_owned(), 2, "smtp_alert"),
        ]
    );
}

#[test]
fn include_cycle_is_an_error_at_the_include_line() {
    let err = import_file(&fixture("cycle/a.conf")).expect_err("cycle");
    let ImportError::Syntax {
        file,
        line,
        message,
    } = &err
    else {
        panic!("{err}")
    };
    assert!(file.ends_with("cycle/b.conf"), "{file}");
    assert_eq!(*line, 2);
    assert!(message.contains("include cycle"), "{message}");
    assert!(err.to_string().contains("b.conf:2: include cycle"), "{err}");
}

#[test]
fn every_unsupported_statement_is_listed_at_its_line() {
    let (import, c) = file("unsupported.conf");
    assert_eq!(
        lines(&import.unconverted),
        [2, 3, 4, 6, 9, 13, 16, 17, 21, 22, 25, 27, 28, 29],
        "{:#?}",
        import.unconverted
    );
    let reason = |line| {
        import
            .unconverted
            .iter()
            .find(|u| u.line == line)
            .map_or(String::new(), |u| u.reason.clone())
    };
    assert!(reason(2).contains("lvs_sync_daemon"));
    assert!(reason(3).contains("vrrp_strict"));
    assert!(reason(6).contains("virtual_server_group"));
    assert!(reason(21).contains("AH"));
    assert!(
        reason(25).contains("`brd 10.0.0.255`, `scope global`"),
        "{}",
        reason(25)
    );
    assert!(reason(28).contains("@host"));
    assert!(reason(29).contains("keyword `frobnicate` in vrrp_instance is unknown"));
    assert!(
        reason(6).ends_with("(the whole block, lines 6-8, is skipped)"),
        "{}",
        reason(6)
    );
    // The rest of the instance is still converted, the VIP without its options.
    let vi = c.vrrp_instance("VI_1").expect("converted");
    assert_eq!((vi.vrid, vi.priority, vi.auth.clone()), (9, 100, None));
    assert_eq!(
        (vi.vips[0].addr, vi.vips[0].prefix_len),
        (ip("10.0.0.9"), 24)
    );
}

#[test]
fn malformed_input_gives_positioned_errors() {
    let cases = [
        ("vrrp_instance X {\n interface eth0\n", 1, "never closed"),
        ("global_defs {\n}\n}\n", 3, "without a matching"),
        (
            "vrrp_script s {\n script \"/bin/true\n}\n",
            2,
            "unterminated quoted string",
        ),
        (&"a {\n".repeat(40), 17, "nested too deeply"),
    ];
    for (src, line, needle) in cases {
        let err = import_str(src, "bad.conf").expect_err(src);
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("bad.conf:{line}: ")), "{shown}");
        assert!(shown.contains(needle), "{shown}");
    }
}

/// Import must return (never panic), and whatever it emits must load.
fn no_panic(src: &str) {
    if let Ok(import) = import_str(src, "p.conf") {
        loaded(&import);
    }
}

const FIXTURES: [&str; 5] = [
    include_str!("fixtures/keepalived/lvs_dr.conf"),
    include_str!("fixtures/keepalived/sync_script.conf"),
    include_str!("fixtures/keepalived/http_ssl.conf"),
    include_str!("fixtures/keepalived/v3_ipv6_unicast.conf"),
    include_str!("fixtures/keepalived/unsupported.conf"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(s in "[a-z_0-9 {}\"#!./\n-]{0,300}") {
        no_panic(&s);
    }

    #[test]
    fn mutated_fixtures_never_panic(
        which in 0..FIXTURES.len(),
        at in 0usize..4000,
        cut in 0usize..40,
        insert in "[a-z0-9 {}\"\n.:/-]{0,12}",
    ) {
        let src = FIXTURES[which];
        let mut at = at % (src.len() + 1);
        while !src.is_char_boundary(at) {
            at -= 1;
        }
        let mut end = (at + cut).min(src.len());
        while !src.is_char_boundary(end) {
            end -= 1;
        }
        let mutated = format!("{}{insert}{}", &src[..at], &src[end..]);
        no_panic(&mutated);
    }
}

#[test]
fn realtime_scheduling_of_global_defs_maps_to_global() {
    let src = "global_defs {\n vrrp_rt_priority 30\n vrrp_rlimit_rtime 250000\n}\n";
    let (import, c) = text(src);
    assert!(import.unconverted.is_empty(), "{:#?}", import.unconverted);
    assert_eq!(c.global.vrrp_rt_priority, Some(30));
    assert_eq!(c.global.vrrp_rlimit_rtime, Duration::from_millis(250));
    // keepalived's 0 is "not real-time", vigil's too.
    let (_, c) = text("global_defs {\n vrrp_rt_priority 0\n}\n");
    assert_eq!(c.global.vrrp_rt_priority, None);
    // Not written: vigil's defaults, not keepalived's.
    let (_, c) = text("global_defs {\n router_id lb1\n}\n");
    assert_eq!(
        c.global.vrrp_rt_priority,
        Some(vigil_conf::DEFAULT_VRRP_RT_PRIORITY)
    );
    // Out of vigil's ranges (100 is no SCHED_RR priority; 500 us would kill the daemon on an
    // ordinary burst): listed at their lines, the rest converted.
    let src = "global_defs {\n vrrp_rt_priority 100\n vrrp_rlimit_rtime 500\n router_id lb1\n}\n";
    let (import, c) = text(src);
    assert_eq!(
        lines(&import.unconverted),
        [2, 3],
        "{:#?}",
        import.unconverted
    );
    assert_eq!(c.global.router_id, "lb1");
    assert_eq!(
        c.global.vrrp_rlimit_rtime,
        vigil_conf::DEFAULT_VRRP_RLIMIT_RTIME
    );
}

#[test]
fn dns_and_smtp_checks_and_per_server_inhibit() {
    let src = "virtual_server 192.0.2.53 53 {\n protocol UDP\n lb_algo rr\n delay_loop 3\n \
               real_server 192.0.2.61 53 {\n  inhibit_on_failure\n  DNS_CHECK {\n   type a\n   \
               name health.example.com\n  }\n }\n real_server 192.0.2.62 53 {\n  DNS_CHECK {\n  }\n }\n}\n\
               virtual_server 192.0.2.25 25 {\n real_server 192.0.2.71 25 {\n  SMTP_CHECK {\n   \
               helo_name lb.example.com\n   connect_timeout 10\n  }\n }\n}\n";
    let (import, c) = text(src);
    let dns = &c.virtual_servers[0];
    assert_eq!(
        (dns.scheduler, dns.service.family()),
        (Scheduler::Rr, vigil_conf::AddressFamily::Ipv4)
    );
    assert!(matches!(
        dns.service,
        VsKey::Addr {
            protocol: vigil_conf::Protocol::Udp,
            ..
        }
    ));
    // Only one of two real servers had inhibit_on_failure: vigil cannot express that.
    assert!(!dns.inhibit_on_failure);
    assert_eq!(lines(&import.unconverted), [6], "{:#?}", import.unconverted);
    let kinds: Vec<(String, vigil_conf::DnsType, Duration)> = dns
        .real_servers
        .iter()
        .map(|r| match &r.checks[0].kind {
            CheckKind::Dns(d) => (d.name.clone(), d.record_type, r.checks[0].interval),
            other => panic!("dns expected, got {other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (
                "health.example.com".to_owned(),
                vigil_conf::DnsType::A,
                secs(3)
            ),
            (".".to_owned(), vigil_conf::DnsType::Soa, secs(3)),
        ]
    );
    let smtp = &c.virtual_servers[1].real_servers[0].checks[0];
    assert_eq!(
        smtp.kind,
        CheckKind::Smtp {
            helo: "lb.example.com".into()
        }
    );
    assert_eq!(smtp.timeout, secs(10));
}

#[test]
fn include_edge_cases_and_read_errors() {
    let import = import_str("include */x.conf\n", "t.conf").expect("listed, not fatal");
    assert_eq!(lines(&import.unconverted), [1]);
    assert!(import.unconverted[0].reason.contains("file name only"));
    loaded(&import);

    let err = import_file(&fixture("does-not-exist.conf")).expect_err("missing");
    assert!(matches!(err, ImportError::Read { .. }), "{err}");
    assert!(
        err.to_string().contains("does-not-exist.conf: cannot read"),
        "{err}"
    );
}

#[test]
fn output_is_deterministic() {
    for name in ["lvs_dr.conf", "sync_script.conf", "main_include.conf"] {
        let a = import_file(&fixture(name)).expect("imports");
        let b = import_file(&fixture(name)).expect("imports");
        assert_eq!(a, b, "{name}");
    }
}

#[test]
fn each_refused_virtual_server_is_listed_with_vigils_reason() {
    let vs = |ip: &str, extra: &str| {
        format!(
            "virtual_server {ip} 80 {{\n {extra}\n real_server 192.0.2.10 80 {{\n  TCP_CHECK {{\n  }}\n }}\n}}\n"
        )
    };
    let src = [
        vs("198.51.100.1", "lb_algo rr"),
        vs("198.51.100.2", "quorum 1\n hysteresis 1"),
        vs("198.51.100.1", "lb_algo wrr"),
        vs("198.51.100.4", "sorry_server 2001:db8::1 80"),
        vs("198.51.100.5", "lb_algo sh"),
    ]
    .concat();
    let (import, c) = text(&src);
    let kept: Vec<String> = c
        .virtual_servers
        .iter()
        .map(|v| v.service.to_string())
        .collect();
    assert_eq!(kept.len(), 2, "{kept:?}");
    assert!(
        kept[0].contains("198.51.100.1:80") && kept[1].contains("198.51.100.5:80"),
        "{kept:?}"
    );
    let found: Vec<(usize, &str)> = import
        .unconverted
        .iter()
        .map(|u| (u.line, u.reason.as_str()))
        .collect();
    assert_eq!(lines(&import.unconverted), [8, 16, 23], "{found:#?}");
    assert!(found[0].1.starts_with("virtual_server 198.51.100.2 80 not converted: vigil refuses the result: `hysteresis` must be less than `quorum`"), "{}", found[0].1);
    assert!(
        found[1].1.contains("duplicate virtual server"),
        "{}",
        found[1].1
    );
    assert!(
        found[2].1.contains("sorry_server does not match"),
        "{}",
        found[2].1
    );
}

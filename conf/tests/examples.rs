//! The shipped example configs load and mean what their comments say.

use std::path::Path;
use std::time::Duration;

use vigil_conf::{
    AddressFamily, CheckKind, Digest, Fencing, Forwarding, LogFormat, Scheduler, Transport,
    VrrpVersion, VsKey, load_file, load_file_with_warnings,
};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

#[test]
fn lvs_dr_pair_example_loads() {
    let (c, warnings) = match load_file_with_warnings(&example("vigil.toml")) {
        Ok(x) => x,
        Err(e) => panic!("{e}"),
    };
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(c.global.node_name, "lb1");
    assert_eq!(c.global.log_format, LogFormat::Json);
    assert_eq!(c.vrrp_instances.len(), 2);
    let v4 = c.vrrp_instance("vi_web4").expect("vi_web4");
    assert_eq!(
        (v4.vrid, v4.priority, v4.version),
        (51, 150, VrrpVersion::V3)
    );
    assert_eq!(v4.family, AddressFamily::Ipv4);
    assert_eq!(
        v4.transport,
        Transport::Unicast {
            source: Some("10.0.0.11".parse().expect("literal")),
            peers: vec!["10.0.0.12".parse().expect("literal")]
        }
    );
    assert_eq!(v4.vips[1].label.as_deref(), Some("eth0:web"));
    assert_eq!(v4.vips[0].prefix_len, 24);
    assert_eq!(v4.preempt_delay, Duration::from_secs(30));
    assert_eq!(v4.garp.refresh, Some(Duration::from_mins(1)));
    assert_eq!(
        (v4.garp.delay, v4.garp.refresh_count),
        (Some(Duration::from_secs(5)), 2)
    );
    assert_eq!(v4.track.scripts[0].weight, None);
    assert_eq!(v4.track.scripts[1].weight, Some(-30));
    assert_eq!(v4.fencing, Fencing::Quorum);
    assert_eq!(
        v4.notify.stop,
        Some(vec!["/etc/vigil/stopped.sh".to_owned()])
    );
    let v6 = c.vrrp_instance("vi_web6").expect("vi_web6");
    assert_eq!(
        (v6.family, v6.advert_interval),
        (AddressFamily::Ipv6, Duration::from_millis(500))
    );
    assert_eq!(v6.transport, Transport::Multicast);
    assert_eq!(c.sync_groups[0].instances, ["vi_web4", "vi_web6"]);
    assert_eq!(c.track_script("chk_haproxy").map(|s| s.weight), Some(-60));

    assert_eq!(c.virtual_servers.len(), 4);
    let web = &c.virtual_servers[0];
    assert_eq!(web.key().to_string(), "192.0.2.10:80/tcp");
    assert_eq!(
        web.persistence.map(|p| (p.timeout.as_secs(), p.prefix_len)),
        Some((300, 24))
    );
    let CheckKind::Http(http) = &web.real_servers[0].checks[0].kind else {
        panic!("http check")
    };
    assert_eq!(http.status.len(), 2);
    assert!(http.status[1].contains(301) && !http.status[1].contains(303));
    assert_eq!(web.real_servers[0].checks[1].kind, CheckKind::Tcp);
    assert_eq!(web.real_servers[1].checks[0].kind, CheckKind::TcpHalfOpen);
    assert!(
        matches!(web.real_servers[1].checks[1].kind, CheckKind::Http(ref h) if matches!(h.digest, Some(Digest::Sha256(d)) if d[0] == 0xe3))
    );
    assert_eq!(c.virtual_servers[1].scheduler, Scheduler::Sh);
    let tls_vs = &c.virtual_servers[1];
    let CheckKind::Http(https) = &tls_vs.real_servers[0].checks[0].kind else {
        panic!("https check")
    };
    let tls = https.tls.as_ref().expect("https has tls");
    assert_eq!(
        tls.ca_file.as_deref(),
        Some(Path::new("/etc/vigil/tls/web-ca.pem"))
    );
    assert_eq!(
        tls_vs.real_servers[1].checks[0].kind,
        CheckKind::Script {
            command: vec![
                "/etc/vigil/check-tls.sh".to_owned(),
                "192.0.2.22".to_owned()
            ],
            dynamic_weight: true,
        }
    );
    assert!(c.virtual_servers[1].sched_flags.fallback && c.virtual_servers[1].sched_flags.port);
    let mail = &c.virtual_servers[3];
    assert_eq!(
        *mail.key(),
        VsKey::Fwmark {
            mark: 25,
            family: AddressFamily::Ipv4
        }
    );
    assert_eq!(mail.forwarding, Forwarding::Tun);
    assert_eq!(c.check_group("web").count(), 1);

    let cluster = c.cluster.as_ref().expect("cluster");
    assert_eq!(cluster.node_id, 1);
    assert_eq!(
        cluster.peers.iter().map(|p| p.id).collect::<Vec<_>>(),
        [2, 3]
    );
    assert!(cluster.tls.is_some() && !cluster.witness);
}

#[test]
fn witness_example_loads() {
    let c = match load_file(&example("witness.toml")) {
        Ok(c) => c,
        Err(e) => panic!("{e}"),
    };
    let cluster = c.cluster.expect("cluster");
    assert!(cluster.witness);
    assert_eq!(cluster.node_id, 3);
    assert!(c.vrrp_instances.is_empty() && c.virtual_servers.is_empty());
}

#[test]
fn missing_file_is_an_error_with_the_path() {
    let err = load_file(Path::new("/nonexistent/vigil.toml")).expect_err("must fail");
    assert_eq!(err.0.len(), 1);
    assert!(
        err.to_string()
            .starts_with("/nonexistent/vigil.toml:1:1: cannot read config"),
        "{err}"
    );
}

//! Defaults of every section, as documented on the model types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use vigil_conf::{
    AddressFamily, CheckKind, DEFAULT_API_LISTEN, DEFAULT_VRRP_RLIMIT_RTIME,
    DEFAULT_VRRP_RT_PRIORITY, DnsType, Fencing, FencingParams, Forwarding, Garp, LogFormat,
    Protocol, SchedFlags, Scheduler, StatusRange, Transport, V3Checksum, VrrpVersion, VsKey,
    default_node_name,
};

use crate::support::{INSTANCE, ok};

#[test]
fn empty_file_gives_documented_defaults() {
    let c = ok("");
    assert_eq!(c.global.node_name, default_node_name());
    assert!(!c.global.node_name.is_empty());
    assert_eq!(c.global.router_id, c.global.node_name);
    assert_eq!(c.global.script_user, "nobody");
    assert_eq!(c.global.script_group, None);
    assert_eq!(c.global.log_format, LogFormat::Plain);
    assert_eq!(c.global.state_dir, PathBuf::from("/var/lib/vigil"));
    assert_eq!(c.global.vrrp_rt_priority, Some(DEFAULT_VRRP_RT_PRIORITY));
    assert_eq!(DEFAULT_VRRP_RT_PRIORITY, 10);
    assert_eq!(c.global.vrrp_rlimit_rtime, DEFAULT_VRRP_RLIMIT_RTIME);
    assert_eq!(DEFAULT_VRRP_RLIMIT_RTIME, Duration::from_millis(100));
    assert_eq!(
        c.api.listen,
        "127.0.0.1:7400".parse::<SocketAddr>().expect("literal")
    );
    assert_eq!(c.api.listen, DEFAULT_API_LISTEN);
    assert_eq!(c.api.token_file, None);
    assert_eq!(c.metrics.listen, None);
    assert!(c.cluster.is_none());
    assert!(c.vrrp_instances.is_empty() && c.sync_groups.is_empty());
    assert!(c.track_scripts.is_empty() && c.virtual_servers.is_empty());
}

#[test]
fn node_name_default_matches_the_kernel_host_name() {
    let kernel = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default();
    if !kernel.is_empty() {
        assert_eq!(default_node_name(), kernel);
    }
    // An explicit name wins and also becomes the router id.
    let c = ok("[global]\nnode_name = \"lb7\"\n");
    assert_eq!(
        (c.global.node_name.as_str(), c.global.router_id.as_str()),
        ("lb7", "lb7")
    );
}

#[test]
fn minimal_instance_defaults() {
    let c = ok(INSTANCE);
    let i = &c.vrrp_instances[0];
    assert_eq!(i.priority, 100);
    assert_eq!(i.version, VrrpVersion::V3);
    assert_eq!(i.advert_interval, Duration::from_secs(1));
    assert_eq!(i.family, AddressFamily::Ipv4);
    assert_eq!(i.transport, Transport::Multicast);
    assert_eq!(
        (
            i.vips[0].prefix_len,
            i.vips[0].label.as_deref(),
            i.vips[0].dev.as_deref()
        ),
        (32, None, None)
    );
    assert!(i.preempt && !i.accept_mode && !i.address_owner && !i.use_vmac);
    assert_eq!(i.preempt_delay, Duration::ZERO);
    assert_eq!(
        i.garp,
        Garp {
            count: 5,
            delay: Some(Duration::from_secs(5)),
            refresh: None,
            refresh_count: 1,
        }
    );
    assert_eq!(i.auth, None);
    let no_second_burst = ok(&format!("{INSTANCE}garp_delay = \"0s\"\n"));
    assert_eq!(no_second_burst.vrrp_instances[0].garp.delay, None);
    assert_eq!(i.fencing, Fencing::Off);
    assert_eq!(i.v3_checksum, V3Checksum::WithPseudoHeader);
    assert_eq!(i.notify.timeout, Duration::from_secs(10));
    assert!(i.notify.master.is_none() && i.track.interfaces.is_empty());

    let v6 = ok(&INSTANCE.replace("192.0.2.1", "2001:db8::1"));
    assert_eq!(
        (
            v6.vrrp_instances[0].family,
            v6.vrrp_instances[0].vips[0].prefix_len
        ),
        (AddressFamily::Ipv6, 128)
    );
}

#[test]
fn fencing_defaults_to_quorum_with_a_cluster() {
    let c = ok(&format!("[cluster]\nnode_id = 1\n{INSTANCE}"));
    assert_eq!(c.vrrp_instances[0].fencing, Fencing::Quorum);
    let off = ok(&format!(
        "[cluster]\nnode_id = 1\n{INSTANCE}fencing = \"off\"\n"
    ));
    assert_eq!(off.vrrp_instances[0].fencing, Fencing::Off);
}

#[test]
fn cluster_defaults() {
    let c = ok("[global]\nstate_dir = \"/srv/vigil\"\n[cluster]\nnode_id = 4\n")
        .cluster
        .expect("cluster");
    assert_eq!(c.node_id, 4);
    assert!(c.peers.is_empty() && c.tls.is_none() && !c.witness);
    assert_eq!(c.data_dir, PathBuf::from("/srv/vigil/coord"));
    assert_eq!(
        c.fencing,
        FencingParams {
            session_timeout: Duration::from_secs(3),
            keepalive_interval: Duration::from_millis(250),
            max_clock_drift_ppm: 500,
            margin: Duration::from_millis(200),
            kernel_slack: Duration::from_secs(1),
        }
    );
    assert_eq!(
        (
            c.session_timeout,
            c.session_timeout_min,
            c.session_timeout_max
        ),
        (
            Duration::from_secs(10),
            Duration::from_secs(2),
            Duration::from_mins(1)
        )
    );
    assert_eq!(
        (
            c.heartbeat_interval,
            c.election_timeout_min,
            c.election_timeout_max
        ),
        (
            Duration::from_millis(100),
            Duration::from_millis(500),
            Duration::from_secs(1)
        )
    );
    assert_eq!(
        c.raft_listen,
        "0.0.0.0:7401".parse::<SocketAddr>().expect("literal")
    );
    assert_eq!(
        c.client_listen,
        "127.0.0.1:7402".parse::<SocketAddr>().expect("literal")
    );
}

#[test]
fn virtual_server_real_server_and_check_defaults() {
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
               [[virtual_server.real_server.check]]\ntype = \"http\"\n[[virtual_server.real_server.check]]\ntype = \"dns\"\nname = \"x.example\"\n\
               [[virtual_server.real_server.check]]\ntype = \"smtp\"\n\
               [[track_script]]\nname = \"s\"\ncommand = \"/bin/true\"\n";
    let c = ok(&format!("[global]\nnode_name = \"lbx\"\n{src}"));
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.service,
        VsKey::Addr {
            addr: "192.0.2.1:80".parse().expect("literal"),
            protocol: Protocol::Tcp
        }
    );
    assert_eq!(
        (vs.scheduler, vs.sched_flags, vs.forwarding),
        (Scheduler::Wlc, SchedFlags::default(), Forwarding::Dr)
    );
    assert_eq!(
        (vs.persistence, vs.quorum, vs.hysteresis, vs.sorry_server),
        (None, 1, 0, None)
    );
    assert!(!vs.inhibit_on_failure && !vs.alpha && !vs.omega && vs.group.is_none());
    let rs = &vs.real_servers[0];
    assert_eq!(
        (rs.port, rs.weight, rs.upper_threshold, rs.lower_threshold),
        (80, 1, 0, 0)
    );
    let http = &rs.checks[0];
    assert_eq!(
        (http.interval, http.timeout, http.retry_delay),
        (
            Duration::from_secs(5),
            Duration::from_secs(3),
            Duration::from_secs(1)
        )
    );
    assert_eq!(
        (http.retries, http.rise, http.fall, http.warmup),
        (0, 1, 1, Duration::from_secs(5))
    );
    assert_eq!(
        (http.port, http.bind, http.bind_device.as_deref()),
        (None, None, None)
    );
    let CheckKind::Http(h) = &http.kind else {
        panic!("http")
    };
    assert_eq!(
        (h.path.as_str(), h.status.as_slice()),
        ("/", &[StatusRange { from: 200, to: 299 }][..])
    );
    assert!(h.tls.is_none() && h.body_regex.is_none() && h.digest.is_none() && h.host.is_none());
    assert!(matches!(&rs.checks[1].kind, CheckKind::Dns(d) if d.record_type == DnsType::A));
    assert_eq!(
        rs.checks[2].kind,
        CheckKind::Smtp {
            helo: "lbx".to_owned()
        }
    );
    let s = &c.track_scripts[0];
    assert_eq!(
        (s.interval, s.timeout, s.rise, s.fall, s.weight),
        (Duration::from_secs(2), Duration::from_secs(1), 1, 1, 0)
    );
    assert_eq!(s.command, ["/bin/true"]);
}

#[test]
fn https_verifies_certificates_by_default_and_fwmark_defaults() {
    let src = "[[virtual_server]]\nfwmark = 7\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\nport = 443\n\
               [[virtual_server.real_server.check]]\ntype = \"https\"\n";
    let c = ok(src);
    let vs = &c.virtual_servers[0];
    assert_eq!(
        vs.service,
        VsKey::Fwmark {
            mark: 7,
            family: AddressFamily::Ipv4
        }
    );
    assert_eq!(vs.key().to_string(), "fwmark:7");
    let CheckKind::Http(h) = &vs.real_servers[0].checks[0].kind else {
        panic!("https")
    };
    let tls = h.tls.as_ref().expect("https has tls");
    assert!(tls.verify_cert && tls.sni.is_none() && tls.ca_file.is_none());
}

#[test]
fn fencing_parameters_are_read() {
    let c = ok(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nsession_timeout = \"6s\"\n\
         keepalive_interval = \"2s\"\nmax_clock_drift_ppm = 1000\nmargin = \"300ms\"\n\
         kernel_slack = \"2s\"\n",
    )
    .cluster
    .expect("cluster");
    assert_eq!(
        c.fencing,
        FencingParams {
            session_timeout: Duration::from_secs(6),
            keepalive_interval: Duration::from_secs(2),
            max_clock_drift_ppm: 1000,
            margin: Duration::from_millis(300),
            kernel_slack: Duration::from_secs(2),
        }
    );
    // The clients' default stays put.
    assert_eq!(c.session_timeout, Duration::from_secs(10));
    // 6 s · 0.999 − 0.3 s = 5.694 s of lease; it needs 2 s + 1 s + 2 s.
    assert_eq!(
        c.fencing.lease_budget(c.fencing.session_timeout),
        Some(Duration::from_millis(5_694))
    );
    assert!(c.fencing.timeout_fits(c.fencing.session_timeout));
    // Below 6 s the keep-alive interval is a third of the timeout:
    // (2 s + 1 s + 0.3 s) / (2/3 − 0.001) = 4.9574 s, rounded up to the millisecond.
    assert_eq!(
        c.fencing.min_session_timeout(),
        Some(Duration::from_millis(4_958))
    );
    assert!(!c.fencing.timeout_fits(Duration::from_millis(4_957)));
    assert_eq!(
        c.fencing.keepalive_for(Duration::from_millis(4_958)),
        Duration::from_nanos(1_652_666_666)
    );
}

#[test]
fn frequent_keepalives_allow_a_short_fencing_session() {
    let c = ok("[cluster]\nnode_id = 1\n").cluster.expect("cluster");
    // Defaults: (0.2 s + 1 s + 1 s + 0.25 s) / 0.9995 = 2.4512 s.
    assert_eq!(
        c.fencing.min_session_timeout(),
        Some(Duration::from_millis(2_452))
    );
    assert!(c.fencing.timeout_fits(c.fencing.session_timeout));
    assert_eq!(
        c.fencing.keepalive_for(c.fencing.session_timeout),
        Duration::from_millis(250)
    );
}

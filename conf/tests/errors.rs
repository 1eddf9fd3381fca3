//! Every error kind, each asserted at its exact line and column; several errors in one run.

use crate::support::{INSTANCE, errs, ok, one_error, positions};

/// `INSTANCE` followed by `extra` lines (so `extra` starts on line 6).
fn inst(extra: &str) -> String {
    format!("{INSTANCE}{extra}")
}

#[test]
fn syntax_errors_report_their_position() {
    // Unterminated string on line 2; the parser points after the last character of the line.
    one_error("[global]\nnode_name = \"a\n", 2, 15, "TOML syntax error");
    // A key defined twice points at the second occurrence.
    one_error(
        "[api]\nlisten = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n",
        3,
        1,
        "duplicate key",
    );
}

#[test]
fn unknown_key_suggests_the_closest_known_key() {
    one_error(
        &inst("prioirty = 5\n"),
        6,
        1,
        "unknown key `prioirty` in [[vrrp_instance]] \"vi\"; did you mean `priority`?",
    );
    one_error(
        "[global]\nnode_nmae = \"x\"\n",
        2,
        1,
        "did you mean `node_name`?",
    );
    one_error(
        "[globl]\n",
        1,
        2,
        "unknown key `globl` in the top level; did you mean `global`?",
    );
    // A key of another check type is unknown for this one.
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
               [[virtual_server.real_server.check]]\ntype = \"tcp\"\npath = \"/\"\n";
    one_error(src, 7, 1, "unknown key `path` in a tcp check");
    // `half_open` is the TCP check's alone.
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
               [[virtual_server.real_server.check]]\ntype = \"http\"\nhalf_open = true\n";
    one_error(src, 7, 1, "unknown key `half_open` in a http check");
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
               [[virtual_server.real_server.check]]\ntype = \"tcp\"\nhalf_open = \"yes\"\n";
    one_error(
        src,
        7,
        13,
        "expected a boolean (true or false), found string",
    );
}

#[test]
fn wrong_types_point_at_the_value() {
    one_error(
        &inst("priority = \"high\"\n"),
        6,
        12,
        "expected an integer, found string",
    );
    one_error(
        "[api]\nlisten = 7400\n",
        2,
        10,
        "expected an address string",
    );
    one_error(&inst("preempt = \"yes\"\n"), 6, 11, "expected a boolean");
}

#[test]
fn out_of_range_vrid_and_priority() {
    one_error(
        "[[vrrp_instance]]\nname = \"vi\"\ninterface = \"eth0\"\nvrid = 0\nvips = [\"192.0.2.1\"]\n",
        4,
        8,
        "`vrid` = 0 is out of range 1..=255",
    );
    one_error(
        &inst("priority = 256\n"),
        6,
        12,
        "`priority` = 256 is out of range 1..=255",
    );
}

#[test]
fn advert_interval_limits_depend_on_version() {
    one_error(
        &inst("version = 2\nadvert_interval = \"1500ms\"\n"),
        7,
        19,
        "VRRPv2 `advert_interval` must be whole seconds",
    );
    one_error(
        &inst("advert_interval = \"5ms\"\n"),
        6,
        19,
        "VRRPv3 `advert_interval` must be in 10ms..=40s950ms",
    );
    one_error(
        &inst("advert_interval = \"41s\"\n"),
        6,
        19,
        "VRRPv3 `advert_interval` must be in",
    );
    one_error(
        &inst("advert_interval = \"15ms\"\n"),
        6,
        19,
        "multiple of 10ms",
    );
    one_error(
        &inst("advert_interval = \"5\"\n"),
        6,
        19,
        "missing unit after `5`",
    );
    ok(&inst("advert_interval = \"40.95s\"\n"));
    ok(&inst("version = 2\nadvert_interval = \"255s\"\n"));
}

#[test]
fn duplicate_vrid_on_one_interface_and_family() {
    let second = INSTANCE
        .replace("name = \"vi\"", "name = \"vi2\"")
        .replace("192.0.2.1", "192.0.2.2");
    one_error(
        &format!("{INSTANCE}{second}"),
        9,
        8,
        "duplicate vrid 1 on interface \"eth0\" (IPv4): another instance already uses it (first at line 4)",
    );
    // Same vrid for the other family, or on another interface, is fine.
    let v6 = second.replace("192.0.2.2", "fe80::1");
    assert_eq!(ok(&format!("{INSTANCE}{v6}")).vrrp_instances.len(), 2);
    let other_if = second.replace("eth0", "eth1");
    assert_eq!(ok(&format!("{INSTANCE}{other_if}")).vrrp_instances.len(), 2);
}

#[test]
fn vrrp_rt_priority_is_a_sched_rr_priority() {
    one_error(
        "[global]\nvrrp_rt_priority = 100\n",
        2,
        20,
        "vrrp_rt_priority",
    );
    one_error(
        "[global]\nvrrp_rt_priority = -1\n",
        2,
        20,
        "vrrp_rt_priority",
    );
    assert_eq!(
        ok("[global]\nvrrp_rt_priority = 50\n")
            .global
            .vrrp_rt_priority,
        Some(50)
    );
    // 0 is SCHED_OTHER's priority: real-time scheduling off, keepalived's default.
    assert_eq!(
        ok("[global]\nvrrp_rt_priority = 0\n")
            .global
            .vrrp_rt_priority,
        None
    );
}

#[test]
fn vrrp_rlimit_rtime_is_a_bounded_duration() {
    one_error(
        "[global]\nvrrp_rlimit_rtime = \"0s\"\n",
        2,
        21,
        "vrrp_rlimit_rtime",
    );
    one_error(
        "[global]\nvrrp_rlimit_rtime = \"1m\"\n",
        2,
        21,
        "vrrp_rlimit_rtime",
    );
    assert_eq!(
        ok("[global]\nvrrp_rlimit_rtime = \"20ms\"\n")
            .global
            .vrrp_rlimit_rtime,
        std::time::Duration::from_millis(20)
    );
}

#[test]
fn vmac_names_are_valid_interface_names_and_unique() {
    one_error(
        &inst("vmac_name = \"vrrp.x\"\n"),
        6,
        13,
        "`vmac_name` needs use_vmac = true",
    );
    let vmac = |name: &str| inst(&format!("use_vmac = true\nvmac_name = \"{name}\"\n"));
    one_error(
        &vmac("a-name-of-16-chr"),
        7,
        13,
        "`vmac_name` \"a-name-of-16-chr\" must be 1 to 15 bytes long",
    );
    one_error(&vmac("vr/1"), 7, 13, "is not a valid interface name");
    one_error(&vmac("vr 1"), 7, 13, "is not a valid interface name");
    one_error(&vmac(".."), 7, 13, "is not a valid interface name");
    one_error(
        &vmac("eth0"),
        7,
        13,
        "`vmac_name` \"eth0\" is the instance's own interface",
    );
    let config = ok(&vmac("vmac1"));
    assert_eq!(
        config.vrrp_instances[0].vmac_interface().as_deref(),
        Some("vmac1")
    );
    let config = ok(&inst("use_vmac = true\n"));
    assert_eq!(
        config.vrrp_instances[0].vmac_interface().as_deref(),
        Some("vrrp.1")
    );
    assert_eq!(ok(INSTANCE).vrrp_instances[0].vmac_interface(), None);

    // vrid 1 on eth0 and on eth1 would both default to "vrrp.1".
    let second = INSTANCE
        .replace("name = \"vi\"", "name = \"vi2\"")
        .replace("192.0.2.1", "192.0.2.2")
        .replace("eth0", "eth1");
    one_error(
        &format!("{}{second}use_vmac = true\n", inst("use_vmac = true\n")),
        12,
        12,
        "virtual MAC interface \"vrrp.1\" is already used by another instance; set `vmac_name` (first at line 6)",
    );
    let named = format!(
        "{}{second}use_vmac = true\nvmac_name = \"vrrp.1b\"\n",
        inst("use_vmac = true\n")
    );
    assert_eq!(ok(&named).vrrp_instances.len(), 2);
}

#[test]
fn vip_family_must_match_the_instance() {
    one_error(
        &inst("family = \"ipv6\"\n"),
        5,
        9,
        "VIP 192.0.2.1 does not match the instance's address family (IPv6)",
    );
    // Without `family`, the first VIP decides and later ones must follow.
    one_error(
        &INSTANCE.replace("[\"192.0.2.1\"]", "[\"192.0.2.1\", \"2001:db8::1\"]"),
        5,
        22,
        "VIP 2001:db8::1 does not match",
    );
}

#[test]
fn unicast_without_peers_is_an_error_not_multicast() {
    one_error(
        &inst("transport = \"unicast\"\n"),
        6,
        13,
        "transport = \"unicast\" needs `unicast_peers`",
    );
    one_error(
        &inst("transport = \"unicast\"\nunicast_peers = []\n"),
        7,
        17,
        "`unicast_peers` is empty",
    );
    // Peers without unicast transport are refused too, rather than silently multicasting.
    one_error(
        &inst("unicast_peers = [\"192.0.2.2\"]\n"),
        6,
        1,
        "`unicast_peers` needs transport = \"unicast\"",
    );
}

#[test]
fn unicast_peers_of_the_wrong_family() {
    one_error(
        &inst("transport = \"unicast\"\nunicast_peers = [\"10.0.0.2\", \"fe80::2\"]\n"),
        7,
        30,
        "unicast peer fe80::2 does not match the instance's address family",
    );
}

#[test]
fn priority_255_requires_address_owner() {
    one_error(
        &inst("priority = 255\n"),
        6,
        12,
        "priority 255 is reserved for the address owner",
    );
    one_error(
        &inst("address_owner = true\n"),
        6,
        17,
        "an address owner must have priority = 255",
    );
    assert!(ok(&inst("priority = 255\naddress_owner = true\n")).vrrp_instances[0].address_owner);
}

#[test]
fn tracked_script_and_group_must_exist() {
    one_error(
        &inst("track_scripts = [\"chk\"]\n"),
        6,
        18,
        "unknown track_script \"chk\"",
    );
    one_error(
        &inst("track_groups = [{ name = \"web\", weight = -10 }]\n"),
        6,
        26,
        "unknown health-check group (a virtual server `group`) \"web\"",
    );
    one_error(
        &inst("track_interfaces = [\"eth1\", { name = \"eth1\", weight = -5 }]\n"),
        6,
        38,
        "\"eth1\" is listed twice in `track_interfaces`",
    );
    one_error(
        &inst("track_interfaces = [{ name = \"eth1\", weight = 300 }]\n"),
        6,
        47,
        "`weight` = 300 is out of range -254..=254",
    );
}

#[test]
fn duplicate_names_and_cluster_ids() {
    let script = "[[track_script]]\nname = \"chk\"\ncommand = \"/bin/true\"\n";
    one_error(
        &format!("{script}{script}"),
        5,
        8,
        "duplicate track_script name \"chk\" (first at line 2)",
    );
    let dup_instance = format!(
        "{INSTANCE}{}",
        INSTANCE
            .replace("vrid = 1", "vrid = 2")
            .replace(".1\"", ".2\"")
    );
    one_error(
        &dup_instance,
        7,
        8,
        "duplicate VRRP instance name \"vi\" (first at line 2)",
    );
    one_error(
        "[cluster]\nnode_id = 1\n[[cluster.peers]]\nid = 1\naddress = \"10.0.0.2:7401\"\n",
        4,
        6,
        "duplicate cluster id 1 (first at line 2)",
    );
}

#[test]
fn version_rules_v2_ipv6_auth_v3_checksum() {
    one_error(
        &inst("version = 2\nfamily = \"ipv6\"\n").replace("192.0.2.1", "2001:db8::1"),
        6,
        11,
        "VRRPv2 is IPv4-only",
    );
    one_error(
        &inst("auth_pass = \"secret\"\n"),
        6,
        13,
        "authentication does not exist in VRRPv3",
    );
    one_error(
        &inst("version = 2\nauth_pass = \"toolongpass\"\n"),
        7,
        13,
        "`auth_pass` must be 1..=8 bytes",
    );
    one_error(
        &inst("version = 2\nv3_checksum = \"accept-both\"\n"),
        7,
        1,
        "`v3_checksum` applies only to VRRPv3 over IPv4",
    );
    one_error(&inst("version = 4\n"), 6, 11, "VRRP version must be 2 or 3");
}

#[test]
fn a_vip_belongs_to_one_instance() {
    let other = INSTANCE
        .replace("name = \"vi\"", "name = \"vi2\"")
        .replace("vrid = 1", "vrid = 2");
    one_error(
        &format!("{INSTANCE}{other}"),
        10,
        9,
        "VIP 192.0.2.1 is already managed by another VRRP instance (first at line 5)",
    );
}

#[test]
fn checks_need_a_port_except_scripts() {
    let base = "[[virtual_server]]\nfwmark = 3\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
                [[virtual_server.real_server.check]]\n";
    one_error(
        &format!("{base}type = \"tcp\"\n"),
        5,
        1,
        "a tcp check needs a port",
    );
    ok(&format!("{base}type = \"tcp\"\nport = 22\n"));
    ok(&format!(
        "{base}type = \"script\"\ncommand = \"/bin/true\"\n"
    ));
}

#[test]
fn virtual_servers_may_share_a_check_group() {
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\ngroup = \"web\"\n\
               [[virtual_server]]\naddress = \"192.0.2.1:443\"\ngroup = \"web\"\n";
    let c = ok(&format!("{src}{INSTANCE}track_groups = [\"web\"]\n"));
    assert_eq!(c.check_group("web").count(), 2);
    one_error(
        &format!("{src}[[virtual_server]]\naddress = \"192.0.2.1:80\"\n"),
        8,
        11,
        "duplicate virtual server 192.0.2.1:80/tcp (first at line 2)",
    );
}

#[test]
fn witness_runs_no_vrrp_instances() {
    one_error(
        &format!("[cluster]\nnode_id = 1\nwitness = true\n{INSTANCE}"),
        5,
        8,
        "VRRP instance \"vi\" on a witness",
    );
    one_error(
        "[cluster]\nnode_id = 1\nwitness = true\n[[virtual_server]]\naddress = \"192.0.2.1:80\"\n",
        5,
        11,
        "virtual server 192.0.2.1:80/tcp on a witness",
    );
}

#[test]
fn fencing_and_preemption_consistency() {
    one_error(
        &inst("fencing = \"quorum\"\n"),
        6,
        11,
        "fencing = \"quorum\" needs a [cluster] section",
    );
    one_error(
        &inst("preempt = false\npreempt_delay = \"10s\"\n"),
        7,
        1,
        "`preempt_delay` has no effect with preempt = false",
    );
}

#[test]
fn missing_required_keys_point_at_the_table_header() {
    let e = positions("\n[[vrrp_instance]]\nname = \"vi\"\nvips = [\"192.0.2.1\"]\n");
    assert_eq!(
        e,
        [
            "2:1: missing required key `interface` in [[vrrp_instance]] \"vi\"",
            "2:1: missing required key `vrid` in [[vrrp_instance]] \"vi\"",
        ]
    );
}

#[test]
fn virtual_server_errors() {
    one_error(
        "[[virtual_server]]\naddress = \"192.0.2.1:80\"\nfwmark = 1\n",
        3,
        10,
        "set either `address` or `fwmark`, not both",
    );
    one_error(
        "[[virtual_server]]\naddress = \"192.0.2.1:80\"\nscheduler = \"rrr\"\n",
        3,
        13,
        "unknown scheduler \"rrr\"",
    );
    one_error(
        "[[virtual_server]]\naddress = \"192.0.2.1:80\"\nscheduler_flags = [\"port\"]\n",
        3,
        19,
        "apply only to the sh and mh",
    );
    one_error(
        "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"2001:db8::5\"\n",
        4,
        11,
        "real server 2001:db8::5 does not match the virtual server's address family",
    );
    let check = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\n\
                 [[virtual_server.real_server.check]]\ntype = \"http\"\nstatus = [\"299-200\"]\nbody_regex = \"(\"\n";
    assert_eq!(
        positions(check),
        [
            "7:11: expected an HTTP status code 100..=599 or a range string like \"200-299\"",
            "8:14: invalid `body_regex`: unclosed group",
        ]
    );
}

#[test]
fn cluster_peers_need_distinct_addresses() {
    one_error(
        "[cluster]\nnode_id = 1\npeers = [{ id = 2, address = \"10.0.0.2:7401\" }, { id = 3, address = \"10.0.0.2:7401\" }]\n",
        3,
        69,
        "peer address 10.0.0.2:7401 is already used by peer 2",
    );
}

#[test]
fn cluster_timing_errors() {
    one_error(
        "[cluster]\nnode_id = 1\nheartbeat_interval = \"500ms\"\n",
        3,
        22,
        "heartbeat_interval must be shorter than election_timeout_min",
    );
    one_error(
        "[cluster]\nnode_id = 1\n[cluster.tls]\nca = \"/ca.pem\"\ncert = \"/c.pem\"\n",
        3,
        1,
        "missing required key `key` in [cluster.tls]",
    );
}

#[test]
fn session_timeout_too_short_for_fencing() {
    // Defaults (500 ppm, 200ms margin, 1s kernel slack, 250ms keep-alives) need about 2.45 s;
    // 2.4 s leaves a lease of 2.1988 s, less than 1 s + 1 s slack + 250 ms.
    let src = format!(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nsession_timeout = \"2400ms\"\n{INSTANCE}"
    );
    one_error(
        &src,
        4,
        19,
        "the fencing session_timeout \"2s400ms\" is too short for quorum fencing (instance \"vi\"",
    );
    assert!(
        errs(&src)[0].message.contains("use at least \"2s452ms\""),
        "{:?}",
        errs(&src)[0].message
    );
    // Absent, the default of 3 s fits, whatever [cluster] session_timeout (the clients'
    // default) is; a larger margin makes it too short, reported at the [cluster] table.
    ok(&format!("[cluster]\nnode_id = 1\n{INSTANCE}"));
    ok(&format!(
        "[cluster]\nnode_id = 1\nsession_timeout = \"2s\"\n{INSTANCE}"
    ));
    one_error(
        &format!("[cluster]\nnode_id = 1\n[cluster.fencing]\nmargin = \"5s\"\n{INSTANCE}"),
        3,
        1,
        "the fencing session_timeout \"3s\" is too short for quorum fencing",
    );
    // Without fenced instances (fencing off, an address owner, a witness) nothing is checked.
    ok(&format!(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nsession_timeout = \"2s\"\n{INSTANCE}fencing = \"off\"\n"
    ));
    ok(&format!(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nsession_timeout = \"2s\"\n{INSTANCE}priority = 255\naddress_owner = true\n"
    ));
}

#[test]
fn fencing_session_and_keepalive_bounds() {
    // The cluster grants nothing outside session_timeout_min..=max.
    one_error(
        "[cluster]\nnode_id = 1\nsession_timeout_min = \"4s\"\n[cluster.fencing]\n\
         session_timeout = \"3s\"\n",
        5,
        19,
        "the fencing session_timeout (3s) must lie within [cluster] session_timeout_min (4s)",
    );
    // Two lost keep-alives must not end the session.
    one_error(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nsession_timeout = \"3s\"\n\
         keepalive_interval = \"1100ms\"\n",
        5,
        22,
        "keepalive_interval (1s100ms) must be at most a third of the fencing session_timeout (3s)",
    );
}

#[test]
fn fencing_parameters_out_of_range() {
    one_error(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nmax_clock_drift_ppm = 100001\n",
        4,
        23,
        "`max_clock_drift_ppm` = 100001 is out of range 0..=100000",
    );
    one_error(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nkernel_slack = \"11s\"\n",
        4,
        16,
        "`kernel_slack` = \"11s\" is out of range",
    );
    one_error(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nmargn = \"1s\"\n",
        4,
        1,
        "did you mean `margin`?",
    );
}

#[test]
fn sync_group_members_must_exist_once() {
    let group = "[[vrrp_sync_group]]\nname = \"g\"\ninstances = [\"vi\", \"vx\"]\n";
    one_error(
        &format!("{INSTANCE}{group}"),
        8,
        20,
        "unknown vrrp_instance \"vx\"",
    );
}

/// Errors from different sections, of different kinds (type, range, semantic, cross-section),
/// all come back from one run, in file order, with the file name.
#[test]
fn many_errors_in_different_sections_reported_together_in_file_order() {
    let src = r#"[global]
log_format = "xml"

[[vrrp_instance]]
name = "a"
interface = "eth0"
vrid = 7
priority = 255
vips = ["192.0.2.1"]
track_scripts = ["missing"]

[[vrrp_instance]]
name = "b"
interface = "eth0"
vrid = 7
vips = ["192.0.2.2"]
transport = "unicast"

[[virtual_server]]
address = "192.0.2.1:80"
schedulr = "rr"

[api]
listen = "nowhere"
"#;
    let all = errs(src);
    let got: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "t.toml:2:14: unknown log format \"xml\"; expected one of: plain, json",
            "t.toml:8:12: priority 255 is reserved for the address owner (RFC 5798 §5.2.4): set address_owner = true if the VIPs are this router's own addresses, else use 1..=254",
            "t.toml:10:18: unknown track_script \"missing\"",
            "t.toml:15:8: duplicate vrid 7 on interface \"eth0\" (IPv4): another instance already uses it (first at line 7)",
            "t.toml:17:13: transport = \"unicast\" needs `unicast_peers` (at least one address)",
            "t.toml:21:1: unknown key `schedulr` in [[virtual_server]] 192.0.2.1:80/tcp; did you mean `scheduler`?",
            "t.toml:24:10: invalid socket address \"nowhere\" (expected IP:PORT, IPv6 in brackets)",
        ]
    );
}

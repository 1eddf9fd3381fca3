//! The VRRP side of the import: instances, scripts, sync groups, and refused blocks.

use std::net::IpAddr;
use std::time::Duration;

use vigil_conf::{Auth, TrackRef, Transport, VrrpVersion};

use super::{file, ip, lines, secs, text};

#[test]
fn vrrp_v3_ipv6_unicast_pair() {
    let (import, c) = file("v3_ipv6_unicast.conf");
    assert_eq!(c.global.router_id, "lb-a");
    assert_eq!(c.global.script_user, "keepalived_script");
    assert_eq!(c.global.script_group.as_deref(), Some("keepalived"));
    assert!(import.toml.contains("enable_script_security"));
    let vi = c.vrrp_instance("VI_6").expect("converted");
    assert_eq!(vi.version, VrrpVersion::V3);
    assert_eq!(vi.family, vigil_conf::AddressFamily::Ipv6);
    assert_eq!(vi.advert_interval, Duration::from_millis(500));
    assert!(!vi.preempt, "nopreempt");
    assert_eq!(
        vi.transport,
        Transport::Unicast {
            source: Some(ip("2001:db8::11")),
            peers: vec![ip("2001:db8::12")]
        }
    );
    let vips: Vec<(IpAddr, u8, Option<&str>)> = vi
        .vips
        .iter()
        .map(|v| (v.addr, v.prefix_len, v.dev.as_deref()))
        .collect();
    assert_eq!(
        vips,
        [
            (ip("fe80::60"), 64, Some("ens3")),
            (ip("2001:db8:100::10"), 64, None)
        ]
    );
    assert_eq!(
        vi.notify.master.as_deref(),
        Some(
            &[
                "/etc/keepalived/notify.sh".to_owned(),
                "MASTER".into(),
                "VI 6".into()
            ][..]
        )
    );
    assert_eq!(
        vi.notify.any.as_deref(),
        Some(&["/usr/local/bin/log-transition".to_owned()][..])
    );
    assert_eq!(
        vi.notify.fault.as_deref(),
        Some(&["/etc/keepalived/notify.sh".to_owned(), "FAULT".into()][..])
    );
    // The script is kept; only its run-as user is listed.
    assert_eq!(
        lines(&import.unconverted),
        [8, 25],
        "{:#?}",
        import.unconverted
    );
    assert!(import.unconverted[1].reason.contains("script_user"));
}

#[test]
fn v2_password_auth_and_its_limits() {
    let src = "vrrp_instance A {\n interface eth0\n virtual_router_id 1\n advert_int 3\n \
               authentication {\n  auth_type PASS\n  auth_pass verylongpassword\n }\n \
               virtual_ipaddress {\n  192.0.2.1/24\n }\n}\n\
               vrrp_instance B {\n interface eth0\n virtual_router_id 2\n version 3\n advert_int 0.25\n \
               authentication {\n  auth_type PASS\n  auth_pass secret\n }\n \
               virtual_ipaddress {\n  192.0.2.2\n }\n}\n\
               vrrp_instance C {\n interface eth0\n virtual_router_id 3\n advert_int 1.5\n \
               virtual_ipaddress {\n  192.0.2.3\n }\n}\n";
    let (import, c) = text(src);
    let a = c.vrrp_instance("A").expect("A");
    // keepalived sends the first 8 bytes of a longer password.
    assert_eq!(a.auth, Some(Auth::SimplePassword("verylong".into())));
    assert_eq!(a.advert_interval, secs(3));
    let b = c.vrrp_instance("B").expect("B");
    assert_eq!((b.version, b.auth.clone()), (VrrpVersion::V3, None));
    assert_eq!(b.advert_interval, Duration::from_millis(250));
    let cc = c.vrrp_instance("C").expect("C");
    assert_eq!(cc.advert_interval, secs(1), "v2 cannot carry 1.5s");
    let reasons: Vec<(usize, &str)> = import
        .unconverted
        .iter()
        .map(|u| (u.line, u.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 2, "{reasons:#?}");
    assert_eq!(reasons[0].0, 20);
    assert!(reasons[0].1.contains("VRRPv3 has no authentication"));
    assert_eq!(reasons[1].0, 29);
    assert!(reasons[1].1.contains("VRRPv2"));
}

#[test]
fn sync_group_and_vrrp_scripts_with_weights() {
    let (import, c) = file("sync_script.conf");
    let haproxy = c.track_script("chk_haproxy").expect("script");
    assert_eq!(haproxy.command, ["/usr/bin/pgrep", "-x", "haproxy"]);
    assert_eq!((haproxy.interval, haproxy.timeout), (secs(2), secs(1)));
    assert_eq!((haproxy.rise, haproxy.fall, haproxy.weight), (2, 2, -20));
    let bonus = c.track_script("chk_bonus").expect("script");
    assert_eq!(
        (bonus.interval, bonus.timeout, bonus.weight),
        (secs(5), secs(5), 0)
    );

    let ext = c.vrrp_instance("VI_EXT").expect("VI_EXT");
    // keepalived adds +10 while chk_bonus succeeds: vigil starts 10 higher and takes 10 off
    // while it fails.
    assert_eq!(ext.priority, 110);
    let tracked = |name: &str, weight| TrackRef {
        name: name.into(),
        weight,
    };
    assert_eq!(
        ext.track.scripts,
        [
            tracked("chk_haproxy", None),
            tracked("chk_bonus", Some(-10))
        ]
    );
    let ifs: Vec<(&str, i32)> = ext
        .track
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.weight))
        .collect();
    assert_eq!(ifs, [("eth0", 0), ("eth2", -30)]);
    assert_eq!(ext.vips[0].label.as_deref(), Some("eth0:ext"));
    assert_eq!(ext.vips[0].dev.as_deref(), Some("eth0"));

    let int = c.vrrp_instance("VI_INT").expect("VI_INT");
    assert_eq!((int.priority, int.preempt_delay), (100, secs(30)));
    assert_eq!(int.track.scripts, [tracked("chk_haproxy", Some(-50))]);

    assert_eq!(c.sync_groups.len(), 1);
    assert_eq!(c.sync_groups[0].name, "G_WEB");
    assert_eq!(c.sync_groups[0].instances, ["VI_EXT", "VI_INT"]);
    assert_eq!(lines(&import.unconverted), [21]);
    assert!(import.unconverted[0].reason.contains("notify"));
}

#[test]
fn one_line_blocks_global_defaults_and_single_family_instances() {
    let src = "global_defs { vrrp_version 3\n vrrp_garp_master_refresh 60 }\n\
               vrrp_instance V\n{\n interface eth0\n virtual_router_id 5\n priority 250\n \
               advert_int 0.5\n track_interface { eth1 eth2 }\n track_script { chk }\n \
               virtual_ipaddress { 192.0.2.5/24 }\n virtual_ipaddress_excluded {\n  192.0.2.6\n  \
               2001:db8::6\n }\n}\n\
               vrrp_script chk {\n script \"/bin/true\"\n weight 10\n}\n";
    let (import, c) = text(src);
    let v = c.vrrp_instance("V").expect("V");
    assert_eq!(v.version, VrrpVersion::V3, "global vrrp_version");
    assert_eq!(v.advert_interval, Duration::from_millis(500));
    assert_eq!(v.garp.refresh, Some(secs(60)));
    let ifs: Vec<(&str, i32)> = v
        .track
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.weight))
        .collect();
    assert_eq!(ifs, [("eth1", 0), ("eth2", 0)]);
    // +10 on top of 250 cannot be expressed within 1..=254: listed, not approximated.
    assert_eq!(v.priority, 250);
    assert!(v.track.scripts.is_empty());
    let vips: Vec<(IpAddr, u8)> = v.vips.iter().map(|v| (v.addr, v.prefix_len)).collect();
    assert_eq!(vips, [(ip("192.0.2.5"), 24), (ip("192.0.2.6"), 32)]);
    assert_eq!(
        lines(&import.unconverted),
        [10, 14],
        "{:#?}",
        import.unconverted
    );
    assert!(import.unconverted[0].reason.contains("above 254"));
    assert!(import.unconverted[1].reason.contains("single-family"));
}

#[test]
fn blocks_vigil_refuses_are_listed_not_emitted() {
    let src = "vrrp_instance A {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.1\n }\n}\n\
               vrrp_instance B {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.2\n }\n}\n\
               vrrp_instance C {\n virtual_router_id 8\n virtual_ipaddress {\n  192.0.2.3\n }\n}\n\
               vrrp_sync_group G {\n group {\n  B C\n }\n}\n";
    let (import, c) = text(src);
    let names: Vec<&str> = c.vrrp_instances.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["A"]);
    let found: Vec<(usize, &str)> = import
        .unconverted
        .iter()
        .map(|u| (u.line, u.reason.as_str()))
        .collect();
    assert_eq!(
        lines(&import.unconverted),
        [8, 15, 21, 23, 23],
        "{found:#?}"
    );
    assert!(
        found[0]
            .1
            .contains("vigil refuses the result: duplicate vrid 7"),
        "{}",
        found[0].1
    );
    assert!(found[1].1.contains("no (valid) `interface`"));
    assert!(
        found[2].1.contains("no convertible members"),
        "{}",
        found[2].1
    );
    assert!(
        found[3]
            .1
            .contains("\"B\" is not defined or was not converted")
    );
}

//! Reload diffs per VRRP instance and virtual server.

use vigil_conf::{AddressFamily, Protocol, VsKey, diff};

use crate::support::ok;

fn instance(name: &str, vrid: u8, priority: u8) -> String {
    format!(
        "[[vrrp_instance]]\nname = \"{name}\"\ninterface = \"eth0\"\nvrid = {vrid}\npriority = {priority}\nvips = [\"192.0.2.{vrid}\"]\n"
    )
}

fn vs(addr: &str, weight: u16) -> String {
    format!(
        "[[virtual_server]]\naddress = \"{addr}\"\n[[virtual_server.real_server]]\naddress = \"10.0.0.1\"\nweight = {weight}\n"
    )
}

#[test]
fn identical_configs_have_an_empty_diff() {
    let src = format!("{}{}", instance("a", 1, 100), vs("192.0.2.1:80", 1));
    let d = diff(&ok(&src), &ok(&src));
    assert!(d.is_empty(), "{d:#?}");
    assert_eq!(d.vrrp_instances.unchanged, ["a"]);
}

#[test]
fn lists_added_removed_changed_and_unchanged() {
    let old = ok(&format!(
        "{}{}{}{}{}",
        instance("keep", 1, 100),
        instance("bump", 2, 100),
        instance("gone", 3, 100),
        vs("192.0.2.1:80", 1),
        vs("192.0.2.1:443", 1)
    ));
    let new = ok(&format!(
        "[metrics]\nlisten = \"127.0.0.1:9740\"\n{}{}{}{}{}",
        instance("keep", 1, 100),
        instance("bump", 2, 120),
        instance("new", 4, 100),
        vs("192.0.2.1:80", 5),
        "[[virtual_server]]\nfwmark = 9\n"
    ));
    let d = diff(&old, &new);
    assert_eq!(d.vrrp_instances.added, ["new"]);
    assert_eq!(d.vrrp_instances.removed, ["gone"]);
    assert_eq!(d.vrrp_instances.changed, ["bump"]);
    assert_eq!(d.vrrp_instances.unchanged, ["keep"]);
    let http = VsKey::Addr {
        addr: "192.0.2.1:80".parse().expect("literal"),
        protocol: Protocol::Tcp,
    };
    let https = VsKey::Addr {
        addr: "192.0.2.1:443".parse().expect("literal"),
        protocol: Protocol::Tcp,
    };
    assert_eq!(d.virtual_servers.changed, [http]);
    assert_eq!(d.virtual_servers.removed, [https]);
    assert_eq!(
        d.virtual_servers.added,
        [VsKey::Fwmark {
            mark: 9,
            family: AddressFamily::Ipv4
        }]
    );
    assert!(d.virtual_servers.unchanged.is_empty());
    assert!(d.metrics_changed && !d.api_changed && !d.global_changed && !d.cluster_changed);
    assert!(!d.is_empty());
}

//! Warnings: reported with positions, never refusing the config.

use vigil_conf::{ConfigWarning, load_str_with_warnings};

use crate::support::INSTANCE;

fn warnings(src: &str) -> Vec<ConfigWarning> {
    match load_str_with_warnings(src, "w.toml") {
        Ok((_, w)) => w,
        Err(e) => panic!("config should load:\n{e}"),
    }
}

#[test]
fn clear_text_v2_password() {
    let w = warnings(&format!("{INSTANCE}version = 2\nauth_pass = \"secret\"\n"));
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].line, w[0].col), (7, 13));
    assert!(
        w[0].to_string()
            .starts_with("w.toml:7:13: VRRPv2 simple password authentication is for interop only")
    );
}

#[test]
fn first_ipv6_vip_should_be_link_local() {
    let global_first = INSTANCE.replace("[\"192.0.2.1\"]", "[\"2001:db8::1/64\", \"fe80::1/64\"]");
    let w = warnings(&global_first);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!((w[0].line, w[0].col), (5, 9));
    assert!(
        w[0].message
            .contains("first IPv6 VIP 2001:db8::1 is not link-local")
    );
    let link_local_first =
        INSTANCE.replace("[\"192.0.2.1\"]", "[\"fe80::1/64\", \"2001:db8::1/64\"]");
    assert!(warnings(&link_local_first).is_empty());
}

#[test]
fn open_api_without_token_and_two_member_cluster() {
    let w = warnings(
        "[api]\nlisten = \"0.0.0.0:7400\"\n[cluster]\nnode_id = 1\n[[cluster.peers]]\nid = 2\naddress = \"10.0.0.2:7401\"\n",
    );
    let at: Vec<(usize, usize)> = w.iter().map(|w| (w.line, w.col)).collect();
    assert_eq!(at, [(2, 10), (3, 1)], "{w:?}");
    assert!(w[0].message.contains("without `token_file`"));
    assert!(w[1].message.contains("two-member cluster"));
    // With a token and a third member, nothing to warn about.
    let fine = "[api]\nlisten = \"0.0.0.0:7400\"\ntoken_file = \"/etc/vigil/token\"\n[cluster]\nnode_id = 1\n\
                [[cluster.peers]]\nid = 2\naddress = \"10.0.0.2:7401\"\n[[cluster.peers]]\nid = 3\naddress = \"10.0.0.3:7401\"\n";
    assert!(warnings(fine).is_empty());
}

#[test]
fn lvs_port_mapping_and_unreachable_quorum() {
    let src = "[[virtual_server]]\naddress = \"192.0.2.1:80\"\nquorum = 5\n\
               [[virtual_server.real_server]]\naddress = \"10.0.0.1\"\nport = 8080\nweight = 2\n";
    let w = warnings(src);
    let at: Vec<(usize, usize)> = w.iter().map(|w| (w.line, w.col)).collect();
    assert_eq!(at, [(3, 10), (6, 1)], "{w:?}");
    assert!(w[0].message.contains("quorum 5 exceeds the total weight 2"));
    assert!(
        w[1].message
            .contains("only nat can map ports; with dr traffic arrives on 80")
    );
    // nat may map ports.
    let nat = src.replace("quorum = 5", "quorum = 2\nforwarding = \"nat\"");
    assert!(warnings(&nat).is_empty());
}

#[test]
fn optimistic_fencing_parameters() {
    let w = warnings(
        "[cluster]\nnode_id = 1\n[cluster.fencing]\nmax_clock_drift_ppm = 50\nkernel_slack = \"500ms\"\n",
    );
    assert_eq!(w.len(), 2, "{w:#?}");
    assert_eq!((w[0].line, w[0].col), (4, 23));
    assert!(w[0].message.contains("below 200"), "{}", w[0].message);
    assert_eq!((w[1].line, w[1].col), (5, 16));
    assert!(
        w[1].message.contains("about a second late"),
        "{}",
        w[1].message
    );
}

//! Shared config fragments: validated with positions in the fragment, merged into the local
//! config, all-or-nothing.

use vigil_conf::{Config, merge_fragments};

use crate::support::ok;

const BASE: &str = r#"
[global]
node_name = "lb1"

[[vrrp_instance]]
name = "VI_1"
interface = "eth0"
vrid = 51
priority = 150
vips = ["192.0.2.100/24"]
track_scripts = ["chk_app"]
track_groups = [{ name = "local", weight = -10 }]

[[track_script]]
name = "chk_app"
command = ["/bin/true"]
weight = -20

[[virtual_server]]
address = "192.0.2.100:443"
group = "local"

[[virtual_server.real_server]]
address = "10.0.0.5"
"#;

const WEB: &str = r#"[[virtual_server]]
address = "192.0.2.100:80"
group = "web"
scheduler = "rr"

[[virtual_server.real_server]]
address = "10.0.0.1"

[[virtual_server.real_server.check]]
type = "tcp"
interval = "1s"

[[track]]
instance = "VI_1"
group = "web"
weight = -30
"#;

fn base() -> Config {
    ok(BASE)
}

fn refused(fragments: &[(&str, &str)]) -> Vec<String> {
    match merge_fragments(&base(), fragments) {
        Ok(c) => panic!("fragments should be refused, got {c:#?}"),
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_fragment_adds_virtual_servers_and_track_weights() {
    let merged = merge_fragments(&base(), &[("/vigil/config/web", WEB)]).expect("valid");
    assert_eq!(merged.virtual_servers.len(), 2);
    let added = &merged.virtual_servers[1];
    assert_eq!(added.key().to_string(), "192.0.2.100:80/tcp");
    assert_eq!(added.real_servers.len(), 1);
    let vi = merged.vrrp_instance("VI_1").expect("instance");
    let web = vi
        .track
        .groups
        .iter()
        .find(|g| g.name == "web")
        .expect("tracked");
    assert_eq!(web.weight, Some(-30));
    // The local config itself is untouched: a fragment removed later falls back to it.
    assert_eq!(base().virtual_servers.len(), 1);
}

#[test]
fn track_entries_override_local_weights() {
    let frag = "[[track]]\ninstance = \"VI_1\"\nscript = \"chk_app\"\nweight = -50\n\n\
                [[track]]\ninstance = \"VI_1\"\ninterface = \"eth1\"\nweight = -5\n";
    let merged = merge_fragments(&base(), &[("w", frag)]).expect("valid");
    let vi = merged.vrrp_instance("VI_1").expect("instance");
    assert_eq!(vi.track.scripts.len(), 1, "{:?}", vi.track.scripts);
    assert_eq!(vi.track.scripts[0].weight, Some(-50));
    assert_eq!(vi.track.interfaces.len(), 1);
    assert_eq!(vi.track.interfaces[0].name, "eth1");
    assert_eq!(vi.track.interfaces[0].weight, -5);
}

#[test]
fn errors_point_into_the_fragment() {
    let bad = WEB.replace("scheduler = \"rr\"", "scheduler = \"fastest\"");
    let errors = refused(&[("/vigil/config/web", &bad)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("/vigil/config/web:4:13: unknown scheduler"),
        "{errors:#?}"
    );
}

#[test]
fn only_shared_sections_are_allowed() {
    let frag = "[[vrrp_instance]]\nname = \"VI_9\"\n";
    let errors = refused(&[("f", frag)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(
        errors[0].starts_with("f:1:3: unknown key `vrrp_instance`"),
        "{errors:#?}"
    );
    assert!(
        errors[0].contains("only [[virtual_server]] and [[track]]"),
        "{errors:#?}"
    );
}

#[test]
fn a_virtual_server_is_defined_once_across_file_and_fragments() {
    let local = "[[virtual_server]]\naddress = \"192.0.2.100:443\"\n\n\
                 [[virtual_server.real_server]]\naddress = \"10.0.0.9\"\n";
    let errors = refused(&[("dup", local)]);
    assert_eq!(
        errors,
        ["dup:1:1: virtual server 192.0.2.100:443/tcp is already defined in the local config file"]
    );
    let errors = refused(&[("a", WEB), ("b", WEB)]);
    assert!(
        errors.iter().any(|e| e.starts_with(
            "b:1:1: virtual server 192.0.2.100:80/tcp is already defined in fragment a"
        )),
        "{errors:#?}"
    );
}

#[test]
fn track_references_must_resolve_with_suggestions() {
    let frag = "[[track]]\ninstance = \"VI_2\"\nscript = \"chk_app\"\nweight = -1\n\n\
                [[track]]\ninstance = \"VI_1\"\ngroup = \"webs\"\nweight = -1\n\n\
                [[track]]\ninstance = \"VI_1\"\nscript = \"chk_ap\"\nweight = -1\n";
    let errors = refused(&[("t", frag), ("web", WEB)]);
    assert_eq!(
        errors,
        [
            "t:2:12: unknown vrrp_instance \"VI_2\" (this node's config has no such instance); did you mean \"VI_1\"?",
            "t:8:9: unknown health-check group (a virtual server `group`) \"webs\"; did you mean \"web\"?",
            "t:13:10: unknown track_script \"chk_ap\"; did you mean \"chk_app\"?",
        ]
    );
}

#[test]
fn a_track_entry_names_exactly_one_object_and_a_bounded_weight() {
    let frag = "[[track]]\ninstance = \"VI_1\"\nscript = \"chk_app\"\ngroup = \"local\"\nweight = -1\n\n\
                [[track]]\ninstance = \"VI_1\"\ngroup = \"local\"\nweight = 300\n";
    let errors = refused(&[("t", frag)]);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("t:1:1: a [[track]] entry names exactly one"),
        "{errors:#?}"
    );
    assert!(errors[1].starts_with("t:10:10:"), "{errors:#?}");
}

#[test]
fn every_fragment_is_checked_and_nothing_is_half_applied() {
    let broken = "[[virtual_server]\n";
    let errors = refused(&[("good", WEB), ("broken", broken)]);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert!(errors[0].starts_with("broken:1:"), "{errors:#?}");
    assert!(errors[0].contains("TOML syntax error"), "{errors:#?}");
}

#[test]
fn a_witness_validates_but_runs_nothing() {
    let witness = ok(
        "[global]\nnode_name = \"w\"\n\n[cluster]\nnode_id = 3\nwitness = true\n\n\
                      [[cluster.peers]]\nid = 1\naddress = \"10.0.0.1:7401\"\n\n\
                      [[cluster.peers]]\nid = 2\naddress = \"10.0.0.2:7401\"\n",
    );
    let merged = merge_fragments(&witness, &[("web", WEB)]).expect("valid on a witness");
    assert_eq!(merged, witness);
    let bad = WEB.replace("type = \"tcp\"", "type = \"ftp\"");
    assert!(merge_fragments(&witness, &[("web", &bad)]).is_err());
}

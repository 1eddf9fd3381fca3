//! Garbage, truncated and mutated input never panics, and always yields a positioned answer.

use proptest::prelude::*;
use vigil_conf::load_str;

const EXAMPLE: &str = include_str!("../examples/vigil.toml");

/// Loading must return (not panic), and every error must point inside the text.
fn check(src: &str) {
    if let Err(errors) = load_str(src, "f.toml") {
        assert!(!errors.0.is_empty());
        let lines = src.split('\n').count();
        for e in &errors.0 {
            assert!(
                e.line >= 1 && e.line <= lines && e.col >= 1,
                "{e} outside {lines} lines"
            );
        }
    }
}

#[test]
fn every_truncation_of_the_example() {
    let mut cut = 0;
    while cut < EXAMPLE.len() {
        if EXAMPLE.is_char_boundary(cut) {
            check(&EXAMPLE[..cut]);
        }
        cut += 3;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text(s in "\\PC{0,200}") {
        check(&s);
    }

    #[test]
    fn toml_shaped_soup(parts in proptest::collection::vec(
        prop_oneof![
            Just("[[vrrp_instance]]\n"), Just("[cluster]\n"), Just("[[virtual_server]]\n"),
            Just("[[virtual_server.real_server]]\n"), Just("[[virtual_server.real_server.check]]\n"),
            Just("name = \"a\"\n"), Just("vrid = 1\n"), Just("vips = [\"192.0.2.1\"]\n"), Just("vips = [{}]\n"),
            Just("interface = \"eth0\"\n"), Just("priority = 255\n"), Just("version = 2\n"),
            Just("address = \"192.0.2.1:80\"\n"), Just("address = \"::1\"\n"), Just("type = \"http\"\n"),
            Just("node_id = 1\n"), Just("peers = 3\n"), Just("witness = true\n"), Just("x = [\n"),
            Just("status = [\"a-b\", 99, 600]\n"), Just("track_scripts = [{ weight = 1 }]\n"),
            Just("advert_interval = \"0.001ms\"\n"), Just("transport = \"unicast\"\n"), Just("= =\n"),
        ],
        0..24,
    )) {
        check(&parts.concat());
    }

    #[test]
    fn mutated_example(pos in 0usize..EXAMPLE.len(), byte in any::<u8>()) {
        let mut bytes = EXAMPLE.as_bytes().to_vec();
        bytes[pos] = byte;
        if let Ok(s) = String::from_utf8(bytes) {
            check(&s);
        }
    }
}

//! Loading the config file without keeping the parser's memory for the daemon's lifetime.
//!
//! Parsing keeps a span for every key and value: a 2 MB file (10,000 real servers with checks)
//! peaks at ~70 MB of heap, ~35× its size, while the validated [`Config`] is a small fraction
//! of that. The allocator keeps most of the freed memory, because the long-lived `Config` is
//! interleaved with the parser's garbage, so the daemon's RSS stayed at the parse peak forever
//! (measured: 100 MB with 10,000 checks against 25 MB without them).
//!
//! So the file is parsed on a short-lived thread, which gets its own allocator arena, and the
//! caller keeps a copy made on its own thread. Once the thread's original is dropped its arena
//! is entirely free and the allocator returns it to the kernel. With allocators that have no
//! per-thread arenas this costs one clone and changes nothing else.

use std::path::Path;

use vigil_conf::{Config, ConfigErrors};

/// [`vigil_conf::load_file`], leaving no parser memory behind (see the module docs).
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let parsed = std::thread::scope(|s| {
        s.spawn(|| vigil_conf::load_file(path))
            .join()
            // A panic in the parser is a bug; surfacing it on the caller's thread keeps its
            // message and backtrace.
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    })?;
    Ok(compact(parsed))
}

/// A copy of `config` allocated by the calling thread; the original is freed.
fn compact(config: Config) -> Config {
    let copy = config.clone();
    drop(config);
    copy
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_same_config_and_the_same_errors_as_the_parser() {
        let dir = crate::testing::Dir::new("config-file");
        let good = dir.0.join("good.toml");
        std::fs::write(
            &good,
            "[global]\nnode_name = \"lb1\"\n\n[[virtual_server]]\naddress = \"10.0.0.1:80\"\n",
        )
        .expect("write");
        assert_eq!(
            load(&good).expect("valid"),
            vigil_conf::load_file(&good).expect("valid")
        );

        let bad = dir.0.join("bad.toml");
        std::fs::write(&bad, "[global]\nnode_name = 7\n").expect("write");
        let errors = load(&bad).expect_err("invalid");
        assert_eq!(
            errors.0,
            vigil_conf::load_file(&bad).expect_err("invalid").0
        );
        assert!(
            errors.0[0].to_string().contains("bad.toml:2:"),
            "{}",
            errors.0[0]
        );
    }
}

//! Finding the workspace's own binaries (`vigild`, `vigilctl`) from a test.
//!
//! Cargo gives an integration test `CARGO_BIN_EXE_<name>` only for binaries of the test's own
//! package; the daemon's binaries live in another crate but in the same target directory, next to
//! the test executable's `deps/` folder.

use std::path::PathBuf;

/// The path of binary `name` in the running executable's target profile directory
/// (`target/<profile>/<name>`), if it has been built.
pub fn workspace_binary(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    // Test executables live in `target/<profile>/deps/`, binaries in `target/<profile>/`.
    exe.ancestors()
        .skip(1)
        .take(2)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

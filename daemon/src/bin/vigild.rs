//! The vigil daemon.
fn main() {}

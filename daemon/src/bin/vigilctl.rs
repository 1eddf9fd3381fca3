//! The vigil operator CLI.
fn main() {}

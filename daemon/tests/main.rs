//! End-to-end tests of the real `vigild` and `vigilctl` binaries, over loopback only.
//!
//! Tests marked `NEEDS the real vigil-conf loader` rely on `vigil_conf::load_file` reading the
//! file (`[api] listen`, `node_name`, `token_file`) or rejecting an invalid one; they fail
//! against the skeleton loader, which ignores its input.

// A test that cannot unwrap has already failed; the panic message is the report.
#![allow(clippy::unwrap_used)]

mod harness;

mod auth;
mod check_config;
mod coord;
mod ctl;
mod import;
mod lifecycle;
mod lvs;
mod metrics;
mod notify;

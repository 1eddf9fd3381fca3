//! vigil-lvs integration tests (one binary).
//!
//! - `properties`: the reconciler against the fake table, on random tables.
//! - `kernel`: the netlink client against the running kernel: every feature read back, and the
//!   fake's errnos checked against the kernel's.
//! - `scenarios`: the policy layer, reconciler and netlink client together against the running
//!   kernel (create, weights, inhibit, remove, sorry server, external changes, shutdown),
//!   cross-checked with `ipvsadm -Ln` after every step.
//! - `vm`: runs `kernel` and `scenarios` under Debian's stock kernel in qemu (`scripts/vm-run`),
//!   since development machines' kernels have no IPVS; there they skip loudly.
//! - Support: `netns` (a private network namespace per test; skip here, fail in the VM),
//!   `ipvsadm` (run it, parse `-Ln`) and `lab` (converge, then check the kernel both ways).

#![allow(clippy::unwrap_used)]

#[path = "it/ipvsadm.rs"]
mod ipvsadm;
#[path = "it/kernel.rs"]
mod kernel;
#[path = "it/lab.rs"]
mod lab;
#[path = "it/netns.rs"]
mod netns;
#[path = "it/properties.rs"]
mod properties;
#[path = "it/scenarios.rs"]
mod scenarios;
#[path = "it/vm.rs"]
mod vm;

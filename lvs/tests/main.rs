//! vigil-lvs integration tests (one binary).
//!
//! - `properties`: the reconciler against the fake table, on random tables.
//! - `kernel`: the netlink client against the running kernel, in a private network namespace;
//!   skipped loudly where the kernel has no IPVS (the real-kernel VM runs it for real).

#![allow(clippy::unwrap_used)]

#[path = "it/kernel.rs"]
mod kernel;
#[path = "it/properties.rs"]
mod properties;

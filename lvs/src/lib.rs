//! IPVS over generic netlink, and the reconciler that keeps the kernel's virtual-server table in
//! line with the desired state.
//!
//! Three layers, each usable alone:
//!
//! 1. **Policy** ([`policy`]): from real-server health events, compute the destinations a virtual
//!    server should have (inhibit_on_failure, quorum with hysteresis, sorry server, alpha, omega).
//!    Pure.
//! 2. **Reconciler** ([`reconcile`]): diff desired virtual servers against the kernel table, apply
//!    only the differences, re-read and retry after errors, never touch services vigil does not
//!    own.
//! 3. **Client** ([`Ipvs`]): the kernel table as a set of edit operations. [`NetlinkIpvs`] speaks
//!    the "IPVS" generic-netlink family directly (no `ipvsadm`); [`FakeIpvs`] is an in-memory
//!    table with the kernel's errnos, for tests.
//!
//! # Layout
//!
//! - `model.rs`: services, destinations, the observed table.
//! - `netlink/`: the wire format, sans I/O (`attr`, `message`, `ipvs`, `ctrl`, `consts`).
//! - `client/`: the [`Ipvs`] trait, [`LvsError`], the netlink socket client and the fake.
//! - `reconcile.rs`: [`plan`], [`Reconciler`], ownership rules.
//! - `policy.rs`: [`VsState`], health in, desired [`VirtualServer`] and transitions out.
//! - `tests/main.rs`: properties of the reconciler on random tables (`it/properties.rs`); the
//!   client (`it/kernel.rs`) and the policy + reconciler scenarios (`it/scenarios.rs`, checked
//!   with `ipvsadm -Ln`) against the running kernel in a private network namespace, skipped
//!   where the kernel has no IPVS; and `it/vm.rs`, which runs those under Debian's stock kernel
//!   in qemu (`scripts/vm-run`).

#![warn(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod client;
pub mod model;
mod netlink;
pub mod policy;
pub mod reconcile;

pub use client::{FakeIpvs, Ipvs, IpvsInfo, LvsError, NetlinkIpvs};
pub use model::{
    DestKey, Destination, Family, Forwarding, ObservedDest, ObservedService, Persistence,
    Scheduler, Service, ServiceFlags, ServiceKey, Stats, Table, TunnelType, VirtualServer,
};
pub use netlink::DecodeError;
pub use policy::{Health, RealServer, Shutdown, Transition, VsPolicy, VsState};
pub use reconcile::{ConvergeError, Op, Outcome, OwnedSet, Reconciler, plan};

/// Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing` only).
#[cfg(fuzzing)]
pub mod fuzzing {
    /// Runs every IPVS reply decoder over `bytes`; they must return errors, never panic.
    pub fn decode_ipvs_reply(bytes: &[u8]) {
        for message in crate::netlink::message::Messages::new(bytes).flatten() {
            if let crate::netlink::message::Reply::Data { attrs, .. } = message.reply {
                let _ = crate::netlink::ipvs::decode_service(attrs);
                let _ = crate::netlink::ipvs::decode_dest(attrs, crate::Family::V6);
                let _ = crate::netlink::ipvs::decode_info(attrs);
            }
        }
    }
}

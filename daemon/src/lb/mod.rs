//! Health checks and LVS in vigild: the daemon side of `vigil-checks` and `vigil-lvs`.
//!
//! [`LbRuntime`] runs every configured check on one scheduler, turns verdicts into LVS state
//! (one [`vigil_lvs::VsState`] per virtual server: inhibit, quorum and hysteresis, sorry server,
//! alpha, omega) and keeps the kernel's IPVS table converged on it. Without IPVS in the kernel
//! it keeps computing the desired table and says so in its status (`ipvs: "unavailable: …"`).
//! Reloads keep the health of everything that stays; check groups are exposed for VRRP
//! tracking.
//!
//! # Layout
//!
//! - [`map`]: config → [`vigil_lvs::VsPolicy`] and [`vigil_checks::CheckSpec`], stable check ids.
//! - `state.rs`: the pure model: checks per real server, real servers per virtual server, reload
//!   merging, the status view.
//! - `kernel.rs`: the task that converges the kernel table (debounced, periodic resync).
//! - `runtime.rs`: [`LbRuntime`], the task that owns the scheduler and the model.
//! - [`status`]: the JSON view served at `GET /v1/lvs`.
//! - [`groups`]: check-group health for VRRP `track_groups`.
//! - [`render`]: the `vigilctl lvs` table.
//! - `tests.rs`: the runtime end to end against loopback servers and a shared `FakeIpvs`;
//!   `map_tests.rs` and `state_tests.rs` test those modules.

pub mod groups;
pub mod map;
pub mod render;
pub mod status;

mod kernel;
mod runtime;
mod state;

pub use groups::follow_groups;
pub use kernel::IpvsBackend;
pub use runtime::{
    ApplySummary, DEFAULT_DEBOUNCE, DEFAULT_RESYNC, GroupStates, LbError, LbLiveness, LbOptions,
    LbRuntime,
};
pub use status::{CheckView, DesiredDest, LbStatus, LbSummary, RsStatus, VsStatus};

#[cfg(test)]
mod tests;

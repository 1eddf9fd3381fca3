//! VRRP in vigild: the I/O shell around `vigil-vrrp`'s sans-I/O state machine.
//!
//! [`VrrpRuntime`] runs one task per sync group or lone instance. Each task owns its sockets
//! (multicast group or unicast peers, via `vigil-net`), feeds received adverts to the state
//! machine, keeps one tokio sleep at the machine's `poll_timeout`, and executes its actions:
//! adverts out, VIPs added and removed over netlink (IPv6 without DAD), gratuitous ARP /
//! unsolicited NA bursts, one structured log line per transition saying why, and the notify
//! scripts. At start it deletes the configured VIPs a crashed run may have left behind; a clean
//! stop sends priority-0 adverts and removes the VIPs within a time limit.
//!
//! # Layout
//!
//! - [`config`]: `vigil_conf::VrrpInstance` → `vigil_vrrp::config::InstanceConfig`, track keys.
//! - [`runtime`]: [`VrrpRuntime`]: start, reload by diff, status, check-group tracking, stop.
//! - `task.rs`: the per-unit task (the task diagram is there); `actions.rs`: executing actions
//!   and explaining transitions in the log.
//! - `network.rs`: one instance's socket, VIPs and announcers.
//! - [`track`]: link, script and file tracking sources.
//! - [`notify`]: the per-instance notify-script queue and its environment.
//! - [`script`]: running one script as the unprivileged script user with a timeout.
//! - [`status`]: [`InstanceStatus`], served at `GET /v1/vrrp`; [`render`]: its `vigilctl` table.
//!
//! `fencing = "quorum"`: the instance's VIPs belong to the fencing task ([`crate::fence`]).
//! `AddVips`/`RemoveVips` become "want"/"no longer want" (`actions.rs`); the task adds them
//! once the owner znode is ours, with a kernel lifetime inside the quorum lease. The lease
//! reaches the state machine as the weight-0 tracked object `quorum`; announcements and the
//! "master" notification (with `VIGIL_FENCING_TOKEN`) wait until the VIPs are up.
//!
//! # Not yet
//!
//! - `use_vmac`: warned about, the interface MAC is used.

pub mod config;
pub mod notify;
pub mod render;
pub mod runtime;
pub mod script;
pub mod status;
pub mod track;

mod actions;
mod network;
mod task;

pub use runtime::{ApplySummary, DEFAULT_STOP_LIMIT, VrrpError, VrrpRuntime, VrrpView};
pub use status::InstanceStatus;

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
//! - `vmac.rs`: `use_vmac`, the instance's macvlan with the virtual router MAC
//!   (`00:00:5e:00:01:<vrid>`, `00:00:5e:00:02:<vrid>` for IPv6), created at start (after
//!   deleting one a crashed run left) and deleted at stop. Adverts, gratuitous ARPs and NAs leave
//!   from it and the VIPs live on it (unless a VIP names its own `dev`). Multicast adverts are
//!   received on it too (the kernel hands a private macvlan the multicast frames sent from its
//!   own MAC, i.e. the peer's adverts, and not its parent), unicast ones on the parent. The
//!   parent gets `arp_ignore=1`/`arp_filter=1` while a vmac lives on it.
//! - `realtime.rs`: `SCHED_RR` for the unit threads (on by default) behind its
//!   `RLIMIT_RTTIME` safeguard.
//! - [`track`]: link, script and file tracking sources, keyed by what they watch so that a
//!   reload that changes an instance's tracking keeps the unchanged ones running and moves the
//!   rest in place (the state machine gets `Input::SetTracks`; no restart, no VIP flap).
//! - [`notify`]: the per-instance notify-script queue and its environment.
//! - [`script`]: running one script as the unprivileged script user with a timeout.
//! - [`status`]: [`InstanceStatus`], served at `GET /v1/vrrp`, published by the unit through a
//!   cell it never waits for (readers hold its lock only to clone an `Arc`; a busy cell is
//!   retried on the next pass); [`render`]: its `vigilctl` table.
//!
//! The unit threads run real-time and never wait for non-real-time work: status readers (above),
//! log output (their lines go through the bounded queue of [`crate::logging`], dropped and
//! counted when stderr falls behind), scripts (other processes), fenced VIPs (the fencing task).
//!
//! `fencing = "quorum"`: the instance's VIPs belong to the fencing task ([`crate::fence`]).
//! `AddVips`/`RemoveVips` become "want"/"no longer want" (`actions.rs`); the task adds them
//! once the owner znode is ours, with a kernel lifetime inside the quorum lease. The lease
//! reaches the state machine as the weight-0 tracked object `quorum`; announcements and the
//! "master" notification (with `VIGIL_FENCING_TOKEN`) wait until the VIPs are up.

pub mod config;
pub mod notify;
pub mod render;
pub mod runtime;
pub mod script;
pub mod status;
pub mod track;

mod actions;
mod network;
mod realtime;
mod task;
mod vmac;

pub use runtime::{ApplySummary, DEFAULT_STOP_LIMIT, VrrpError, VrrpRuntime, VrrpView};
pub use status::InstanceStatus;

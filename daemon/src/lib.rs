//! vigild's wiring: the thin I/O shell around the protocol cores, and `vigilctl`, the operator CLI.
//!
//! Today the daemon loads and validates its config, serves the local control API, reloads on
//! SIGHUP or `POST /v1/reload` (an invalid file keeps the old config running), talks to systemd
//! and stops cleanly on SIGTERM/SIGINT. VRRP, health checks, LVS and the coordination tree plug
//! into [`supervisor::Supervisor`] in later issues.
//!
//! # Layout
//!
//! - [`cli`]: `vigild` flags; every flag also reads a `VIGIL_*` environment variable.
//! - [`vigild`]: the `vigild` entry point: `--check-config`, start-up, runtime, exit codes.
//! - [`vrrp`]: VRRP instances: sockets, VIPs, announcements, tracking, notify scripts, status
//!   (`GET /v1/vrrp`); started, reloaded by diff and stopped by the supervisor.
//! - [`logging`]: tracing subscriber, plain text or JSON lines, on stderr.
//! - [`control`]: the one [`control::Control`] channel that signals and API requests share.
//! - [`supervisor`]: owns the current config and its generation; applies reloads.
//! - [`reload`]: [`reload::ReloadOutcome`], what a reload did, logged and shown by the API.
//! - [`api`]: the local HTTP/JSON control API (axum) and its wire types.
//! - [`notify`]: systemd `sd_notify` readiness/reload/stop messages and `STATUS=` summaries.
//! - [`watchdog`]: liveness beacons and the watchdog task that pings only while they beat.
//! - [`metrics`]: Prometheus `GET /metrics`, a small exposition writer and atomic counters.
//! - [`ctl`]: `vigilctl`: flags, a small HTTP client and table rendering.
//! - [`exit`]: sysexits(3) codes shared by both binaries.
//! - [`coord`]: the coordination node (`[cluster]`): start, bootstrap rule, client API on
//!   `client_listen`, status; [`coord::CoordRuntime::node`] is the in-process handle.
//! - [`fence`]: quorum fencing of VIPs: the coordination session, its lease, the owner znodes
//!   and the fenced VIPs of every `fencing = "quorum"` instance.
//! - [`shared_config`]: config fragments under `/vigil/config`: tree layout and versions,
//!   validation before writing, the watcher that applies them live on every node.
//! - [`members`]: this node's record under `/vigil/members` and `/vigil/nodes`, and the
//!   reader behind the cluster view of `vigilctl status`.
//! - [`lb`]: health checks and LVS: the check scheduler, per-virtual-server policy, the IPVS
//!   reconciler task, `GET /v1/lvs` and `vigilctl lvs`.
//!
//! # Task graph
//!
//! ```text
//!  SIGHUP/SIGTERM/SIGINT ──┐
//!                          ├──> Control channel ──> Supervisor ──publishes──> watch<Snapshot>
//!  POST /v1/reload ────────┘         (Reload/Shutdown)                          │
//!                                                                               v
//!                                                         GET /v1/status, bearer-token check
//! ```

#![warn(missing_docs)]

pub mod api;
pub mod cli;
pub mod config_file;
pub mod control;
pub mod coord;
pub mod ctl;
pub mod exit;
pub mod fence;
pub mod lb;
pub mod logging;
pub mod members;
pub mod metrics;
pub mod notify;
pub mod reload;
pub mod shared_config;
pub mod supervisor;
#[cfg(test)]
mod testing;
pub mod vigild;
pub mod vrrp;
pub mod watchdog;

/// Where both binaries look for the config when neither a flag nor `VIGIL_CONFIG` names one.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/vigil/vigil.toml";

/// The control API port `vigilctl` tries when it has no address and no readable config.
///
/// Mirrors the default of `[api] listen` in `vigil-conf` (127.0.0.1:7400).
pub const DEFAULT_API_PORT: u16 = 7400;

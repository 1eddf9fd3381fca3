//! Benchmarks and side-by-side comparisons: vigil's coordination tree against ZooKeeper 3.8
//! and etcd 3.4, all as 3-member clusters on 127.0.0.1 of the same machine, driven by the same
//! load shapes (`vigil-bench coord`).
//!
//! # Layout
//!
//! - [`target`]: the `Target`/`Client` traits every implementation provides.
//! - [`load`]: the load shapes (closed-loop writes/reads, watch fan-out, bulk create).
//! - [`hist`]: exact latency percentiles.
//! - [`failover`]: the VRRP failover benchmark (`vigil-failover`), vigild against keepalived.
//! - [`checker`]: the health-checker scale benchmark (`vigil-checkbench`).
//! - [`procstat`]: CPU time and resident memory of a daemon's process group.
//! - [`steer`]: receive work moved off the checker's CPU, as a NIC would, for checker benchmarks.
//! - [`zk`]: ZooKeeper ensemble management and a minimal jute wire-protocol client.
//! - [`etcd`]: etcd cluster management and a v3 JSON-gateway client.
//! - [`vigil`]: vigil's coordination members (`vigil-bench coord-member`) and a `/v1` client.
//! - [`cluster`], [`process`]: member processes, scratch dirs, readiness probing.
//! - [`run`]: the phase sequence per target and the machine facts.
//! - [`report`]: the comparison table and the JSON record.
//! - [`error`]: the error type.

pub mod checker;
pub mod cluster;
pub mod error;
pub mod etcd;
pub mod failover;
pub mod hist;
pub mod load;
pub mod process;
pub mod procstat;
pub mod report;
pub mod run;
pub mod steer;
pub mod target;
pub mod vigil;
pub mod zk;

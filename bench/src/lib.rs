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
//! - [`zk`]: ZooKeeper ensemble management and a minimal jute wire-protocol client.
//! - [`etcd`]: etcd cluster management and a v3 JSON-gateway client.
//! - [`cluster`], [`process`]: member processes, scratch dirs, readiness probing.
//! - [`run`]: the phase sequence per target and the machine facts.
//! - [`report`]: the comparison table and the JSON record.
//! - [`error`]: the error type.
//!
//! vigil joins as one more `Target` once its `/v1` API is served by vigild.

pub mod cluster;
pub mod error;
pub mod etcd;
pub mod failover;
pub mod hist;
pub mod load;
pub mod process;
pub mod report;
pub mod run;
pub mod target;
pub mod zk;

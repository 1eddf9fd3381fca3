//! Health-checker scale benchmark (`vigil-checkbench`): one daemon checks 10,000 real servers
//! every second, by TCP connect and separately by HTTP GET, and the benchmark measures the
//! daemon's CPU time and memory and the check rate the servers saw (issue #5 item 5).
//!
//! The real servers are listeners on loopback addresses inside one lab host, all served by one
//! tokio runtime in the benchmark process ([`fleet`]); the daemon runs in the same host. vigild
//! runs its normal load-balancer code: without IPVS in the kernel it keeps computing the desired
//! table (and logs every change), which is what is measured. keepalived's checker process exits
//! when it cannot initialise IPVS; the benchmark tries it anyway and reports its log then.
//!
//! # Layout
//!
//! - [`fleet`]: the listeners and their connection counters.
//! - [`config`]: the same checks as vigild and keepalived configs.
//! - [`run`]: warm-up, the measured window, and the dead-server timing.
//! - [`logtime`]: timestamps of vigild's log lines.
//! - [`table`]: the side-by-side tables.
//! - [`vm`]: both daemons one after the other inside the IPVS VM (`--vm`), with ratios.

pub mod config;
pub mod fleet;
pub mod logtime;
pub mod run;
pub mod table;
pub mod vm;

//! End-to-end tests of vigil-integration (root; they print `SKIPPED (needs root)` otherwise).

mod config_push;
mod coord_cluster;
mod coord_support;
mod fence_faults;
mod lab;
mod lab_cleanup;
mod lab_processes;
mod lvs_health;
mod reload_cases;
mod support;
mod vrrp_failover;
mod vrrp_keepalived;
mod vrrp_reload;
mod vrrp_support;
mod vrrp_vmac;
mod vrrp_wire;

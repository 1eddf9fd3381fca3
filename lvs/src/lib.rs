//! IPVS over generic netlink and the reconciler that keeps the kernel's virtual-server table in
//! line with the desired state.
//!
//! Not implemented yet: see the health-check/LVS issue.

//! Benchmarks and side-by-side comparisons with keepalived, ZooKeeper and etcd.
//!
//! Not implemented yet: each feature issue adds its benchmark here.

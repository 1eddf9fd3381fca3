//! End-to-end tests of vigil-integration (root; they print `SKIPPED (needs root)` otherwise).

mod lab;
mod lab_cleanup;
mod lab_processes;
mod support;

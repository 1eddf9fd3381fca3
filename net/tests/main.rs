//! Lab tests of vigil-net: real kernels, real packets, in network namespaces (root; they print
//! `SKIPPED (needs root)` otherwise).

mod addr;
mod garp;
mod link;
mod socket;
mod support;
mod vmac;

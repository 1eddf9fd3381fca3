//! The codec's test binary: round trips over keepalived captures, every decode error on a
//! mutated real packet, encoder rules and bounded fuzzing of every decode entry point.

mod encode;
mod fuzz;
mod negative;
mod support;
mod vectors;

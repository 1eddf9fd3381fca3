//! vigil-conf integration tests: one binary, one module per concern.

mod defaults;
mod diff;
mod duration;
mod errors;
mod examples;
mod fragments;
mod import;
mod robustness;
mod support;
mod warnings;

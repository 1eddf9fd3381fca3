//! Randomized fault schedules against a VIP's holders: seeded sequences of partitions, link
//! losses, kills and pauses (SIGSTOP) of the daemons on lb1, lb2 and the witness, checking the
//! split-brain invariants — never two VIP holders at once ([`crate::HolderRecorder`]), fencing
//! tokens of successive holders strictly increasing ([`crate::tokens`]) — and liveness: after
//! everything is healed the VIP settles on one holder. The same seed gives the same schedule
//! for every [`Target`], so vigild with quorum fencing, vigild without it and keepalived face
//! identical faults. `vigil-faults` (src/bin) runs many seeds and prints the table.
//!
//! # Layout
//!
//! - `schedule`: [`Schedule`], [`Step`], [`Fault`] and the seeded generator.
//! - `target`: [`Target`] and the generated configs (identical VRRP settings for all).
//! - `run`: [`run_schedule`]: one schedule in a fresh lab, recorder running throughout.
//! - `report`: one line per schedule, the [`Summary`] table per target.

mod report;
mod run;
mod schedule;
mod target;

pub use report::{Summary, line, table};
pub use run::{Binaries, Options, Outcome, run_schedule};
pub use schedule::{Fault, Node, Schedule, SplitMix64, Step, Timing};
pub use target::{INSTANCE, Target, Tuning, VIP, Voters, config, config_name};

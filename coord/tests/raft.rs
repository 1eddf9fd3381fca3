//! Tests of the durable Raft log store, `vigil_coord::raft`: openraft's own storage suite,
//! crash recovery (torn tails are repaired, corruption is refused), durability across reopen,
//! and an append throughput report.

mod raft {
    mod durability;
    mod model;
    mod recovery;
    mod single_node;
    mod state_machine;
    mod suite;
    mod support;
    mod throughput;
}

//! The coordination tree: znodes with ZooKeeper semantics, sessions, watches, replicated by Raft.

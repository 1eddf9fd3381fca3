//! Tests of the replicated coordination node, `vigil_coord::node`: real clusters over loopback
//! TCP in one process (elections, forwarding, fail-over, restart from disk, sessions across a
//! leader change, snapshots to a new learner, membership changes, a rolling upgrade under a
//! leader that refuses batched forwarding), and openraft's storage suite over the znode state
//! machine with the durable log, and the peer transport on its own.

mod cluster {
    mod failover;
    mod harness;
    mod linearizability;
    mod membership;
    mod replication;
    mod sessions;
    mod suite;
    mod tls;
    mod transport;
    mod upgrade;
}

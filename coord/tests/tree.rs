//! Tests of the replicated coordination tree: data model, multi, sessions, watches, snapshots,
//! cleanup, and a property test against a reference model.

#[path = "tree/batch.rs"]
mod batch;
#[path = "tree/cleanup.rs"]
mod cleanup;
#[path = "tree/committed_writes.rs"]
mod committed_writes;
#[path = "tree/common.rs"]
mod common;
#[path = "tree/model.rs"]
mod model;
#[path = "tree/multi.rs"]
mod multi;
#[path = "tree/ops.rs"]
mod ops;
#[path = "tree/sessions.rs"]
mod sessions;
#[path = "tree/snapshot.rs"]
mod snapshot;
#[path = "tree/watches.rs"]
mod watches;

//! The coordination tree: znodes with ZooKeeper semantics, sessions, watches, replicated by Raft.
//!
//! The replicated state machine is pure and deterministic: [`StateMachine::apply_batch`] takes
//! the log index, the leader's time and the entry's [`Command`]s, and nothing else. Each command
//! gets its own zxid, `log index << 16 | position in the entry` (see [`zxid`] for why the zxid is
//! no longer the log index alone). Session liveness
//! ([`SessionTracker`]) and watch delivery ([`WatchManager`]) are sans-I/O cores with injected
//! time; the Raft layer and the client API drive them.
//!
//! # Layout
//!
//! - `tree/`: the data model. `path` (ZooKeeper's path rules), `node`/`stat` (a znode and its
//!   `Stat`), `key` (the (parent slot, name) index key: children are a range, each name is
//!   stored once), `slab` (chunked node storage), `snapshot` (the tree's snapshot records and
//!   the checked, streaming restore), `txn` (create, delete, set, check with undo for atomic
//!   multi), `cleanup` (container/TTL candidates).
//! - `state_machine`: [`StateMachine`] — apply, session table, retry dedupe, snapshot/restore.
//! - `session`: [`SessionId`], [`SessionConfig`], the replicated [`Session`] and its dedupe
//!   window; `session/tracker`: the leader's [`SessionTracker`].
//! - `watch`: [`WatchEvent`] and the per-node [`WatchManager`] (registrations, ring, resume).
//! - `request`: the replicated [`Command`]/[`Response`] types, versioned for the log.
//! - `zxid`: how a command's zxid derives from its log entry and position in it.
//! - `error`: [`Error`], ZooKeeper's error codes.
//! - `raft/`: openraft storage and transport — the durable log ([`raft::LogStore`]), the znode
//!   state machine with file snapshots ([`raft::ZnodeStore`]), the type config
//!   (`raft::types`) and the TCP peer transport (`raft::network`).
//! - `node/`: [`node::CoordNode`], a running cluster member: start-up and bootstrap, writes
//!   and reads from any node (forwarded to the leader), sessions, leader duties, membership.

pub mod api;
pub mod client;
pub mod error;
pub mod node;
pub mod raft;
pub mod recipes;
pub mod request;
pub mod session;
pub mod state_machine;
pub mod tree;
pub mod watch;
pub mod zxid;

pub use error::Error;
pub use request::{Command, CreateMode, Op, OpResult, Request, Response, VersionedCommand};
pub use session::{Liveness, Session, SessionConfig, SessionId, SessionTracker, TouchError};
pub use state_machine::{SnapshotError, StateMachine};
pub use tree::{DataTree, NodeKind, RestoreError, Stat};
pub use watch::{ClientId, EventKind, Notification, Resume, WatchEvent, WatchKind, WatchManager};

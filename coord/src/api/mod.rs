//! The coordination client API, server side: `/v1` HTTP/JSON with NDJSON watch streams, over a
//! [`Backend`] that holds the tree.
//!
//! # Layout
//!
//! - `backend`: the [`Backend`] seam (what the replicated `CoordNode` implements) and its types.
//! - `local`: [`LocalBackend`], one in-process state machine.
//! - `error`: [`ApiError`] and its JSON form [`ErrorBody`].
//! - `wire`: the JSON request/response shapes, shared with [`crate::client`].
//! - `v1`: [`router`], [`serve`], [`ApiConfig`], authentication and body extraction.
//! - `nodes`: session, node, multi and sync handlers; `streams`: watch and cluster handlers.
//! - `hub`: the node's `WatchManager` fed by the backend's applied-entry stream.

mod backend;
mod error;
mod hub;
mod local;
mod nodes;
mod streams;
mod v1;
pub mod wire;

pub use backend::{
    Backend, BackendEvent, ClusterStatus, Consistency, Member, MembershipChange, Role,
    SharedBackend,
};
pub use error::{
    ApiError, CODE_CONNECTION_LOSS, CODE_NO_AUTH, CODE_TIMEOUT, ErrorBody, tree_error_name,
};
pub use local::{LocalBackend, short_sessions};
pub use v1::{ApiConfig, ApiStats, router, router_with_stats, serve};

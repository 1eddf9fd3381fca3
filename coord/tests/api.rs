//! Tests of the `/v1` API, the Rust client and the recipes, against a real server: a
//! `LocalBackend` behind the axum router bound on 127.0.0.1:0.

#[path = "api/client.rs"]
mod client;
#[path = "api/endpoints.rs"]
mod endpoints;
#[path = "api/errors.rs"]
mod errors;
#[path = "api/recipes.rs"]
mod recipes;
#[path = "api/support.rs"]
mod support;
#[path = "api/watch.rs"]
mod watch;

//! What a benchmarked coordination service has to offer the load generator.
//!
//! A [`Target`] is a running 3-member cluster; a [`Client`] is one connection (a ZooKeeper
//! session, an HTTP connection) to one member. Load phases open one client per simulated
//! user, so "64 concurrent clients" means 64 connections for every target alike.
//! vigil joins by implementing these two traits over its `/v1` HTTP API.

use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::error::Result;

/// Parent of the nodes [`Target::create_many`] creates.
pub const MANY_PREFIX: &str = "/vb/m";

/// A watch notification: which key changed, and when the client saw it.
#[derive(Debug, Clone)]
pub struct Notification {
    /// The key (as passed to [`Client::watch`]).
    pub key: String,
    /// Local arrival time.
    pub at: tokio::time::Instant,
}

/// One connection to one cluster member.
#[async_trait]
pub trait Client: Send + Sync {
    /// Creates `key` if it is absent (idempotent), with `value`.
    async fn ensure(&self, key: &str, value: &[u8]) -> Result<()>;

    /// Overwrites an existing `key` with `value`, waiting for the commit.
    async fn write(&self, key: &str, value: &[u8]) -> Result<()>;

    /// A read that reflects every write committed before it started.
    async fn read_linearizable(&self, key: &str) -> Result<Vec<u8>>;

    /// Starts watching `key` for data changes; every change is sent on `sink`. The watch
    /// stays armed (re-registered where the protocol is one-shot) until the client drops.
    async fn watch(&self, key: &str, sink: mpsc::UnboundedSender<Notification>) -> Result<()>;

    /// Ends the client politely where the protocol has a goodbye (ZooKeeper's
    /// `closeSession`), so the server does not keep an orphaned session alive into the next
    /// phase. Dropping without closing is still safe.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// A running 3-member cluster of one implementation.
#[async_trait]
pub trait Target: Send + Sync {
    /// Short name for tables ("zookeeper", "etcd", "vigil").
    fn name(&self) -> &'static str;

    /// Number of members.
    fn members(&self) -> usize;

    /// Opens a client connected to member `member % members()`.
    async fn client(&self, member: usize) -> Result<Box<dyn Client>>;

    /// Creates `n` small nodes under [`MANY_PREFIX`] with `concurrency` requests in flight.
    /// The default spreads them over pipelining clients via [`Client::ensure`].
    async fn create_many(&self, n: usize, concurrency: usize) -> Result<Duration> {
        crate::load::create_many(self, n, concurrency).await
    }

    /// Resident set size of each member process, in bytes.
    fn rss_of_members(&mut self) -> Result<Vec<u64>>;

    /// CPU time (user + system) all member processes together have used since they started.
    fn cpu_of_members(&mut self) -> Result<Duration>;

    /// Stops every member, starts them again on the same data, and returns the time from
    /// the first start until a linearizable read through a fresh client succeeds.
    async fn restart_all(&mut self) -> Result<Duration>;

    /// Stops every member and releases its data. Also done on drop, less gracefully.
    async fn shutdown(&mut self) -> Result<()>;
}

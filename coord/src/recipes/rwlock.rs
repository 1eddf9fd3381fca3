//! [`RwLock`]: shared readers, exclusive writers, under `/rwlocks/NAME` (ZooKeeper's recipe).
//!
//! Readers create `read-N` and wait for the last `write-` node before them; writers create
//! `write-N` and wait for their immediate predecessor of any kind. Order is still FIFO.

use super::check_name;
use super::lock::{Lock, LockGuard};
use crate::client::{ClientError, Session};

/// A read/write lock.
#[derive(Clone)]
pub struct RwLock {
    lock: Lock,
}

impl RwLock {
    /// The lock `/rwlocks/{name}`.
    pub fn new(session: Session, name: &str) -> Result<RwLock, ClientError> {
        check_name(name)?;
        Ok(RwLock {
            lock: Lock::at(session, format!("/rwlocks/{name}")),
        })
    }

    /// Waits for a shared (read) hold.
    pub async fn read(&self) -> Result<LockGuard, ClientError> {
        self.lock
            .acquire_as("read-", |other| other.starts_with("write-"))
            .await
    }

    /// Waits for the exclusive (write) hold.
    pub async fn write(&self) -> Result<LockGuard, ClientError> {
        self.lock.acquire_as("write-", |_| true).await
    }

    /// Predecessor watches fired so far for this handle.
    pub fn wakeups(&self) -> u64 {
        self.lock.wakeups()
    }
}

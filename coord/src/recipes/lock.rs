//! [`Lock`]: an exclusive lock under `/locks/NAME`, with a fencing token.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{check_name, wait_turn};
use crate::client::{ClientError, CreateOptions, Session};
use crate::error::Error;

/// An exclusive lock. Waiters queue in creation order; each watches only its predecessor.
#[derive(Clone)]
pub struct Lock {
    session: Session,
    dir: String,
    wakeups: Arc<AtomicU64>,
}

impl Lock {
    /// The lock `/locks/{name}`, taken under `session` (released if the session ends).
    pub fn new(session: Session, name: &str) -> Result<Lock, ClientError> {
        check_name(name)?;
        Ok(Lock::at(session, format!("/locks/{name}")))
    }

    pub(crate) fn at(session: Session, dir: String) -> Lock {
        Lock {
            session,
            dir,
            wakeups: Arc::new(AtomicU64::new(0)),
        }
    }

    /// How many predecessor watches have fired for this handle (and its clones): with no herd
    /// effect, one per release that concerned this waiter.
    pub fn wakeups(&self) -> u64 {
        self.wakeups.load(Ordering::Relaxed)
    }

    /// Waits for the lock.
    pub async fn acquire(&self) -> Result<LockGuard, ClientError> {
        self.acquire_as("lock-", |_| true).await
    }

    /// Enqueues a node named `prefix…` and waits until no node before it is one `blocks`.
    pub(crate) async fn acquire_as(
        &self,
        prefix: &str,
        blocks: impl Fn(&str) -> bool,
    ) -> Result<LockGuard, ClientError> {
        self.session.ensure_path(&self.dir).await?;
        let (me, stat) = self
            .session
            .create(
                &format!("{}/{prefix}", self.dir),
                &[],
                CreateOptions::EPHEMERAL_SEQUENTIAL,
            )
            .await?;
        self.wait_owned_as(me, stat.czxid, blocks).await
    }

    /// Waits for the turn of the already created node `me` (created with token `czxid`).
    pub(crate) async fn wait_owned(
        &self,
        me: String,
        czxid: u64,
    ) -> Result<LockGuard, ClientError> {
        self.wait_owned_as(me, czxid, |_| true).await
    }

    async fn wait_owned_as(
        &self,
        me: String,
        czxid: u64,
        blocks: impl Fn(&str) -> bool,
    ) -> Result<LockGuard, ClientError> {
        let guard = LockGuard {
            session: self.session.clone(),
            path: me,
            token: czxid,
            released: false,
        };
        wait_turn(&self.session, &self.dir, &guard.path, blocks, &self.wakeups).await?;
        // On error the guard's drop removes the queued node.
        Ok(guard)
    }
}

/// A held lock. [`LockGuard::release`] it; dropping it releases in the background.
pub struct LockGuard {
    session: Session,
    path: String,
    token: u64,
    released: bool,
}

impl LockGuard {
    /// The fencing token: strictly larger for every later holder of the same lock.
    pub fn token(&self) -> u64 {
        self.token
    }

    /// The lock node.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the lock node still exists (false once the session expired).
    pub async fn is_held(&self) -> Result<bool, ClientError> {
        Ok(self.session.client().stat(&self.path).await?.is_some())
    }

    /// Releases the lock. Already gone (session expired) is not an error.
    pub async fn release(mut self) -> Result<(), ClientError> {
        self.released = true;
        delete_quietly(&self.session, &self.path).await
    }
}

async fn delete_quietly(session: &Session, path: &str) -> Result<(), ClientError> {
    match session.delete(path, None).await {
        Err(e) if e.is(Error::NoNode) || e.is(Error::SessionExpired) => Ok(()),
        other => other,
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let session = self.session.clone();
            let path = std::mem::take(&mut self.path);
            rt.spawn(async move {
                if let Err(e) = delete_quietly(&session, &path).await {
                    tracing::warn!(%path, error = %e, "lock release failed; the session end will");
                }
            });
        }
    }
}

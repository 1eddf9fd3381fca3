//! [`Queue`]: a FIFO queue of persistent sequential nodes under `/queues/NAME`.

use super::{by_sequence, check_name};
use crate::client::{ClientError, CreateOptions, Session};
use crate::error::Error;
use crate::watch::WatchKind;

/// A distributed FIFO queue. Items survive their producer; each is taken by exactly one
/// consumer (the one whose versioned delete succeeds).
#[derive(Clone)]
pub struct Queue {
    session: Session,
    dir: String,
}

impl Queue {
    /// The queue `/queues/{name}`.
    pub fn new(session: Session, name: &str) -> Result<Queue, ClientError> {
        check_name(name)?;
        Ok(Queue {
            session,
            dir: format!("/queues/{name}"),
        })
    }

    /// Appends an item; returns its node.
    pub async fn push(&self, data: &[u8]) -> Result<String, ClientError> {
        let options = CreateOptions {
            sequential: true,
            ..CreateOptions::PERSISTENT
        };
        let item = format!("{}/item-", self.dir);
        match self.session.create(&item, data, options).await {
            Err(e) if e.is(Error::NoNode) => {
                self.session.ensure_path(&self.dir).await?;
                Ok(self.session.create(&item, data, options).await?.0)
            }
            other => other.map(|(path, _)| path),
        }
    }

    /// Takes the oldest item, if any.
    pub async fn try_pop(&self) -> Result<Option<Vec<u8>>, ClientError> {
        let client = self.session.client();
        let children = match client.children(&self.dir).await {
            Ok((children, _)) => by_sequence(children),
            Err(e) if e.is(Error::NoNode) => return Ok(None),
            Err(e) => return Err(e),
        };
        for child in children {
            let path = format!("{}/{child}", self.dir);
            let node = match client.get(&path).await {
                Ok(node) => node,
                Err(e) if e.is(Error::NoNode) => continue,
                Err(e) => return Err(e),
            };
            match self.session.delete(&path, Some(node.stat.version)).await {
                Ok(()) => return Ok(Some(node.data)),
                // Another consumer took it (or changed it): try the next one.
                Err(e) if e.is(Error::NoNode) || e.is(Error::BadVersion) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Takes the oldest item, waiting for one if the queue is empty.
    pub async fn pop(&self) -> Result<Vec<u8>, ClientError> {
        loop {
            if let Some(item) = self.try_pop().await? {
                return Ok(item);
            }
            let mut watcher = self
                .session
                .client()
                .watch(&self.dir, WatchKind::Persistent)
                .await?;
            // Pushed between the empty read and the registration: not waiting for nothing.
            if let Some(item) = self.try_pop().await? {
                return Ok(item);
            }
            watcher.next().await?;
        }
    }
}

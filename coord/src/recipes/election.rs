//! [`Election`]: leader election under `/elections/NAME`, and [`observe_leader`].
//!
//! Candidates queue like lock waiters (`n-` sequential ephemerals carrying their data); the
//! first is the leader and its node's czxid is the leadership's fencing token.

use tokio::sync::watch;

use super::lock::{Lock, LockGuard};
use super::{by_sequence, check_name};
use crate::client::{Client, ClientError, CreateOptions, Session, WatchNotice};
use crate::error::Error;
use crate::watch::WatchKind;

/// The current leader as observers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// Its election node.
    pub path: String,
    /// The data it campaigned with (an address, a node name, …).
    pub data: Vec<u8>,
    /// Its fencing token (the node's czxid).
    pub token: u64,
}

/// One candidate's handle on an election.
#[derive(Clone)]
pub struct Election {
    session: Session,
    dir: String,
    lock: Lock,
}

fn dir_of(name: &str) -> String {
    format!("/elections/{name}")
}

impl Election {
    /// The election `/elections/{name}`.
    pub fn new(session: Session, name: &str) -> Result<Election, ClientError> {
        check_name(name)?;
        let dir = dir_of(name);
        Ok(Election {
            lock: Lock::at(session.clone(), dir.clone()),
            session,
            dir,
        })
    }

    /// Stands as a candidate with `data` and waits until elected. Leadership lasts until the
    /// returned guard is released or the session ends.
    pub async fn campaign(&self, data: &[u8]) -> Result<LockGuard, ClientError> {
        self.session.ensure_path(&self.dir).await?;
        let (me, stat) = self
            .session
            .create(
                &format!("{}/n-", self.dir),
                data,
                CreateOptions::EPHEMERAL_SEQUENTIAL,
            )
            .await?;
        self.lock.wait_owned(me, stat.czxid).await
    }

    /// Predecessor watches fired so far for this candidate.
    pub fn wakeups(&self) -> u64 {
        self.lock.wakeups()
    }
}

/// The current leader of election `name`, if any.
pub async fn current_leader(client: &Client, name: &str) -> Result<Option<Leader>, ClientError> {
    let dir = dir_of(name);
    let children = match client.children(&dir).await {
        Ok((children, _)) => by_sequence(children),
        Err(e) if e.is(Error::NoNode) => return Ok(None),
        Err(e) => return Err(e),
    };
    for child in children {
        let path = format!("{dir}/{child}");
        match client.get(&path).await {
            Ok(node) => {
                return Ok(Some(Leader {
                    path,
                    data: node.data,
                    token: node.stat.czxid,
                }));
            }
            // Gone between the listing and the read: the next one is the leader.
            Err(e) if e.is(Error::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// A stream of leadership changes of election `name`: the receiver always holds the current
/// leader (`None` while there is none). A background task follows the election directory with a
/// persistent watch and stops when every receiver is dropped.
pub fn observe_leader(
    client: Client,
    name: &str,
) -> Result<watch::Receiver<Option<Leader>>, ClientError> {
    check_name(name)?;
    let name = name.to_owned();
    let (tx, rx) = watch::channel(None);
    tokio::spawn(async move {
        let dir = dir_of(&name);
        loop {
            let follow = async {
                let mut watcher = client.watch(&dir, WatchKind::Persistent).await?;
                loop {
                    let leader = current_leader(&client, &name).await?;
                    tx.send_if_modified(|cur| {
                        let changed = *cur != leader;
                        *cur = leader;
                        changed
                    });
                    match watcher.next().await? {
                        Some(WatchNotice::Event(_) | WatchNotice::ResyncNeeded) => {}
                        None => return Ok::<(), ClientError>(()),
                    }
                }
            };
            tokio::select! {
                result = follow => {
                    if let Err(e) = result {
                        tracing::debug!(election = %name, error = %e, "leader observer retrying");
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                }
                () = tx.closed() => return,
            }
        }
    });
    Ok(rx)
}

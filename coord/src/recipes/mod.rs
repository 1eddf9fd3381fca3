//! Coordination recipes on top of [`crate::client`]: locks, leader election, barrier, queue.
//!
//! All of them use ZooKeeper's sequential-node pattern: each participant creates a sequential
//! node under a directory, and the order of the sequence numbers is the order of service. A
//! waiter watches only the node just before its own (not the directory), so releasing a lock
//! wakes exactly one waiter — no herd effect. The fencing token of a lock or a leadership is the
//! czxid of its node: a later holder's node was created later, so its token is strictly larger,
//! and a storage system can refuse writes carrying an older token.
//!
//! # Layout
//!
//! - `lock`: [`Lock`] and its [`LockGuard`]; `rwlock`: [`RwLock`] (shared readers, one writer).
//! - `election`: [`Election`] and [`observe_leader`], a stream of leadership changes.
//! - `barrier`: [`Barrier`] (wait until N parties have entered); `queue`: [`Queue`] (FIFO).
//! - this file: the predecessor wait shared by all of them.

mod barrier;
mod election;
mod lock;
mod queue;
mod rwlock;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub use self::barrier::Barrier;
pub use self::election::{Election, Leader, current_leader, observe_leader};
pub use self::lock::{Lock, LockGuard};
pub use self::queue::Queue;
pub use self::rwlock::RwLock;
use crate::client::{ClientError, Session, SessionState};
use crate::watch::WatchKind;

/// The sequence number of a sequential node's name (its last 10 digits).
pub(crate) fn sequence(name: &str) -> Option<u64> {
    let digits = name.get(name.len().checked_sub(10)?..)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// `names` that are sequential, sorted by sequence number.
pub(crate) fn by_sequence(names: Vec<String>) -> Vec<String> {
    let mut seq: Vec<(u64, String)> = names
        .into_iter()
        .filter_map(|n| sequence(&n).map(|s| (s, n)))
        .collect();
    seq.sort_unstable();
    seq.into_iter().map(|(_, n)| n).collect()
}

/// Checks a recipe name: one path component.
pub(crate) fn check_name(name: &str) -> Result<(), ClientError> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(ClientError::Invalid(format!(
            "recipe name {name:?} must be one path component"
        )));
    }
    Ok(())
}

/// The error when a participant's own node is gone (its session expired).
pub(crate) fn lost(path: &str) -> ClientError {
    ClientError::Lost(format!(
        "{path} is gone: the session expired or it was deleted"
    ))
}

/// Waits until no node before `me` in `dir` is one that `blocks` (by name). Watches only the
/// nearest blocking predecessor; each time a watch fires, `wakeups` is incremented.
pub(crate) async fn wait_turn(
    session: &Session,
    dir: &str,
    me: &str,
    blocks: impl Fn(&str) -> bool,
    wakeups: &Arc<AtomicU64>,
) -> Result<(), ClientError> {
    let client = session.client();
    let my_name = crate::tree::path::name(me).to_owned();
    let mut state = session.state();
    loop {
        let (children, _) = client.children(dir).await?;
        let children = by_sequence(children);
        let Some(pos) = children.iter().position(|c| *c == my_name) else {
            return Err(lost(me));
        };
        let Some(pred) = children[..pos].iter().rev().find(|c| blocks(c)) else {
            return Ok(());
        };
        let pred = format!("{dir}/{pred}");
        // Register first, then look: a deletion in between is in the watch, not lost.
        let mut watcher = client.watch(&pred, WatchKind::Data).await?;
        if client.stat(&pred).await?.is_none() {
            continue;
        }
        tokio::select! {
            notice = watcher.next() => {
                notice?;
                wakeups.fetch_add(1, Ordering::Relaxed);
            }
            () = expired(&mut state) => return Err(lost(me)),
        }
    }
}

/// Resolves once the session is reported expired (never, if the keeper is gone).
pub(crate) async fn expired(state: &mut tokio::sync::watch::Receiver<SessionState>) {
    if state
        .wait_for(|s| *s == SessionState::Expired)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}

#[cfg(test)]
mod tests {
    use super::{by_sequence, sequence};

    #[test]
    fn orders_by_sequence_not_by_prefix() {
        assert_eq!(sequence("lock-0000000012"), Some(12));
        assert_eq!(sequence("lock-12"), None);
        assert_eq!(sequence("x"), None);
        let names = vec![
            "write-0000000003".to_owned(),
            "read-0000000001".to_owned(),
            "junk".to_owned(),
            "read-0000000002".to_owned(),
        ];
        assert_eq!(
            by_sequence(names),
            ["read-0000000001", "read-0000000002", "write-0000000003"]
        );
    }
}

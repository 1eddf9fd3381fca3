//! The per-node task that follows `/vigil/config` and hands every new set of fragments to the
//! supervisor.
//!
//! It subscribes to the coordination node's applied entries *before* its first read, so no
//! change can fall between the two. Any entry touching `/vigil/config` (every change bumps that
//! node), a snapshot install or a lagged subscription triggers a re-read, after a short
//! debounce that folds a burst of pushes into one apply. Reads are linearizable and retried with
//! a capped back-off while the cluster has no quorum; the supervisor gets a set only when it
//! differs from the last one sent.

use std::time::Duration;

use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use vigil_coord::api::BackendEvent;
use vigil_coord::node::CoordNode;

use super::tree::{self, CONFIG_ROOT, Fragment};
use crate::control::{Control, ControlSender};

/// How long after a change the fragments are read (later changes in the window join it).
pub const DEBOUNCE: Duration = Duration::from_millis(100);
/// First and longest wait between failed reads.
const RETRY_MIN: Duration = Duration::from_millis(200);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Starts the watcher; it ends when the node's event stream closes or `control` is dropped.
pub fn spawn(node: CoordNode, control: ControlSender) -> JoinHandle<()> {
    tokio::spawn(run(node, control))
}

async fn run(node: CoordNode, control: ControlSender) {
    let mut events = node.subscribe();
    let mut last: Option<Vec<Fragment>> = None;
    loop {
        let fragments = read_until_ok(&node).await;
        if last.as_ref() != Some(&fragments) {
            let message = Control::Fragments {
                fragments: fragments.clone(),
            };
            if control.send(message).await.is_err() {
                return;
            }
            last = Some(fragments);
        }
        // Wait for a relevant change, then let a burst settle.
        loop {
            match events.recv().await {
                Ok(event) if touches_config(&event) => break,
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => break,
                Err(RecvError::Closed) => return,
            }
        }
        tokio::time::sleep(DEBOUNCE).await;
        // Everything queued meanwhile is covered by the read below.
        events = events.resubscribe();
    }
}

/// Whether an applied entry changed anything under `/vigil/config` (or replaced the state).
fn touches_config(event: &BackendEvent) -> bool {
    match event {
        BackendEvent::Applied { events, .. } => events.iter().any(|e| {
            e.path == CONFIG_ROOT
                || e.path
                    .strip_prefix(CONFIG_ROOT)
                    .is_some_and(|rest| rest.starts_with('/'))
        }),
        BackendEvent::SnapshotInstalled { .. } => true,
    }
}

async fn read_until_ok(node: &CoordNode) -> Vec<Fragment> {
    let mut wait = RETRY_MIN;
    let mut logged = false;
    loop {
        match tree::current(node).await {
            Ok(fragments) => {
                if logged {
                    tracing::info!(count = fragments.len(), "shared config readable again");
                }
                return fragments;
            }
            Err(error) => {
                if !logged {
                    tracing::warn!(%error, "cannot read the shared config; retrying");
                    logged = true;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RETRY_MAX);
            }
        }
    }
}

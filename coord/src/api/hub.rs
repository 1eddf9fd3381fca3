//! [`WatchHub`]: this node's [`WatchManager`] fed by the backend's applied-entry stream, with one
//! bounded channel per watch stream.
//!
//! ```text
//! backend ──BackendEvent──▶ pump task ──handle_events──▶ WatchManager ──poll_shared──▶ streams
//!                                                         ▲ resume/register (same lock)
//!                                              GET /v1/watch
//! ```
//!
//! Registration and event handling share one lock, so a registration acknowledged "as of zxid
//! Z" sees every event after Z. A stream whose channel is full is disconnected rather than
//! silently skipped: its client resumes with its last zxid and gets a replay or a resync.
//!
//! Fan-out cost: an event watched by N streams is encoded to its NDJSON line once; the N
//! channels get the same [`Bytes`] (a reference count each), and each stream's connection task
//! only writes it. The pump wakes every stream in one pass under the lock.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use axum::body::Bytes;
use tokio::sync::{broadcast, mpsc};

use super::backend::{BackendEvent, SharedBackend};
use super::wire::WatchLine;
use crate::watch::{ClientId, Notification, Resume, WatchKind, WatchManager};
use crate::zxid;

/// Notifications a stream may have queued before it is cut off.
const STREAM_BUFFER: usize = 1024;

/// Shared watch state of one API server.
pub(crate) struct WatchHub {
    inner: Mutex<HubState>,
}

struct HubState {
    manager: WatchManager,
    /// The zxid through which the backend's applied entries reach ([`zxid::through`] of
    /// its applied index): registrations are "as of" it.
    applied: u64,
    next_client: u64,
    streams: BTreeMap<ClientId, mpsc::Sender<StreamLine>>,
}

/// One encoded line of a watch stream, shared by every stream the notification goes to.
#[derive(Debug, Clone)]
pub(crate) struct StreamLine {
    /// The NDJSON line, newline included.
    pub(crate) bytes: Bytes,
    /// It is an event (which ends a one-shot stream), not a resync signal.
    pub(crate) event: bool,
}

impl StreamLine {
    fn of(note: &Notification) -> StreamLine {
        let (line, event) = match note {
            Notification::Event(e) => (
                WatchLine::Event {
                    zxid: e.zxid,
                    path: e.path.clone(),
                    event: e.kind.into(),
                },
                true,
            ),
            Notification::ResyncNeeded => (WatchLine::ResyncNeeded, false),
        };
        StreamLine {
            bytes: encode_line(&line),
            event,
        }
    }
}

/// `line` as one NDJSON line.
pub(crate) fn encode_line(line: &WatchLine) -> Bytes {
    // Serializing these plain enums cannot fail; an empty line would still be valid NDJSON
    // padding for the client, never a panic.
    let mut out = serde_json::to_vec(line).unwrap_or_default();
    out.push(b'\n');
    Bytes::from(out)
}

/// A stream's registration; dropping it removes the registration.
pub(crate) struct Registration {
    hub: Arc<WatchHub>,
    pub(crate) client: ClientId,
    pub(crate) zxid: u64,
    pub(crate) replayed: usize,
    pub(crate) rx: mpsc::Receiver<StreamLine>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut state = self.hub.lock();
        state.manager.remove_client(self.client);
        state.streams.remove(&self.client);
    }
}

impl WatchHub {
    /// A hub following `backend`, keeping `ring` recent events for resumes. Spawns the pump
    /// task, which ends when the hub is dropped or the backend's stream closes.
    pub(crate) fn start(backend: &SharedBackend, ring: usize) -> Arc<WatchHub> {
        let rx = backend.subscribe_events();
        let applied = zxid::through(backend.applied_index());
        let hub = Arc::new(WatchHub {
            inner: Mutex::new(HubState {
                manager: WatchManager::new(ring, applied),
                applied,
                next_client: 1,
                streams: BTreeMap::new(),
            }),
        });
        tokio::spawn(pump(Arc::downgrade(&hub), rx));
        hub
    }

    /// Watches registered on this API server now (see [`WatchManager::registrations`]).
    pub(crate) fn registrations(&self) -> usize {
        self.lock().manager.registrations()
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Registers a watch stream on `path`; with `last_zxid`, replays what it missed.
    pub(crate) fn register(
        self: &Arc<Self>,
        path: &str,
        kind: WatchKind,
        last_zxid: Option<u64>,
    ) -> Registration {
        let mut state = self.lock();
        let client = ClientId(state.next_client);
        state.next_client += 1;
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        state.streams.insert(client, tx);
        let applied = state.applied;
        let since = last_zxid.unwrap_or(applied);
        let replayed = match state
            .manager
            .resume(client, since, [(path.to_owned(), kind)])
        {
            Resume::Replayed(n) => n,
            Resume::ResyncNeeded => 0,
        };
        state.deliver();
        Registration {
            hub: Arc::clone(self),
            client,
            zxid: applied,
            replayed,
            rx,
        }
    }
}

impl HubState {
    fn deliver(&mut self) {
        // The deliveries of one notification come out consecutively with the same `Arc`.
        let mut last: Option<(Arc<Notification>, StreamLine)> = None;
        while let Some((client, note)) = self.manager.poll_shared() {
            let Some(tx) = self.streams.get(&client) else {
                continue;
            };
            let line = match &last {
                Some((prev, line)) if Arc::ptr_eq(prev, &note) => line.clone(),
                _ => {
                    let line = StreamLine::of(&note);
                    last = Some((note, line.clone()));
                    line
                }
            };
            if tx.try_send(line).is_err() {
                // Full or gone: cut the stream; the client resumes from its last zxid.
                self.streams.remove(&client);
                self.manager.remove_client(client);
            }
        }
    }
}

async fn pump(hub: Weak<WatchHub>, mut rx: broadcast::Receiver<BackendEvent>) {
    let mut lagged = false;
    loop {
        let event = match rx.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(_)) => {
                lagged = true;
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(hub) = hub.upgrade() else {
            return;
        };
        let mut state = hub.lock();
        match event {
            BackendEvent::Applied { index, events } => {
                let through = zxid::through(index);
                if through <= state.applied {
                    continue;
                }
                if lagged {
                    // Entries before this one were lost to us: treat like a snapshot.
                    state
                        .manager
                        .handle_snapshot_installed(zxid::through(index.saturating_sub(1)));
                    lagged = false;
                }
                state.applied = through;
                state.manager.handle_events(events);
            }
            BackendEvent::SnapshotInstalled { index } => {
                lagged = false;
                let through = zxid::through(index);
                state.applied = state.applied.max(through);
                state.manager.handle_snapshot_installed(through);
            }
        }
        state.deliver();
    }
}

//! Watches: the events apply produces and the per-node manager that delivers them.
//!
//! Registrations are local to the node serving the client (not replicated, as in ZooKeeper).
//! Every node feeds [`WatchManager::handle_events`] with the events of each applied entry in log
//! order, so deliveries come out in zxid order. The manager also keeps a bounded ring of recent
//! events: a client that reconnects (to this node or another) with the last zxid it saw gets
//! every event it missed for its registrations, or [`Notification::ResyncNeeded`] when the ring
//! no longer reaches back that far. Nothing is dropped silently.
//!
//! Sans-I/O: deliveries are queued and drained with [`WatchManager::poll_delivery`], or with
//! [`WatchManager::poll_shared`], which hands out one shared [`Notification`] per event so a
//! shell with many watchers of one node encodes each event once, not once per watcher.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::tree::path;

/// A change to the tree, produced by apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WatchEvent {
    /// Zxid of the write (see [`crate::zxid`]).
    pub zxid: u64,
    /// The node concerned.
    pub path: String,
    /// What happened to it.
    pub kind: EventKind,
}

/// ZooKeeper's `Watcher.Event.EventType` for node events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// The node was created.
    NodeCreated,
    /// The node was deleted.
    NodeDeleted,
    /// The node's data was set.
    NodeDataChanged,
    /// A child was added or removed.
    NodeChildrenChanged,
}

/// A client connection on this node (assigned by the shell; not a session id, since one session
/// may reconnect under a new connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ClientId(pub u64);

/// What a registration listens to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum WatchKind {
    /// One-shot (set by `get`/`exists`): creation, deletion or data change of the node.
    Data,
    /// One-shot (set by `children`): child added/removed, or the node deleted.
    Children,
    /// Every event on the node, until removed.
    Persistent,
    /// Creation, deletion and data change of the node and all its descendants, until removed
    /// (no `NodeChildrenChanged`, as in ZooKeeper).
    PersistentRecursive,
}

impl WatchKind {
    fn matches(self, event: EventKind) -> bool {
        match self {
            // Recursive watches never get child events (ZooKeeper: the creations say it all).
            WatchKind::Data | WatchKind::PersistentRecursive => {
                event != EventKind::NodeChildrenChanged
            }
            WatchKind::Children => matches!(
                event,
                EventKind::NodeChildrenChanged | EventKind::NodeDeleted
            ),
            WatchKind::Persistent => true,
        }
    }

    fn one_shot(self) -> bool {
        matches!(self, WatchKind::Data | WatchKind::Children)
    }
}

/// What a client receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notification {
    /// A watched event.
    Event(WatchEvent),
    /// Events may have been missed (the ring no longer covers the client's last zxid, or this
    /// node installed a snapshot): re-read the watched nodes.
    ResyncNeeded,
}

/// Whether a resume replayed everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Every missed event was queued; this many of them.
    Replayed(usize),
    /// The ring does not reach back to the client's zxid; `ResyncNeeded` was queued.
    ResyncNeeded,
}

/// Per-node watch registrations, the recent-event ring and the outgoing queue.
///
/// Memory: the ring holds at most `capacity` events (a path and 16 bytes each); registrations
/// cost one entry per (client, path, kind); the outgoing queue grows until drained, by a client
/// id and a pointer per delivery (the notification itself is shared by all its clients).
#[derive(Debug)]
pub struct WatchManager {
    capacity: usize,
    ring: VecDeque<WatchEvent>,
    /// Every event with a zxid above this is in the ring (or not applied yet).
    covered_after: u64,
    /// Registrations on exact paths: path → (client, kind).
    exact: BTreeMap<String, BTreeSet<(ClientId, WatchKind)>>,
    /// Recursive registrations: root path → clients.
    recursive: BTreeMap<String, BTreeSet<ClientId>>,
    /// Per client, the zxid up to which it has all events already (it said so when resuming,
    /// possibly having been served by a node further ahead): nothing at or below is sent again.
    skip_through: BTreeMap<ClientId, u64>,
    out: VecDeque<(ClientId, Arc<Notification>)>,
}

impl WatchManager {
    /// A manager whose state machine has applied everything up to `applied` (its events are
    /// unknown, so clients older than that must resync). `capacity` bounds the ring in events.
    pub fn new(capacity: usize, applied: u64) -> WatchManager {
        WatchManager {
            capacity: capacity.max(1),
            ring: VecDeque::new(),
            covered_after: applied,
            exact: BTreeMap::new(),
            recursive: BTreeMap::new(),
            skip_through: BTreeMap::new(),
            out: VecDeque::new(),
        }
    }

    /// Adds a registration for `client` (idempotent). Register in the same critical section as
    /// the read that sets the watch (no `handle_events` in between), as ZooKeeper does, or an
    /// event between the read and the registration would be missed.
    pub fn register(&mut self, client: ClientId, path: &str, kind: WatchKind) {
        if kind == WatchKind::PersistentRecursive {
            self.recursive
                .entry(path.to_owned())
                .or_default()
                .insert(client);
        } else {
            self.exact
                .entry(path.to_owned())
                .or_default()
                .insert((client, kind));
        }
    }

    /// Removes a registration (ZooKeeper's `removeWatches`); `NoWatcher` if there is none.
    pub fn unregister(
        &mut self,
        client: ClientId,
        path: &str,
        kind: WatchKind,
    ) -> Result<(), Error> {
        let removed = if kind == WatchKind::PersistentRecursive {
            remove_from(&mut self.recursive, path, &client)
        } else {
            remove_from(&mut self.exact, path, &(client, kind))
        };
        if removed {
            Ok(())
        } else {
            Err(Error::NoWatcher)
        }
    }

    /// The client disconnected: drop its registrations and queued notifications.
    pub fn remove_client(&mut self, client: ClientId) {
        self.exact.retain(|_, set| {
            set.retain(|(c, _)| *c != client);
            !set.is_empty()
        });
        self.recursive.retain(|_, set| {
            set.remove(&client);
            !set.is_empty()
        });
        self.skip_through.remove(&client);
        self.out.retain(|(c, _)| *c != client);
    }

    /// A client (re)connects having seen everything up to `last_zxid`, with its registrations.
    /// Missed events are queued for delivery (one-shot watches fire at most once).
    pub fn resume(
        &mut self,
        client: ClientId,
        last_zxid: u64,
        registrations: impl IntoIterator<Item = (String, WatchKind)>,
    ) -> Resume {
        for (p, kind) in registrations {
            self.register(client, &p, kind);
        }
        self.skip_through.insert(client, last_zxid);
        if last_zxid < self.covered_after {
            self.out
                .push_back((client, Arc::new(Notification::ResyncNeeded)));
            return Resume::ResyncNeeded;
        }
        let missed: Vec<WatchEvent> = self
            .ring
            .iter()
            .filter(|e| e.zxid > last_zxid)
            .cloned()
            .collect();
        let before = self.out.len();
        for event in &missed {
            self.dispatch(event, Some(client));
        }
        Resume::Replayed(self.out.len() - before)
    }

    /// Events of applied entries, in log order (as drained from
    /// [`crate::StateMachine::drain_events`]).
    pub fn handle_events(&mut self, events: Vec<WatchEvent>) {
        for event in events {
            self.dispatch(&event, None);
            self.ring.push_back(event);
            while self.ring.len() > self.capacity {
                if let Some(old) = self.ring.pop_front() {
                    self.covered_after = self.covered_after.max(old.zxid);
                }
            }
        }
    }

    /// The node installed a snapshot at `applied`: the events before it are unknown here, so
    /// every connected client is told to resync (registrations stay).
    pub fn handle_snapshot_installed(&mut self, applied: u64) {
        self.ring.clear();
        self.covered_after = applied;
        let clients: BTreeSet<ClientId> = self
            .exact
            .values()
            .flat_map(|set| set.iter().map(|&(c, _)| c))
            .chain(self.recursive.values().flatten().copied())
            .chain(self.skip_through.keys().copied())
            .collect();
        let resync = Arc::new(Notification::ResyncNeeded);
        for client in clients {
            self.skip_through.insert(client, applied);
            self.out.push_back((client, Arc::clone(&resync)));
        }
    }

    /// The next notification to send, in zxid order.
    pub fn poll_delivery(&mut self) -> Option<(ClientId, Notification)> {
        self.poll_shared()
            .map(|(client, note)| (client, Arc::unwrap_or_clone(note)))
    }

    /// Like [`WatchManager::poll_delivery`], without copying: the deliveries of one event to its
    /// clients come out consecutively and share one `Arc` (pointer-equal), so the caller can
    /// encode it once for all of them.
    pub fn poll_shared(&mut self) -> Option<(ClientId, Arc<Notification>)> {
        self.out.pop_front()
    }

    /// Registered watches: one per (client, path, kind), recursive ones included (ZooKeeper's
    /// watch count).
    pub fn registrations(&self) -> usize {
        self.exact.values().map(BTreeSet::len).sum::<usize>()
            + self.recursive.values().map(BTreeSet::len).sum::<usize>()
    }

    /// Number of events the ring currently holds.
    pub fn ring_len(&self) -> usize {
        self.ring.len()
    }

    /// Queues `event` for every matching registration (only `only`'s, when replaying), at most
    /// once per client, and consumes matched one-shot watches.
    fn dispatch(&mut self, event: &WatchEvent, only: Option<ClientId>) {
        let wanted = |c: ClientId| only.is_none_or(|o| o == c);
        let mut clients = BTreeSet::new();
        if let Some(set) = self.exact.get_mut(&event.path) {
            set.retain(|&(client, kind)| {
                if !wanted(client) || !kind.matches(event.kind) {
                    return true;
                }
                clients.insert(client);
                !kind.one_shot()
            });
            if set.is_empty() {
                self.exact.remove(&event.path);
            }
        }
        if WatchKind::PersistentRecursive.matches(event.kind) {
            let mut at = event.path.as_str();
            loop {
                if let Some(set) = self.recursive.get(at) {
                    clients.extend(set.iter().copied().filter(|&c| wanted(c)));
                }
                if at == "/" {
                    break;
                }
                at = path::parent(at);
            }
        }
        let mut note = None;
        for client in clients {
            let skip_through = self.skip_through.get(&client).copied().unwrap_or(0);
            if event.zxid > skip_through {
                let note = note.get_or_insert_with(|| Arc::new(Notification::Event(event.clone())));
                self.out.push_back((client, Arc::clone(note)));
            }
        }
    }
}

fn remove_from<T: Ord>(map: &mut BTreeMap<String, BTreeSet<T>>, path: &str, item: &T) -> bool {
    let Some(set) = map.get_mut(path) else {
        return false;
    };
    let removed = set.remove(item);
    if set.is_empty() {
        map.remove(path);
    }
    removed
}

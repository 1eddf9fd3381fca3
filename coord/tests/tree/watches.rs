//! Watches: trigger rules, zxid order, resume after reconnect and explicit resync.

use vigil_coord::{
    ClientId, CreateMode, Error, EventKind, Notification, Request, Resume, WatchEvent, WatchKind,
    WatchManager,
};

use crate::common::{Harness, create, set};

const A: ClientId = ClientId(1);
const B: ClientId = ClientId(2);

fn drain(w: &mut WatchManager) -> Vec<(ClientId, Notification)> {
    std::iter::from_fn(|| w.poll_delivery()).collect()
}

fn event(zxid: u64, path: &str, kind: EventKind) -> WatchEvent {
    WatchEvent {
        zxid,
        path: path.into(),
        kind,
    }
}

fn delivered(client: ClientId, zxid: u64, path: &str, kind: EventKind) -> (ClientId, Notification) {
    (client, Notification::Event(event(zxid, path, kind)))
}

#[test]
fn one_shot_watches_fire_once_with_zookeeper_trigger_rules() {
    let mut w = WatchManager::new(100, 0);
    w.register(A, "/n", WatchKind::Data);
    w.register(B, "/n", WatchKind::Children);
    // Child changes do not fire data watches; data changes do not fire child watches.
    w.handle_events(vec![event(1, "/n", EventKind::NodeChildrenChanged)]);
    w.handle_events(vec![event(2, "/n", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(3, "/n", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(4, "/n", EventKind::NodeChildrenChanged)]);
    assert_eq!(
        drain(&mut w),
        [
            delivered(B, 1, "/n", EventKind::NodeChildrenChanged),
            delivered(A, 2, "/n", EventKind::NodeDataChanged),
        ]
    );
    // Deletion fires both kinds.
    w.register(A, "/n", WatchKind::Data);
    w.register(B, "/n", WatchKind::Children);
    w.handle_events(vec![event(5, "/n", EventKind::NodeDeleted)]);
    assert_eq!(
        drain(&mut w),
        [
            delivered(A, 5, "/n", EventKind::NodeDeleted),
            delivered(B, 5, "/n", EventKind::NodeDeleted),
        ]
    );
    // An exists-watch on a missing node fires on creation.
    w.register(A, "/new", WatchKind::Data);
    w.handle_events(vec![event(6, "/new", EventKind::NodeCreated)]);
    assert_eq!(
        drain(&mut w),
        [delivered(A, 6, "/new", EventKind::NodeCreated)]
    );
}

#[test]
fn one_event_is_shared_by_all_its_watchers_and_each_event_has_its_own() {
    let mut w = WatchManager::new(100, 0);
    for c in 1..=3 {
        w.register(ClientId(c), "/n", WatchKind::Persistent);
    }
    w.register(ClientId(4), "/", WatchKind::PersistentRecursive);
    w.handle_events(vec![
        event(1, "/n", EventKind::NodeDataChanged),
        event(2, "/n", EventKind::NodeDataChanged),
    ]);
    let out: Vec<_> = std::iter::from_fn(|| w.poll_shared()).collect();
    let clients: Vec<u64> = out.iter().map(|(c, _)| c.0).collect();
    assert_eq!(clients, [1, 2, 3, 4, 1, 2, 3, 4]);
    let (first, second) = out.split_at(4);
    for (_, note) in first {
        assert!(std::sync::Arc::ptr_eq(note, &first[0].1));
        assert_eq!(
            **note,
            Notification::Event(event(1, "/n", EventKind::NodeDataChanged))
        );
    }
    for (_, note) in second {
        assert!(std::sync::Arc::ptr_eq(note, &second[0].1));
        assert_eq!(
            **note,
            Notification::Event(event(2, "/n", EventKind::NodeDataChanged))
        );
    }
    assert!(!std::sync::Arc::ptr_eq(&first[0].1, &second[0].1));
}

#[test]
fn persistent_and_recursive_watches_stay() {
    let mut w = WatchManager::new(100, 0);
    w.register(A, "/p", WatchKind::Persistent);
    w.register(B, "/p", WatchKind::PersistentRecursive);
    w.handle_events(vec![
        event(1, "/p/c", EventKind::NodeCreated),
        event(1, "/p", EventKind::NodeChildrenChanged),
    ]);
    w.handle_events(vec![event(2, "/p/c/d", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(3, "/p", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(4, "/px", EventKind::NodeCreated)]);
    assert_eq!(
        drain(&mut w),
        [
            delivered(B, 1, "/p/c", EventKind::NodeCreated),
            delivered(A, 1, "/p", EventKind::NodeChildrenChanged),
            delivered(B, 2, "/p/c/d", EventKind::NodeDataChanged),
            delivered(A, 3, "/p", EventKind::NodeDataChanged),
            delivered(B, 3, "/p", EventKind::NodeDataChanged),
        ]
    );
    w.unregister(B, "/p", WatchKind::PersistentRecursive)
        .expect("registered");
    assert_eq!(
        w.unregister(B, "/p", WatchKind::PersistentRecursive),
        Err(Error::NoWatcher)
    );
    w.handle_events(vec![event(5, "/p/c", EventKind::NodeDeleted)]);
    assert_eq!(drain(&mut w), []);
}

#[test]
fn a_client_gets_each_event_once_even_with_overlapping_watches() {
    let mut w = WatchManager::new(100, 0);
    w.register(A, "/", WatchKind::PersistentRecursive);
    w.register(A, "/x", WatchKind::PersistentRecursive);
    w.register(A, "/x", WatchKind::Data);
    w.register(A, "/x", WatchKind::Persistent);
    w.handle_events(vec![event(1, "/x", EventKind::NodeDataChanged)]);
    assert_eq!(
        drain(&mut w),
        [delivered(A, 1, "/x", EventKind::NodeDataChanged)]
    );
}

#[test]
fn events_from_apply_are_delivered_in_zxid_order() {
    let mut h = Harness::new();
    let s = h.session();
    let mut w = WatchManager::new(1000, h.index);
    w.register(A, "/", WatchKind::PersistentRecursive);
    w.register(B, "/a", WatchKind::Children);
    h.mkdir(s, "/a");
    h.mkdir(s, "/a/b");
    h.set(s, "/a/b", b"v", None).expect("set");
    h.write(
        s,
        Request::Multi(vec![
            create("/a/c", b"", CreateMode::Persistent, false),
            set("/a", b"x", None),
        ]),
    );
    w.handle_events(h.events());
    let out = drain(&mut w);
    let zxids: Vec<u64> = out
        .iter()
        .map(|(_, n)| match n {
            Notification::Event(e) => e.zxid,
            Notification::ResyncNeeded => panic!("unexpected resync"),
        })
        .collect();
    assert!(zxids.windows(2).all(|p| p[0] <= p[1]), "{zxids:?}");
    let to_a: Vec<_> = out.iter().filter(|(c, _)| *c == A).collect();
    assert_eq!(
        to_a.len(),
        5,
        "recursive: 4 creates/changes without child events + 1 data"
    );
    let to_b: Vec<_> = out.iter().filter(|(c, _)| *c == B).collect();
    assert_eq!(to_b.len(), 1, "one-shot child watch fired once: {to_b:?}");
}

#[test]
fn reconnecting_client_gets_every_missed_event() {
    let mut w = WatchManager::new(100, 0);
    w.register(A, "/svc", WatchKind::PersistentRecursive);
    w.handle_events(vec![event(1, "/svc/a", EventKind::NodeCreated)]);
    assert_eq!(drain(&mut w).len(), 1);
    // A disconnects after seeing zxid 1; events 2..4 happen meanwhile.
    w.remove_client(A);
    w.handle_events(vec![event(2, "/svc/b", EventKind::NodeCreated)]);
    w.handle_events(vec![event(3, "/other", EventKind::NodeCreated)]);
    w.handle_events(vec![event(4, "/svc/a", EventKind::NodeDeleted)]);
    assert_eq!(drain(&mut w), []);
    // It reconnects (new connection id) and re-sends its registrations with last zxid 1.
    let a2 = ClientId(10);
    let r = w.resume(a2, 1, [("/svc".to_owned(), WatchKind::PersistentRecursive)]);
    assert_eq!(r, Resume::Replayed(2));
    assert_eq!(
        drain(&mut w),
        [
            delivered(a2, 2, "/svc/b", EventKind::NodeCreated),
            delivered(a2, 4, "/svc/a", EventKind::NodeDeleted),
        ]
    );
    // Live events follow.
    w.handle_events(vec![event(5, "/svc/c", EventKind::NodeCreated)]);
    assert_eq!(
        drain(&mut w),
        [delivered(a2, 5, "/svc/c", EventKind::NodeCreated)]
    );
}

#[test]
fn replay_consumes_one_shot_watches() {
    let mut w = WatchManager::new(100, 0);
    w.handle_events(vec![event(2, "/n", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(3, "/n", EventKind::NodeDataChanged)]);
    let r = w.resume(A, 1, [("/n".to_owned(), WatchKind::Data)]);
    assert_eq!(r, Resume::Replayed(1));
    assert_eq!(
        drain(&mut w),
        [delivered(A, 2, "/n", EventKind::NodeDataChanged)]
    );
    w.handle_events(vec![event(4, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(drain(&mut w), []);
}

#[test]
fn client_ahead_of_this_node_gets_no_duplicates() {
    let mut w = WatchManager::new(100, 0);
    // The client saw zxid 7 on a node further ahead; this node has applied only 5.
    w.handle_events(vec![event(5, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(
        w.resume(A, 7, [("/n".to_owned(), WatchKind::Persistent)]),
        Resume::Replayed(0)
    );
    w.handle_events(vec![event(6, "/n", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(7, "/n", EventKind::NodeDataChanged)]);
    w.handle_events(vec![event(8, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(
        drain(&mut w),
        [delivered(A, 8, "/n", EventKind::NodeDataChanged)]
    );
}

#[test]
fn resync_when_the_ring_no_longer_covers_the_client() {
    let mut w = WatchManager::new(3, 0);
    for z in 1..=5 {
        w.handle_events(vec![event(z, "/n", EventKind::NodeDataChanged)]);
    }
    assert_eq!(w.ring_len(), 3);
    // Ring holds 3..=5: a client at 2 missed nothing that is gone, one at 1 did (event 2).
    assert_eq!(
        w.resume(A, 2, [("/n".to_owned(), WatchKind::Persistent)]),
        Resume::Replayed(3)
    );
    assert_eq!(
        w.resume(B, 1, [("/n".to_owned(), WatchKind::Persistent)]),
        Resume::ResyncNeeded
    );
    let out = drain(&mut w);
    assert_eq!(out.len(), 4);
    assert_eq!(out[3], (B, Notification::ResyncNeeded));
    // B stays registered for what comes next.
    w.handle_events(vec![event(6, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(drain(&mut w).len(), 2);
}

#[test]
fn fresh_node_and_snapshot_install_force_resync() {
    let mut w = WatchManager::new(100, 50);
    assert_eq!(
        w.resume(A, 10, [("/n".to_owned(), WatchKind::Data)]),
        Resume::ResyncNeeded
    );
    assert_eq!(
        w.resume(B, 50, [("/n".to_owned(), WatchKind::Persistent)]),
        Resume::Replayed(0)
    );
    drain(&mut w);
    w.handle_snapshot_installed(90);
    assert_eq!(
        drain(&mut w),
        [
            (A, Notification::ResyncNeeded),
            (B, Notification::ResyncNeeded)
        ]
    );
    w.handle_events(vec![event(91, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(drain(&mut w).len(), 2);
}

#[test]
fn session_expiry_fires_watches_on_its_ephemerals() {
    let mut h = Harness::new();
    let owner = h.session();
    let watcher = h.session();
    h.mkdir(watcher, "/vigil");
    h.create(owner, "/vigil/owner", CreateMode::Ephemeral, false)
        .expect("owner znode");
    let mut w = WatchManager::new(100, h.index);
    h.events();
    w.register(A, "/vigil/owner", WatchKind::Data);
    w.register(B, "/vigil", WatchKind::Children);
    h.apply(vigil_coord::Command::ExpireSession { session: owner });
    let zxid = h.index;
    w.handle_events(h.events());
    assert_eq!(
        drain(&mut w),
        [
            delivered(A, zxid, "/vigil/owner", EventKind::NodeDeleted),
            delivered(B, zxid, "/vigil", EventKind::NodeChildrenChanged),
        ]
    );
}

mod resume_property {
    use proptest::prelude::*;
    use vigil_coord::{
        ClientId, EventKind, Notification, Resume, WatchEvent, WatchKind, WatchManager,
    };

    fn events() -> impl Strategy<Value = Vec<WatchEvent>> {
        let one = (
            prop::sample::select(vec!["/", "/a", "/a/b", "/b", "/a/c"]),
            prop::sample::select(vec![
                EventKind::NodeCreated,
                EventKind::NodeDeleted,
                EventKind::NodeDataChanged,
                EventKind::NodeChildrenChanged,
            ]),
        );
        // 1..3 events per entry, some entries without events (zxid gaps).
        prop::collection::vec((prop::collection::vec(one, 0..3), 1..3u64), 1..40).prop_map(
            |entries| {
                let mut zxid = 0;
                let mut out = Vec::new();
                for (evs, step) in entries {
                    zxid += step;
                    for (path, kind) in evs {
                        out.push(WatchEvent {
                            zxid,
                            path: path.to_owned(),
                            kind,
                        });
                    }
                }
                out
            },
        )
    }

    fn matches(kind: WatchKind, root: &str, e: &WatchEvent) -> bool {
        match kind {
            WatchKind::Persistent => e.path == root,
            _ => {
                e.kind != EventKind::NodeChildrenChanged
                    && (root == "/" || e.path == root || e.path.starts_with(&format!("{root}/")))
            }
        }
    }

    proptest! {
        /// A client that disconnects and resumes gets exactly the events it would have got had
        /// it stayed, or an explicit resync exactly when the ring lost one it needed to know
        /// about: never silence, never duplicates.
        #[test]
        fn resume_replays_exactly_or_says_resync(
            events in events(),
            capacity in 1..20usize,
            cut in any::<prop::sample::Index>(),
            back in any::<prop::sample::Index>(),
            root in prop::sample::select(vec!["/", "/a"]),
            recursive in any::<bool>(),
        ) {
            let kind = if recursive {
                WatchKind::PersistentRecursive
            } else {
                WatchKind::Persistent
            };
            let mut distinct: Vec<u64> = events.iter().map(|e| e.zxid).collect();
            distinct.dedup();
            // Disconnect after entry `last_seen` (0 = before any), come back after `resumed_at`.
            let last_seen = if distinct.is_empty() {
                0
            } else {
                distinct[cut.index(distinct.len())]
            };
            let resumed_at = {
                let later: Vec<u64> =
                    distinct.iter().copied().filter(|&z| z >= last_seen).collect();
                if later.is_empty() { last_seen } else { later[back.index(later.len())] }
            };
            let mut w = WatchManager::new(capacity, 0);
            let (c1, c2) = (ClientId(1), ClientId(2));
            w.register(c1, root, kind);
            let mut got = Vec::new();
            let drain = |w: &mut WatchManager, got: &mut Vec<Notification>| {
                while let Some((_, n)) = w.poll_delivery() {
                    got.push(n);
                }
            };
            for e in events.iter().filter(|e| e.zxid <= last_seen) {
                w.handle_events(vec![e.clone()]);
            }
            drain(&mut w, &mut got);
            w.remove_client(c1);
            for e in events.iter().filter(|e| e.zxid > last_seen && e.zxid <= resumed_at) {
                w.handle_events(vec![e.clone()]);
            }
            let fed: Vec<&WatchEvent> = events.iter().filter(|e| e.zxid <= resumed_at).collect();
            let evicted = &fed[..fed.len().saturating_sub(capacity)];
            let lost = evicted.iter().any(|e| e.zxid > last_seen);
            let outcome = w.resume(c2, last_seen, [(root.to_owned(), kind)]);
            for e in events.iter().filter(|e| e.zxid > resumed_at) {
                w.handle_events(vec![e.clone()]);
            }
            drain(&mut w, &mut got);
            let expected: Vec<Notification> = events
                .iter()
                .filter(|e| matches(kind, root, e))
                .cloned()
                .map(Notification::Event)
                .collect();
            if lost {
                prop_assert_eq!(outcome, Resume::ResyncNeeded);
                prop_assert!(got.contains(&Notification::ResyncNeeded));
                // Events after the resume still arrive.
                let after: Vec<Notification> = events
                    .iter()
                    .filter(|e| e.zxid > resumed_at && matches(kind, root, e))
                    .cloned()
                    .map(Notification::Event)
                    .collect();
                prop_assert!(got.ends_with(&after));
            } else {
                prop_assert!(matches!(outcome, Resume::Replayed(_)));
                prop_assert_eq!(got, expected);
            }
        }
    }
}

#[test]
fn registrations_count_each_client_path_and_kind_until_fired_or_removed() {
    let mut w = WatchManager::new(100, 0);
    assert_eq!(w.registrations(), 0);
    w.register(A, "/n", WatchKind::Data);
    w.register(A, "/n", WatchKind::Data); // idempotent
    w.register(A, "/n", WatchKind::Children);
    w.register(B, "/n", WatchKind::Data);
    w.register(B, "/", WatchKind::PersistentRecursive);
    assert_eq!(w.registrations(), 4);
    // One-shot data watches on /n fire and go; the child watch and the recursive one stay.
    w.handle_events(vec![event(1, "/n", EventKind::NodeDataChanged)]);
    assert_eq!(w.registrations(), 2);
    w.remove_client(B);
    assert_eq!(w.registrations(), 1);
    w.unregister(A, "/n", WatchKind::Children)
        .expect("registered");
    assert_eq!(w.registrations(), 0);
}

//! Container and TTL cleanup: the leader's check and the re-check at apply.

use vigil_coord::{Command, CreateMode, EventKind, Response};

use crate::common::Harness;

#[test]
fn containers_go_once_emptied_not_before_first_child() {
    let mut h = Harness::new();
    let s = h.session();
    h.create(s, "/lock", CreateMode::Container, false)
        .expect("container");
    assert!(
        h.sm.tree().reapable(h.time + 1_000_000).is_empty(),
        "never had a child"
    );
    h.create(s, "/lock/w-", CreateMode::Ephemeral, true)
        .expect("child");
    assert!(h.sm.tree().reapable(h.time).is_empty(), "has a child");
    h.apply(Command::CloseSession { session: s });
    assert_eq!(h.sm.tree().reapable(h.time), ["/lock"]);
    h.events();
    let r = h.apply(Command::Reap {
        paths: h.sm.tree().reapable(h.time),
    });
    assert_eq!(
        r,
        Response::Reaped {
            paths: vec!["/lock".into()]
        }
    );
    assert_eq!(h.sm.tree().exists("/lock"), Ok(None));
    let kinds: Vec<EventKind> = h.events().into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::NodeDeleted, EventKind::NodeChildrenChanged]
    );
}

#[test]
fn ttl_nodes_go_after_their_ttl_without_changes() {
    let mut h = Harness::new();
    let s = h.session();
    h.create(s, "/t", CreateMode::Ttl(1_000), false)
        .expect("ttl");
    let created = h.time;
    assert!(h.sm.tree().reapable(created + 1_000).is_empty());
    assert_eq!(h.sm.tree().reapable(created + 1_001), ["/t"]);
    // A data change restarts the TTL.
    h.time = created + 900;
    h.set(s, "/t", b"x", None).expect("set");
    assert!(h.sm.tree().reapable(created + 1_001).is_empty());
    // A child keeps it alive whatever its age.
    h.mkdir(s, "/t/c");
    assert!(h.sm.tree().reapable(created + 10_000).is_empty());
}

#[test]
fn apply_rechecks_candidates_at_the_entry_time() {
    let mut h = Harness::new();
    let s = h.session();
    h.create(s, "/t", CreateMode::Ttl(1_000), false)
        .expect("ttl");
    h.create(s, "/p", CreateMode::Persistent, false)
        .expect("plain");
    let candidates = h.sm.tree().reapable(h.time + 5_000);
    assert_eq!(candidates, ["/t"]);
    // Between the check and the commit, the node got a child; and a bogus path is proposed.
    h.mkdir(s, "/t/c");
    h.time += 5_000;
    let mut paths = candidates;
    paths.push("/p".into());
    paths.push("/missing".into());
    assert_eq!(
        h.apply(Command::Reap { paths }),
        Response::Reaped { paths: vec![] }
    );
    assert_eq!(h.sm.tree().len(), 4);
}

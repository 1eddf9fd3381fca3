//! Multi: all or nothing, ZooKeeper's per-operation results.

use vigil_coord::{CreateMode, Error, EventKind, OpResult, Request, Response};

use crate::common::{Harness, check, create, delete, set};

#[test]
fn successful_multi_applies_every_op_at_one_zxid() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/m");
    h.events();
    let r = h.write(
        s,
        Request::Multi(vec![
            check("/m", Some(0)),
            create("/m/a", b"1", CreateMode::Persistent, false),
            create("/m/s-", b"", CreateMode::Persistent, true),
            set("/m/a", b"2", Some(0)),
            delete("/m/a", Some(1)),
        ]),
    );
    let zxid = h.index;
    let Response::Multi(results) = r else {
        panic!("{r:?}")
    };
    assert_eq!(results.len(), 5);
    assert_eq!(results[0], OpResult::Checked);
    assert!(matches!(&results[1], OpResult::Created { path, stat }
            if path == "/m/a" && stat.czxid == zxid));
    assert!(matches!(&results[2], OpResult::Created { path, .. } if path == "/m/s-0000000001"));
    assert!(matches!(&results[3], OpResult::DataSet { stat } if stat.version == 1));
    assert_eq!(results[4], OpResult::Deleted);
    assert_eq!(h.sm.tree().children("/m").expect("m").0, ["s-0000000001"]);
    let m = h.stat("/m");
    assert_eq!((m.cversion, m.pzxid, m.num_children), (3, zxid, 1));
    let kinds: Vec<(String, EventKind)> = h
        .events()
        .into_iter()
        .map(|e| {
            assert_eq!(e.zxid, zxid);
            (e.path, e.kind)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("/m/a".into(), EventKind::NodeCreated),
            ("/m".into(), EventKind::NodeChildrenChanged),
            ("/m/s-0000000001".into(), EventKind::NodeCreated),
            ("/m".into(), EventKind::NodeChildrenChanged),
            ("/m/a".into(), EventKind::NodeDataChanged),
            ("/m/a".into(), EventKind::NodeDeleted),
            ("/m".into(), EventKind::NodeChildrenChanged),
        ]
    );
}

#[test]
fn failing_op_rolls_back_everything() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/m");
    h.mkdir(s, "/m/keep");
    h.set(s, "/m/keep", b"old", None).expect("set");
    h.events();
    let tree_before = h.sm.tree().clone();
    let r = h.write(
        s,
        Request::Multi(vec![
            create("/m/s-", b"", CreateMode::Persistent, true),
            create("/m/e", b"", CreateMode::Ephemeral, false),
            set("/m/keep", b"new", None),
            delete("/m/keep", None),
            create("/m/x", b"", CreateMode::Persistent, false),
            check("/m/x", Some(5)),
            create("/m/never", b"", CreateMode::Persistent, false),
        ]),
    );
    assert_eq!(
        r,
        Response::Multi(vec![
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::RolledBack,
            OpResult::Error(Error::BadVersion),
            OpResult::Error(Error::RuntimeInconsistency),
        ])
    );
    assert_eq!(r.error(), Some(Error::BadVersion));
    assert_eq!(
        h.sm.tree(),
        &tree_before,
        "nodes, data, cversion, pzxid restored"
    );
    assert_eq!(h.sm.tree().get("/m/keep").expect("kept").0, b"old");
    assert_eq!(
        h.sm.tree().ephemerals(s).count(),
        0,
        "ephemeral index restored"
    );
    assert!(h.events().is_empty(), "a failed multi fires no watch");
    // The sequential counter was rolled back too: the next one reuses the same number.
    let seq = h
        .create(s, "/m/s-", CreateMode::Persistent, true)
        .expect("seq");
    assert_eq!(seq, "/m/s-0000000001");
}

#[test]
fn error_in_first_op_marks_the_rest_inconsistent() {
    let mut h = Harness::new();
    let s = h.session();
    let r = h.write(
        s,
        Request::Multi(vec![
            create("/a/b", b"", CreateMode::Persistent, false),
            create("/a", b"", CreateMode::Persistent, false),
        ]),
    );
    assert_eq!(
        r,
        Response::Multi(vec![
            OpResult::Error(Error::NoNode),
            OpResult::Error(Error::RuntimeInconsistency)
        ])
    );
    assert_eq!(h.sm.tree().len(), 1);
}

#[test]
fn ops_in_a_multi_see_earlier_ops() {
    let mut h = Harness::new();
    let s = h.session();
    let r = h.write(
        s,
        Request::Multi(vec![
            create("/a", b"", CreateMode::Persistent, false),
            create("/a/b", b"", CreateMode::Persistent, false),
            check("/a/b", Some(0)),
            delete("/a", None),
        ]),
    );
    assert_eq!(r.error(), Some(Error::NotEmpty));
    assert_eq!(h.sm.tree().len(), 1);
    let r = h.write(s, Request::Multi(vec![]));
    assert_eq!(r, Response::Multi(vec![]));
}

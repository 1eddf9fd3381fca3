//! Single operations: ZooKeeper's checks, error codes, stats and sequential numbering.

use vigil_coord::tree::{MAX_DATA_LEN, MAX_TTL_MS};
use vigil_coord::{Command, CreateMode, Error, NodeKind, OpResult, Request, Response, SessionId};

use crate::common::{Harness, check, create};

#[test]
fn create_sets_every_stat_field_and_touches_the_parent() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/a");
    let parent_before = h.stat("/a");
    h.time += 5;
    let r = h.op(s, create("/a/b", b"hello", CreateMode::Persistent, false));
    let created_at = h.index;
    let Ok(OpResult::Created { path, stat }) = r else {
        panic!("{r:?}")
    };
    assert_eq!(path, "/a/b");
    assert_eq!(stat.czxid, created_at);
    assert_eq!(stat.mzxid, created_at);
    assert_eq!(stat.pzxid, created_at);
    assert_eq!(stat.ctime, h.time);
    assert_eq!(stat.mtime, h.time);
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.data_length, 5);
    assert_eq!(stat.num_children, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    let parent = h.stat("/a");
    assert_eq!(parent.cversion, parent_before.cversion + 1);
    assert_eq!(parent.pzxid, created_at);
    assert_eq!(parent.num_children, 1);
    assert_eq!(
        parent.mzxid, parent_before.mzxid,
        "a child is not a data change"
    );
    assert_eq!(h.sm.tree().get("/a/b").expect("exists").0, b"hello");
}

#[test]
fn set_and_delete_follow_versions() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/n");
    assert_eq!(h.set(s, "/n", b"x", Some(3)), Err(Error::BadVersion));
    let st = h.set(s, "/n", b"x", Some(0)).expect("set v0");
    assert_eq!((st.version, st.mzxid, st.data_length), (1, h.index, 1));
    let st = h.set(s, "/n", b"yy", None).expect("set any");
    assert_eq!(st.version, 2);
    assert_eq!(
        (st.czxid, st.mzxid),
        (2, h.index),
        "created at entry 2, set at the last"
    );
    assert_eq!(h.delete(s, "/n", Some(1)), Err(Error::BadVersion));
    h.delete(s, "/n", Some(2)).expect("delete v2");
    let root = h.stat("/");
    assert_eq!(
        (root.cversion, root.num_children, root.pzxid),
        (2, 0, h.index)
    );
    assert_eq!(h.sm.tree().exists("/n"), Ok(None));
}

#[test]
fn every_error_code_of_single_ops() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/p");
    h.mkdir(s, "/p/c");
    h.create(s, "/e", CreateMode::Ephemeral, false)
        .expect("ephemeral");

    let p = CreateMode::Persistent;
    let cases: Vec<(vigil_coord::Op, Error)> = vec![
        (create("/missing/x", b"", p, false), Error::NoNode),
        (create("/p", b"", p, false), Error::NodeExists),
        (create("/", b"", p, false), Error::NodeExists),
        (
            create("/e/x", b"", p, false),
            Error::NoChildrenForEphemerals,
        ),
        (create("bad", b"", p, false), Error::BadArguments),
        (create("/p/", b"", p, false), Error::BadArguments),
        (
            create("/big", &vec![0; MAX_DATA_LEN + 1], p, false),
            Error::BadArguments,
        ),
        (
            create("/c", b"", CreateMode::Container, true),
            Error::BadArguments,
        ),
        (
            create("/t", b"", CreateMode::Ttl(0), false),
            Error::BadArguments,
        ),
        (
            create("/t", b"", CreateMode::Ttl(MAX_TTL_MS + 1), false),
            Error::BadArguments,
        ),
        (crate::common::delete("/p", None), Error::NotEmpty),
        (crate::common::delete("/nope", None), Error::NoNode),
        (crate::common::delete("/p/c", Some(7)), Error::BadVersion),
        (crate::common::delete("/", None), Error::BadArguments),
        (crate::common::set("/nope", b"", None), Error::NoNode),
        (crate::common::set("/p", b"", Some(9)), Error::BadVersion),
        (
            crate::common::set("/p", &vec![0; MAX_DATA_LEN + 1], None),
            Error::BadArguments,
        ),
        (check("/nope", None), Error::NoNode),
        (check("/p", Some(1)), Error::BadVersion),
        (check("//", None), Error::BadArguments),
    ];
    h.events();
    let before = h.sm.tree().clone();
    for (op, want) in cases {
        assert_eq!(h.op(s, op.clone()), Err(want), "{op:?}");
        assert_eq!(
            want.code(),
            Error::from_code(want.code()).expect("known").code()
        );
    }
    assert_eq!(h.sm.tree(), &before, "failed ops changed the tree");
    assert_eq!(h.events(), vec![], "failed ops produced events");

    // Session errors.
    let gone = SessionId(9999);
    let r = h.apply(Command::Write {
        session: gone,
        request_id: 1,
        request: Request::Single(check("/p", None)),
    });
    assert_eq!(r, Response::Error(Error::SessionExpired));
    assert_eq!(
        h.apply(Command::CloseSession { session: gone }),
        Response::Error(Error::SessionExpired)
    );
    assert_eq!(
        h.apply(Command::CreateSession { timeout_ms: 0 }),
        Response::Error(Error::BadArguments)
    );
    // Codes are ZooKeeper's.
    assert_eq!(Error::NoNode.code(), -101);
    assert_eq!(Error::NodeExists.code(), -110);
    assert_eq!(Error::BadVersion.code(), -103);
    assert_eq!(Error::NotEmpty.code(), -111);
    assert_eq!(Error::NoChildrenForEphemerals.code(), -108);
    assert_eq!(Error::SessionExpired.code(), -112);
    assert_eq!(Error::BadArguments.code(), -8);
    assert_eq!(Error::RuntimeInconsistency.code(), -2);
    assert_eq!(Error::NoWatcher.code(), -121);
}

#[test]
fn reads_validate_paths() {
    let h = Harness::new();
    let t = h.sm.tree();
    assert_eq!(t.get("/x").err(), Some(Error::NoNode));
    assert_eq!(t.get("x").err(), Some(Error::BadArguments));
    assert_eq!(t.children("/x").err(), Some(Error::NoNode));
    assert_eq!(t.exists("/a/").err(), Some(Error::BadArguments));
    assert_eq!(t.children("/").expect("root").0, Vec::<String>::new());
}

#[test]
fn sequential_suffix_comes_from_parent_cversion() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/q");
    let first = h
        .create(s, "/q/item-", CreateMode::Persistent, true)
        .expect("seq");
    let second = h
        .create(s, "/q/item-", CreateMode::Ephemeral, true)
        .expect("seq");
    h.delete(s, &first, None).expect("delete");
    h.mkdir(s, "/q/plain");
    let third = h
        .create(s, "/q/", CreateMode::Persistent, true)
        .expect("seq");
    assert_eq!(first, "/q/item-0000000000");
    assert_eq!(second, "/q/item-0000000001");
    // A deletion and a plain create also bumped cversion: 2 + 1 + 1.
    assert_eq!(third, "/q/0000000004");
    let root_seq = h
        .create(s, "/", CreateMode::Persistent, true)
        .expect("seq under root");
    assert_eq!(root_seq, format!("/{:010}", h.stat("/").cversion - 1));
    let (children, stat) = h.sm.tree().children("/q").expect("children");
    assert_eq!(children, ["0000000004", "item-0000000001", "plain"]);
    assert_eq!(stat.num_children, 3);
}

#[test]
fn children_are_only_direct_children() {
    let mut h = Harness::new();
    let s = h.session();
    for p in ["/a", "/a/b", "/a/b/c", "/a/d", "/ab", "/a-", "/b"] {
        h.mkdir(s, p);
    }
    assert_eq!(h.sm.tree().children("/a").expect("a").0, ["b", "d"]);
    assert_eq!(
        h.sm.tree().children("/").expect("root").0,
        ["a", "a-", "ab", "b"]
    );
    assert_eq!(
        h.sm.tree().children("/a/b/c").expect("leaf").0,
        Vec::<String>::new()
    );
}

#[test]
fn ephemerals_record_owner_and_kinds_are_kept() {
    let mut h = Harness::new();
    let s = h.session();
    h.create(s, "/e", CreateMode::Ephemeral, false)
        .expect("ephemeral");
    h.create(s, "/c", CreateMode::Container, false)
        .expect("container");
    h.create(s, "/t", CreateMode::Ttl(500), false).expect("ttl");
    assert_eq!(h.stat("/e").ephemeral_owner, s.0);
    assert_eq!(h.stat("/c").ephemeral_owner, 0);
    assert_eq!(h.sm.tree().kind("/e"), Some(NodeKind::Ephemeral(s)));
    assert_eq!(h.sm.tree().kind("/c"), Some(NodeKind::Container));
    assert_eq!(h.sm.tree().kind("/t"), Some(NodeKind::Ttl(500)));
    assert_eq!(h.sm.tree().ephemerals(s).collect::<Vec<_>>(), ["/e"]);
}

#[test]
fn time_never_goes_backwards_across_leaders() {
    let mut h = Harness::new();
    let s = h.session();
    h.time = 5_000_000;
    h.mkdir(s, "/a");
    h.time = 4_000_000; // a new leader with a slower clock
    h.mkdir(s, "/b");
    assert_eq!(h.stat("/b").ctime, 5_000_000);
}

#[test]
fn sync_changes_nothing() {
    let mut h = Harness::new();
    let s = h.session();
    let before = h.sm.tree().clone();
    assert_eq!(h.write(s, Request::Sync), Response::Synced);
    assert_eq!(h.sm.tree(), &before);
    assert!(h.events().is_empty());
}

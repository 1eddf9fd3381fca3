//! Sessions: ids, close/expiry with ephemeral cleanup, retry dedupe, and the leader's tracker.

use std::time::{Duration, Instant};

use vigil_coord::session::DEDUPE_WINDOW;
use vigil_coord::{
    Command, CreateMode, Error, EventKind, OpResult, Request, Response, SessionConfig, SessionId,
    SessionTracker, TouchError, WatchEvent,
};

use crate::common::{Harness, create};

#[test]
fn session_id_is_the_entry_index_and_timeout_is_negotiated() {
    let mut h = Harness::new();
    h.index = 41;
    let config = SessionConfig {
        min_timeout_ms: 2_000,
        max_timeout_ms: 20_000,
    };
    let r = h.apply(Command::create_session(500_000, &config));
    assert_eq!(
        r,
        Response::SessionCreated {
            session: SessionId(42),
            timeout_ms: 20_000
        }
    );
    assert_eq!(
        h.sm.sessions().collect::<Vec<_>>(),
        [(SessionId(42), 20_000)]
    );
    assert_eq!(
        Command::create_session(1, &config),
        Command::CreateSession { timeout_ms: 2_000 }
    );
}

#[test]
fn expiry_deletes_ephemerals_with_events_and_ends_the_session() {
    for end in [
        (|s| Command::ExpireSession { session: s }) as fn(SessionId) -> Command,
        |s| Command::CloseSession { session: s },
    ] {
        let mut h = Harness::new();
        let owner = h.session();
        let other = h.session();
        h.mkdir(other, "/locks");
        h.create(owner, "/locks/a", CreateMode::Ephemeral, false)
            .expect("eph");
        h.create(owner, "/b", CreateMode::Ephemeral, false)
            .expect("eph");
        h.create(other, "/locks/c", CreateMode::Ephemeral, false)
            .expect("eph");
        h.events();
        assert_eq!(h.apply(end(owner)), Response::SessionClosed);
        let zxid = h.index;
        let ev = |path: &str, kind| WatchEvent {
            zxid,
            path: path.into(),
            kind,
        };
        assert_eq!(
            h.events(),
            [
                ev("/b", EventKind::NodeDeleted),
                ev("/", EventKind::NodeChildrenChanged),
                ev("/locks/a", EventKind::NodeDeleted),
                ev("/locks", EventKind::NodeChildrenChanged),
            ]
        );
        assert_eq!(h.sm.tree().children("/locks").expect("locks").0, ["c"]);
        assert_eq!(h.stat("/locks").pzxid, zxid);
        assert!(h.sm.session(owner).is_none());
        assert!(h.sm.session(other).is_some());
        // The ended session can do nothing any more, and ending it again is an error.
        let r = h.op(owner, create("/x", b"", CreateMode::Persistent, false));
        assert_eq!(r, Err(Error::SessionExpired));
        assert_eq!(h.apply(end(owner)), Response::Error(Error::SessionExpired));
    }
}

#[test]
fn retried_write_returns_the_original_result_without_applying_twice() {
    let mut h = Harness::new();
    let s = h.session();
    h.mkdir(s, "/q");
    let write = |id| Command::Write {
        session: s,
        request_id: id,
        request: Request::Single(create("/q/job-", b"", CreateMode::Persistent, true)),
    };
    let first = h.apply(write(1000));
    assert!(
        matches!(&first, Response::Op(OpResult::Created { path, .. })
            if path == "/q/job-0000000000")
    );
    h.events();
    let tree = h.sm.tree().clone();
    assert_eq!(
        h.apply(write(1000)),
        first,
        "retry gets the cached response"
    );
    assert_eq!(h.sm.tree(), &tree, "retry did not create a second node");
    assert!(h.events().is_empty());
    // Errors are cached too: the retry of a failed create is the same failure.
    let dup = Command::Write {
        session: s,
        request_id: 1001,
        request: Request::Single(create("/q", b"", CreateMode::Persistent, false)),
    };
    assert_eq!(h.apply(dup.clone()), Response::Error(Error::NodeExists));
    assert_eq!(h.apply(dup), Response::Error(Error::NodeExists));
    // Pipelined writes may arrive out of order within the window.
    let second = h.apply(write(1003));
    let late = h.apply(write(1002));
    assert!(
        matches!(&late, Response::Op(OpResult::Created { path, .. }) if path == "/q/job-0000000002")
    );
    assert_eq!(h.apply(write(1003)), second);
    // Beyond the window an unknown old id is refused rather than risk a double apply.
    for id in 2000..2000 + DEDUPE_WINDOW as u64 {
        h.apply(write(id));
    }
    let children = h.stat("/q").num_children;
    assert_eq!(h.apply(write(1000)), Response::Error(Error::StaleRequest));
    assert_eq!(h.stat("/q").num_children, children);
}

#[test]
fn dedupe_is_per_session() {
    let mut h = Harness::new();
    let a = h.session();
    let b = h.session();
    for s in [a, b] {
        let r = h.apply(Command::Write {
            session: s,
            request_id: 1,
            request: Request::Single(create("/n-", b"", CreateMode::Persistent, true)),
        });
        assert!(matches!(r, Response::Op(OpResult::Created { .. })), "{r:?}");
    }
    assert_eq!(h.stat("/").num_children, 2);
}

#[test]
fn tracker_expires_silent_sessions_only() {
    let t0 = Instant::now();
    let ms = Duration::from_millis;
    let mut t = SessionTracker::new();
    let (a, b) = (SessionId(1), SessionId(2));
    t.add(a, 1000, t0);
    t.add(b, 3000, t0);
    assert_eq!(t.poll_timeout(), Some(t0 + ms(1000)));
    assert_eq!(t.poll_expired(t0 + ms(999)), []);
    t.touch(a, t0 + ms(900)).expect("live");
    // A late-processed older heartbeat does not shorten the deadline.
    t.touch(a, t0 + ms(100)).expect("live");
    assert_eq!(t.poll_timeout(), Some(t0 + ms(1900)));
    assert_eq!(t.poll_expired(t0 + ms(1900)), [a]);
    assert_eq!(
        t.touch(a, t0 + ms(1901)),
        Err(TouchError::SessionExpired),
        "expiry is final"
    );
    assert_eq!(t.expiring().collect::<Vec<_>>(), [a]);
    assert_eq!(t.poll_expired(t0 + ms(2500)), [], "not returned twice");
    t.remove(a); // its ExpireSession was applied
    assert_eq!(t.expiring().count(), 0);
    assert_eq!(t.poll_expired(t0 + ms(3000)), [b]);
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.touch(SessionId(9), t0), Err(TouchError::SessionExpired));
}

#[test]
fn new_leader_gives_every_session_a_full_timeout() {
    let mut h = Harness::new();
    let a = h.session();
    let b = h.session();
    let t0 = Instant::now();
    let mut t = SessionTracker::new();
    // The old leader had heard nothing from `a` for ages; the new one cannot know that.
    let takeover = t0 + Duration::from_hours(1);
    t.on_become_leader(takeover, h.sm.sessions());
    assert!(t.is_live(a) && t.is_live(b));
    assert_eq!(t.poll_expired(takeover + Duration::from_millis(9_999)), []);
    assert_eq!(t.poll_expired(takeover + Duration::from_secs(10)), [a, b]);
    t.on_step_down();
    assert_eq!(t.poll_timeout(), None);
    assert!(!t.is_live(a));
}

#[test]
fn tracker_drives_expiry_through_the_log() {
    let mut h = Harness::new();
    let s = h.session();
    h.create(s, "/owner", CreateMode::Ephemeral, false)
        .expect("eph");
    let t0 = Instant::now();
    let mut t = SessionTracker::new();
    t.on_become_leader(t0, h.sm.sessions());
    for id in t.poll_expired(t0 + Duration::from_secs(11)) {
        assert_eq!(
            h.apply(Command::ExpireSession { session: id }),
            Response::SessionClosed
        );
        t.remove(id);
    }
    assert_eq!(h.sm.tree().exists("/owner"), Ok(None));
    assert_eq!(t.expiring().count(), 0);
}

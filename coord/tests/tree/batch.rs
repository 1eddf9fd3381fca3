//! Batch entries: several client commands in one log entry, each its own transaction.

use vigil_coord::zxid;
use vigil_coord::{
    Command, CreateMode, Error, OpResult, Request, Response, SessionId, StateMachine,
    VersionedCommand,
};

use crate::common::{create, delete, set};

const TIME: u64 = 1_000_000;

fn write(session: SessionId, request_id: u64, request: Request) -> Command {
    Command::Write {
        session,
        request_id,
        request,
    }
}

/// A state machine with one session, created by a batch entry at index 1.
fn with_session() -> (StateMachine, SessionId) {
    let mut sm = StateMachine::new();
    let r = sm.apply_batch(1, TIME, vec![Command::CreateSession { timeout_ms: 10_000 }]);
    match r.as_slice() {
        [Response::SessionCreated { session, .. }] => {
            assert_eq!(
                session.0,
                zxid::of(1, 0),
                "a session id is its creation's zxid"
            );
            let session = *session;
            (sm, session)
        }
        other => panic!("session not created: {other:?}"),
    }
}

fn czxid(r: &Response) -> u64 {
    match r {
        Response::Op(OpResult::Created { stat, .. }) => stat.czxid,
        other => panic!("expected a create, got {other:?}"),
    }
}

/// create X, delete X, create X in one entry: each create gets its own czxid, strictly larger
/// than the one before, so fencing tokens stay monotonic per path even inside an entry.
#[test]
fn create_delete_create_in_one_entry_gives_increasing_czxids() {
    let (mut sm, s) = with_session();
    let p = CreateMode::Persistent;
    let responses = sm.apply_batch(
        2,
        TIME,
        vec![
            write(s, 1, Request::Single(create("/lock", b"a", p, false))),
            write(s, 2, Request::Single(delete("/lock", None))),
            write(s, 3, Request::Single(create("/lock", b"b", p, false))),
            write(s, 4, Request::Single(set("/lock", b"c", Some(0)))),
            write(s, 5, Request::Single(create("/lock", b"d", p, false))),
        ],
    );
    assert_eq!(responses.len(), 5);
    let first = czxid(&responses[0]);
    assert_eq!(responses[1], Response::Op(OpResult::Deleted));
    let second = czxid(&responses[2]);
    assert_eq!(first, zxid::of(2, 0));
    assert_eq!(second, zxid::of(2, 2));
    assert!(second > first);
    match &responses[3] {
        Response::Op(OpResult::DataSet { stat }) => {
            assert_eq!(stat.czxid, second);
            assert_eq!(stat.mzxid, zxid::of(2, 3));
            assert_eq!(stat.version, 1);
        }
        other => panic!("expected a set, got {other:?}"),
    }
    assert_eq!(responses[4], Response::Error(Error::NodeExists));
    let stat = sm.tree().exists("/lock").expect("path").expect("node");
    assert_eq!(stat.czxid, second);
    assert_eq!(stat.mzxid, zxid::of(2, 3));
    assert_eq!(
        sm.tree().exists("/").expect("path").expect("root").pzxid,
        zxid::of(2, 2)
    );
    assert_eq!(sm.last_applied(), 2);

    // The next entry's create is larger still.
    let r = sm.apply_batch(
        3,
        TIME,
        vec![
            write(s, 6, Request::Single(delete("/lock", None))),
            write(s, 7, Request::Single(create("/lock", b"e", p, false))),
        ],
    );
    assert_eq!(r[0], Response::Op(OpResult::Deleted));
    assert!(czxid(&r[1]) > second);
}

/// Watch events of an entry come out in zxid order, one zxid per command.
#[test]
fn events_of_a_batch_carry_their_own_zxids_in_order() {
    let (mut sm, s) = with_session();
    sm.drain_events();
    let p = CreateMode::Persistent;
    sm.apply_batch(
        2,
        TIME,
        vec![
            write(s, 1, Request::Single(create("/x", b"", p, false))),
            write(s, 2, Request::Single(set("/x", b"1", None))),
            write(s, 3, Request::Single(delete("/x", None))),
        ],
    );
    let zxids: Vec<u64> = sm.drain_events().iter().map(|e| e.zxid).collect();
    assert!(!zxids.is_empty());
    assert!(zxids.windows(2).all(|w| w[0] <= w[1]), "{zxids:?}");
    assert!(zxids.contains(&zxid::of(2, 0)));
    assert!(zxids.contains(&zxid::of(2, 1)));
    assert!(zxids.contains(&zxid::of(2, 2)));
}

/// A failing command fails alone: unlike a multi, the others of its entry still apply.
#[test]
fn a_failing_command_leaves_the_rest_of_its_entry_alone() {
    let (mut sm, s) = with_session();
    let p = CreateMode::Persistent;
    let responses = sm.apply_batch(
        2,
        TIME,
        vec![
            write(s, 1, Request::Single(create("/a", b"", p, false))),
            write(s, 2, Request::Single(create("/missing/b", b"", p, false))),
            write(s, 3, Request::Single(set("/a", b"v", Some(7)))),
            write(
                SessionId(999),
                1,
                Request::Single(create("/c", b"", p, false)),
            ),
            write(
                s,
                4,
                Request::Multi(vec![create("/d", b"", p, false), delete("/nope", None)]),
            ),
            write(s, 5, Request::Single(set("/a", b"v", Some(0)))),
        ],
    );
    assert_eq!(czxid(&responses[0]), zxid::of(2, 0));
    assert_eq!(responses[1], Response::Error(Error::NoNode));
    assert_eq!(responses[2], Response::Error(Error::BadVersion));
    assert_eq!(responses[3], Response::Error(Error::SessionExpired));
    assert_eq!(responses[4].error(), Some(Error::NoNode));
    assert!(matches!(&responses[5], Response::Op(OpResult::DataSet { stat }) if stat.version == 1));
    let tree = sm.tree();
    assert!(tree.exists("/a").expect("path").is_some());
    assert!(tree.exists("/c").expect("path").is_none());
    assert!(
        tree.exists("/d").expect("path").is_none(),
        "the failed multi rolled back"
    );
}

/// A retry that lands in the same entry as its original (the client gave up on one node and
/// retried through another) is answered from the dedupe record, not applied twice.
#[test]
fn dedupe_works_inside_an_entry() {
    let (mut sm, s) = with_session();
    let p = CreateMode::Persistent;
    let sequential = Request::Single(create("/q-", b"", p, true));
    let responses = sm.apply_batch(
        2,
        TIME,
        vec![
            write(s, 1, sequential.clone()),
            write(s, 2, Request::Single(create("/other", b"", p, false))),
            write(s, 1, sequential.clone()),
        ],
    );
    assert_eq!(
        responses[0], responses[2],
        "the retry gets the original's answer"
    );
    assert!(
        matches!(&responses[0], Response::Op(OpResult::Created { path, .. }) if path == "/q-0000000000")
    );
    assert_eq!(
        sm.tree().children("/").expect("children").0.len(),
        2,
        "applied once"
    );

    // And from a later entry too.
    let later = sm.apply_batch(3, TIME, vec![write(s, 1, sequential.clone())]);
    assert_eq!(later[0], responses[0]);
}

/// Two sessions created in one entry get distinct ids, each its own zxid.
#[test]
fn sessions_created_in_one_entry_get_distinct_ids() {
    let mut sm = StateMachine::new();
    let r = sm.apply_batch(
        5,
        TIME,
        vec![
            Command::CreateSession { timeout_ms: 1_000 },
            Command::CreateSession { timeout_ms: 2_000 },
        ],
    );
    let ids: Vec<u64> = r
        .iter()
        .map(|r| match r {
            Response::SessionCreated { session, .. } => session.0,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(ids, vec![zxid::of(5, 0), zxid::of(5, 1)]);
    assert_eq!(sm.sessions().count(), 2);
}

/// An entry with more commands than a zxid can number refuses the excess, deterministically.
#[test]
fn commands_past_the_batch_limit_are_refused() {
    let (mut sm, s) = with_session();
    let commands: Vec<Command> = (1..=zxid::MAX_BATCH as u64 + 1)
        .map(|id| write(s, id, Request::Sync))
        .collect();
    let responses = sm.apply_batch(2, TIME, commands);
    assert_eq!(responses.len(), zxid::MAX_BATCH + 1);
    assert_eq!(responses[zxid::MAX_BATCH - 1], Response::Synced);
    assert_eq!(
        responses[zxid::MAX_BATCH],
        Response::Error(Error::BadArguments)
    );
}

/// Entries written before batching (`V1`, bytes as that format encoded them) still decode,
/// apply with the log index as their zxid, and stay below every later batch zxid.
#[test]
fn pre_batching_entries_still_decode_and_keep_their_zxids() {
    // postcard of V1(CreateSession { timeout_ms: 5000 }): variant 0, variant 0, varint 5000.
    let old_session = [0x00, 0x00, 0x88, 0x27];
    let decoded: VersionedCommand = postcard::from_bytes(&old_session).expect("decode V1");
    assert_eq!(
        decoded,
        VersionedCommand::V1(Command::CreateSession { timeout_ms: 5000 })
    );
    let mut sm = StateMachine::new();
    let VersionedCommand::V1(cmd) = decoded else {
        panic!("not V1");
    };
    let Response::SessionCreated { session: s, .. } = sm.apply(7, TIME, cmd) else {
        panic!("session not created");
    };
    assert_eq!(s, SessionId(7));
    let old = write(
        s,
        1,
        Request::Single(create("/lock", b"", CreateMode::Persistent, false)),
    );
    let old = postcard::to_allocvec(&VersionedCommand::V1(old)).expect("encode");
    let VersionedCommand::V1(old) = postcard::from_bytes(&old).expect("decode") else {
        panic!("not V1");
    };
    assert_eq!(czxid(&sm.apply(8, TIME, old)), 8);
    let r = sm.apply_batch(
        9,
        TIME,
        vec![
            write(s, 2, Request::Single(delete("/lock", None))),
            write(
                s,
                3,
                Request::Single(create("/lock", b"", CreateMode::Persistent, false)),
            ),
        ],
    );
    assert!(czxid(&r[1]) > 8);

    // New entries are batches, even of one command, so their zxids are always composite.
    let one = VersionedCommand::from(Command::CreateSession { timeout_ms: 1 });
    assert!(matches!(one, VersionedCommand::V2(ref c) if c.len() == 1));
}

/// The same batch entries give the same state (and snapshot bytes) on every replica.
#[test]
fn batches_apply_deterministically() {
    let entries = |sm: &mut StateMachine| {
        let (s1, s2) = (SessionId(zxid::of(1, 0)), SessionId(zxid::of(1, 1)));
        sm.apply_batch(
            1,
            TIME,
            vec![
                Command::CreateSession { timeout_ms: 1_000 },
                Command::CreateSession { timeout_ms: 1_000 },
            ],
        );
        sm.apply_batch(
            2,
            TIME + 5,
            vec![
                write(
                    s1,
                    1,
                    Request::Single(create("/e", b"", CreateMode::Ephemeral, false)),
                ),
                write(
                    s2,
                    1,
                    Request::Single(create("/s-", b"", CreateMode::Persistent, true)),
                ),
                Command::CloseSession { session: s1 },
                write(
                    s2,
                    2,
                    Request::Single(create("/s-", b"", CreateMode::Persistent, true)),
                ),
            ],
        );
    };
    let (mut a, mut b) = (StateMachine::new(), StateMachine::new());
    entries(&mut a);
    entries(&mut b);
    assert_eq!(a, b);
    assert_eq!(a.snapshot().expect("encode"), b.snapshot().expect("encode"));
    assert!(
        a.tree().exists("/e").expect("path").is_none(),
        "closed with its session"
    );
    let restored = StateMachine::restore(&a.snapshot().expect("encode")).expect("decode");
    assert_eq!(restored, a);
}

//! Determinism and snapshot round trips.

use std::time::Instant;

use vigil_coord::{Command, CreateMode, Request, RestoreError, StateMachine, VersionedCommand};

use crate::common::{Harness, create, delete, set};

/// A varied history: sessions, every node kind, multis (one failing), expiry.
fn history() -> Vec<(u64, Command)> {
    let mut cmds = vec![
        Command::CreateSession { timeout_ms: 5000 },
        Command::CreateSession { timeout_ms: 7000 },
    ];
    let w = |session: u64, request_id, request| Command::Write {
        session: vigil_coord::SessionId(session),
        request_id,
        request,
    };
    let p = CreateMode::Persistent;
    cmds.push(w(1, 1, Request::Single(create("/app", b"cfg", p, false))));
    cmds.push(w(
        1,
        2,
        Request::Single(create("/app/e", b"", CreateMode::Ephemeral, false)),
    ));
    cmds.push(w(2, 1, Request::Single(create("/app/q-", b"x", p, true))));
    cmds.push(w(
        2,
        2,
        Request::Single(create("/c", b"", CreateMode::Container, false)),
    ));
    cmds.push(w(
        2,
        3,
        Request::Single(create("/t", b"", CreateMode::Ttl(10), false)),
    ));
    cmds.push(w(
        1,
        3,
        Request::Multi(vec![set("/app", b"v2", Some(0)), delete("/nope", None)]),
    ));
    cmds.push(w(
        1,
        4,
        Request::Multi(vec![
            set("/app", b"v2", Some(0)),
            create("/c/k", b"", p, false),
        ]),
    ));
    cmds.push(w(2, 4, Request::Single(delete("/c/k", None))));
    cmds.push(Command::ExpireSession {
        session: vigil_coord::SessionId(1),
    });
    cmds.push(Command::Reap {
        paths: vec!["/c".into(), "/t".into()],
    });
    cmds.into_iter()
        .enumerate()
        .map(|(i, c)| (1_000 + 10 * i as u64, c))
        .collect()
}

fn replay(cmds: &[(u64, Command)]) -> (StateMachine, Vec<vigil_coord::Response>) {
    let mut sm = StateMachine::new();
    let responses = cmds
        .iter()
        .enumerate()
        .map(|(i, (time, c))| sm.apply(i as u64 + 1, *time, c.clone()))
        .collect();
    (sm, responses)
}

#[test]
fn apply_is_deterministic() {
    let cmds = history();
    let (a, ra) = replay(&cmds);
    let (b, rb) = replay(&cmds);
    assert_eq!(ra, rb);
    assert_eq!(a, b);
    assert_eq!(a.snapshot().expect("encode"), b.snapshot().expect("encode"));
    // The history did what it says: /c and /t reaped, session 1's ephemeral gone.
    let paths: Vec<String> = a.tree().iter().map(|(p, _, _)| p).collect();
    assert_eq!(paths, ["/", "/app", "/app/q-0000000001"]);
}

#[test]
fn snapshot_restore_yields_an_identical_machine() {
    let (sm, _) = replay(&history());
    let bytes = sm.snapshot().expect("encode");
    let restored = StateMachine::restore(&bytes).expect("decode");
    assert_eq!(restored, sm);
    assert_eq!(restored.snapshot().expect("encode"), bytes);
    // And it keeps behaving the same: applying more entries to both gives the same result.
    let (mut a, mut b) = (sm, restored);
    let next = Command::Write {
        session: vigil_coord::SessionId(2),
        request_id: 4, // a retry: dedupe state survived the snapshot
        request: Request::Single(delete("/c/k", None)),
    };
    assert_eq!(a.apply(100, 9_999, next.clone()), b.apply(100, 9_999, next));
    assert_eq!(a, b);
}

#[test]
fn restore_refuses_garbage_and_broken_invariants() {
    let (sm, _) = replay(&history());
    let bytes = sm.snapshot().expect("encode");
    assert!(matches!(
        StateMachine::restore(&bytes[..bytes.len() / 2]),
        Err(RestoreError::Decode(_))
    ));
    assert!(matches!(
        StateMachine::restore(&[0xff; 8]),
        Err(RestoreError::Decode(_))
    ));
}

#[test]
fn log_entries_round_trip_through_the_versioned_envelope() {
    for (_, cmd) in history() {
        let bytes = postcard::to_allocvec(&VersionedCommand::from(cmd.clone())).expect("encode");
        let back: VersionedCommand = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, VersionedCommand::V2(vec![cmd.clone()]));
        let old = postcard::to_allocvec(&VersionedCommand::V1(cmd.clone())).expect("encode");
        let back: VersionedCommand = postcard::from_bytes(&old).expect("decode");
        assert_eq!(back, VersionedCommand::V1(cmd));
    }
}

#[test]
fn a_large_tree_snapshots_quickly_and_exactly() {
    let mut h = Harness::new();
    let s = h.session();
    for i in 0..50 {
        h.mkdir(s, &format!("/d{i:02}"));
        for j in 0..200 {
            h.op(
                s,
                create(
                    &format!("/d{i:02}/n{j:04}"),
                    b"0123456789abcdef",
                    CreateMode::Persistent,
                    false,
                ),
            )
            .expect("create");
        }
    }
    assert_eq!(h.sm.tree().len(), 1 + 50 + 50 * 200);
    let start = Instant::now();
    let bytes = h.sm.snapshot().expect("encode");
    let restored = StateMachine::restore(&bytes).expect("decode");
    let took = start.elapsed();
    assert_eq!(restored, h.sm);
    // Generous bound for a debug build on a busy 2-core box; catches accidental quadratic code.
    assert!(
        took.as_secs() < 5,
        "snapshot round trip of 10k nodes took {took:?}"
    );
}

/// The commands behind `fixtures/snapshot-v1.bin`: every node kind, inline and boxed data, a
/// sequential name, a deleted node and a closed session. The fixture holds the snapshot the
/// pre-V2 code wrote after applying them (entry `i` at index `i + 1`, time `1_000 + i`).
fn v1_fixture_commands() -> Vec<Command> {
    use vigil_coord::{Op, SessionId};
    let write = |session: u64, id: u64, op: Op| Command::Write {
        session: SessionId(session),
        request_id: id,
        request: Request::Single(op),
    };
    let create = |path: &str, data: &[u8], mode: CreateMode, sequential: bool| Op::Create {
        path: path.into(),
        data: data.to_vec(),
        mode,
        sequential,
    };
    vec![
        Command::CreateSession { timeout_ms: 10_000 },
        Command::CreateSession { timeout_ms: 5_000 },
        write(1, 1, create("/app", b"", CreateMode::Persistent, false)),
        write(
            1,
            2,
            create("/app/config", &[7; 300], CreateMode::Persistent, false),
        ),
        write(
            1,
            3,
            create("/app/q-", b"job", CreateMode::Persistent, true),
        ),
        write(
            1,
            4,
            create("/app/q-", b"job2", CreateMode::Persistent, true),
        ),
        write(
            2,
            1,
            create("/app/lock", b"me", CreateMode::Ephemeral, false),
        ),
        write(1, 5, create("/c", b"", CreateMode::Container, false)),
        write(1, 6, create("/c/k", b"", CreateMode::Persistent, false)),
        write(1, 7, create("/t", b"x", CreateMode::Ttl(60_000), false)),
        write(1, 8, create("/a-b", b"", CreateMode::Persistent, false)),
        write(
            1,
            9,
            create(
                "/a-b/a-name-longer-than-eighteen-bytes",
                b"0123456789abcdefghijklmnop",
                CreateMode::Persistent,
                false,
            ),
        ),
        write(
            1,
            10,
            Op::SetData {
                path: "/app".into(),
                data: b"v2".to_vec(),
                version: Some(0),
            },
        ),
        write(
            1,
            11,
            Op::Delete {
                path: "/app/q-0000000001".into(),
                version: None,
            },
        ),
        Command::CreateSession { timeout_ms: 3_000 },
        write(15, 1, create("/gone", b"", CreateMode::Ephemeral, false)),
        Command::CloseSession {
            session: SessionId(15),
        },
    ]
}

#[test]
fn a_snapshot_in_the_old_path_format_still_restores() {
    let bytes = include_bytes!("fixtures/snapshot-v1.bin");
    let restored = StateMachine::restore(bytes).expect("a V1 snapshot restores");
    let mut expected = StateMachine::new();
    for (i, c) in v1_fixture_commands().into_iter().enumerate() {
        expected.apply(i as u64 + 1, 1_000 + i as u64, c);
    }
    assert_eq!(restored, expected);
    let paths: Vec<String> = restored.tree().iter().map(|(p, _, _)| p).collect();
    assert_eq!(
        paths,
        [
            "/",
            "/a-b",
            "/app",
            "/c",
            "/t",
            "/a-b/a-name-longer-than-eighteen-bytes",
            "/app/config",
            "/app/lock",
            "/app/q-0000000002",
            "/c/k",
        ]
    );
    // It is written back in the current format, which restores to the same state.
    let again = restored.snapshot().expect("encode");
    assert_ne!(&again[..], &bytes[..]);
    assert_eq!(
        StateMachine::restore(&again).expect("V2 restores"),
        expected
    );
    // The derived indexes came back too: the session's ephemeral and the cleanup candidates.
    assert_eq!(
        restored
            .tree()
            .ephemerals(vigil_coord::SessionId(2))
            .collect::<Vec<_>>(),
        ["/app/lock"]
    );
    assert_eq!(restored.tree().reapable(u64::MAX), ["/t"]);
}

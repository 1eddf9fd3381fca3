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
    let paths: Vec<&str> = a.tree().iter().map(|(p, _, _)| p).collect();
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
        assert_eq!(back.into_command(), cmd);
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

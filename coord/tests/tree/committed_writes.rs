//! Committed-writes sessions ([`Liveness::CommittedWrites`]): the replicated flag, the old
//! formats that must still decode, and the tracker's rules in simulated time.

use std::time::{Duration, Instant};

use vigil_coord::{
    Command, CreateMode, Liveness, Op, Request, Response, SessionConfig, SessionId, SessionTracker,
    StateMachine, TouchError, VersionedCommand,
};

use crate::common::Harness;

/// The session timeout of these tests.
const T: u32 = 3_000;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn created(response: Response) -> SessionId {
    match response {
        Response::SessionCreated { session, .. } => session,
        other => panic!("session not created: {other:?}"),
    }
}

#[test]
fn liveness_is_replicated_and_heartbeat_is_the_default() {
    let config = SessionConfig {
        min_timeout_ms: 1_000,
        max_timeout_ms: 10_000,
    };
    // Heartbeat sessions keep the original command, so members not yet upgraded apply them.
    assert_eq!(
        Command::create_session_with(T, Liveness::Heartbeat, &config),
        Command::CreateSession { timeout_ms: T }
    );
    let logged = Command::create_session_with(99_000, Liveness::CommittedWrites, &config);
    assert_eq!(
        logged,
        Command::CreateSessionWith {
            timeout_ms: 10_000,
            liveness: Liveness::CommittedWrites
        }
    );
    let mut h = Harness::new();
    let beat = h.session();
    let writes = created(h.apply(logged));
    assert_eq!(
        h.sm.session(beat).map(vigil_coord::Session::liveness),
        Some(Liveness::Heartbeat)
    );
    assert_eq!(
        h.sm.session(writes).map(vigil_coord::Session::liveness),
        Some(Liveness::CommittedWrites)
    );
    assert_eq!(
        h.sm.sessions_of(Liveness::CommittedWrites)
            .collect::<Vec<_>>(),
        [(writes, 10_000)]
    );
    assert_eq!(
        h.apply(Command::CreateSessionWith {
            timeout_ms: 0,
            liveness: Liveness::CommittedWrites
        }),
        Response::Error(vigil_coord::Error::BadArguments)
    );
    // Writes, ephemerals and expiry work as for any session.
    h.create(writes, "/owner", CreateMode::Ephemeral, false)
        .expect("ephemeral");
    assert_eq!(h.write(writes, Request::Sync), Response::Synced);
    assert_eq!(
        h.apply(Command::ExpireSession { session: writes }),
        Response::SessionClosed
    );
    assert_eq!(h.sm.tree().exists("/owner"), Ok(None));
}

#[test]
fn snapshots_keep_each_sessions_liveness() {
    let mut h = Harness::new();
    let beat = h.session();
    let writes = created(h.apply(Command::CreateSessionWith {
        timeout_ms: T,
        liveness: Liveness::CommittedWrites,
    }));
    h.create(writes, "/owner", CreateMode::Ephemeral, false)
        .expect("ephemeral");
    let restored = StateMachine::restore(&h.sm.snapshot().expect("encode")).expect("restore");
    assert_eq!(restored, h.sm);
    assert_eq!(
        restored.session(writes).map(vigil_coord::Session::liveness),
        Some(Liveness::CommittedWrites)
    );
    assert_eq!(
        restored.session(beat).map(vigil_coord::Session::liveness),
        Some(Liveness::Heartbeat)
    );
}

/// The commands behind `fixtures/snapshot-v2.bin`, the snapshot the code before
/// [`Liveness`] wrote after applying them (entry `i` at index `i + 1`, time `2_000 + i`).
fn v2_fixture_commands() -> Vec<Command> {
    let write = |session: u64, request_id: u64, op: Op| Command::Write {
        session: SessionId(session),
        request_id,
        request: Request::Single(op),
    };
    let create = |path: &str, data: &[u8], mode: CreateMode| Op::Create {
        path: path.into(),
        data: data.to_vec(),
        mode,
        sequential: false,
    };
    vec![
        Command::CreateSession { timeout_ms: 10_000 },
        Command::CreateSession { timeout_ms: 5_000 },
        write(1, 1, create("/app", b"cfg", CreateMode::Persistent)),
        write(2, 1, create("/app/owner", b"lb1", CreateMode::Ephemeral)),
        write(
            2,
            2,
            Op::SetData {
                path: "/app".into(),
                data: b"v2".to_vec(),
                version: None,
            },
        ),
    ]
}

#[test]
fn a_snapshot_written_before_liveness_still_restores() {
    let bytes = include_bytes!("fixtures/snapshot-v2.bin");
    let restored = StateMachine::restore(bytes).expect("a V2 snapshot restores");
    let mut expected = StateMachine::new();
    for (i, c) in v2_fixture_commands().into_iter().enumerate() {
        let response = expected.apply(i as u64 + 1, 2_000 + i as u64, c);
        assert_eq!(response.error(), None, "fixture command {i}");
    }
    assert_eq!(restored, expected);
    assert_eq!(
        restored.sessions_of(Liveness::Heartbeat).count(),
        2,
        "old sessions are heartbeat sessions"
    );
    // The dedupe window came through: a retry is answered, not applied again.
    let mut again = restored.clone();
    let retry = again.apply(
        6,
        2_010,
        Command::Write {
            session: SessionId(2),
            request_id: 1,
            request: Request::Single(Op::Delete {
                path: "/app/owner".into(),
                version: None,
            }),
        },
    );
    assert!(matches!(retry, Response::Op(_)), "{retry:?}");
    assert!(again.tree().exists("/app/owner").expect("path").is_some());
    // Written back in the current format, it restores to the same state.
    let current = restored.snapshot().expect("encode");
    assert_ne!(&current[..], &bytes[..]);
    assert_eq!(StateMachine::restore(&current).expect("V3"), expected);
}

#[test]
fn entries_written_before_liveness_still_decode() {
    // postcard of V2([CreateSession { timeout_ms: 5000 }]): variant 1, length 1, variant 0,
    // varint 5000, as the code before `Liveness` wrote it.
    let old: VersionedCommand = postcard::from_bytes(&[0x01, 0x01, 0x00, 0x88, 0x27]).expect("V2");
    assert_eq!(
        old,
        VersionedCommand::V2(vec![Command::CreateSession { timeout_ms: 5000 }])
    );
    // The new command is a new variant after the existing ones: their encodings are unchanged.
    let new = postcard::to_allocvec(&VersionedCommand::from(Command::CreateSessionWith {
        timeout_ms: T,
        liveness: Liveness::CommittedWrites,
    }))
    .expect("encode");
    assert_eq!(new, [0x01, 0x01, 0x05, 0xB8, 0x17, 0x01]);
}

/// A tracker on a member that is not the leader, tracking committed-writes session `s`
/// created at `t0`.
fn follower(s: SessionId, t0: Instant) -> SessionTracker {
    let mut t = SessionTracker::new();
    t.add_committed_writes(s, T, t0);
    t
}

#[test]
fn only_a_caught_up_leader_expires_committed_writes_sessions() {
    let t0 = Instant::now();
    let s = SessionId(1);
    let mut t = follower(s, t0);
    t.on_own_term_applied(); // ignored: not leading
    assert_eq!(t.poll_expired(t0 + ms(60_000)), [], "followers only track");
    assert_eq!(t.poll_timeout(), None);
    assert_eq!(t.committed_writes_deadline(s), Some(t0 + ms(3_000)));
    t.on_become_leader(t0 + ms(60_000), [(s, T)]);
    assert_eq!(t.poll_expired(t0 + ms(60_000)), [], "not caught up yet");
    t.on_own_term_applied();
    assert_eq!(t.poll_timeout(), Some(t0 + ms(3_000)));
    assert_eq!(t.poll_expired(t0 + ms(60_000)), [s]);
}

#[test]
fn a_new_leader_continues_from_its_apply_times_instead_of_a_full_timeout() {
    let t0 = Instant::now();
    let (s, beat) = (SessionId(1), SessionId(2));
    let mut t = follower(s, t0);
    t.on_write_applied(s, t0 + ms(2_000));
    // Heartbeats for `beat` are not in the log: this member knows nothing of them.
    let takeover = t0 + ms(4_000);
    t.on_become_leader(takeover, [(s, T), (beat, T)]);
    t.on_own_term_applied();
    assert_eq!(t.poll_timeout(), Some(t0 + ms(5_000)));
    assert_eq!(t.poll_expired(t0 + ms(4_999)), []);
    assert_eq!(
        t.poll_expired(t0 + ms(5_000)),
        [s],
        "a timeout after the last applied write, not after the take-over"
    );
    assert_eq!(t.poll_expired(takeover + ms(2_999)), []);
    assert_eq!(
        t.poll_expired(takeover + ms(3_000)),
        [beat],
        "a heartbeat session gets a full timeout from the take-over"
    );
}

#[test]
fn a_new_leader_waits_for_the_committed_writes_it_has_not_applied() {
    let t0 = Instant::now();
    let s = SessionId(1);
    let mut t = follower(s, t0);
    let takeover = t0 + ms(10_000);
    t.on_become_leader(takeover, [(s, T)]);
    // Its apply time is 10 s old, but the log may hold a newer committed write of `s`.
    assert_eq!(t.poll_expired(takeover), []);
    t.on_write_applied(s, takeover + ms(100));
    t.on_own_term_applied();
    assert_eq!(t.poll_expired(takeover + ms(3_099)), []);
    assert_eq!(t.poll_expired(takeover + ms(3_100)), [s]);
}

#[test]
fn heartbeats_do_not_renew_a_committed_writes_session() {
    let t0 = Instant::now();
    let s = SessionId(1);
    let mut t = follower(s, t0);
    t.on_become_leader(t0, [(s, T)]);
    t.on_own_term_applied();
    assert_eq!(t.touch(s, t0 + ms(2_000)), Err(TouchError::RenewedByWrites));
    assert_eq!(t.committed_writes_deadline(s), Some(t0 + ms(3_000)));
    assert_eq!(t.poll_expired(t0 + ms(3_000)), [s]);
    assert_eq!(
        t.touch(s, t0 + ms(3_001)),
        Err(TouchError::SessionExpired),
        "once expiring, it is expired"
    );
}

#[test]
fn a_received_write_holds_off_expiry_and_a_decided_expiry_refuses_writes() {
    let t0 = Instant::now();
    let s = SessionId(1);
    let mut t = follower(s, t0);
    t.on_become_leader(t0, [(s, T)]);
    t.on_own_term_applied();
    // Proposed at 2.9 s, it may commit after 3 s: the leader counts it from its receipt.
    assert_eq!(t.on_write_received(s, t0 + ms(2_900)), Ok(()));
    assert_eq!(t.poll_expired(t0 + ms(3_500)), []);
    assert_eq!(t.poll_expired(t0 + ms(5_900)), [s]);
    assert_eq!(
        t.on_write_received(s, t0 + ms(6_000)),
        Err(TouchError::SessionExpired),
        "a write could commit before the ExpireSession and pass for a renewal"
    );
    // A write applied now does not undo the decision...
    t.on_write_applied(s, t0 + ms(6_000));
    assert!(!t.is_live(s));
    assert_eq!(t.poll_expired(t0 + ms(60_000)), []);
    assert_eq!(t.expiring().collect::<Vec<_>>(), [s]);
    // ...but if this leader steps down before the expiry commits, the next one knows it.
    t.on_step_down();
    assert!(t.is_live(s));
    assert_eq!(t.committed_writes_deadline(s), Some(t0 + ms(9_000)));
    t.on_become_leader(t0 + ms(7_000), [(s, T)]);
    t.on_own_term_applied();
    assert_eq!(t.poll_expired(t0 + ms(8_999)), []);
    assert_eq!(t.poll_expired(t0 + ms(9_000)), [s]);
    t.remove(s);
    assert_eq!(t.expiring().count(), 0);
    assert!(!t.is_live(s));
}

#[test]
fn heartbeat_sessions_keep_the_old_rules() {
    let t0 = Instant::now();
    let beat = SessionId(2);
    let mut t = SessionTracker::new();
    t.on_become_leader(t0, [(beat, T)]);
    t.on_own_term_applied();
    // Applied writes do not renew it (only what the leader receives does).
    t.on_write_applied(beat, t0 + ms(2_000));
    assert_eq!(t.poll_timeout(), Some(t0 + ms(3_000)));
    assert_eq!(t.on_write_received(beat, t0 + ms(2_000)), Ok(()));
    assert_eq!(t.poll_timeout(), Some(t0 + ms(5_000)));
    assert_eq!(t.poll_expired(t0 + ms(5_000)), [beat]);
    // As before, a write of an expiring heartbeat session is not refused by the tracker.
    assert_eq!(t.on_write_received(beat, t0 + ms(5_001)), Ok(()));
    assert!(!t.is_live(beat));
    t.on_step_down();
    assert!(
        !t.is_live(beat),
        "only the leader tracks heartbeat sessions"
    );
}

#[test]
fn a_restart_or_snapshot_takes_its_own_time_as_the_last_write() {
    let t0 = Instant::now();
    let (s, gone) = (SessionId(1), SessionId(3));
    let mut t = follower(s, t0);
    t.add_committed_writes(gone, T, t0);
    // A snapshot installed at 10 s no longer has `gone`, and its apply times are unknown.
    let installed = t0 + ms(10_000);
    t.on_state_replaced(installed, [(s, T)]);
    assert!(!t.is_live(gone));
    assert_eq!(t.committed_writes_deadline(s), Some(installed + ms(3_000)));
}

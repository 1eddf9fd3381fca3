//! Sessions across a leader change: a heartbeat session's ephemeral node, then its expiry with
//! a watch event; committed-writes sessions, which a new leader expires from its apply times.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use vigil_coord::node::{CoordError, CoordNode};
use vigil_coord::raft::SmEvent;
use vigil_coord::{Command, CreateMode, EventKind, Liveness, Request, Response, SessionId};

use super::harness::{Cluster, bounded, create, get};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ephemeral_survives_a_leader_change_and_goes_when_heartbeats_stop() {
    bounded("session test", Duration::from_secs(30), async {
        let mut cluster = Cluster::start("sessions", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.follower_of(leader);
        let client = cluster.node(follower).clone();
        let mut events = client.subscribe();
        let (s, timeout_ms) = client.create_session(1_000).await.expect("session");
        assert_eq!(timeout_ms, 1_000);
        let created = client
            .write(create(s, 1, "/owner", b"me", CreateMode::Ephemeral))
            .await
            .expect("create ephemeral");
        assert_eq!(created.error(), None);

        // Heartbeats through the follower, as a client connected to it would send them.
        let beating = client.clone();
        let heartbeats = tokio::spawn(async move {
            loop {
                // During the election a heartbeat may fail; the next one goes to the new leader.
                let _ = beating.heartbeat(s).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        cluster.stop(leader).await;
        cluster.leader(Duration::from_secs(3)).await;
        // Three session timeouts under the new leader: still there.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(get(&client, "/owner").await.as_deref(), Some(&b"me"[..]));
        assert!(client.read_stale(|sm| sm.session(s).is_some()));

        heartbeats.abort();
        let stopped = Instant::now();
        // The follower's stream has the creation, then (only now) the deletion, in zxid order.
        let mut seen = Vec::new();
        let deleted_at = loop {
            match events.recv().await.expect("event stream") {
                SmEvent::Applied { index, events } => {
                    seen.extend(events.iter().filter(|e| e.path == "/owner").map(|e| e.kind));
                    if seen.last() == Some(&EventKind::NodeDeleted) {
                        break index;
                    }
                }
                SmEvent::SnapshotInstalled { .. } => panic!("no snapshot expected"),
            }
        };
        let gone_after = stopped.elapsed();
        eprintln!("session expiry: ephemeral deleted {gone_after:?} after the heartbeats stopped");
        assert_eq!(seen, [EventKind::NodeCreated, EventKind::NodeDeleted]);
        assert!(deleted_at > vigil_coord::zxid::index_of(s.0));
        assert!(
            gone_after >= Duration::from_millis(700),
            "expired too early: {gone_after:?}"
        );
        assert_eq!(get(&client, "/owner").await, None);
        assert!(client.read_stale(|sm| sm.session(s).is_none()));
        assert!(
            client.heartbeat(s).await.is_err(),
            "an expired session cannot heartbeat"
        );
        cluster.shutdown().await;
    })
    .await;
}

/// The session timeout of the committed-writes tests.
const T: Duration = Duration::from_secs(3);

/// One session-bound `sync` through `node`: whether it committed.
async fn sync(node: &CoordNode, session: SessionId, request_id: u64) -> bool {
    matches!(
        node.write(Command::Write {
            session,
            request_id,
            request: Request::Sync,
        })
        .await,
        Ok(Response::Synced)
    )
}

async fn committed_writes_session(node: &CoordNode) -> SessionId {
    let timeout_ms = u32::try_from(T.as_millis()).expect("fits");
    let (s, granted) = node
        .create_session_with(timeout_ms, Liveness::CommittedWrites)
        .await
        .expect("session");
    assert_eq!(granted, timeout_ms);
    s
}

/// When `node` first sees each of `sessions` gone, polling every 10 ms for at most `limit`.
async fn ends(node: &CoordNode, sessions: &[SessionId], limit: Duration) -> Vec<Instant> {
    let start = Instant::now();
    let mut gone: Vec<Option<Instant>> = vec![None; sessions.len()];
    while gone.iter().any(Option::is_none) && start.elapsed() < limit {
        let now = Instant::now();
        for (at, s) in gone.iter_mut().zip(sessions) {
            if at.is_none() && node.read_stale(|sm| sm.session(*s).is_none()) {
                *at = Some(now);
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    gone.into_iter()
        .zip(sessions)
        .map(|(at, s)| at.unwrap_or_else(|| panic!("session {s} still alive after {limit:?}")))
        .collect()
}

/// The leader crashes 1.5 s after the last keep-alive of a committed-writes session: the new
/// leader expires it a timeout after that keep-alive, where a heartbeat session (beating until
/// the crash) gets a full timeout from the take-over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_writes_session_expires_a_timeout_after_its_last_write_despite_a_new_leader() {
    bounded("committed-writes expiry", Duration::from_secs(40), async {
        let mut cluster = Cluster::start("logged-expiry", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.follower_of(leader);
        let client = cluster.node(follower).clone();
        let logged = committed_writes_session(&client).await;
        let timeout_ms = u32::try_from(T.as_millis()).expect("fits");
        let (beat, _) = client.create_session(timeout_ms).await.expect("session");
        let created = client
            .write(create(logged, 1, "/owner", b"me", CreateMode::Ephemeral))
            .await
            .expect("create ephemeral");
        assert_eq!(created.error(), None);

        // Heartbeats are refused, on the leader and through a follower alike.
        for node in [&client, cluster.node(leader)] {
            assert!(
                matches!(
                    node.heartbeat(logged).await,
                    Err(CoordError::RenewedByWrites)
                ),
                "a heartbeat must not pass for a renewal"
            );
        }

        let beating = client.clone();
        let heartbeats = tokio::spawn(async move {
            loop {
                let _ = beating.heartbeat(beat).await;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        // Keep-alives through the follower for longer than a timeout.
        let mut last_sent = Instant::now();
        for request_id in 2..10 {
            let sent = Instant::now();
            assert!(sync(&client, logged, request_id).await, "keep-alive");
            last_sent = sent;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        tokio::time::sleep(Duration::from_millis(1_500).saturating_sub(last_sent.elapsed())).await;
        heartbeats.abort();
        let crash = Instant::now();
        cluster.stop(leader).await;
        let survivor = cluster.leader(Duration::from_secs(5)).await;
        let elected = crash.elapsed();
        let gone = ends(
            cluster.node(survivor),
            &[logged, beat],
            Duration::from_secs(15),
        )
        .await;
        let (logged_gone, beat_gone) = (gone[0], gone[1]);
        eprintln!(
            "leader stopped {:?} after the last keep-alive; new leader seen after {elected:?}; \
             committed-writes session gone {:?} after its last keep-alive ({:?} after the \
             crash); heartbeat session gone {:?} after the crash",
            crash - last_sent,
            logged_gone - last_sent,
            logged_gone - crash,
            beat_gone - crash,
        );
        assert!(
            logged_gone >= last_sent + T,
            "expired before a timeout had passed since the last keep-alive"
        );
        // T − 0.5 s after the crash: impossible with a full timeout from the take-over, which
        // comes after the crash.
        assert!(
            logged_gone < crash + Duration::from_millis(2_500),
            "expired {:?} after the crash, not before T - 0.5 s: the new leader did not use its \
             apply times",
            logged_gone - crash
        );
        assert!(
            beat_gone >= crash + T,
            "a heartbeat session must get a full timeout from the take-over"
        );
        assert_eq!(
            get(cluster.node(survivor), "/owner").await,
            None,
            "the ephemeral went with the session"
        );
        cluster.shutdown().await;
    })
    .await;
}

/// Keep-alives through a follower across a leader change keep a committed-writes session, and
/// its ephemeral, alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_writes_session_that_keeps_writing_survives_a_leader_change() {
    bounded(
        "committed-writes survival",
        Duration::from_secs(40),
        async {
            let mut cluster = Cluster::start("logged-survival", 3).await;
            let leader = cluster.leader(Duration::from_secs(5)).await;
            let follower = cluster.follower_of(leader);
            let client = cluster.node(follower).clone();
            let logged = committed_writes_session(&client).await;
            let created = client
                .write(create(logged, 1, "/owner", b"me", CreateMode::Ephemeral))
                .await
                .expect("create ephemeral");
            assert_eq!(created.error(), None);
            let writer = client.clone();
            let acked_after = Arc::new(AtomicU64::new(0));
            let crashed = Arc::new(AtomicBool::new(false));
            let keep_alive = {
                let (acked_after, crashed) = (Arc::clone(&acked_after), Arc::clone(&crashed));
                tokio::spawn(async move {
                    for request_id in 2.. {
                        // During the election a keep-alive may fail; the next goes to the new
                        // leader.
                        if sync(&writer, logged, request_id).await && crashed.load(Ordering::SeqCst)
                        {
                            acked_after.fetch_add(1, Ordering::SeqCst);
                        }
                        tokio::time::sleep(Duration::from_millis(300)).await;
                    }
                })
            };
            tokio::time::sleep(T).await;
            crashed.store(true, Ordering::SeqCst);
            cluster.stop(leader).await;
            cluster.leader(Duration::from_secs(5)).await;
            // Two timeouts under the new leader.
            tokio::time::sleep(2 * T).await;
            assert!(
                acked_after.load(Ordering::SeqCst) >= 3,
                "keep-alives must commit under the new leader"
            );
            assert_eq!(get(&client, "/owner").await.as_deref(), Some(&b"me"[..]));
            assert!(client.read_stale(|sm| sm.session(logged).is_some()));
            keep_alive.abort();
            // Without keep-alives it ends, a timeout after the last one.
            let stopped = Instant::now();
            let gone = ends(&client, &[logged], Duration::from_secs(10)).await[0];
            assert!(
                gone - stopped < T + Duration::from_secs(2),
                "still alive {:?} after the keep-alives stopped",
                gone - stopped
            );
            cluster.shutdown().await;
        },
    )
    .await;
}

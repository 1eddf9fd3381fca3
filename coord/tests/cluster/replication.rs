//! Election, writes from any node, linearizable reads everywhere, and loopback numbers.

use std::time::{Duration, Instant};

use vigil_coord::node::CoordError;
use vigil_coord::{CreateMode, OpResult, Response, SessionId};

use super::harness::{Cluster, bounded, create, get, put, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_elect_a_leader_and_serve_writes_from_any_node() {
    bounded("replication test", Duration::from_secs(30), async {
        let started = Instant::now();
        let cluster = Cluster::start("repl", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let elected = started.elapsed();
        let follower = cluster.follower_of(leader);

        // A session opened through a follower; writes through the follower and the leader.
        let s = session(cluster.node(follower), 10_000).await;
        put(cluster.node(follower), s, 1, "/via-follower", b"f").await;
        put(cluster.node(leader), s, 2, "/via-leader", b"l").await;

        for node in cluster.live() {
            assert_eq!(
                get(node, "/via-follower").await.as_deref(),
                Some(&b"f"[..]),
                "node {}",
                node.id()
            );
            assert_eq!(
                get(node, "/via-leader").await.as_deref(),
                Some(&b"l"[..]),
                "node {}",
                node.id()
            );
        }

        // A retried request id returns the first response instead of applying twice.
        let again = cluster
            .node(follower)
            .write(super::harness::create(
                s,
                1,
                "/via-follower",
                b"f",
                vigil_coord::CreateMode::Persistent,
            ))
            .await
            .expect("retry");
        assert_eq!(
            again.error(),
            None,
            "a retry must get the cached success: {again:?}"
        );

        // Loopback write latency through the leader and through a follower.
        let mut lat = Vec::new();
        for i in 0..100u64 {
            let t = Instant::now();
            put(cluster.node(leader), s, 10 + i, &format!("/lat-{i}"), b"x").await;
            lat.push(t.elapsed());
        }
        let mut fwd = Vec::new();
        for i in 0..50u64 {
            let t = Instant::now();
            put(
                cluster.node(follower),
                s,
                200 + i,
                &format!("/fwd-{i}"),
                b"x",
            )
            .await;
            fwd.push(t.elapsed());
        }
        lat.sort();
        fwd.sort();
        eprintln!(
            "cluster numbers: first leader after {elected:?}; write p50 {:?} p99 {:?} (leader), \
             p50 {:?} (forwarded by a follower)",
            lat[lat.len() / 2],
            lat[lat.len() * 99 / 100],
            fwd[fwd.len() / 2]
        );
        // Every follower sees the last write with a linearizable read.
        for node in cluster.live() {
            assert!(get(node, "/fwd-49").await.is_some(), "node {}", node.id());
        }
        cluster.shutdown().await;
    })
    .await;
}

/// Writes a follower's clients send at the same time (forwarded to the leader in shared
/// `ClientWrites` messages) each get their own answer: their own created path, and a refusal
/// for the one whose session the leader does not know, without failing the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writes_through_a_follower_each_get_their_own_answer() {
    bounded("forwarded batch test", Duration::from_secs(30), async {
        let cluster = Cluster::start("fwdbatch", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.node(cluster.follower_of(leader)).clone();
        // A session per writer: one session's concurrent requests could arrive out of
        // request-id order, which dedupe refuses as stale.
        let mut sessions = Vec::new();
        for _ in 1..=64 {
            sessions.push(session(&follower, 10_000).await);
        }
        sessions[32] = SessionId(u64::MAX);

        let writes: Vec<_> = (1..=64u64)
            .map(|i| {
                let node = follower.clone();
                let who = sessions[i as usize - 1];
                let path = format!("/fwd-{i}");
                tokio::spawn(async move {
                    let answer = node
                        .write(create(who, i, &path, b"x", CreateMode::Persistent))
                        .await;
                    (path, answer)
                })
            })
            .collect();
        for (i, w) in writes.into_iter().enumerate() {
            let (path, answer) = w.await.expect("write task");
            if i + 1 == 33 {
                // Refused by the leader's tracker or by the state machine; either way alone.
                let refused = match &answer {
                    Err(CoordError::SessionExpired) => true,
                    Ok(r) => r.error() == Some(vigil_coord::Error::SessionExpired),
                    Err(_) => false,
                };
                assert!(refused, "{path}: {answer:?}");
                continue;
            }
            match answer.expect("write") {
                Response::Op(OpResult::Created { path: got, .. }) => assert_eq!(got, path),
                other => panic!("{path}: unexpected {other:?}"),
            }
        }
        for node in cluster.live() {
            assert_eq!(get(node, "/fwd-64").await.as_deref(), Some(&b"x"[..]));
            assert_eq!(get(node, "/fwd-33").await, None, "node {}", node.id());
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_keeps_the_api_backend_contract() {
    use vigil_coord::api::{ApiError, Backend, BackendEvent, Consistency, MembershipChange, Role};

    bounded("backend test", Duration::from_secs(30), async {
        let cluster = Cluster::start("backend", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.node(cluster.follower_of(leader)).clone();
        let backend: &dyn Backend = &follower;
        let mut events = backend.subscribe_events();

        let s = session(&follower, 10_000).await;
        put(&follower, s, 1, "/api", b"v").await;
        let (data, stat) = backend
            .get(Consistency::Linearizable, "/api")
            .await
            .expect("get");
        assert_eq!(data, b"v");
        // The event stream carries every applied entry, the write's with its watch event.
        let zxid = loop {
            if let BackendEvent::Applied { index, events } = events.recv().await.expect("event")
                && events.iter().any(|e| e.path == "/api")
            {
                break index;
            }
        };
        // The write's zxid is its entry's index and its position in it (see `zxid`).
        assert_eq!(zxid, vigil_coord::zxid::index_of(stat.czxid));
        assert!(backend.applied_index() >= zxid);
        let subtree = backend
            .subtree(Consistency::Stale, "/", 10)
            .await
            .expect("subtree");
        assert_eq!(subtree, Some(vec!["/".to_owned(), "/api".to_owned()]));

        let status = backend.status().await.expect("status");
        assert_eq!(status.leader, Some(leader));
        assert_eq!(status.members.len(), 3);
        assert_eq!(
            status
                .members
                .iter()
                .filter(|m| m.role == Role::Leader)
                .count(),
            1
        );

        // Membership changes run on the leader; a follower names it.
        let err = backend
            .change_membership(MembershipChange::Remove { id: 3 })
            .await
            .expect_err("follower refuses membership changes");
        let leader_addr = cluster.addrs[&leader].to_string();
        assert_eq!(
            err,
            ApiError::NotLeader {
                leader: Some(leader_addr)
            }
        );
        cluster.shutdown().await;
    })
    .await;
}

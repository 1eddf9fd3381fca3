//! A session's ephemeral node across a leader change, then its expiry with a watch event.

use std::time::{Duration, Instant};

use vigil_coord::raft::SmEvent;
use vigil_coord::{CreateMode, EventKind};

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

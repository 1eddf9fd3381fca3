//! Losing the leader, and losing everyone: acknowledged writes survive both.

use std::time::{Duration, Instant};

use super::harness::{Cluster, bounded, get, put, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_leader_serves_writes_within_two_seconds_and_keeps_acknowledged_ones() {
    bounded("failover test", Duration::from_secs(30), async {
        let mut cluster = Cluster::start("failover", 3).await;
        let old = cluster.leader(Duration::from_secs(5)).await;
        let follower = cluster.follower_of(old);
        let s = session(cluster.node(follower), 20_000).await;
        for i in 0..20u64 {
            put(
                cluster.node(follower),
                s,
                i + 1,
                &format!("/before-{i}"),
                b"v",
            )
            .await;
        }

        let killed = Instant::now();
        cluster.stop(old).await;
        // The first write after the kill, through a survivor, must land within 2 s.
        put(cluster.node(follower), s, 100, "/after", b"new").await;
        let recovered = killed.elapsed();
        eprintln!("fail-over: write accepted {recovered:?} after the leader was stopped");
        assert!(recovered < Duration::from_secs(2), "took {recovered:?}");
        let new = cluster.leader(Duration::from_secs(2)).await;
        assert_ne!(new, old);

        for node in cluster.live() {
            for i in 0..20u64 {
                assert!(
                    get(node, &format!("/before-{i}")).await.is_some(),
                    "node {} lost /before-{i}",
                    node.id()
                );
            }
            assert_eq!(get(node, "/after").await.as_deref(), Some(&b"new"[..]));
        }

        // The old leader comes back as a follower and catches up.
        cluster.restart(old).await;
        put(cluster.node(new), s, 101, "/rejoined", b"r").await;
        assert_eq!(
            get(cluster.node(old), "/rejoined").await.as_deref(),
            Some(&b"r"[..])
        );
        cluster.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restart_from_disk_keeps_every_acknowledged_write() {
    bounded("restart test", Duration::from_secs(40), async {
        let mut cluster = Cluster::start("restart", 3).await;
        let leader = cluster.leader(Duration::from_secs(5)).await;
        let s = session(cluster.node(leader), 30_000).await;
        for i in 0..30u64 {
            put(
                cluster.node(leader),
                s,
                i + 1,
                &format!("/k{i}"),
                &i.to_be_bytes(),
            )
            .await;
        }
        // Part of the state goes into a snapshot, the rest stays in the log only.
        cluster
            .node(leader)
            .snapshot_and_purge()
            .await
            .expect("snapshot");
        for i in 30..40u64 {
            put(
                cluster.node(leader),
                s,
                i + 1,
                &format!("/k{i}"),
                &i.to_be_bytes(),
            )
            .await;
        }
        for id in 1..=3 {
            cluster.stop(id).await;
        }
        for id in 1..=3 {
            cluster.restart(id).await;
        }
        cluster.leader(Duration::from_secs(5)).await;
        for node in cluster.live() {
            for i in 0..40u64 {
                assert_eq!(
                    get(node, &format!("/k{i}")).await.as_deref(),
                    Some(&i.to_be_bytes()[..]),
                    "node {} lost /k{i}",
                    node.id()
                );
            }
            // The session survived too: the restart gave it a fresh timeout.
            assert!(node.read_stale(|sm| sm.session(s).is_some()));
        }
        cluster.shutdown().await;
    })
    .await;
}

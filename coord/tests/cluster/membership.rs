//! A fourth node joins as a learner by snapshot, is promoted, and a voter is removed.

use std::time::Duration;

use super::harness::{Cluster, bounded, get, put, session};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_catches_up_by_snapshot_is_promoted_and_a_voter_is_removed() {
    bounded("membership test", Duration::from_secs(40), async {
        let mut cluster = Cluster::start("members", 3).await;
        let leader_id = cluster.leader(Duration::from_secs(5)).await;
        let leader = cluster.node(leader_id).clone();
        let s = session(&leader, 30_000).await;
        for i in 0..50u64 {
            put(&leader, s, i + 1, &format!("/n{i}"), b"data").await;
        }
        // Compact the leader's log so the newcomer can only be served a snapshot.
        let upto = leader.snapshot_and_purge().await.expect("snapshot");
        let purged = leader.raft().metrics().borrow().purged.map(|l| l.index);
        assert!(purged.is_some_and(|p| p > 0), "log not purged: {purged:?}");

        let newcomer = cluster.spawn_extra(4).await;
        let addr = cluster.addrs[&4].to_string();
        leader.add_learner(4, &addr).await.expect("add learner");
        // The leader saw it caught up; the learner's own metrics follow a moment later.
        newcomer
            .raft()
            .wait(Some(Duration::from_secs(5)))
            .applied_index_at_least(Some(upto), "learner caught up")
            .await
            .expect("learner catches up");
        let status = newcomer.status();
        assert!(
            status.snapshot_index.is_some_and(|i| i >= upto),
            "no snapshot installed: {status:?}"
        );
        assert!(newcomer.read_stale(|sm| sm.tree().get("/n49").is_ok()));
        assert!(leader.status().learners.contains_key(&4));

        leader.promote(4).await.expect("promote");
        assert!(leader.status().voters.contains_key(&4));
        put(&leader, s, 100, "/after-promote", b"p").await;
        assert_eq!(
            get(&newcomer, "/after-promote").await.as_deref(),
            Some(&b"p"[..])
        );

        let victim = *cluster
            .nodes
            .keys()
            .find(|id| **id != leader_id && **id != 4)
            .expect("a voter to remove");
        leader.remove(victim).await.expect("remove voter");
        let status = leader.status();
        assert!(
            !status.voters.contains_key(&victim) && !status.learners.contains_key(&victim),
            "{status:?}"
        );
        cluster.stop(victim).await;
        // Three voters left (leader, the other original, 4): writes still commit.
        put(&leader, s, 101, "/after-remove", b"r").await;
        assert_eq!(
            get(&newcomer, "/after-remove").await.as_deref(),
            Some(&b"r"[..])
        );
        cluster.shutdown().await;
    })
    .await;
}

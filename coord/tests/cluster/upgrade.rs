//! A rolling upgrade: followers of this version under a leader of an older one, which does not
//! know the batched `ClientWrites` peer message. The follower's batch is refused and its
//! clients' writes still go through, one `ClientWrite` each, and each is applied once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use vigil_coord::raft::network::{PeerClient, PeerHandler, PeerRequest, PeerResponse, serve};
use vigil_coord::request::{Command, Op, Request};

use super::harness::{Cluster, bounded, get, session};

/// Stands in front of a node's peer server like an older version of it: `ClientWrites` is
/// answered `Refused`, as an older peer server answers a request kind it cannot decode, and
/// every other request is passed to the node.
struct OlderVersion {
    node: PeerClient,
    refused_batches: AtomicU64,
    single_writes: AtomicU64,
}

impl PeerHandler for OlderVersion {
    async fn handle(&self, request: PeerRequest) -> PeerResponse {
        match request {
            PeerRequest::ClientWrites(_) => {
                self.refused_batches.fetch_add(1, Ordering::Relaxed);
                PeerResponse::Refused("unknown request kind".to_owned())
            }
            other => {
                if matches!(other, PeerRequest::ClientWrite(_)) {
                    self.single_writes.fetch_add(1, Ordering::Relaxed);
                }
                self.node
                    .call(other, Duration::from_secs(5))
                    .await
                    .unwrap_or_else(|e| PeerResponse::Refused(e.to_string()))
            }
        }
    }
}

/// An [`OlderVersion`] of the node at `node` on a port of its own, until `stop` is dropped.
async fn older_version(node: SocketAddr) -> (SocketAddr, Arc<OlderVersion>, oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let handler = Arc::new(OlderVersion {
        node: PeerClient::new(node.to_string(), None),
        refused_batches: AtomicU64::new(0),
        single_writes: AtomicU64::new(0),
    });
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(serve(listener, Arc::clone(&handler), None, async {
        let _ = stopped.await;
    }));
    (addr, handler, stop)
}

fn set(session: vigil_coord::session::SessionId, request_id: u64, data: &[u8]) -> Command {
    Command::Write {
        session,
        request_id,
        request: Request::Single(Op::SetData {
            path: "/upgraded".into(),
            data: data.to_vec(),
            version: None,
        }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follower_falls_back_to_single_writes_when_the_leader_refuses_batches() {
    bounded("rolling upgrade test", Duration::from_secs(30), async {
        // Every node is reached by its peers through an older-version front, so whichever
        // node leads looks old to the followers that forward to it.
        let mut cluster = Cluster::bind("upgrade", 3).await;
        let mut fronts = std::collections::BTreeMap::new();
        let mut stops = Vec::new();
        for (&id, &addr) in &cluster.addrs {
            let (front, handler, stop) = older_version(addr).await;
            fronts.insert(id, (front, handler));
            stops.push(stop);
        }
        let advertised: std::collections::BTreeMap<u64, String> = fronts
            .iter()
            .map(|(id, (front, _))| (*id, front.to_string()))
            .collect();
        cluster.retune(move |_, c| c.initial_members.clone_from(&advertised));
        cluster.launch().await;

        let leader = cluster.leader(Duration::from_secs(10)).await;
        let follower = cluster.node(cluster.follower_of(leader)).clone();
        // Creating the session is a forwarded write already.
        let who = session(&follower, 10_000).await;
        let created = follower
            .write(super::harness::create(
                who,
                1,
                "/upgraded",
                b"0",
                vigil_coord::request::CreateMode::Persistent,
            ))
            .await
            .expect("create through the follower");
        assert_eq!(created.error(), None, "{created:?}");
        for i in 2..=21u64 {
            let answer = follower
                .write(set(who, i, format!("{i}").as_bytes()))
                .await
                .expect("set through the follower");
            assert_eq!(answer.error(), None, "write {i}: {answer:?}");
        }

        let (_, front) = &fronts[&leader];
        let refused = front.refused_batches.load(Ordering::Relaxed);
        let singles = front.single_writes.load(Ordering::Relaxed);
        assert!(refused >= 1, "the follower never tried a batch");
        assert!(
            refused <= 2,
            "the refusal was not remembered: {refused} batches refused"
        );
        assert!(
            singles >= 22,
            "{singles} single writes reached the leader for the session and 21 writes"
        );
        // Each set applied once: 20 sets after the create make version 20.
        let version = cluster
            .node(leader)
            .read_linearizable(|sm| sm.tree().get("/upgraded").ok().map(|(_, s)| s.version))
            .await
            .expect("read");
        assert_eq!(version, Some(20));
        for node in cluster.live() {
            assert_eq!(get(node, "/upgraded").await.as_deref(), Some(&b"21"[..]));
        }
        cluster.shutdown().await;
        drop(stops);
    })
    .await;
}

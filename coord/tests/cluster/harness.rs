//! A cluster of `CoordNode`s on 127.0.0.1 with ephemeral ports and scratch data directories.

use std::collections::BTreeMap;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use vigil_coord::node::{CoordConfig, CoordNode, Role};
use vigil_coord::request::{Command, CreateMode, Op, Request, Response};
use vigil_coord::session::{SessionConfig, SessionId};

/// A directory under Cargo's per-target scratch space, removed on drop.
#[derive(Debug)]
pub(super) struct TempDir(PathBuf);

impl TempDir {
    pub(super) fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("cluster-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create test directory");
        Self(path)
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Fast timings so fail-over tests finish in seconds.
pub(super) fn config(id: u64, addr: SocketAddr, dir: &Path) -> CoordConfig {
    let mut c = CoordConfig::new(id, addr, dir);
    c.heartbeat_interval = Duration::from_millis(50);
    c.election_timeout_min = Duration::from_millis(200);
    c.election_timeout_max = Duration::from_millis(400);
    c.request_timeout = Duration::from_secs(3);
    c.sessions = SessionConfig {
        min_timeout_ms: 500,
        max_timeout_ms: 30_000,
    };
    c.reap_interval = Duration::from_millis(200);
    c
}

/// Adjusts a node's config (id, config) at every start and restart.
type Tune = Box<dyn Fn(u64, &mut CoordConfig) + Send + Sync>;

pub(super) struct Cluster {
    pub(super) nodes: BTreeMap<u64, Option<CoordNode>>,
    /// Where each node's peer server listens.
    pub(super) addrs: BTreeMap<u64, SocketAddr>,
    dirs: BTreeMap<u64, TempDir>,
    /// Bound by [`Cluster::bind`], taken by [`Cluster::launch`].
    listeners: BTreeMap<u64, TcpListener>,
    tune: Tune,
}

impl Cluster {
    /// Starts voters `1..=n` of a new cluster.
    pub(super) async fn start(tag: &str, n: u64) -> Cluster {
        Cluster::start_with(tag, n, |_, _| {}).await
    }

    /// Like [`Cluster::start`], with `tune` adjusting each node's config (id, config).
    pub(super) async fn start_with(
        tag: &str,
        n: u64,
        tune: impl Fn(u64, &mut CoordConfig) + Send + Sync + 'static,
    ) -> Cluster {
        let mut cluster = Cluster::bind(tag, n).await;
        cluster.retune(tune);
        cluster.launch().await;
        cluster
    }

    /// Binds the peer ports of voters `1..=n` and creates their data directories without
    /// starting anything, so that the addresses are known before any node runs.
    pub(super) async fn bind(tag: &str, n: u64) -> Cluster {
        let mut listeners = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            listeners.insert(id, l);
        }
        let addrs = listeners
            .iter()
            .map(|(id, l)| (*id, l.local_addr().expect("local addr")))
            .collect();
        let dirs = (1..=n)
            .map(|id| (id, TempDir::new(&format!("{tag}-{id}"))))
            .collect();
        Cluster {
            nodes: BTreeMap::new(),
            addrs,
            dirs,
            listeners,
            tune: Box::new(|_, _| {}),
        }
    }

    /// Sets how [`Cluster::config`] adjusts each node's config from now on (restarts too).
    pub(super) fn retune(&mut self, tune: impl Fn(u64, &mut CoordConfig) + Send + Sync + 'static) {
        self.tune = Box::new(tune);
    }

    /// Starts every node bound by [`Cluster::bind`].
    pub(super) async fn launch(&mut self) {
        for (id, listener) in std::mem::take(&mut self.listeners) {
            let node = CoordNode::start_on(self.config(id), listener)
                .await
                .expect("start node");
            self.nodes.insert(id, Some(node));
        }
    }

    pub(super) fn config(&self, id: u64) -> CoordConfig {
        let mut c = config(id, self.addrs[&id], self.dirs[&id].path());
        c.initial_members = self
            .addrs
            .iter()
            .filter(|(id, _)| **id <= 3)
            .map(|(id, a)| (*id, a.to_string()))
            .collect();
        (self.tune)(id, &mut c);
        c
    }

    /// Adds a node that is not a member yet (no initial members).
    pub(super) async fn spawn_extra(&mut self, id: u64) -> CoordNode {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("local addr");
        self.addrs.insert(id, addr);
        self.dirs.insert(id, TempDir::new(&format!("extra-{id}")));
        let c = config(id, addr, self.dirs[&id].path());
        let node = CoordNode::start_on(c, listener).await.expect("start node");
        self.nodes.insert(id, Some(node.clone()));
        node
    }

    pub(super) fn node(&self, id: u64) -> &CoordNode {
        self.nodes[&id].as_ref().expect("node is running")
    }

    pub(super) fn live(&self) -> impl Iterator<Item = &CoordNode> {
        self.nodes.values().flatten()
    }

    /// Waits until every live voter agrees on one leader that says it leads.
    pub(super) async fn leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let statuses: Vec<_> = self.live().map(CoordNode::status).collect();
            let leaders: Vec<u64> = statuses
                .iter()
                .filter(|s| s.role == Role::Leader)
                .map(|s| s.id)
                .collect();
            if let [leader] = leaders[..]
                && statuses
                    .iter()
                    .filter(|s| s.voters.contains_key(&s.id))
                    .all(|s| s.leader == Some(leader))
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {within:?}: {statuses:#?}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(super) fn follower_of(&self, leader: u64) -> u64 {
        *self
            .nodes
            .iter()
            .find(|(id, n)| **id != leader && n.is_some())
            .expect("a follower")
            .0
    }

    pub(super) async fn stop(&mut self, id: u64) {
        if let Some(node) = self.nodes.get_mut(&id).and_then(Option::take) {
            node.shutdown().await.expect("shutdown");
        }
    }

    pub(super) async fn restart(&mut self, id: u64) {
        let listener = TcpListener::bind(self.addrs[&id]).await.expect("rebind");
        let node = CoordNode::start_on(self.config(id), listener)
            .await
            .expect("restart node");
        self.nodes.insert(id, Some(node));
    }

    pub(super) async fn shutdown(mut self) {
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }
}

pub(super) async fn session(node: &CoordNode, timeout_ms: u32) -> SessionId {
    node.create_session(timeout_ms)
        .await
        .expect("create session")
        .0
}

pub(super) fn create(
    session: SessionId,
    request_id: u64,
    path: &str,
    data: &[u8],
    mode: CreateMode,
) -> Command {
    Command::Write {
        session,
        request_id,
        request: Request::Single(Op::Create {
            path: path.into(),
            data: data.to_vec(),
            mode,
            sequential: false,
        }),
    }
}

/// Writes a persistent node and checks the write succeeded.
pub(super) async fn put(
    node: &CoordNode,
    session: SessionId,
    request_id: u64,
    path: &str,
    data: &[u8],
) {
    let response = node
        .write(create(
            session,
            request_id,
            path,
            data,
            CreateMode::Persistent,
        ))
        .await
        .expect("write");
    assert!(matches!(response, Response::Op(_)), "{path}: {response:?}");
    assert_eq!(response.error(), None, "{path}");
}

/// The data of `path` as `node` sees it after a linearizable sync.
pub(super) async fn get(node: &CoordNode, path: &str) -> Option<Vec<u8>> {
    node.read_linearizable(|sm| sm.tree().get(path).ok().map(|(d, _)| d.to_vec()))
        .await
        .expect("linearizable read")
}

/// Fails the test instead of hanging it.
pub(super) async fn bounded<T>(what: &str, limit: Duration, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(limit, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {limit:?}"))
}

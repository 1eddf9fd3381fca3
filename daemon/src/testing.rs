//! Test support shared by the daemon's unit tests: a scratch directory and a single-voter
//! coordination node on loopback.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;
use vigil_coord::node::{CoordConfig, CoordNode};

/// A fresh directory under the system temp dir, removed on drop.
pub(crate) struct Dir(pub(crate) PathBuf);

impl Dir {
    /// `<tmp>/vigil-<what>-<pid>-<n>`, emptied first.
    pub(crate) fn new(what: &str) -> Dir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("vigil-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("temp dir");
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A one-voter coordination cluster in `dir`, with short Raft timings.
pub(crate) async fn single_node(dir: &Dir) -> CoordNode {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut config = CoordConfig::new(1, addr, &dir.0);
    config.initial_members = BTreeMap::from([(1, addr.to_string())]);
    config.heartbeat_interval = Duration::from_millis(50);
    config.election_timeout_min = Duration::from_millis(200);
    config.election_timeout_max = Duration::from_millis(400);
    CoordNode::start_on(config, listener)
        .await
        .expect("start node")
}

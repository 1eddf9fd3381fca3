//! The benchmark [`Client`] over vigil's typed `/v1` client (`vigil_coord::client`).
//!
//! One bench client is one `vigil_coord::client::Client` bound to a single member (no
//! failover, like the ZooKeeper and etcd clients), so it has its own HTTP connection pool.
//! Writes need a session; it is opened on the first write, so the 1,000 watchers and the
//! readers do not each add a session to the replicated state.

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::{sync::OnceCell, sync::mpsc, task::JoinHandle};
use vigil_coord::{
    Error as TreeError, WatchKind,
    client::{ClientConfig, ClientError, CreateOptions, Session, WatchNotice},
};

use crate::{
    error::{BenchError, Result},
    target::{Client, Notification},
};

/// Session timeout of bench clients: long enough to survive a slow phase, short enough that
/// one left behind by a failed phase does not outlive the run by much.
const SESSION_TIMEOUT_MS: u32 = 10_000;

fn err(op: &'static str) -> impl FnOnce(ClientError) -> BenchError {
    move |e| BenchError::Vigil {
        op,
        detail: e.to_string(),
    }
}

/// One client of one vigil member.
pub struct VigilClient {
    client: vigil_coord::client::Client,
    session: OnceCell<Session>,
    watches: Mutex<Vec<JoinHandle<()>>>,
}

impl VigilClient {
    /// A client of the member whose API listens on `addr` (`host:port`); connects lazily.
    pub fn new(addr: &str) -> Result<Self> {
        let mut config = ClientConfig::new([addr]);
        config.request_timeout = Duration::from_secs(10);
        Ok(Self {
            client: vigil_coord::client::Client::new(config).map_err(err("client"))?,
            session: OnceCell::new(),
            watches: Mutex::new(Vec::new()),
        })
    }

    async fn session(&self) -> Result<&Session> {
        self.session
            .get_or_try_init(|| self.client.session(SESSION_TIMEOUT_MS))
            .await
            .map_err(err("create session"))
    }
}

#[async_trait]
impl Client for VigilClient {
    async fn ensure(&self, key: &str, value: &[u8]) -> Result<()> {
        match self
            .session()
            .await?
            .create(key, value, CreateOptions::PERSISTENT)
            .await
        {
            Err(e) if !e.is(TreeError::NodeExists) => Err(err("create")(e)),
            _ => Ok(()),
        }
    }

    async fn write(&self, key: &str, value: &[u8]) -> Result<()> {
        self.session()
            .await?
            .set(key, value, None)
            .await
            .map(drop)
            .map_err(err("set"))
    }

    async fn read_linearizable(&self, key: &str) -> Result<Vec<u8>> {
        self.client
            .get(key)
            .await
            .map(|n| n.data)
            .map_err(err("get"))
    }

    async fn watch(&self, key: &str, sink: mpsc::UnboundedSender<Notification>) -> Result<()> {
        // Persistent, like etcd's watches: no re-arming between events. `watch` returns once
        // the server has registered it.
        let mut watcher = self
            .client
            .watch(key, WatchKind::Persistent)
            .await
            .map_err(err("watch"))?;
        let key = key.to_owned();
        let task = tokio::spawn(async move {
            while let Ok(Some(notice)) = watcher.next().await {
                let at = tokio::time::Instant::now();
                if matches!(notice, WatchNotice::Event(_))
                    && sink
                        .send(Notification {
                            key: key.clone(),
                            at,
                        })
                        .is_err()
                {
                    return;
                }
            }
        });
        self.watches
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        match self.session.get() {
            Some(s) => s.close().await.map_err(err("close session")),
            None => Ok(()),
        }
    }
}

impl Drop for VigilClient {
    fn drop(&mut self) {
        for t in self
            .watches
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            t.abort();
        }
    }
}

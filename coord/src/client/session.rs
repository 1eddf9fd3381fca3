//! [`Session`]: writes under a session, numbered for safe retries, kept alive in the background.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::http::Method;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::http::path_tail;
use super::{Client, ClientError};
use crate::api::wire::{
    CreateJson, DataJson, MultiJson, MultiResultJson, OpJson, OpResultJson, REQUEST_ID_HEADER,
    SESSION_HEADER, SetJson, WriteJson,
};
use crate::error::Error;
use crate::session::SessionId;
use crate::tree::Stat;

/// Where a session stands, as its keeper last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// The last heartbeat succeeded.
    Alive,
    /// Heartbeats fail to reach any server; the session may still be alive on the servers.
    Disconnected,
    /// The servers say the session is gone: its ephemerals (locks, leadership) are gone too.
    Expired,
}

/// Flags of a create.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// Deleted with the session.
    pub ephemeral: bool,
    /// Append a 10-digit sequence number.
    pub sequential: bool,
    /// Removed once its last child is gone.
    pub container: bool,
    /// Removed when childless and unmodified for this long (ms).
    pub ttl_ms: Option<u64>,
}

impl CreateOptions {
    /// A persistent node.
    pub const PERSISTENT: CreateOptions = CreateOptions {
        ephemeral: false,
        sequential: false,
        container: false,
        ttl_ms: None,
    };
    /// An ephemeral sequential node (the building block of locks and elections).
    pub const EPHEMERAL_SEQUENTIAL: CreateOptions = CreateOptions {
        ephemeral: true,
        sequential: true,
        container: false,
        ttl_ms: None,
    };
}

/// An open session. Cheap to clone; heartbeats stop when the last clone is dropped (the
/// session then expires on the servers after its timeout) or on [`Session::close`].
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    id: SessionId,
    timeout_ms: u32,
    next_request: AtomicU64,
    state: watch::Receiver<SessionState>,
    keeper: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_keeper();
    }
}

impl Inner {
    fn stop_keeper(&self) {
        if let Ok(mut keeper) = self.keeper.lock()
            && let Some(task) = keeper.take()
        {
            task.abort();
        }
    }
}

impl Session {
    pub(crate) async fn open(client: Client, timeout_ms: u32) -> Result<Session, ClientError> {
        let granted = client.create_session(timeout_ms).await?;
        let id = SessionId(granted.session);
        let (tx, rx) = watch::channel(SessionState::Alive);
        let keeper = tokio::spawn(keep_alive(client.clone(), id, granted.timeout_ms, tx));
        Ok(Session {
            inner: Arc::new(Inner {
                client,
                id,
                timeout_ms: granted.timeout_ms,
                next_request: AtomicU64::new(1),
                state: rx,
                keeper: std::sync::Mutex::new(Some(keeper)),
            }),
        })
    }

    /// The session id.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// The negotiated timeout.
    pub fn timeout_ms(&self) -> u32 {
        self.inner.timeout_ms
    }

    /// The client this session writes through.
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// Changes of the session's state; `Expired` is final.
    pub fn state(&self) -> watch::Receiver<SessionState> {
        self.inner.state.clone()
    }

    /// Stops heartbeating without closing, as a crashed process would: the servers expire the
    /// session after its timeout and delete its ephemerals.
    pub fn abandon(&self) {
        self.inner.stop_keeper();
    }

    /// Closes the session; its ephemerals are deleted. Closing an already expired session is
    /// not an error.
    pub async fn close(&self) -> Result<(), ClientError> {
        self.inner.stop_keeper();
        match self.inner.client.close_session(self.inner.id).await {
            Err(e) if e.is(Error::SessionExpired) => Ok(()),
            other => other,
        }
    }

    fn write_headers(&self) -> [(&'static str, String); 2] {
        let request_id = self.inner.next_request.fetch_add(1, Ordering::Relaxed);
        [
            (SESSION_HEADER, self.inner.id.0.to_string()),
            (REQUEST_ID_HEADER, request_id.to_string()),
        ]
    }

    /// Creates `path`; returns the actual path (with the sequence suffix) and its stat.
    pub async fn create(
        &self,
        path: &str,
        data: &[u8],
        options: CreateOptions,
    ) -> Result<(String, Stat), ClientError> {
        let body = CreateJson {
            data: DataJson::bytes(data),
            ephemeral: options.ephemeral,
            sequential: options.sequential,
            container: options.container,
            ttl_ms: options.ttl_ms,
        };
        let uri = format!("/v1/nodes{}", path_tail(path));
        let w: WriteJson = self
            .inner
            .client
            .transport()
            .call(Method::PUT, &uri, &self.write_headers(), Some(&body))
            .await?;
        let stat = w
            .stat
            .ok_or_else(|| ClientError::Protocol("create returned no stat".into()))?;
        Ok((w.path, stat))
    }

    /// Creates `path` and any missing ancestors as persistent nodes; an existing node is fine.
    pub async fn ensure_path(&self, path: &str) -> Result<(), ClientError> {
        let mut at = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            at.push('/');
            at.push_str(part);
            match self.create(&at, &[], CreateOptions::PERSISTENT).await {
                Ok(_) => {}
                Err(e) if e.is(Error::NodeExists) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Replaces the data of `path` (if its version is `version`, when given).
    pub async fn set(
        &self,
        path: &str,
        data: &[u8],
        version: Option<i32>,
    ) -> Result<Stat, ClientError> {
        let body = SetJson {
            data: DataJson::bytes(data),
            version,
        };
        let uri = format!("/v1/nodes{}", path_tail(path));
        let w: WriteJson = self
            .inner
            .client
            .transport()
            .call(Method::POST, &uri, &self.write_headers(), Some(&body))
            .await?;
        w.stat
            .ok_or_else(|| ClientError::Protocol("set returned no stat".into()))
    }

    /// Deletes the childless node `path` (if its version is `version`, when given).
    pub async fn delete(&self, path: &str, version: Option<i32>) -> Result<(), ClientError> {
        let query = version.map(|v| format!("?version={v}")).unwrap_or_default();
        self.delete_uri(&format!("/v1/nodes{}{query}", path_tail(path)))
            .await
    }

    /// Deletes `path` and its whole subtree atomically (bounded by the server's limit).
    pub async fn delete_recursive(&self, path: &str) -> Result<(), ClientError> {
        self.delete_uri(&format!("/v1/nodes{}?recursive=true", path_tail(path)))
            .await
    }

    async fn delete_uri(&self, uri: &str) -> Result<(), ClientError> {
        self.inner
            .client
            .transport()
            .call::<WriteJson>(Method::DELETE, uri, &self.write_headers(), None::<&()>)
            .await
            .map(drop)
    }

    /// Applies `ops` atomically. On failure the error's body carries every op's result.
    pub async fn multi(&self, ops: Vec<OpJson>) -> Result<Vec<OpResultJson>, ClientError> {
        let body = MultiJson { ops };
        let r: MultiResultJson = self
            .inner
            .client
            .transport()
            .call(
                Method::POST,
                "/v1/multi",
                &self.write_headers(),
                Some(&body),
            )
            .await?;
        Ok(r.results)
    }

    /// ZooKeeper's `sync`: returns once the serving node has applied every earlier write.
    pub async fn sync(&self) -> Result<(), ClientError> {
        self.inner
            .client
            .transport()
            .call::<serde_json::Value>(Method::POST, "/v1/sync", &self.write_headers(), None::<&()>)
            .await
            .map(drop)
    }
}

/// Heartbeats every third of the timeout, so two may be lost before the session is at risk.
async fn keep_alive(
    client: Client,
    id: SessionId,
    timeout_ms: u32,
    tx: watch::Sender<SessionState>,
) {
    let period = Duration::from_millis(u64::from(timeout_ms / 3).max(2));
    loop {
        tokio::time::sleep(period).await;
        // An unresponsive server gets a fraction of the period, so that the next one is tried
        // while the session is still alive.
        match client.heartbeat_within(id, period / 2).await {
            Ok(()) => {
                tx.send_replace(SessionState::Alive);
            }
            Err(e) if e.is(Error::SessionExpired) => {
                tx.send_replace(SessionState::Expired);
                return;
            }
            Err(_) => {
                tx.send_replace(SessionState::Disconnected);
            }
        }
    }
}

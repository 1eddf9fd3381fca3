//! A typed async client for the `/v1` API.
//!
//! [`Client`] does reads, cluster calls and watches; writes go through a [`Session`], which
//! numbers them (request ids), keeps the session alive in the background and reports its loss.
//! Every call fails over between the configured servers; writes are retried with the same
//! request id, so a retry never applies twice.
//!
//! # Layout
//!
//! - `http`: [`ClientConfig`] and the failover transport (hyper).
//! - `session`: [`Session`], its keeper task and [`SessionState`].
//! - `watch`: [`Watcher`], the NDJSON consumer that resumes from the last zxid it saw;
//!   `stream`: the connection of its own each watch stream reads in its own task.
//! - `error`: [`ClientError`].

mod error;
mod http;
mod session;
mod stream;
mod watch;

use std::sync::Arc;

use axum::http::Method;

pub use self::error::ClientError;
pub use self::http::ClientConfig;
use self::http::{Transport, path_tail};
pub use self::session::{CreateOptions, Session, SessionState};
pub use self::watch::{WatchNotice, Watcher};
use crate::api::wire::{ChildrenJson, NodeJson, SessionJson, StatJson};
use crate::api::{ClusterStatus, Consistency, MembershipChange};
use crate::session::{Liveness, SessionId};
use crate::tree::Stat;
use crate::watch::WatchKind;

/// A node as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Its data.
    pub data: Vec<u8>,
    /// Its stat.
    pub stat: Stat,
}

/// A handle on the servers. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
}

const NO_BODY: Option<&()> = None;

fn consistency_query(c: Consistency) -> &'static str {
    match c {
        Consistency::Linearizable => "",
        Consistency::Stale => "?consistency=stale",
    }
}

impl Client {
    /// A client for `config.servers`; connects lazily.
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        Ok(Client {
            transport: Transport::new(config)?,
        })
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Opens a session and starts its keeper (see [`Session`]).
    pub async fn session(&self, timeout_ms: u32) -> Result<Session, ClientError> {
        Session::open(self.clone(), timeout_ms).await
    }

    /// `POST /v1/sessions` without a keeper: the caller heartbeats. Session creation has no
    /// request id: if a response is lost and the call retried, the first session is orphaned
    /// and expires after its timeout.
    pub async fn create_session(&self, timeout_ms: u32) -> Result<SessionJson, ClientError> {
        self.create_session_with(timeout_ms, Liveness::Heartbeat)
            .await
    }

    /// Like [`Client::create_session`] with a chosen [`Liveness`]. A
    /// [`Liveness::CommittedWrites`] session is kept alive by the caller's writes (a session-bound
    /// `sync` will do), never by heartbeats.
    pub async fn create_session_with(
        &self,
        timeout_ms: u32,
        liveness: Liveness,
    ) -> Result<SessionJson, ClientError> {
        let body = crate::api::wire::CreateSessionJson {
            timeout_ms,
            liveness,
        };
        self.transport
            .call(Method::POST, "/v1/sessions", &[], Some(&body))
            .await
    }

    /// Keeps `session` alive for another timeout.
    pub async fn heartbeat(&self, session: SessionId) -> Result<(), ClientError> {
        self.heartbeat_within(session, self.transport.config.request_timeout)
            .await
    }

    /// A heartbeat giving each server at most `attempt_timeout`.
    pub(crate) async fn heartbeat_within(
        &self,
        session: SessionId,
        attempt_timeout: std::time::Duration,
    ) -> Result<(), ClientError> {
        let uri = format!("/v1/sessions/{}/heartbeat", session.0);
        self.transport
            .call_within::<()>(Method::POST, &uri, &[], NO_BODY, attempt_timeout)
            .await
    }

    /// Closes `session`; its ephemerals are deleted.
    pub async fn close_session(&self, session: SessionId) -> Result<(), ClientError> {
        let uri = format!("/v1/sessions/{}", session.0);
        self.transport
            .call::<()>(Method::DELETE, &uri, &[], NO_BODY)
            .await
    }

    /// Data and stat of `path` (linearizable).
    pub async fn get(&self, path: &str) -> Result<Node, ClientError> {
        self.get_with(path, Consistency::Linearizable).await
    }

    /// Data and stat of `path` at the given consistency.
    pub async fn get_with(&self, path: &str, c: Consistency) -> Result<Node, ClientError> {
        let uri = format!("/v1/nodes{}{}", path_tail(path), consistency_query(c));
        let node: NodeJson = self.transport.call(Method::GET, &uri, &[], NO_BODY).await?;
        let data = node
            .bytes()
            .map_err(|e| ClientError::Protocol(e.to_string()))?;
        Ok(Node {
            data,
            stat: node.stat,
        })
    }

    /// Sorted child names of `path` and its stat.
    pub async fn children(&self, path: &str) -> Result<(Vec<String>, Stat), ClientError> {
        let uri = format!("/v1/children{}", path_tail(path));
        let c: ChildrenJson = self.transport.call(Method::GET, &uri, &[], NO_BODY).await?;
        Ok((c.children, c.stat))
    }

    /// Stat of `path`, `None` if it does not exist.
    pub async fn stat(&self, path: &str) -> Result<Option<Stat>, ClientError> {
        let uri = format!("/v1/stat{}", path_tail(path));
        let s: StatJson = self.transport.call(Method::GET, &uri, &[], NO_BODY).await?;
        Ok(s.stat)
    }

    /// Watches `path`. Returns once the server has acknowledged the registration, so a read
    /// made afterwards cannot miss a change (the change is either in the read or notified).
    pub async fn watch(&self, path: &str, kind: WatchKind) -> Result<Watcher, ClientError> {
        Watcher::open(self.clone(), path.to_owned(), kind, None).await
    }

    /// Like [`Client::watch`], resuming after `last_zxid`: missed events are replayed, or a
    /// [`WatchNotice::ResyncNeeded`] comes first.
    pub async fn watch_from(
        &self,
        path: &str,
        kind: WatchKind,
        last_zxid: u64,
    ) -> Result<Watcher, ClientError> {
        Watcher::open(self.clone(), path.to_owned(), kind, Some(last_zxid)).await
    }

    /// The cluster as the answering server sees it.
    pub async fn cluster_status(&self) -> Result<ClusterStatus, ClientError> {
        self.transport
            .call(Method::GET, "/v1/cluster", &[], NO_BODY)
            .await
    }

    /// Adds a learner, promotes or removes a member.
    pub async fn change_membership(
        &self,
        change: &MembershipChange,
    ) -> Result<ClusterStatus, ClientError> {
        self.transport
            .call(Method::POST, "/v1/cluster/members", &[], Some(change))
            .await
    }
}

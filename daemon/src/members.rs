//! Cluster membership in the coordination tree: every node publishes what it is doing, so that
//! `vigilctl status` on any node shows the whole cluster — including the nodes that are down.
//!
//! # Tree layout
//!
//! - `/vigil/members/<node>`: **ephemeral**, in this node's own session. It exists exactly while
//!   the quorum considers the node alive; its data is the node's [`NodeRecord`] (JSON).
//! - `/vigil/nodes/<node>`: **persistent**, the same record. It outlives the node, so a node that
//!   is down is still listed, with its last known state; its `mtime` (the leader's clock) says
//!   when it was last heard of. It is rewritten on every change and at least every
//!   [`REFRESH`], so "last seen" is never older than that before the node went down.
//!
//! The publisher talks to its own node's client API like any application would, with the
//! client's session keeper: cut off from the quorum, the session expires and the node shows as
//! down everywhere else, which is the truth as far as the cluster is concerned.
//!
//! A node name is unique in a cluster (`[global] node_name`). At start an ephemeral record of
//! the same name still held by a session of this node's previous run (restarted within the
//! session timeout) is replaced rather than waited for.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigil_coord::Error as TreeError;
use vigil_coord::api::wire::{DataJson, OpJson, SetJson};
use vigil_coord::client::{
    Client, ClientConfig, ClientError, CreateOptions, Session, SessionState,
};

use crate::lb::LbRuntime;
use crate::lb::status::LbSummary;
use crate::vrrp::VrrpView;

/// Parent of the ephemeral liveness records.
pub const MEMBERS: &str = "/vigil/members";
/// Parent of the persistent last-known records.
pub const NODES: &str = "/vigil/nodes";
/// The longest a published record goes without a rewrite.
pub const REFRESH: Duration = Duration::from_secs(30);
/// How often the local state is compared with what was published.
const POLL: Duration = Duration::from_secs(1);
/// Pause before reconnecting after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// What a node publishes about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// `[global] node_name`.
    pub node: String,
    /// `[cluster] node_id`.
    pub node_id: u64,
    /// vigild's version.
    pub version: String,
    /// A coordination-only witness.
    pub witness: bool,
    /// Every VRRP instance, sorted by name.
    pub vrrp: Vec<VrrpSummary>,
    /// The load balancer's counts, when it runs virtual servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lvs: Option<LbSummary>,
}

/// One VRRP instance as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpSummary {
    /// Instance name.
    pub instance: String,
    /// `initialize`, `backup`, `master` or `fault`.
    pub state: String,
    /// Configured priority.
    pub priority: u8,
    /// Priority after tracking.
    pub effective_priority: u8,
    /// Whether this node holds the VIPs now.
    pub holding: bool,
    /// The fencing token the VIPs are held under (quorum fencing only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<u64>,
}

/// One node as `vigilctl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    /// Node name.
    pub node: String,
    /// Its ephemeral record exists: the quorum sees its session alive.
    pub up: bool,
    /// Unix milliseconds (the leader's clock) of its last published change or refresh.
    pub last_seen_unix_ms: u64,
    /// Its last published record (unreadable data is shown as missing, not as an error).
    pub record: Option<NodeRecord>,
}

/// Where the publisher finds this node's state and the coordination API.
#[derive(Debug, Clone)]
pub struct Publisher {
    /// This node's identity (its VRRP and LVS parts are filled in from the views).
    pub identity: NodeRecord,
    /// The coordination client API of this node (`[cluster] client_listen`).
    pub api: String,
    /// Bearer token of the API, if one is configured.
    pub token: Option<String>,
    /// Session timeout to ask for.
    pub session_timeout: Duration,
    /// VRRP instances (absent on a witness).
    pub vrrp: Option<VrrpView>,
    /// The load balancer (absent on a witness).
    pub lb: Option<LbRuntime>,
}

impl Publisher {
    /// Publishes until the task is aborted.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move { self.run().await })
    }

    async fn run(self) {
        let mut config = ClientConfig::new([self.api.clone()]);
        config.token.clone_from(&self.token);
        let client = match Client::new(config) {
            Ok(c) => c,
            Err(error) => {
                tracing::error!(%error, "membership: cannot build the coordination client");
                return;
            }
        };
        let timeout_ms = u32::try_from(self.session_timeout.as_millis()).unwrap_or(u32::MAX);
        let mut failures = 0u32;
        loop {
            match self.publish(&client, timeout_ms).await {
                Ok(()) => failures = 0,
                Err(error) => {
                    failures += 1;
                    // Expected while the quorum forms or is unreachable: say it once, then
                    // every minute.
                    if failures == 1 || failures.is_multiple_of(60) {
                        tracing::warn!(%error, "membership: cannot publish this node's record; retrying");
                    }
                }
            }
            tokio::time::sleep(RETRY).await;
        }
    }

    /// One session's life: register, then keep the record current until the session ends.
    async fn publish(&self, client: &Client, timeout_ms: u32) -> Result<(), ClientError> {
        let session = client.session(timeout_ms).await?;
        session.ensure_path(MEMBERS).await?;
        session.ensure_path(NODES).await?;
        let member = format!("{MEMBERS}/{}", self.identity.node);
        let node = format!("{NODES}/{}", self.identity.node);
        let mut record = self.record().await;
        let data = to_json(&record);
        register(&session, &member, &data).await?;
        upsert(&session, &node, &data).await?;
        tracing::info!(node = %self.identity.node, "membership: registered in {MEMBERS}");
        let mut state = session.state();
        let mut since_write = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = tokio::time::sleep(POLL) => {}
                Ok(()) = state.changed() => {}
            }
            if *state.borrow() == SessionState::Expired {
                return Err(ClientError::Protocol(
                    "the membership session expired".into(),
                ));
            }
            let next = self.record().await;
            if next == record && since_write.elapsed() < REFRESH {
                continue;
            }
            let data = to_json(&next);
            session
                .multi(vec![set_op(&member, &data), set_op(&node, &data)])
                .await?;
            record = next;
            since_write = tokio::time::Instant::now();
        }
    }

    /// This node's record now.
    async fn record(&self) -> NodeRecord {
        let mut record = self.identity.clone();
        if let Some(view) = &self.vrrp {
            record.vrrp = view
                .instances()
                .into_iter()
                .map(|i| {
                    let token = i
                        .fencing
                        .as_ref()
                        .and_then(|f| f.holding.then_some(f.token))
                        .flatten();
                    VrrpSummary {
                        holding: !i.vips_held.is_empty(),
                        instance: i.name,
                        state: i.state,
                        priority: i.priority,
                        effective_priority: i.effective_priority,
                        token,
                    }
                })
                .collect();
        }
        if let Some(lb) = &self.lb
            && let Ok(summary) = lb.summary().await
            && summary.virtual_servers > 0
        {
            record.lvs = Some(summary);
        }
        record
    }
}

/// Creates our ephemeral record, replacing one left by a previous run of this node.
async fn register(session: &Session, path: &str, data: &[u8]) -> Result<(), ClientError> {
    let ephemeral = CreateOptions {
        ephemeral: true,
        ..CreateOptions::PERSISTENT
    };
    match session.create(path, data, ephemeral).await {
        Err(e) if e.is(TreeError::NodeExists) => {
            tracing::info!(
                path,
                "membership: replacing the record of this node's previous session"
            );
            match session.delete(path, None).await {
                Ok(()) => {}
                Err(e) if e.is(TreeError::NoNode) => {}
                Err(e) => return Err(e),
            }
            session.create(path, data, ephemeral).await.map(drop)
        }
        other => other.map(drop),
    }
}

/// Sets a persistent node's data, creating it if needed.
async fn upsert(session: &Session, path: &str, data: &[u8]) -> Result<(), ClientError> {
    match session.set(path, data, None).await {
        Err(e) if e.is(TreeError::NoNode) => {
            match session.create(path, data, CreateOptions::PERSISTENT).await {
                // Someone (this node's previous run) created it meanwhile.
                Err(e) if e.is(TreeError::NodeExists) => {
                    session.set(path, data, None).await.map(drop)
                }
                other => other.map(drop),
            }
        }
        other => other.map(drop),
    }
}

fn set_op(path: &str, data: &[u8]) -> OpJson {
    OpJson::Set {
        path: path.to_owned(),
        set: SetJson {
            data: DataJson::bytes(data),
            version: None,
        },
    }
}

fn to_json(record: &NodeRecord) -> Vec<u8> {
    // Serializing plain data with string keys cannot fail.
    serde_json::to_vec(record).unwrap_or_default()
}

/// Where a process on this host reaches a listener bound to `listen`: a wildcard address is
/// reached on loopback.
pub fn local_address(listen: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip = match listen.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, listen.port())
}

/// A client for [`read`] on this node's own coordination API (`[cluster] client_listen`), failing
/// fast: `vigilctl status` must answer promptly even when the quorum is gone.
pub fn status_client(
    client_listen: std::net::SocketAddr,
    token: Option<&crate::api::auth::ApiToken>,
) -> Result<Client, ClientError> {
    let mut config = ClientConfig::new([local_address(client_listen).to_string()]);
    config.token = token.map(|t| String::from_utf8_lossy(t.as_bytes()).into_owned());
    config.request_timeout = Duration::from_secs(1);
    config.attempts = 2;
    config.retry_backoff = Duration::from_millis(100);
    Client::new(config)
}

/// Reads every node ever registered, and which are up, sorted by name. An empty tree (no node
/// registered yet) is an empty list.
pub async fn read(client: &Client) -> Result<Vec<MemberView>, ClientError> {
    let known = children_or_empty(client, NODES).await?;
    let up: BTreeSet<String> = children_or_empty(client, MEMBERS)
        .await?
        .into_iter()
        .collect();
    let mut views = Vec::with_capacity(known.len());
    for name in known {
        match client.get(&format!("{NODES}/{name}")).await {
            Ok(node) => views.push(MemberView {
                up: up.contains(&name),
                last_seen_unix_ms: node.stat.mtime,
                record: serde_json::from_slice(&node.data).ok(),
                node: name,
            }),
            // Removed between the two reads.
            Err(e) if e.is(TreeError::NoNode) => {}
            Err(e) => return Err(e),
        }
    }
    // A live member whose persistent record is missing (being created) is still up.
    for name in up {
        if !views.iter().any(|v| v.node == name) {
            views.push(MemberView {
                node: name,
                up: true,
                last_seen_unix_ms: 0,
                record: None,
            });
        }
    }
    views.sort_by(|a, b| a.node.cmp(&b.node));
    Ok(views)
}

async fn children_or_empty(client: &Client, path: &str) -> Result<Vec<String>, ClientError> {
    match client.children(path).await {
        Ok((children, _)) => Ok(children),
        Err(e) if e.is(TreeError::NoNode) => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

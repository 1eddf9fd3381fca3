//! Peer transport over TCP for openraft and for requests a follower forwards to the leader.
//!
//! # Layout
//!
//! - `frame`: length-prefixed postcard frames. `message`: [`PeerRequest`]/[`PeerResponse`].
//! - `client`: [`PeerClient`], one pipelined connection per peer with reconnect backoff.
//! - `server`: [`serve`], the accept loop dispatching to a [`PeerHandler`].
//! - `tls`: optional mutual TLS ([`PeerTls`], from [`TlsConfig`] PEM files).
//! - this file: openraft's [`RaftNetworkFactory`]/[`RaftNetwork`] on top of [`PeerClient`].
//!
//! Timeouts: openraft bounds each RPC itself (`AppendEntries` by the heartbeat interval, each
//! snapshot chunk by `install_snapshot_timeout`), and every call here also carries its
//! `RPCOption` deadline, so a dead peer never blocks a replication stream for longer.

mod client;
mod frame;
mod message;
mod server;
mod tls;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};

pub use self::client::{CallError, PeerClient};
pub use self::frame::MAX_FRAME;
pub use self::message::{ForwardError, PeerProbe, PeerRequest, PeerResponse};
pub use self::server::{PeerHandler, serve};
pub use self::tls::{PeerTls, TlsConfig, TlsError};
use super::types::typ::{RaftError, RpcError};
use super::types::{Node, NodeId, TypeConfig};

/// The clients of every known peer, shared by openraft and the node's forwarding.
#[derive(Debug, Clone, Default)]
pub struct Peers {
    clients: Arc<Mutex<HashMap<NodeId, Arc<PeerClient>>>>,
    tls: Option<PeerTls>,
    source: Option<std::net::IpAddr>,
}

impl Peers {
    /// An empty set whose clients use `tls` (mutual TLS) if set.
    pub fn new(tls: Option<PeerTls>) -> Peers {
        Peers {
            clients: Arc::default(),
            tls,
            source: None,
        }
    }

    /// Every client connects from `source` (see [`PeerClient::bound_to`]).
    #[must_use]
    pub fn bound_to(mut self, source: Option<std::net::IpAddr>) -> Peers {
        self.source = source;
        self
    }

    /// The client of peer `id` at `addr`; a changed address gets a new client.
    pub fn client(&self, id: NodeId, addr: &str) -> Arc<PeerClient> {
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        match clients.get(&id) {
            Some(c) if c.addr() == addr => Arc::clone(c),
            _ => {
                let c = Arc::new(
                    PeerClient::new(addr.to_owned(), self.tls.clone()).bound_to(self.source),
                );
                clients.insert(id, Arc::clone(&c));
                c
            }
        }
    }
}

/// openraft's network factory.
#[derive(Debug, Clone)]
pub struct NetworkFactory {
    me: NodeId,
    peers: Peers,
}

impl NetworkFactory {
    /// A factory for node `me`, using (and filling) `peers`.
    pub fn new(me: NodeId, peers: Peers) -> NetworkFactory {
        NetworkFactory { me, peers }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> PeerNetwork {
        PeerNetwork {
            me: self.me,
            target,
            client: self.peers.client(target, &node.addr),
        }
    }
}

/// openraft's view of one peer.
#[derive(Debug)]
pub struct PeerNetwork {
    me: NodeId,
    target: NodeId,
    client: Arc<PeerClient>,
}

impl PeerNetwork {
    async fn call<E: std::error::Error>(
        &self,
        request: PeerRequest,
        action: RPCTypes,
        timeout: Duration,
    ) -> Result<PeerResponse, RpcError<E>> {
        self.client
            .call(request, timeout)
            .await
            .map_err(|e| match e {
                CallError::Unreachable { .. } => RPCError::Unreachable(Unreachable::new(&e)),
                CallError::Network { .. } => RPCError::Network(NetworkError::new(&e)),
                CallError::Timeout { timeout, .. } => RPCError::Timeout(Timeout {
                    action,
                    id: self.me,
                    target: self.target,
                    timeout,
                }),
            })
    }

    fn unexpected<E: std::error::Error>(response: &PeerResponse) -> RpcError<E> {
        let e = std::io::Error::other(format!("unexpected peer response: {response:?}"));
        RPCError::Network(NetworkError::new(&e))
    }

    fn remote<E: std::error::Error>(&self, e: RaftError<E>) -> RpcError<E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RpcError> {
        let request = PeerRequest::AppendEntries(rpc);
        match self
            .call(request, RPCTypes::AppendEntries, option.hard_ttl())
            .await?
        {
            PeerResponse::AppendEntries(r) => r.map_err(|e| self.remote(e)),
            other => Err(Self::unexpected(&other)),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, RpcError<InstallSnapshotError>> {
        let request = PeerRequest::InstallSnapshot(rpc);
        match self
            .call(request, RPCTypes::InstallSnapshot, option.hard_ttl())
            .await?
        {
            PeerResponse::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            other => Err(Self::unexpected(&other)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RpcError> {
        match self
            .call(PeerRequest::Vote(rpc), RPCTypes::Vote, option.hard_ttl())
            .await?
        {
            PeerResponse::Vote(r) => r.map_err(|e| self.remote(e)),
            other => Err(Self::unexpected(&other)),
        }
    }

    fn backoff(&self) -> Backoff {
        // openraft waits this long between attempts to an unreachable peer.
        Backoff::new((0..).map(|n: u32| {
            Duration::from_millis(50)
                .saturating_mul(1 << n.min(5))
                .min(Duration::from_secs(1))
        }))
    }
}

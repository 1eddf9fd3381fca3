//! The store under a live single-node openraft: writes are committed through it and come back
//! after a restart with an empty state machine.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{InstallSnapshotError, RPCError, RaftError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, Config, Raft, ServerState};
use vigil_coord::raft::LogOptions;

use super::state_machine::MemStateMachine;
use super::support::{TempDir, TestConfig, open};

/// A network with nobody on it: a single voter never needs to send anything.
struct NoPeers;

fn unreachable<E: std::error::Error>() -> RPCError<u64, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&io::Error::other(
        "single-node test has no peers",
    )))
}

impl RaftNetworkFactory<TestConfig> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &BasicNode) -> Self::Network {
        NoPeers
    }
}

impl RaftNetwork<TestConfig> for NoPeers {
    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<TestConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }

    async fn install_snapshot(
        &mut self,
        _rpc: InstallSnapshotRequest<TestConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<u64>,
        RPCError<u64, BasicNode, RaftError<u64, InstallSnapshotError>>,
    > {
        Err(unreachable())
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<u64>,
        _option: RPCOption,
    ) -> Result<VoteResponse<u64>, RPCError<u64, BasicNode, RaftError<u64>>> {
        Err(unreachable())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_recovers_its_writes_after_restart() {
    let dir = TempDir::new("single-node");
    let config = Config {
        heartbeat_interval: 50,
        election_timeout_min: 150,
        election_timeout_max: 300,
        ..Config::default()
    };
    let config = Arc::new(config.validate().expect("valid config"));
    let timeout = Some(Duration::from_secs(10));
    let writes: Vec<String> = (0..5).map(|i| format!("write {i}")).collect();

    let applied_index = {
        let sm = MemStateMachine::default();
        let store = open(&dir, LogOptions::default());
        let raft = Raft::new(1, Arc::clone(&config), NoPeers, store, sm.clone())
            .await
            .expect("start raft");
        raft.initialize(BTreeMap::from([(1, BasicNode::default())]))
            .await
            .expect("initialize");
        raft.wait(timeout)
            .state(ServerState::Leader, "become leader")
            .await
            .expect("leader");
        for w in &writes {
            raft.client_write(w.clone()).await.expect("client write");
        }
        assert_eq!(sm.applied(), writes);
        let applied = raft.metrics().borrow().last_applied.map(|l| l.index);
        raft.shutdown().await.expect("shutdown");
        applied
    };
    assert!(applied_index.is_some());

    // Restart with an empty state machine: everything must come back from the log.
    let sm = MemStateMachine::default();
    let store = open(&dir, LogOptions::default());
    let raft = Raft::new(1, Arc::clone(&config), NoPeers, store, sm.clone())
        .await
        .expect("restart raft");
    raft.wait(timeout)
        .applied_index_at_least(applied_index, "re-apply the log")
        .await
        .expect("re-applied");
    assert_eq!(sm.applied(), writes);
    raft.wait(timeout)
        .state(ServerState::Leader, "lead again")
        .await
        .expect("leader again");
    raft.client_write("after restart".to_owned())
        .await
        .expect("write after restart");
    assert_eq!(
        sm.applied().last().map(String::as_str),
        Some("after restart")
    );
    raft.shutdown().await.expect("shutdown");
}

//! One vigil coordination member as its own process: a `CoordNode` (Raft, log, znode tree,
//! peer transport) plus the `/v1` HTTP API over it, exactly what a client of vigild talks to.
//! `vigil-bench coord-member …` runs it; [`super::start`] spawns three.
//!
//! Production settings throughout (`CoordConfig::new`, `ApiConfig::default`), except the
//! addresses and data directory.

use std::{collections::BTreeMap, net::SocketAddr, path::PathBuf, sync::Arc};

use tokio::{
    net::TcpListener,
    signal::unix::{SignalKind, signal},
};
use vigil_coord::{
    api::{self, ApiConfig, SharedBackend},
    node::{CoordConfig, CoordNode},
};

use crate::error::{BenchError, Result};

/// What one member needs.
#[derive(Debug, Clone)]
pub struct MemberOpts {
    /// Raft node id (1-based).
    pub id: u64,
    /// Peer (Raft) listener.
    pub peer: SocketAddr,
    /// `/v1` API listener.
    pub api: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Initial voters: id → peer address.
    pub members: BTreeMap<u64, String>,
}

impl MemberOpts {
    /// The command-line arguments of `vigil-bench coord-member` that reproduce these options.
    pub fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "coord-member".to_owned(),
            format!("--id={}", self.id),
            format!("--peer={}", self.peer),
            format!("--api={}", self.api),
            format!("--data-dir={}", self.data_dir.display()),
        ];
        args.extend(
            self.members
                .iter()
                .map(|(id, addr)| format!("--member={id}={addr}")),
        );
        args
    }
}

/// Parses `ID=HOST:PORT` (a `--member` value).
pub fn parse_member(s: &str) -> std::result::Result<(u64, String), String> {
    let (id, addr) = s
        .split_once('=')
        .ok_or_else(|| format!("expected ID=HOST:PORT, got {s:?}"))?;
    let id = id.parse().map_err(|e| format!("member id {id:?}: {e}"))?;
    addr.parse::<SocketAddr>()
        .map_err(|e| format!("member address {addr:?}: {e}"))?;
    Ok((id, addr.to_owned()))
}

/// Runs the member until SIGTERM or SIGINT, then shuts the node down cleanly.
pub async fn run(opts: MemberOpts) -> Result<()> {
    let mut config = CoordConfig::new(opts.id, opts.peer, &opts.data_dir);
    config.initial_members = opts.members;
    let node = CoordNode::start(config)
        .await
        .map_err(|e| BenchError::Cluster(format!("start coordination node: {e}")))?;
    let api_listener = TcpListener::bind(opts.api)
        .await
        .map_err(|e| BenchError::io(format!("bind API {}", opts.api), e))?;
    let backend: SharedBackend = Arc::new(node.clone());
    let router = api::router(backend, ApiConfig::default());
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| BenchError::io("SIGTERM handler", e))?;
    let stopped = async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    let served = api::serve(api_listener, router, stopped).await;
    let shut = node.shutdown().await;
    served.map_err(|e| BenchError::io("serve API", e))?;
    shut.map_err(|e| BenchError::Cluster(format!("shutdown: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_round_trip_through_the_member_parser() {
        let opts = MemberOpts {
            id: 2,
            peer: "127.0.0.1:42682".parse().expect("addr"),
            api: "127.0.0.1:42582".parse().expect("addr"),
            data_dir: "/d/v2".into(),
            members: BTreeMap::from([(1, "127.0.0.1:42681".into()), (2, "127.0.0.1:42682".into())]),
        };
        let args = opts.to_args();
        assert_eq!(args[0], "coord-member");
        assert!(args.contains(&"--api=127.0.0.1:42582".to_owned()));
        let members: Vec<_> = args
            .iter()
            .filter_map(|a| a.strip_prefix("--member="))
            .map(|m| parse_member(m).expect("parses"))
            .collect();
        assert_eq!(
            members,
            vec![(1, "127.0.0.1:42681".into()), (2, "127.0.0.1:42682".into())]
        );
        assert!(parse_member("x=127.0.0.1:1").is_err());
        assert!(
            parse_member("1=localhost:1").is_err(),
            "peers are addresses, not names"
        );
        assert!(parse_member("1").is_err());
    }
}

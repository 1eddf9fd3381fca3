//! vigil's coordination tree as a benchmark target: three member processes on 127.0.0.1,
//! each a `CoordNode` with the `/v1` API (see [`member`]), driven over HTTP by
//! `vigil_coord::client` — the same API and client vigild's users get.
//!
//! The members are this benchmark binary re-executed as `vigil-bench coord-member`, because
//! vigild does not serve the coordination tree yet. Separate processes keep the comparison
//! fair: each member has its own RSS, and restart-to-serving includes process start-up and
//! recovery from disk.

pub mod client;
pub mod member;

use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};

use crate::{
    cluster::{Connect, MemberSpec, PROBE_KEY, ProcessTarget},
    error::{BenchError, Result},
    process::ScratchDir,
    target::{Client, Target},
};
use client::VigilClient;
use member::MemberOpts;

/// Ports and options of the cluster.
#[derive(Debug, Clone)]
pub struct VigilConfig {
    /// Ports are `base+581+i` (API) and `base+681+i` (peers).
    pub port_base: u16,
    /// Keep the scratch directory after the run.
    pub keep: bool,
}

/// The options of member `i` (0-based) of the 3-member cluster.
pub fn member_opts(i: u16, port_base: u16, data_dir: &std::path::Path) -> MemberOpts {
    let peer = |j: u16| SocketAddr::from(([127, 0, 0, 1], port_base + 681 + j));
    MemberOpts {
        id: u64::from(i) + 1,
        peer: peer(i),
        api: SocketAddr::from(([127, 0, 0, 1], port_base + 581 + i)),
        data_dir: data_dir.to_owned(),
        members: (0..3)
            .map(|j| (u64::from(j) + 1, peer(j).to_string()))
            .collect::<BTreeMap<_, _>>(),
    }
}

/// Starts three members and waits until the cluster serves.
pub async fn start(cfg: &VigilConfig) -> Result<ProcessTarget> {
    let exe = std::env::current_exe().map_err(|e| BenchError::io("locate vigil-bench", e))?;
    let dir = ScratchDir::create(&std::env::temp_dir(), "vigil", cfg.keep)?;
    let mut specs = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3u16 {
        let node = dir.path().join(format!("v{}", i + 1));
        std::fs::create_dir_all(&node)
            .map_err(|e| BenchError::io(format!("mkdir {}", node.display()), e))?;
        let opts = member_opts(i, cfg.port_base, &node.join("data"));
        addrs.push(opts.api.to_string());
        specs.push(MemberSpec {
            name: format!("vigil{}", i + 1),
            program: exe.display().to_string(),
            args: opts.to_args(),
            log: node.join("member.log"),
        });
    }
    let connect: Connect = Arc::new(|addr: String| {
        Box::pin(async move { Ok(Box::new(VigilClient::new(&addr)?) as Box<dyn Client>) })
    });
    // The probe key does not exist yet; the root reads fine.
    let target = ProcessTarget::start(
        "vigil",
        specs,
        dir,
        addrs,
        connect,
        (Duration::from_mins(1), "/"),
    )
    .await?;
    let c = target.client(0).await?;
    for p in [PROBE_KEY, "/vb/k", "/vb/w", "/vb/m"] {
        c.ensure(p, b"").await?;
    }
    c.close().await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_listen_on_loopback_and_know_each_other() {
        let o = member_opts(1, 42000, std::path::Path::new("/d/v2"));
        assert_eq!(o.id, 2);
        assert_eq!(o.api.to_string(), "127.0.0.1:42582");
        assert_eq!(o.peer.to_string(), "127.0.0.1:42682");
        assert_eq!(
            o.members.values().cloned().collect::<Vec<_>>(),
            ["127.0.0.1:42681", "127.0.0.1:42682", "127.0.0.1:42683"]
        );
    }
}

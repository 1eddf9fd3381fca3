//! etcd 3.4 as a benchmark target: three members on 127.0.0.1 from Debian's `etcd-server`,
//! driven through the v3 JSON gateway.
//!
//! Every URL is given explicitly: etcd's defaults are `localhost` ports 2379/2380, which
//! would collide with a system etcd; metrics and pprof listeners stay off (their defaults).

pub mod client;
pub mod json;

use std::{sync::Arc, time::Duration};

use crate::{
    cluster::{Connect, MemberSpec, PROBE_KEY, ProcessTarget},
    error::{BenchError, Result},
    process::ScratchDir,
    target::{Client, Target},
};
use client::EtcdClient;

/// Ports and options of the cluster.
#[derive(Debug, Clone)]
pub struct EtcdConfig {
    /// Ports are `base+379+i` (client) and `base+479+i` (peer).
    pub port_base: u16,
    /// Keep the scratch directory after the run.
    pub keep: bool,
}

/// Command-line arguments of member `i` (0-based) of a 3-member cluster.
pub fn member_args(i: u16, port_base: u16, data_dir: &str) -> Vec<String> {
    let peer = |j: u16| format!("http://127.0.0.1:{}", port_base + 479 + j);
    let client = format!("http://127.0.0.1:{}", port_base + 379 + i);
    let initial: Vec<String> = (0..3).map(|j| format!("e{j}={}", peer(j))).collect();
    [
        ("--name", format!("e{i}")),
        ("--data-dir", data_dir.to_owned()),
        ("--listen-client-urls", client.clone()),
        ("--advertise-client-urls", client),
        ("--listen-peer-urls", peer(i)),
        ("--initial-advertise-peer-urls", peer(i)),
        ("--initial-cluster", initial.join(",")),
        ("--initial-cluster-state", "new".into()),
        ("--initial-cluster-token", "vigil-bench".into()),
        // 1M keys plus the write phases' revisions exceed the 2 GiB default quota.
        ("--quota-backend-bytes", (8u64 << 30).to_string()),
        ("--logger", "zap".into()),
        ("--log-level", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| format!("{k}={v}"))
    .collect()
}

/// Starts three members and waits until the cluster serves.
pub async fn start(cfg: &EtcdConfig) -> Result<ProcessTarget> {
    let dir = ScratchDir::create(&std::env::temp_dir(), "etcd", cfg.keep)?;
    let mut specs = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..3u16 {
        let node = dir.path().join(format!("e{i}"));
        std::fs::create_dir_all(&node)
            .map_err(|e| BenchError::io(format!("mkdir {}", node.display()), e))?;
        specs.push(MemberSpec {
            name: format!("etcd{i}"),
            program: "etcd".into(),
            args: member_args(i, cfg.port_base, &node.join("data").display().to_string()),
            log: node.join("member.log"),
        });
        addrs.push(format!("127.0.0.1:{}", cfg.port_base + 379 + i));
    }
    let connect: Connect = Arc::new(|addr: String| {
        Box::pin(async move { Ok(Box::new(EtcdClient::new(&addr)) as Box<dyn Client>) })
    });
    // The probe key does not exist yet; any key reads fine.
    let target = ProcessTarget::start(
        "etcd",
        specs,
        dir,
        addrs,
        connect,
        (Duration::from_mins(1), "/"),
    )
    .await?;
    target.client(0).await?.ensure(PROBE_KEY, b"").await?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_args_are_loopback_and_complete() {
        let args = member_args(1, 42000, "/d/e1");
        assert!(args.contains(&"--name=e1".to_owned()));
        assert!(args.contains(&"--listen-client-urls=http://127.0.0.1:42380".to_owned()));
        assert!(args.contains(&"--listen-peer-urls=http://127.0.0.1:42480".to_owned()));
        assert!(args.contains(
            &"--initial-cluster=e0=http://127.0.0.1:42479,e1=http://127.0.0.1:42480,e2=http://127.0.0.1:42481"
                .to_owned()
        ));
        // Nothing may listen on a wildcard or named host.
        for a in args.iter().filter(|a| a.contains("://")) {
            assert!(a.contains("http://127.0.0.1:"), "{a}");
            assert!(!a.contains("0.0.0.0") && !a.contains("localhost"), "{a}");
        }
    }
}

//! ZooKeeper 3.8 as a benchmark target: a 3-node ensemble on 127.0.0.1 run from Debian's
//! `zookeeper` package, driven by our own wire-protocol client.
//!
//! Members run `QuorumPeerMain` directly (no `zkServer.sh`): Debian's scripts read
//! `/etc/zookeeper`, while each member here needs its own `zoo.cfg`, `myid` and data dir.
//! `zookeeper.jar`'s manifest carries the dependency classpath; `slf4j-simple` is added so
//! warnings reach the member log.

pub mod client;
pub mod jute;

use std::{fmt::Write as _, path::Path, sync::Arc, time::Duration};

use crate::{
    cluster::{Connect, MemberSpec, PROBE_KEY, ProcessTarget},
    error::{BenchError, Result},
    process::ScratchDir,
    target::{Client, Target},
};
use client::ZkClient;

const CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar";
const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// Ports and sizing of the ensemble.
#[derive(Debug, Clone)]
pub struct ZkConfig {
    /// Ports are `base+181+i` (client), `base+881+i` (quorum), `base+981+i` (election).
    pub port_base: u16,
    /// Maximum JVM heap per member, e.g. "2g"; 1M small znodes need about 1 GiB live.
    pub heap: String,
    /// Keep the scratch directory after the run (for reading member logs).
    pub keep: bool,
}

/// Writes configs, starts three members and waits until the ensemble serves.
pub async fn start(cfg: &ZkConfig) -> Result<ProcessTarget> {
    let dir = ScratchDir::create(&std::env::temp_dir(), "zk", cfg.keep)?;
    let mut specs = Vec::new();
    let mut addrs = Vec::new();
    let mut servers = String::new();
    for i in 0..3u16 {
        let _ = writeln!(
            servers,
            "server.{}=127.0.0.1:{}:{}",
            i + 1,
            cfg.port_base + 881 + i,
            cfg.port_base + 981 + i
        );
    }
    for i in 0..3u16 {
        let client_port = cfg.port_base + 181 + i;
        let node_dir = dir.path().join(format!("zk{}", i + 1));
        let data = node_dir.join("data");
        mkdir(&data)?;
        write(&data.join("myid"), &format!("{}\n", i + 1))?;
        let conf = node_dir.join("zoo.cfg");
        write(&conf, &zoo_cfg(&data, client_port, &servers))?;
        specs.push(MemberSpec {
            name: format!("zk{}", i + 1),
            program: "java".into(),
            args: java_args(&cfg.heap, &conf),
            log: node_dir.join("member.log"),
        });
        addrs.push(format!("127.0.0.1:{client_port}"));
    }
    let connect: Connect = Arc::new(|addr: String| {
        Box::pin(async move { Ok(Box::new(ZkClient::connect(&addr).await?) as Box<dyn Client>) })
    });
    // The probe key does not exist yet; the root reads fine.
    let target = ProcessTarget::start(
        "zookeeper",
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

/// The member configuration. Everything listens on 127.0.0.1 only: `clientPortAddress`
/// pins the client port (the default is the wildcard), quorum/election ports bind the
/// address in `server.N` (`quorumListenOnAllIPs` defaults to false), and the AdminServer —
/// Jetty on 0.0.0.0:8080 by default — is disabled.
pub fn zoo_cfg(data: &Path, client_port: u16, servers: &str) -> String {
    format!(
        "tickTime=2000\n\
         initLimit=30\n\
         syncLimit=10\n\
         dataDir={}\n\
         clientPort={client_port}\n\
         clientPortAddress=127.0.0.1\n\
         maxClientCnxns=0\n\
         admin.enableServer=false\n\
         autopurge.snapRetainCount=3\n\
         autopurge.purgeInterval=1\n\
         {servers}",
        data.display()
    )
}

fn java_args(heap: &str, conf: &Path) -> Vec<String> {
    vec![
        format!("-Xmx{heap}"),
        "-XX:+ExitOnOutOfMemoryError".into(),
        "-Djava.net.preferIPv4Stack=true".into(),
        "-Dzookeeper.admin.enableServer=false".into(),
        "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn".into(),
        "-cp".into(),
        CLASSPATH.into(),
        MAIN_CLASS.into(),
        conf.display().to_string(),
    ]
}

fn mkdir(p: &Path) -> Result<()> {
    std::fs::create_dir_all(p).map_err(|e| BenchError::io(format!("mkdir {}", p.display()), e))
}

fn write(p: &Path, text: &str) -> Result<()> {
    std::fs::write(p, text).map_err(|e| BenchError::io(format!("write {}", p.display()), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_binds_loopback_only() {
        let cfg = zoo_cfg(Path::new("/d"), 42181, "server.1=127.0.0.1:42881:42981\n");
        assert!(cfg.contains("clientPortAddress=127.0.0.1\n"));
        assert!(cfg.contains("admin.enableServer=false\n"));
        assert!(
            cfg.contains("maxClientCnxns=0\n"),
            "1,000 watch sessions from one IP need no cap"
        );
        assert!(!cfg.contains("quorumListenOnAllIPs"));
        assert!(cfg.ends_with("server.1=127.0.0.1:42881:42981\n"));
    }
}

//! A set of member processes that can be started, stopped and restarted on the same data.

use std::{path::PathBuf, pin::Pin, sync::Arc, time::Duration};

use async_trait::async_trait;

use crate::{
    error::{BenchError, Result},
    process::{Member, ScratchDir},
    target::{Client, Target},
};

/// How to (re)start one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    /// Display name ("zk1", "etcd2").
    pub name: String,
    /// Executable.
    pub program: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Log file for stdout and stderr.
    pub log: PathBuf,
}

/// The members of one cluster plus their scratch directory.
///
/// Field order matters for `Drop`: members are killed before their data directory goes.
#[derive(Debug)]
pub struct Cluster {
    members: Vec<Member>,
    specs: Vec<MemberSpec>,
    dir: ScratchDir,
}

impl Cluster {
    /// Starts every member.
    pub fn start(specs: Vec<MemberSpec>, dir: ScratchDir) -> Result<Self> {
        let mut c = Self {
            members: Vec::new(),
            specs,
            dir,
        };
        c.spawn_all()?;
        Ok(c)
    }

    fn spawn_all(&mut self) -> Result<()> {
        for s in &self.specs {
            self.members
                .push(Member::spawn(&s.name, &s.program, &s.args, &s.log)?);
        }
        Ok(())
    }

    /// The scratch directory holding data and logs.
    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fails if any member has exited.
    pub fn check_alive(&mut self) -> Result<()> {
        self.members.iter_mut().try_for_each(Member::check_alive)
    }

    /// RSS of each member in bytes.
    pub fn rss(&self) -> Result<Vec<u64>> {
        self.members.iter().map(Member::rss_bytes).collect()
    }

    /// CPU time used by all members together since they started.
    pub fn cpu(&self) -> Result<Duration> {
        self.members.iter().map(Member::cpu).sum()
    }

    /// Stops all members (SIGTERM, then SIGKILL after `grace`).
    pub async fn stop_all(&mut self, grace: Duration) -> Result<()> {
        for m in &mut self.members {
            m.stop(grace).await?;
        }
        self.members.clear();
        Ok(())
    }

    /// Starts all members again with their original arguments and data.
    pub fn restart(&mut self) -> Result<()> {
        if !self.members.is_empty() {
            return Err(BenchError::Cluster(
                "restart while members are running".into(),
            ));
        }
        self.spawn_all()
    }
}

/// Polls members round-robin with `probe` until a linearizable read of `key` succeeds or `deadline` passes; fails
/// early if a member exits. Returns the elapsed time from the call.
pub async fn wait_serving<F, Fut>(
    cluster: &mut Cluster,
    members: usize,
    deadline: Duration,
    key: &str,
    probe: F,
) -> Result<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Result<Box<dyn Client>>>,
{
    let start = tokio::time::Instant::now();
    let mut last = String::from("no attempt");
    let mut attempt = 0usize;
    loop {
        if start.elapsed() > deadline {
            return Err(BenchError::Timeout(format!(
                "cluster not serving after {deadline:?}: {last}"
            )));
        }
        cluster.check_alive()?;
        let member = attempt % members;
        let tried = tokio::time::timeout(Duration::from_secs(2), async {
            let c = probe(member).await?;
            let read = c.read_linearizable(key).await.map(|_| start.elapsed());
            let _ = c.close().await;
            read
        })
        .await;
        match tried {
            Ok(Ok(serving_after)) => return Ok(serving_after),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "probe timed out".into(),
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Key every target creates at setup, so a linearizable read of it succeeds once serving.
pub const PROBE_KEY: &str = "/vb";

/// Opens a client to the member serving clients at the given address.
pub type Connect = Arc<
    dyn Fn(String) -> Pin<Box<dyn Future<Output = Result<Box<dyn Client>>> + Send>> + Send + Sync,
>;

/// A [`Target`] whose members are child processes: ZooKeeper, etcd and vigil alike. They
/// differ only in how members are started (their [`MemberSpec`]s) and how clients connect.
pub struct ProcessTarget {
    name: &'static str,
    cluster: Cluster,
    /// Client address of each member.
    addrs: Vec<String>,
    connect: Connect,
}

impl ProcessTarget {
    /// Starts the members and waits up to `deadline` until `ready_key` reads linearizably.
    pub async fn start(
        name: &'static str,
        specs: Vec<MemberSpec>,
        dir: ScratchDir,
        addrs: Vec<String>,
        connect: Connect,
        (deadline, ready_key): (Duration, &str),
    ) -> Result<Self> {
        let mut target = Self {
            name,
            cluster: Cluster::start(specs, dir)?,
            addrs,
            connect,
        };
        target.wait(deadline, ready_key).await?;
        // One member serving is enough to time a restart, but the phases use every member:
        // on a loaded machine ZooKeeper's followers can still be joining when one answers.
        for addr in target.addrs.clone() {
            let connect = Arc::clone(&target.connect);
            wait_serving(&mut target.cluster, 1, deadline, ready_key, |_| {
                connect(addr.clone())
            })
            .await?;
        }
        Ok(target)
    }

    async fn wait(&mut self, deadline: Duration, key: &str) -> Result<Duration> {
        let (addrs, connect) = (self.addrs.clone(), Arc::clone(&self.connect));
        wait_serving(&mut self.cluster, addrs.len(), deadline, key, |m| {
            connect(addrs[m].clone())
        })
        .await
    }
}

#[async_trait]
impl Target for ProcessTarget {
    fn name(&self) -> &'static str {
        self.name
    }

    fn members(&self) -> usize {
        self.addrs.len()
    }

    async fn client(&self, member: usize) -> Result<Box<dyn Client>> {
        (self.connect)(self.addrs[member % self.addrs.len()].clone()).await
    }

    fn rss_of_members(&mut self) -> Result<Vec<u64>> {
        self.cluster.check_alive()?;
        self.cluster.rss()
    }

    fn cpu_of_members(&mut self) -> Result<Duration> {
        self.cluster.check_alive()?;
        self.cluster.cpu()
    }

    async fn restart_all(&mut self) -> Result<Duration> {
        self.cluster.stop_all(Duration::from_secs(30)).await?;
        self.cluster.restart()?;
        self.wait(Duration::from_mins(5), PROBE_KEY).await
    }

    async fn shutdown(&mut self) -> Result<()> {
        self.cluster.stop_all(Duration::from_secs(10)).await
    }
}

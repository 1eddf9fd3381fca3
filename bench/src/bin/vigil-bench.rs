//! `vigil-bench coord`: vigil, ZooKeeper and etcd side by side. `vigil-bench coord-member` is
//! one vigil member, started by `coord` itself.

use std::{path::PathBuf, time::Duration};

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use vigil_bench::{
    etcd::{self, EtcdConfig},
    report::{Figures, table},
    run::{Machine, Phase, Settings, run_target},
    target::Target,
    vigil::{
        self, VigilConfig,
        member::{self, MemberOpts},
    },
    zk::{self, ZkConfig},
};

#[derive(Parser)]
#[command(about = "Benchmarks and side-by-side comparisons")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Coordination services: 3-member clusters on loopback under the same load.
    Coord(CoordOpts),
    /// One member of vigil's benchmark cluster (started by `coord`).
    #[command(hide = true)]
    CoordMember(MemberArgs),
}

#[derive(clap::Args)]
struct MemberArgs {
    #[arg(long)]
    id: u64,
    #[arg(long)]
    peer: std::net::SocketAddr,
    #[arg(long)]
    api: std::net::SocketAddr,
    #[arg(long)]
    data_dir: PathBuf,
    /// `ID=HOST:PORT` of every initial voter.
    #[arg(long = "member", value_parser = member::parse_member)]
    members: Vec<(u64, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    Zookeeper,
    Etcd,
    Vigil,
}

#[derive(clap::Args)]
struct CoordOpts {
    /// Real figures: 10 s phases, 1,000,000 nodes (about 35 minutes for all three targets here).
    #[arg(long, conflicts_with = "quick")]
    full: bool,
    /// Short run (the default): 3 s phases, 100,000 nodes.
    #[arg(long)]
    quick: bool,
    /// Targets to run, in order.
    #[arg(long, value_delimiter = ',', default_values = ["vigil", "zookeeper", "etcd"])]
    targets: Vec<Which>,
    /// Override the phase length, seconds.
    #[arg(long)]
    phase_secs: Option<u64>,
    /// Override the node count of the memory/restart phases.
    #[arg(long)]
    nodes: Option<usize>,
    /// Phases to run (default: all): writes, reads, watch, create (creation, memory, restart).
    #[arg(long, value_delimiter = ',')]
    phases: Vec<Phase>,
    /// Watchers in the watch phase.
    #[arg(long, default_value_t = 1000)]
    watchers: usize,
    /// Requests in flight while creating nodes.
    #[arg(long, default_value_t = 256)]
    create_inflight: usize,
    /// Base of the loopback port range (ZooKeeper +181.., +881.., +981..; etcd +379.., +479..;
    /// vigil +581.. (API), +681.. (peers)).
    #[arg(long, default_value_t = 42000)]
    port_base: u16,
    /// ZooKeeper JVM maximum heap per member.
    #[arg(long, default_value = "2g")]
    zk_heap: String,
    /// Keep scratch directories (member data and logs) under $TMPDIR.
    #[arg(long)]
    keep: bool,
    /// Where to write the JSON record (default bench/results/coord-<date>.json).
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Serialize)]
struct Record<'a> {
    machine: &'a Machine,
    settings: &'a Settings,
    vigil: Option<&'a Figures>,
    zookeeper: Option<&'a Figures>,
    etcd: Option<&'a Figures>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // A member runs its node on one thread, as vigild does (its `vigil-coord` thread, see
    // daemon/src/coord/mod.rs); the load generator gets the default multi-threaded runtime,
    // whichever system it drives.
    let runtime = match &cli.cmd {
        Cmd::CoordMember(_) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        Cmd::Coord(_) => tokio::runtime::Runtime::new()?,
    };
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let opts = match cli.cmd {
        Cmd::Coord(opts) => opts,
        Cmd::CoordMember(m) => {
            return Ok(member::run(MemberOpts {
                id: m.id,
                peer: m.peer,
                api: m.api,
                data_dir: m.data_dir,
                members: m.members.into_iter().collect(),
            })
            .await?);
        }
    };
    // Dropping the run future on Ctrl-C kills every member (kill_on_drop) and removes the
    // scratch directories, so an interrupted run leaves nothing behind.
    tokio::select! {
        r = coord(opts) => r,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; members stopped"),
    }
}

async fn coord(opts: CoordOpts) -> anyhow::Result<()> {
    let settings = Settings {
        phase_secs: opts.phase_secs.unwrap_or(if opts.full { 10 } else { 3 }),
        nodes: opts
            .nodes
            .unwrap_or(if opts.full { 1_000_000 } else { 100_000 }),
        watchers: opts.watchers,
        create_inflight: opts.create_inflight,
        phases: if opts.phases.is_empty() {
            Phase::ALL.to_vec()
        } else {
            opts.phases.clone()
        },
    };
    let machine = Machine::probe();
    let (mut vigil, mut zk, mut etcd) = (None, None, None);
    for which in &opts.targets {
        match which {
            Which::Zookeeper => {
                let cfg = ZkConfig {
                    port_base: opts.port_base,
                    heap: opts.zk_heap.clone(),
                    keep: opts.keep,
                };
                eprintln!("[zookeeper] starting 3-member ensemble");
                let mut t = zk::start(&cfg)
                    .await
                    .context("start ZooKeeper (run bench/scripts/install)")?;
                zk = Some(measure(&mut t, &settings).await);
            }
            Which::Etcd => {
                let cfg = EtcdConfig {
                    port_base: opts.port_base,
                    keep: opts.keep,
                };
                eprintln!("[etcd] starting 3-member cluster");
                let mut t = etcd::start(&cfg)
                    .await
                    .context("start etcd (run bench/scripts/install)")?;
                etcd = Some(measure(&mut t, &settings).await);
            }
            Which::Vigil => {
                let cfg = VigilConfig {
                    port_base: opts.port_base,
                    keep: opts.keep,
                };
                eprintln!("[vigil] starting 3-member cluster");
                let mut t = vigil::start(&cfg).await.context("start vigil")?;
                vigil = Some(measure(&mut t, &settings).await);
            }
        }
    }
    println!(
        "{}",
        table(vigil.as_ref(), zk.as_ref(), etcd.as_ref(), settings.nodes)
    );
    let record = Record {
        machine: &machine,
        settings: &settings,
        vigil: vigil.as_ref(),
        zookeeper: zk.as_ref(),
        etcd: etcd.as_ref(),
    };
    let out = opts.out.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("results")
            .join(format!(
                "coord-{}.json",
                machine.date.replace(['-', ':'], "")
            ))
    });
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("mkdir {}", dir.display()))?;
    }
    std::fs::write(&out, serde_json::to_string_pretty(&record)?)
        .with_context(|| format!("write {}", out.display()))?;
    eprintln!("wrote {}", out.display());
    Ok(())
}

async fn measure(t: &mut dyn Target, s: &Settings) -> Figures {
    let f = run_target(t, s).await;
    if let Err(e) = t.shutdown().await {
        eprintln!("[{}] shutdown: {e}", t.name());
    }
    // Give the kernel a moment to release the ports before the next cluster binds its own.
    tokio::time::sleep(Duration::from_millis(500)).await;
    f
}

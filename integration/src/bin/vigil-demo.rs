//! `vigil-demo`: the README's main command (`scripts/demo` builds and runs it).
//!
//! Builds a lab — lb1, lb2 and a witness running `vigild`, two real servers and a client, all in
//! network namespaces on one bridge — shows every daemon through `vigilctl`, and tears it all
//! down again, also on failure or Ctrl-C (the lab's drop guard and `vigil-lab gc`).
//!
//! What it shows grows with the project: today the daemons start, validate their generated
//! configs and answer on their control API; the VRRP failover (SIGKILL the master, measure the
//! client-visible outage, print the new owner's fencing token) joins as those features land.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_integration::{Host, Lab, Process, root_available, wait_for, workspace_binary};

/// The virtual IP the load balancers share.
const VIP: &str = "10.0.0.100/24";
/// Control API port; each host has its own loopback, so all use the same one.
const API_PORT: u16 = 7400;
const RAFT_PORT: u16 = 7401;

fn main() -> ExitCode {
    if !root_available("vigil-demo") {
        eprintln!("vigil-demo needs root: it builds network namespaces. Try: sudo scripts/demo");
        return ExitCode::from(77);
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-demo: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let started = Instant::now();
    let vigild = binary("vigild")?;
    let vigilctl = binary("vigilctl")?;

    step("building the lab: lb1, lb2, witness, rs1, rs2, client on one bridge");
    let lab = Lab::with_hosts(&["lb1", "lb2", "witness", "rs1", "rs2", "client"])?;
    for h in lab.hosts() {
        println!("  {:<8} {:<12} {}", h.name(), h.ipv4(), h.netns());
    }

    let lbs = [lab.host("lb1")?, lab.host("lb2")?, lab.host("witness")?];
    let peers: Vec<(u64, String)> = lbs
        .iter()
        .enumerate()
        .map(|(i, h)| (i as u64 + 1, h.ipv4().to_string()))
        .collect();

    step("starting vigild on lb1, lb2 and the witness");
    let mut daemons = Vec::new();
    for (i, host) in lbs.iter().enumerate() {
        let id = i as u64 + 1;
        let config = host.write_file("vigil.toml", &node_config(host, id, &peers))?;
        check_config(&vigild, &config)?;
        let daemon = host.spawn(
            "vigild",
            &[path_str(&vigild)?, "--config", path_str(&config)?],
            &[("VIGIL_LOG_FORMAT", "plain")],
        )?;
        daemons.push((host.clone(), config, daemon));
    }
    for (host, config, daemon) in &daemons {
        wait_ready(&vigilctl, host, config, daemon)?;
    }

    step("vigilctl status on every node");
    for (host, config, _) in &daemons {
        println!("--- {} ---", host.name());
        print!(
            "{}",
            host.run(&[
                path_str(&vigilctl)?,
                "--config",
                path_str(config)?,
                "status"
            ])?
        );
    }

    step("graceful stop (SIGTERM) of every daemon");
    for (host, _, daemon) in &daemons {
        let status = daemon.terminate(Duration::from_secs(5))?;
        println!("  {:<8} vigild exited: {status}", host.name());
        if !status.success() {
            bail!(
                "vigild on {} did not exit cleanly: {status}\n{}",
                host.name(),
                daemon.log()
            );
        }
    }
    step(&format!(
        "tearing down the lab ({:.1} s in all)",
        started.elapsed().as_secs_f64()
    ));
    drop(lab);
    Ok(())
}

/// The config of one node: a member of the three-node quorum; the load balancers also run the
/// VRRP instance for the VIP (lb1 preferred).
fn node_config(host: &Host, id: u64, peers: &[(u64, String)]) -> String {
    // Writing to a String cannot fail.
    let mut c = format!(
        "[global]\nnode_name = \"{name}\"\nlog_format = \"plain\"\nstate_dir = \"{dir}\"\n\n\
         [api]\nlisten = \"127.0.0.1:{API_PORT}\"\n\n\
         [cluster]\nnode_id = {id}\nraft_listen = \"{ip}:{RAFT_PORT}\"\ndata_dir = \"{dir}/coord\"\n\
         witness = {witness}\n",
        name = host.name(),
        ip = host.ipv4(),
        dir = format!("/tmp/vigil-demo-{}-{}", std::process::id(), host.name()),
        witness = host.name() == "witness",
    );
    for (peer_id, addr) in peers.iter().filter(|(p, _)| *p != id) {
        let _ = write!(
            c,
            "\n[[cluster.peers]]\nid = {peer_id}\naddress = \"{addr}:{RAFT_PORT}\"\n"
        );
    }
    if host.name() != "witness" {
        let priority = if host.name() == "lb1" { 150 } else { 100 };
        let _ = write!(
            c,
            "\n[[vrrp_instance]]\nname = \"vi_web\"\ninterface = \"{iface}\"\nvrid = 51\n\
             priority = {priority}\nadvert_interval = \"100ms\"\nvips = [\"{VIP}\"]\n",
            iface = host.iface(),
        );
    }
    c
}

fn check_config(vigild: &Path, config: &Path) -> anyhow::Result<()> {
    let out = Command::new(vigild)
        .arg("--check-config")
        .arg("--config")
        .arg(config)
        .output()?;
    if !out.status.success() {
        bail!(
            "generated config {} is invalid:\n{}",
            config.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

fn wait_ready(vigilctl: &Path, host: &Host, config: &Path, daemon: &Process) -> anyhow::Result<()> {
    let argv = [
        path_str(vigilctl)?,
        "--config",
        path_str(config)?,
        "status",
        "--json",
    ];
    let ready = wait_for("vigild answers vigilctl", Duration::from_secs(10), || {
        daemon.is_running() && host.run(&argv).is_ok()
    });
    if ready.is_err() {
        bail!(
            "vigild on {} did not come up:\n{}",
            host.name(),
            daemon.log()
        );
    }
    Ok(())
}

fn binary(name: &str) -> anyhow::Result<PathBuf> {
    workspace_binary(name)
        .with_context(|| format!("{name} is not built next to vigil-demo; run scripts/demo"))
}

fn path_str(p: &Path) -> anyhow::Result<&str> {
    p.to_str()
        .with_context(|| format!("non-UTF-8 path {}", p.display()))
}

fn step(what: &str) {
    println!("\n==> {what}");
}

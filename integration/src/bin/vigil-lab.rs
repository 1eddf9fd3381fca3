//! `vigil-lab`: build and remove network labs by hand (`scripts/lab` wraps it).
//!
//! ```text
//! vigil-lab up [HOST…]     create a lab (default hosts: lb1 lb2 witness rs1 rs2 client), keep it
//! vigil-lab down [ID…]     remove the given hand-made labs, or all of them
//! vigil-lab gc [--all]     remove labs whose owner died (--all: hand-made ones too)
//! vigil-lab list           show every lab and its namespaces
//! vigil-lab hold [HOST…]   create a lab owned by this process, print its id, sleep (tests use
//!                          this to check that a SIGKILLed owner's lab is collected)
//! ```

use std::process::ExitCode;
use std::time::Duration;

use vigil_integration::{Lab, Owner, RunId, destroy, gc, labs};

const DEFAULT_HOSTS: [&str; 6] = ["lb1", "lb2", "witness", "rs1", "rs2", "client"];
const USAGE: &str =
    "usage: vigil-lab up [HOST...] | down [ID...] | gc [--all] | list | hold [HOST...]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        return ExitCode::from(64);
    };
    let result = match command.as_str() {
        "up" => up(rest),
        "down" => down(rest),
        "gc" => collect(rest),
        "list" => list(),
        "hold" => hold(rest),
        "-h" | "--help" | "help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("vigil-lab: unknown command {other:?}\n{USAGE}");
            return ExitCode::from(64);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("vigil-lab: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn host_names(args: &[String]) -> Vec<&str> {
    if args.is_empty() {
        DEFAULT_HOSTS.to_vec()
    } else {
        args.iter().map(String::as_str).collect()
    }
}

fn up(args: &[String]) -> anyhow::Result<()> {
    let lab = Lab::with_hosts(&host_names(args))?;
    println!(
        "lab {} is up (remove it with: scripts/lab down {})",
        lab.id(),
        lab.id()
    );
    println!("{:<10} {:<10} {:<10} enter with", "host", "ipv4", "ipv6");
    for host in lab.hosts() {
        println!(
            "{:<10} {:<10} {:<10} ip netns exec {} bash",
            host.name(),
            host.ipv4(),
            host.ipv6(),
            host.netns()
        );
    }
    println!("bridge: ip netns exec {} bridge link", lab.switch_netns());
    lab.persist()?;
    Ok(())
}

fn down(args: &[String]) -> anyhow::Result<()> {
    let wanted: Vec<RunId> = args
        .iter()
        .map(|arg| RunId::parse(arg).ok_or_else(|| anyhow::anyhow!("not a lab id: {arg:?}")))
        .collect::<anyhow::Result<_>>()?;
    for lab in labs()? {
        let manual = lab.owner == Some(Owner::Manual);
        if wanted.contains(&lab.run) || (wanted.is_empty() && manual) {
            destroy(&lab.run)?;
            println!("removed lab {}", lab.run);
        }
    }
    Ok(())
}

fn collect(args: &[String]) -> anyhow::Result<()> {
    let all = match args {
        [] => false,
        [flag] if flag == "--all" => true,
        _ => anyhow::bail!("{USAGE}"),
    };
    for run in gc(all)? {
        println!("removed lab {run}");
    }
    Ok(())
}

fn list() -> anyhow::Result<()> {
    for lab in labs()? {
        let owner = match &lab.owner {
            None => "unknown (stale)".to_owned(),
            Some(Owner::Manual) => "manual".to_owned(),
            Some(owner @ Owner::Process { pid, .. }) => {
                let state = if owner.is_alive() { "alive" } else { "dead" };
                format!("pid {pid} ({state})")
            }
        };
        println!(
            "{}  owner: {owner}  netns: {}",
            lab.run,
            lab.netns.join(" ")
        );
    }
    Ok(())
}

fn hold(args: &[String]) -> anyhow::Result<()> {
    let lab = Lab::with_hosts(&host_names(args))?;
    let mut pids = Vec::new();
    for host in lab.hosts() {
        let process = host.spawn("sleep", &["sleep", "3600"], &[])?;
        pids.push(process.pid().to_string());
    }
    println!("READY {} {}", lab.id(), pids.join(" "));
    loop {
        std::thread::sleep(Duration::from_hours(1));
    }
}

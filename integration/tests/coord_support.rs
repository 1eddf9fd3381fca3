//! Helpers of the coordination end-to-end tests: a cluster of real vigild processes in lab
//! hosts, and `vigilctl` runs inside them.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use vigil_integration::{Host, Process, wait_for_value};

use crate::vrrp_support::binary;

/// Raft port of every member.
const RAFT_PORT: u16 = 7401;
/// Client API port; it listens on every address so that a host can reach the others.
pub(crate) const CLIENT_PORT: u16 = 7402;
/// Session timeout of `lock`/`elect` in the tests: long enough to ride out a leader change
/// on a loaded machine (elections take 0.4–0.8 s here), short enough to keep expiry quick.
pub(crate) const SESSION: &str = "5s";
/// Generous bound for the cluster to elect a leader or catch a member up.
pub(crate) const SETTLE: Duration = Duration::from_secs(15);

/// One vigild of the cluster.
pub(crate) struct Member {
    pub(crate) host: Host,
    pub(crate) id: u64,
    pub(crate) config: PathBuf,
    pub(crate) data_dir: PathBuf,
    pub(crate) process: Process,
}

/// The config of member `id` on `host`, peers `peers` (id, host).
fn config(host: &Host, id: u64, witness: bool, peers: &[(u64, &Host)], state: &str) -> String {
    let mut c = format!(
        "[global]\nnode_name = \"{name}\"\nscript_user = \"root\"\nstate_dir = \"{state}\"\n\n\
         [api]\nlisten = \"127.0.0.1:7400\"\n\n\
         [cluster]\nnode_id = {id}\nraft_listen = \"{ip}:{RAFT_PORT}\"\n\
         client_listen = \"0.0.0.0:{CLIENT_PORT}\"\nwitness = {witness}\n\
         session_timeout = \"{SESSION}\"\nsession_timeout_min = \"1s\"\nsession_timeout_max = \"10s\"\n\
         heartbeat_interval = \"100ms\"\nelection_timeout_min = \"400ms\"\nelection_timeout_max = \"800ms\"\n",
        name = host.name(),
        ip = host.ipv4(),
    );
    for (peer, peer_host) in peers {
        let _ = write!(
            c,
            "\n[[cluster.peers]]\nid = {peer}\naddress = \"{}:{RAFT_PORT}\"\n",
            peer_host.ipv4()
        );
    }
    c
}

impl Member {
    /// Writes the config of member `id` and starts vigild on `host`.
    pub(crate) fn start(host: &Host, id: u64, witness: bool, peers: &[(u64, &Host)]) -> Self {
        let config_path = host.write_file("vigil.toml", "").expect("write config");
        let state = config_path.with_file_name("state");
        let text = config(
            host,
            id,
            witness,
            peers,
            state.to_str().expect("UTF-8 path"),
        );
        std::fs::write(&config_path, text).expect("write config");
        let check = Command::new(binary("vigild"))
            .args(["--check-config", "--config"])
            .arg(&config_path)
            .output()
            .expect("run vigild --check-config");
        assert!(
            check.status.success(),
            "generated config is invalid:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let process = spawn(host, &config_path);
        Self {
            host: host.clone(),
            id,
            config: config_path,
            data_dir: state.join("coord"),
            process,
        }
    }

    /// Starts vigild again with the same config and data.
    pub(crate) fn restart(&mut self) {
        self.process = spawn(&self.host, &self.config);
    }

    /// `vigilctl --config <this member's config> args…` inside the host.
    pub(crate) fn ctl(&self, args: &[&str]) -> Outcome {
        let mut argv = vec!["--config", self.config.to_str().expect("UTF-8 path")];
        argv.extend_from_slice(args);
        vigilctl(&self.host, &argv)
    }

    /// Runs `args` and panics (with the daemon's log) unless it succeeds; returns stdout.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.ctl(args);
        assert!(
            out.code == Some(0),
            "vigilctl {args:?} on {} failed: {out:?}\n--- vigild log ---\n{}",
            self.host.name(),
            self.process.log_tail(40)
        );
        out.stdout
    }

    /// The coordination part of `vigilctl status --json`, if the daemon answers.
    pub(crate) fn coord_status(&self) -> Option<serde_json::Value> {
        let out = self.ctl(&["status", "--json"]);
        if out.code != Some(0) {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        Some(v.get("coord")?.clone())
    }

    /// The leader this member follows, once it knows one.
    pub(crate) fn leader(&self) -> Option<u64> {
        self.coord_status()?.get("leader")?.as_u64()
    }

    /// This member's client API address as other hosts reach it.
    pub(crate) fn client_addr(&self) -> String {
        format!("{}:{CLIENT_PORT}", self.host.ipv4())
    }
}

fn spawn(host: &Host, config: &std::path::Path) -> Process {
    let vigild = binary("vigild");
    host.spawn(
        "vigild",
        &[
            vigild.to_str().expect("UTF-8 path"),
            "--config",
            config.to_str().expect("UTF-8 path"),
        ],
        &[("VIGIL_LOG_FORMAT", "plain"), ("RUST_LOG", "info")],
    )
    .expect("spawn vigild")
}

/// What a finished `vigilctl` said.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) code: Option<i32>,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
    pub(crate) took: Duration,
}

/// Runs vigilctl inside `host` to completion.
pub(crate) fn vigilctl(host: &Host, args: &[&str]) -> Outcome {
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", host.netns()])
        .arg(binary("vigilctl"))
        .args(args)
        .env("VIGIL_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .expect("run vigilctl");
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took: started.elapsed(),
    }
}

/// Starts members 1..=n on `hosts` (the `witness`-th, 1-based, as a witness) and waits until
/// all of them follow one leader; returns the members and that leader's id.
pub(crate) fn start_cluster(hosts: &[Host], witness: Option<u64>) -> (Vec<Member>, u64) {
    let ids: Vec<(u64, &Host)> = (1..).zip(hosts).collect();
    let members: Vec<Member> = ids
        .iter()
        .map(|&(id, host)| {
            let peers: Vec<(u64, &Host)> = ids.iter().copied().filter(|(p, _)| *p != id).collect();
            Member::start(host, id, witness == Some(id), &peers)
        })
        .collect();
    let leader = wait_leader(&members.iter().collect::<Vec<_>>());
    (members, leader)
}

/// Waits until every member of `members` names the same leader, one of them; returns it.
pub(crate) fn wait_leader(members: &[&Member]) -> u64 {
    let ids: Vec<u64> = members.iter().map(|m| m.id).collect();
    let agreed = wait_for_value("one leader for all", SETTLE, || {
        let leaders: Vec<Option<u64>> = members.iter().map(|m| m.leader()).collect();
        let first = leaders[0]?;
        (ids.contains(&first) && leaders.iter().all(|l| *l == Some(first))).then_some(first)
    });
    agreed.unwrap_or_else(|e| panic!("{e}\n{}", logs(members)))
}

/// Every member's log tail, for failure messages.
pub(crate) fn logs(members: &[&Member]) -> String {
    let mut out = String::new();
    for m in members {
        let _ = writeln!(
            out,
            "--- {} (node {}) ---\n{}",
            m.host.name(),
            m.id,
            m.process.log_tail(30)
        );
    }
    out
}

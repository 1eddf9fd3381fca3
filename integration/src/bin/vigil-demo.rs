//! `vigil-demo`: the README's main command (`scripts/demo` builds and runs it).
//!
//! Builds a lab — lb1, lb2 and a witness running `vigild`, two real servers and a client, all in
//! network namespaces on one bridge — shows every daemon through `vigilctl`, and tears it all
//! down again, also on failure or Ctrl-C (the lab's drop guard and `vigil-lab gc`).
//!
//! The show: lb1 and lb2 elect a VRRP master for the VIP, which holds it under quorum fencing
//! (`fencing = "quorum"`, the witness being the third voter) with a fencing token; `vigilctl
//! status` shows the whole cluster. Then the master's vigild is SIGKILLed and the demo measures
//! how long the client goes without an answer from the new master, which may claim the VIP only
//! once the dead master's coordination session has expired at the quorum, and does so under a
//! strictly larger token.

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use vigil_integration::{Host, Lab, Process, root_available, wait_for, workspace_binary};

/// The virtual IP the load balancers share.
const VIP: &str = "10.0.0.100/24";
const VIP_ADDR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// UDP port where each load balancer answers with its own name.
const ECHO_PORT: u16 = 9999;
/// Control API port; each host has its own loopback, so all use the same one.
const API_PORT: u16 = 7400;
const RAFT_PORT: u16 = 7401;
/// `[cluster.fencing] session_timeout` (vigild's default, written out for the explanation
/// printed after the kill): a crashed owner's VIPs move after this. Fenced VIPs carry a kernel
/// lifetime inside the lease, so it cannot be much shorter (with the default keep-alives every
/// 250 ms, `--check-config` refuses less than about 2.45 s).
const SESSION: Duration = Duration::from_secs(3);

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
        // State lives in the lab's directory, so the lab's teardown removes it too.
        let state = lab.dir().join(host.name()).join("state");
        let config = host.write_file("vigil.toml", &node_config(host, id, &peers, &state))?;
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

    let client = lab.host("client")?;
    let responders = Responders::start(&[&lbs[0], &lbs[1]])?;
    step("waiting for the VRRP election: the client must reach the VIP through lb1");
    let elected = wait_for("lb1 answers for the VIP", Duration::from_secs(15), || {
        who_answers(&client, Duration::from_millis(200)).as_deref() == Some("lb1")
    });
    if elected.is_err() {
        bail!("lb1 never answered for {VIP_ADDR}:\n{}", daemons[0].2.log());
    }
    println!("  client -> {VIP_ADDR}:{ECHO_PORT} answered by lb1");

    let ctl_json = |i: usize| -> Option<serde_json::Value> {
        let (host, config, _) = &daemons[i];
        let out = host
            .run(&[
                path_str(&vigilctl).ok()?,
                "--config",
                path_str(config).ok()?,
                "status",
                "--json",
            ])
            .ok()?;
        serde_json::from_str(&out).ok()
    };
    let Ok(old_token) = wait_value(
        "lb1 holds the VIP under a token, all three nodes up",
        || {
            let status = ctl_json(0)?;
            let token = holding_token(&status)?;
            // lb1's published record (what every node shows) has caught up with its token.
            let members = status["cluster"]["members"].as_array()?;
            let published = members.iter().any(|n| {
                n["node"] == "lb1" && n["record"]["vrrp"][0]["token"].as_u64() == Some(token)
            });
            (members.len() == 3 && members.iter().all(|n| n["up"] == true) && published)
                .then_some(token)
        },
    ) else {
        bail!(
            "lb1 never held the VIP under a fencing token:\n{}",
            daemons[0].2.log()
        );
    };

    step("vigilctl status on lb1 (every node shows the same cluster table)");
    print!(
        "{}",
        lbs[0].run(&[
            path_str(&vigilctl)?,
            "--config",
            path_str(&daemons[0].1)?,
            "status"
        ])?
    );

    // Whether lb1 also leads the coordination cluster: that decides how long its session
    // outlives it (see the explanation printed below).
    let led = ctl_json(0).and_then(|s| Some(s["coord"]["role"].as_str()? == "leader"));
    step("SIGKILL of the master's vigild (lb1); the client probes the VIP every 5 ms");
    let killed_at = Instant::now();
    daemons[0].2.kill()?;
    let Some(outage) = probe_until(&client, "lb2", killed_at, Duration::from_secs(15)) else {
        bail!("lb2 never answered for the VIP:\n{}", daemons[1].2.log());
    };
    println!(
        "  client-visible outage: {:.0} ms (lb2 answered for {VIP_ADDR} after the SIGKILL)",
        outage.as_secs_f64() * 1000.0
    );
    println!(
        "  why that long: VRRP notices the dead master in ~350 ms (3 x 100 ms adverts + skew), \
         but with\n  quorum fencing lb2 may claim the VIP only once lb1's coordination session \
         has expired at\n  the quorum: lb1 might be alive but cut off, and its VIP's kernel \
         lifetime ends inside its\n  lease, so two holders never overlap. The session ends \
         session_timeout ({} s) after lb1's last\n  keep-alive (one every 250 ms), {}",
        SESSION.as_secs(),
        match led {
            Some(true) => {
                "and lb1 also led the coordination cluster:\n  the others first elect a new \
                 leader (1.5-2 s here), which keeps the session's deadline: the\n  fencing \
                 session is renewed only by committed writes, so every member knows when it \
                 applied\n  the last one; then lb2 claims at once"
            }
            Some(false) => "then lb2 claims at once (it watches the owner znode's deletion)",
            None => "then lb2 claims at once (after a Raft election if lb1 led the cluster)",
        }
    );
    let Ok(new_token) = wait_value("lb2 holds the VIP under a token", || {
        holding_token(&ctl_json(1)?)
    }) else {
        bail!(
            "lb2 never held the VIP under a fencing token:\n{}",
            daemons[1].2.log()
        );
    };
    println!(
        "  fencing token: lb1 held the VIP under {old_token}, lb2 now under {new_token} ({})",
        if new_token > old_token {
            "strictly larger: anything stamped by lb1 is refused"
        } else {
            "NOT larger: fencing is broken"
        }
    );
    if new_token <= old_token {
        bail!("the new owner's token {new_token} is not larger than {old_token}");
    }
    let stale = lbs[0].has_address(IpAddr::V4(VIP_ADDR))?;
    println!(
        "  the dead lb1 still has {VIP_ADDR} configured: {}",
        if stale {
            "yes (its kernel lifetime has not run out yet)"
        } else {
            "no (its kernel lifetime ran out with the lease)"
        }
    );
    // The dead node is listed once its session expired; that is when lb2 claimed, so at most
    // a publishing round later.
    let _ = wait_value("lb1 listed as down, lb2's token published", || {
        let status = ctl_json(1)?;
        let members = status["cluster"]["members"].as_array()?;
        let lb1_down = members
            .iter()
            .any(|n| n["node"] == "lb1" && n["up"] == false);
        let lb2_published = members.iter().any(|n| {
            n["node"] == "lb2" && n["record"]["vrrp"][0]["token"].as_u64() == Some(new_token)
        });
        (lb1_down && lb2_published).then_some(())
    });
    println!("--- vigilctl status on lb2 ---");
    print!(
        "{}",
        lbs[1].run(&[
            path_str(&vigilctl)?,
            "--config",
            path_str(&daemons[1].1)?,
            "status"
        ])?
    );
    drop(responders);

    step("graceful stop (SIGTERM) of the remaining daemons");
    for (host, _, daemon) in daemons.iter().skip(1) {
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
fn node_config(host: &Host, id: u64, peers: &[(u64, String)], state: &Path) -> String {
    // Writing to a String cannot fail.
    let mut c = format!(
        "[global]\nnode_name = \"{name}\"\nlog_format = \"plain\"\nstate_dir = \"{dir}\"\n\n\
         [api]\nlisten = \"127.0.0.1:{API_PORT}\"\n\n\
         [cluster]\nnode_id = {id}\nraft_listen = \"{ip}:{RAFT_PORT}\"\ndata_dir = \"{dir}/coord\"\n\
         witness = {witness}\n\
         heartbeat_interval = \"100ms\"\nelection_timeout_min = \"500ms\"\n\
         election_timeout_max = \"1s\"\n[cluster.fencing]\nsession_timeout = \"{session}s\"\n",
        session = SESSION.as_secs(),
        name = host.name(),
        ip = host.ipv4(),
        dir = state.display(),
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
             priority = {priority}\nadvert_interval = \"100ms\"\ngarp_delay = \"0s\"\n\
             fencing = \"quorum\"\nvips = [\"{VIP}\"]\n",
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

/// UDP responders on the load balancers: each answers a datagram with its host name, so the
/// client can tell which one holds the VIP.
struct Responders {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Responders {
    fn start(hosts: &[&Host]) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for host in hosts {
            let socket = host.udp_socket(SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)))?;
            socket.set_read_timeout(Some(Duration::from_millis(100)))?;
            let (name, stop) = (host.name().to_owned(), Arc::clone(&stop));
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(name.as_bytes(), from);
                    }
                }
            }));
        }
        Ok(Self { stop, threads })
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Which load balancer answers one datagram from the client to the VIP, if any.
fn who_answers(client: &Host, wait: Duration) -> Option<String> {
    let socket = client
        .udp_socket(SocketAddr::from(([0, 0, 0, 0], 0)))
        .ok()?;
    socket
        .send_to(b"who", SocketAddr::new(IpAddr::V4(VIP_ADDR), ECHO_PORT))
        .ok()?;
    receive(&socket, Instant::now() + wait)
}

/// The next answer before `deadline`, if any.
fn receive(socket: &UdpSocket, deadline: Instant) -> Option<String> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())?;
    socket.set_read_timeout(Some(left)).ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Probes the VIP every 5 ms until `want` answers; returns the time since `since`. Answers
/// from anyone else (the old master, late replies to earlier probes) are ignored.
fn probe_until(client: &Host, want: &str, since: Instant, limit: Duration) -> Option<Duration> {
    let socket = client
        .udp_socket(SocketAddr::from(([0, 0, 0, 0], 0)))
        .ok()?;
    let vip = SocketAddr::new(IpAddr::V4(VIP_ADDR), ECHO_PORT);
    while since.elapsed() < limit {
        let _ = socket.send_to(b"who", vip);
        let next_probe = Instant::now() + Duration::from_millis(5);
        while let Some(answer) = receive(&socket, next_probe) {
            if answer == want {
                return Some(since.elapsed());
            }
        }
    }
    None
}

/// The fencing token `status` (of `vigilctl status --json`) holds the VIP under, if it does.
fn holding_token(status: &serde_json::Value) -> Option<u64> {
    let fencing = &status["vrrp"].as_array()?.first()?["fencing"];
    (fencing["holding"] == true).then(|| fencing["token"].as_u64())?
}

/// Polls `probe` for up to 20 s (an election, a session expiry and a claim).
fn wait_value<T>(what: &str, probe: impl FnMut() -> Option<T>) -> anyhow::Result<T> {
    Ok(vigil_integration::wait_for_value(
        what,
        Duration::from_secs(20),
        probe,
    )?)
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

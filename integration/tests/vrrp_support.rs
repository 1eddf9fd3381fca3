//! Helpers of the VRRP end-to-end tests: generated vigild configs, daemons, a UDP responder
//! that tells which load balancer answered for the VIP.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_integration::{Host, Process, wait_for, workspace_binary};

/// The IPv4 VIP of the tests (on the lab's 10.0.0.0/24).
pub(crate) const VIP4: &str = "10.0.0.100";
/// The IPv6 VIP of the tests (on the lab's fd00::/64).
pub(crate) const VIP6: &str = "fd00::100";
/// Port of the responder.
const ECHO_PORT: u16 = 9999;
/// Generous bound for anything VRRP does with 100 ms adverts on a loaded 2-core machine.
pub(crate) const SETTLE: Duration = Duration::from_secs(10);

/// One side's VRRP settings.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) priority: u8,
    pub(crate) preempt: bool,
    pub(crate) interval: &'static str,
    /// `None`: multicast; else the unicast peers.
    pub(crate) unicast_peers: Option<Vec<IpAddr>>,
    pub(crate) vips: Vec<String>,
    /// Extra lines for the `[[vrrp_instance]]` table.
    pub(crate) extra: String,
    /// Extra top-level tables (e.g. `[[track_script]]`).
    pub(crate) tables: String,
    /// Extra lines for the `[global]` table.
    pub(crate) global: String,
}

impl Node {
    pub(crate) fn new(priority: u8) -> Self {
        Self {
            priority,
            preempt: true,
            interval: "100ms",
            unicast_peers: None,
            vips: vec![format!("{VIP4}/24")],
            extra: String::new(),
            tables: String::new(),
            global: String::new(),
        }
    }
}

/// The config text for `host`; `state` is vigild's state directory (inside the lab's).
pub(crate) fn config(host: &Host, node: &Node, state: &Path) -> String {
    let mut c = format!(
        "[global]\nnode_name = \"{name}\"\nscript_user = \"root\"\nstate_dir = \"{state}\"\n{global}\n\
         [api]\nlisten = \"127.0.0.1:7400\"\n\n\
         [[vrrp_instance]]\nname = \"vi_web\"\ninterface = \"{iface}\"\nvrid = 51\n\
         priority = {prio}\nadvert_interval = \"{interval}\"\npreempt = {preempt}\n\
         garp_delay = \"0s\"\nfencing = \"off\"\nvips = [{vips}]\n",
        name = host.name(),
        state = state.display(),
        global = node.global,
        iface = host.iface(),
        prio = node.priority,
        interval = node.interval,
        preempt = node.preempt,
        vips = node
            .vips
            .iter()
            .map(|v| format!("\"{v}\""))
            .collect::<Vec<_>>()
            .join(", "),
    );
    if let Some(peers) = &node.unicast_peers {
        let peers: Vec<String> = peers.iter().map(|p| format!("\"{p}\"")).collect();
        let _ = write!(
            c,
            "transport = \"unicast\"\nunicast_peers = [{}]\n",
            peers.join(", ")
        );
    }
    c.push_str(&node.extra);
    c.push('\n');
    c.push_str(&node.tables);
    c
}

pub(crate) fn binary(name: &str) -> PathBuf {
    workspace_binary(name).unwrap_or_else(|| {
        panic!("{name} is not built in this target directory; run `cargo build -p vigil-daemon --bins` first")
    })
}

/// A running vigild with its config.
pub(crate) struct Daemon {
    pub(crate) host: Host,
    pub(crate) config: PathBuf,
    pub(crate) state: PathBuf,
    pub(crate) process: Process,
}

impl Daemon {
    /// Writes the config, checks it and starts vigild on `host`.
    pub(crate) fn start(host: &Host, node: &Node) -> Self {
        // Written twice: the lab decides where the host's directory is.
        let config = host.write_file("vigil.toml", "").expect("write config");
        let state = config.with_file_name("state");
        std::fs::write(&config, self::config(host, node, &state)).expect("write config");
        let vigild = binary("vigild");
        let check = std::process::Command::new(&vigild)
            .args(["--check-config", "--config"])
            .arg(&config)
            .output()
            .expect("run vigild --check-config");
        assert!(
            check.status.success(),
            "generated config is invalid:\n{}",
            String::from_utf8_lossy(&check.stderr)
        );
        let process = host
            .spawn(
                "vigild",
                &[
                    vigild.to_str().expect("UTF-8 path"),
                    "--config",
                    config.to_str().expect("UTF-8 path"),
                ],
                &[("VIGIL_LOG_FORMAT", "plain"), ("RUST_LOG", "info")],
            )
            .expect("spawn vigild");
        Self {
            host: host.clone(),
            config,
            state,
            process,
        }
    }

    /// The VRRP state `vigilctl status` shows for `vi_web`, if it answers.
    pub(crate) fn state(&self) -> Option<String> {
        let vigilctl = binary("vigilctl");
        let out = self
            .host
            .run(&[
                vigilctl.to_str()?,
                "--config",
                self.config.to_str()?,
                "status",
            ])
            .ok()?;
        out.lines()
            .find(|l| l.starts_with("vi_web "))
            .and_then(|l| l.split_whitespace().nth(2))
            .map(str::to_owned)
    }

    /// The value of one series (name and labels, as exposed) from `vigilctl metrics`.
    pub(crate) fn metric(&self, series: &str) -> Option<f64> {
        let vigilctl = binary("vigilctl");
        let out = self
            .host
            .run(&[
                vigilctl.to_str()?,
                "--config",
                self.config.to_str()?,
                "metrics",
            ])
            .ok()?;
        out.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `vigilctl status` shows `state`.
    pub(crate) fn wait_state(&self, state: &str, timeout: Duration) {
        let ok = wait_for(&format!("{} {state}", self.host.name()), timeout, || {
            self.state().as_deref() == Some(state)
        });
        assert!(
            ok.is_ok(),
            "{} did not reach {state} (now {:?}); log:\n{}",
            self.host.name(),
            self.state(),
            self.process.log()
        );
    }
}

/// Whether `host` has `addr` configured.
pub(crate) fn holds(host: &Host, addr: &str) -> bool {
    host.has_address(addr.parse().expect("address"))
        .expect("ip addr")
}

/// Waits until exactly `owner` (of `hosts`) holds `addr`; panics with the daemons' logs.
pub(crate) fn wait_owner(addr: &str, owner: &Host, hosts: &[&Host], daemons: &[&Daemon]) {
    let ok = wait_for(&format!("{addr} only on {}", owner.name()), SETTLE, || {
        hosts
            .iter()
            .all(|h| holds(h, addr) == (h.name() == owner.name()))
    });
    if ok.is_err() {
        let mut logs = String::new();
        for d in daemons {
            let _ = writeln!(logs, "--- {} ---\n{}", d.host.name(), d.process.log());
        }
        panic!("{addr} did not settle on {} alone:\n{logs}", owner.name());
    }
}

/// UDP responders on the load balancers: each answers with its host name.
pub(crate) struct Responders {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Responders {
    pub(crate) fn start(hosts: &[&Host], any: IpAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for host in hosts {
            let socket = host
                .udp_socket(SocketAddr::new(any, ECHO_PORT))
                .expect("responder socket");
            socket
                .set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            let name = host.name().to_owned();
            let stop = Arc::clone(&stop);
            threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(name.as_bytes(), from);
                    }
                }
            }));
        }
        Self { stop, threads }
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

/// Which load balancer answers a datagram from `client` to `vip`, if any within 300 ms.
pub(crate) fn who_answers(client: &Host, vip: IpAddr) -> Option<String> {
    let any: IpAddr = if vip.is_ipv4() {
        "0.0.0.0".parse().ok()?
    } else {
        "::".parse().ok()?
    };
    let socket = client.udp_socket(SocketAddr::new(any, 0)).ok()?;
    socket
        .set_read_timeout(Some(Duration::from_millis(300)))
        .ok()?;
    socket
        .send_to(b"who", SocketAddr::new(vip, ECHO_PORT))
        .ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Waits until `lb` answers for `vip` from `client`.
pub(crate) fn wait_answer(client: &Host, vip: IpAddr, lb: &str, daemons: &[&Daemon]) {
    let deadline = Instant::now() + SETTLE;
    let mut last = None;
    while Instant::now() < deadline {
        last = who_answers(client, vip);
        if last.as_deref() == Some(lb) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut logs = String::new();
    for d in daemons {
        let _ = writeln!(logs, "--- {} ---\n{}", d.host.name(), d.process.log());
    }
    panic!("{lb} never answered for {vip} (last answer {last:?}):\n{logs}");
}

//! The lab: a switch namespace with a bridge, host namespaces plugged into it, and teardown.
//!
//! ```text
//!  netns vigil-<id>-lb1    netns vigil-<id>-lb2    netns vigil-<id>-witness
//!  vnet0 10.0.0.1/24       vnet0 10.0.0.2/24       vnet0 10.0.0.3/24
//!        |                       |                       |         veth pairs
//!  +-----+-------------- netns vigil-<id> ---------------+------+
//!  |  v<id>00               v<id>01               v<id>02       |
//!  |  bridge br-<id>; nftables `bridge vigil_lab` = partitions  |
//!  +------------------------------------------------------------+
//! ```
//!
//! Nothing is created in the machine's own namespace: veth pairs are made inside the switch
//! namespace with their far end placed straight into the host namespace.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nix::unistd::geteuid;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::host::{Host, HostInfo};
use crate::naming::{HOST_IFACE, RunId, validate_host_name};
use crate::partition::Cuts;
use crate::probe::{self, Family};
use crate::process::Process;
use crate::state::{self, Owner};

/// Hosts get `10.0.0.<index + 1>`, so 250 leaves `.251`–`.254` free for VIPs.
const MAX_HOSTS: usize = 250;
/// Set to keep each lab's directory of logs and configs after a test that passed.
pub const KEEP_LOGS_ENV: &str = "VIGIL_LAB_KEEP_LOGS";
/// Lines of each process log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;

/// A network lab; dropping it kills every process and removes every namespace it created, also
/// while a test panics (and then prints the tail of every process log first).
#[derive(Debug)]
pub struct Lab {
    shared: Arc<Shared>,
    /// Set by [`Lab::persist`]: the lab outlives this value and is removed by `vigil-lab down`.
    keep: bool,
}

/// State shared by the lab and its [`Host`] handles.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) run: RunId,
    /// Per-lab directory for logs and generated configs.
    pub(crate) dir: PathBuf,
    pub(crate) hosts: Mutex<Vec<HostInfo>>,
    pub(crate) procs: Mutex<Vec<Process>>,
    cuts: Mutex<Cuts>,
}

impl Shared {
    pub(crate) fn register(&self, process: Process) {
        lock(&self.procs).push(process);
    }
}

impl Lab {
    /// Creates an empty lab (switch namespace and bridge), after removing stale labs of dead runs.
    pub fn new() -> Result<Self> {
        let euid = geteuid();
        if !euid.is_root() {
            return Err(LabError::NotRoot {
                euid: euid.as_raw(),
            });
        }
        if let Err(e) = state::gc(false) {
            eprintln!("vigil-lab: could not remove stale labs: {e}");
        }
        let owner = Owner::current();
        let (run, dir) = Self::claim_id(&owner)?;
        // From here on `Drop` cleans up whatever part of the lab exists.
        let lab = Self {
            shared: Arc::new(Shared {
                run,
                dir,
                hosts: Mutex::new(Vec::new()),
                procs: Mutex::new(Vec::new()),
                cuts: Mutex::new(Cuts::default()),
            }),
            keep: false,
        };
        fs::create_dir_all(&lab.shared.dir)
            .map_err(|e| LabError::io("create", &lab.shared.dir, e))?;
        lab.create_switch()?;
        Ok(lab)
    }

    /// Creates a lab with the named hosts, in order (so the first gets `10.0.0.1`).
    pub fn with_hosts(names: &[&str]) -> Result<Self> {
        let lab = Self::new()?;
        for name in names {
            lab.add_host(name)?;
        }
        Ok(lab)
    }

    /// This run's unique id.
    pub fn id(&self) -> &RunId {
        &self.shared.run
    }

    /// The directory holding process logs and files written with [`Host::write_file`].
    pub fn dir(&self) -> &Path {
        &self.shared.dir
    }

    /// The namespace holding the bridge (for debugging: `ip netns exec <it> bridge link`).
    pub fn switch_netns(&self) -> String {
        self.shared.run.switch_netns()
    }

    /// Adds a host: a namespace with `lo` up, `vnet0` on the bridge with `10.0.0.<n>/24` and
    /// `fd00::<n>/64` (no DAD), a route for IPv4 multicast, and explicit `rp_filter=0`,
    /// `arp_ignore=0`, `arp_announce=0` (namespaces do not inherit the machine's values).
    pub fn add_host(&self, name: &str) -> Result<Host> {
        validate_host_name(name)?;
        let mut hosts = lock(&self.shared.hosts);
        if hosts.iter().any(|h| h.name == name) {
            return Err(LabError::DuplicateHost {
                name: name.to_owned(),
            });
        }
        let index = hosts.len();
        if index >= MAX_HOSTS {
            return Err(LabError::TooManyHosts { max: MAX_HOSTS });
        }
        let info = HostInfo {
            name: name.to_owned(),
            netns: self.shared.run.host_netns(name),
            index,
        };
        let host = Host::from_info(Arc::clone(&self.shared), info.clone());
        self.create_host(&host)?;
        hosts.push(info);
        Ok(host)
    }

    /// The host called `name`.
    pub fn host(&self, name: &str) -> Result<Host> {
        lock(&self.shared.hosts)
            .iter()
            .find(|h| h.name == name)
            .map(|info| Host::from_info(Arc::clone(&self.shared), info.clone()))
            .ok_or_else(|| LabError::UnknownHost {
                name: name.to_owned(),
            })
    }

    /// All hosts, in creation order.
    pub fn hosts(&self) -> Vec<Host> {
        lock(&self.shared.hosts)
            .iter()
            .map(|info| Host::from_info(Arc::clone(&self.shared), info.clone()))
            .collect()
    }

    /// Every process started in this lab so far.
    pub fn processes(&self) -> Vec<Process> {
        lock(&self.shared.procs).clone()
    }

    /// Cuts `host` off from every other host (its link stays up, as behind a failed switch).
    pub fn cut(&self, host: &Host) -> Result<()> {
        let host = self.member(host)?;
        self.update_cuts(|cuts| cuts.isolate(host))
    }

    /// Undoes [`Lab::cut`] (pairwise cuts involving `host` stay).
    pub fn heal(&self, host: &Host) -> Result<()> {
        let host = self.member(host)?;
        self.update_cuts(|cuts| cuts.rejoin(host))
    }

    /// Stops all traffic between `a` and `b` only; both still reach every other host.
    pub fn cut_between(&self, a: &Host, b: &Host) -> Result<()> {
        let (a, b) = (self.member(a)?, self.member(b)?);
        self.update_cuts(|cuts| cuts.cut_pair(a, b))
    }

    /// Undoes [`Lab::cut_between`].
    pub fn heal_between(&self, a: &Host, b: &Host) -> Result<()> {
        let (a, b) = (self.member(a)?, self.member(b)?);
        self.update_cuts(|cuts| cuts.heal_pair(a, b))
    }

    /// Removes every cut.
    pub fn heal_all(&self) -> Result<()> {
        self.update_cuts(Cuts::clear)
    }

    /// Whether the lab's filters currently drop traffic between `a` and `b` (what was asked for;
    /// [`Lab::udp_exchange`] tells what the network actually does).
    pub fn is_cut(&self, a: &Host, b: &Host) -> bool {
        lock(&self.shared.cuts).blocks(a.index(), b.index())
    }

    /// Takes `host`'s link down at the bridge: unlike [`Lab::cut`], the host sees `vnet0` lose
    /// carrier, as when a cable is pulled.
    pub fn link_down(&self, host: &Host) -> Result<()> {
        self.set_port(host, "down")
    }

    /// Undoes [`Lab::link_down`].
    pub fn link_up(&self, host: &Host) -> Result<()> {
        self.set_port(host, "up")
    }

    /// Whether a UDP datagram from `from` reaches `to` over IPv4 and the answer comes back within
    /// `timeout`.
    pub fn udp_exchange(&self, from: &Host, to: &Host, timeout: Duration) -> Result<bool> {
        probe::udp_exchange(from, to, Family::V4, timeout)
    }

    /// [`Lab::udp_exchange`] over the hosts' `fd00::` addresses.
    pub fn udp_exchange_v6(&self, from: &Host, to: &Host, timeout: Duration) -> Result<bool> {
        probe::udp_exchange(from, to, Family::V6, timeout)
    }

    /// Hands the lab over to a human: it survives this value and its owner process, and only
    /// `vigil-lab down` (or `gc --all`) removes it. Returns its id.
    pub fn persist(mut self) -> Result<RunId> {
        state::write_owner(&self.shared.run, &Owner::Manual)?;
        self.keep = true;
        Ok(self.shared.run.clone())
    }

    /// Claims the next free run id; ids of this pid can only be taken by this process's own live
    /// labs or by stale ones the collector could not remove.
    fn claim_id(owner: &Owner) -> Result<(RunId, PathBuf)> {
        for _ in 0..RunId::PER_PROCESS {
            let run = RunId::next();
            let dir = std::env::temp_dir().join(format!("vigil-lab-{run}"));
            if state::claim(&run, owner, &dir)? {
                return Ok((run, dir));
            }
        }
        Err(LabError::io(
            "claim a run id in",
            state::STATE_DIR,
            std::io::ErrorKind::AlreadyExists.into(),
        ))
    }

    fn create_switch(&self) -> Result<()> {
        let run = &self.shared.run;
        let ns = run.switch_netns();
        cmd::ip(&["netns", "add", &ns])?;
        // New namespaces default bridge-nf-call-* to 1, which would send bridged frames through
        // netfilter's IP hooks; the switch also stays silent on IPv6 (no RS/MLD of its own).
        cmd::sysctl_in(
            &ns,
            &[
                "net.bridge.bridge-nf-call-iptables=0".into(),
                "net.bridge.bridge-nf-call-ip6tables=0".into(),
                "net.bridge.bridge-nf-call-arptables=0".into(),
                "net.ipv6.conf.all.disable_ipv6=1".into(),
                "net.ipv6.conf.default.disable_ipv6=1".into(),
            ],
        )?;
        let bridge = run.bridge();
        // No STP and no forward delay: ports forward at once. No multicast snooping: VRRP's
        // 224.0.0.18 is flooded anyway, and ff02::12 must be flooded too.
        cmd::ip_in(
            &ns,
            &[
                "link",
                "add",
                &bridge,
                "type",
                "bridge",
                "stp_state",
                "0",
                "forward_delay",
                "0",
                "mcast_snooping",
                "0",
            ],
        )?;
        cmd::ip_in(&ns, &["link", "set", &bridge, "up"]).map(drop)
    }

    fn create_host(&self, host: &Host) -> Result<()> {
        let run = &self.shared.run;
        let ns = host.netns();
        cmd::ip(&["netns", "add", ns])?;
        // `default` must be set before vnet0 arrives: a device moved into a namespace takes its
        // per-interface settings from there.
        let mut settings = Vec::new();
        for scope in ["all", "default"] {
            settings.push(format!("net.ipv4.conf.{scope}.rp_filter=0"));
            settings.push(format!("net.ipv4.conf.{scope}.arp_ignore=0"));
            settings.push(format!("net.ipv4.conf.{scope}.arp_announce=0"));
            settings.push(format!("net.ipv6.conf.{scope}.accept_dad=0"));
        }
        cmd::sysctl_in(ns, &settings)?;
        let switch = run.switch_netns();
        let port = run.port(host.index());
        cmd::ip_in(
            &switch,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", HOST_IFACE, "netns", ns,
            ],
        )?;
        cmd::ip_in(
            &switch,
            &["link", "set", &port, "master", &run.bridge(), "up"],
        )?;
        cmd::ip_in(ns, &["link", "set", "lo", "up"])?;
        cmd::ip_in(ns, &["link", "set", HOST_IFACE, "up"])?;
        let v4 = format!("{}/24", host.ipv4());
        cmd::ip_in(ns, &["addr", "add", &v4, "dev", HOST_IFACE])?;
        let v6 = format!("{}/64", host.ipv6());
        cmd::ip_in(ns, &["addr", "add", &v6, "dev", HOST_IFACE, "nodad"])?;
        // Without a default route, sending to 224.0.0.18 would fail with ENETUNREACH.
        cmd::ip_in(ns, &["route", "add", "224.0.0.0/4", "dev", HOST_IFACE]).map(drop)
    }

    fn update_cuts(&self, change: impl FnOnce(&mut Cuts)) -> Result<()> {
        if !cmd::tool_exists("nft") {
            return Err(LabError::ToolMissing {
                tool: "nft",
                package: "nftables",
            });
        }
        let mut cuts = lock(&self.shared.cuts);
        let mut next = cuts.clone();
        change(&mut next);
        let run = &self.shared.run;
        let script = next.ruleset(|index| run.port(index));
        let switch = run.switch_netns();
        cmd::run_with_input(
            "ip",
            &["netns", "exec", &switch, "nft", "-f", "-"],
            Some(&script),
        )?;
        *cuts = next;
        Ok(())
    }

    fn set_port(&self, host: &Host, state: &str) -> Result<()> {
        let index = self.member(host)?;
        let run = &self.shared.run;
        cmd::ip_in(
            &run.switch_netns(),
            &["link", "set", &run.port(index), state],
        )
        .map(drop)
    }

    /// `host`'s index, after checking it is a host of this lab (indices of another lab's hosts
    /// would name the wrong ports here).
    fn member(&self, host: &Host) -> Result<usize> {
        if host.belongs_to(&self.shared) {
            Ok(host.index())
        } else {
            Err(LabError::UnknownHost {
                name: format!("{} (a host of another lab)", host.name()),
            })
        }
    }

    fn teardown(&self) {
        let panicking = std::thread::panicking();
        let procs = std::mem::take(&mut *lock(&self.shared.procs));
        // How each process stood when the test failed, before teardown kills it.
        let before: Vec<_> = procs.iter().map(Process::exit_status).collect();
        for process in &procs {
            if let Err(e) = process.kill() {
                eprintln!("vigil-lab {}: {e}", self.shared.run);
            }
        }
        if panicking {
            self.print_logs(&procs, &before);
        }
        // Also kills what escaped its process group, then deletes the namespaces (and with them
        // the veths and the bridge) and the ownership record.
        if let Err(e) = state::remove_namespaces(&self.shared.run) {
            eprintln!("vigil-lab {}: teardown failed: {e}", self.shared.run);
        }
        if panicking || std::env::var_os(KEEP_LOGS_ENV).is_some() {
            eprintln!(
                "vigil-lab {}: logs kept in {}",
                self.shared.run,
                self.shared.dir.display()
            );
        } else if let Err(e) = fs::remove_dir_all(&self.shared.dir) {
            eprintln!(
                "vigil-lab {}: cannot remove {}: {e}",
                self.shared.run,
                self.shared.dir.display()
            );
        }
    }

    fn print_logs(&self, procs: &[Process], before: &[Option<ExitStatus>]) {
        eprintln!(
            "vigil-lab {}: test failed; last {LOG_TAIL_LINES} lines of each of {} process logs:",
            self.shared.run,
            procs.len()
        );
        for (process, exit) in procs.iter().zip(before) {
            let exit =
                exit.map_or_else(|| "was running".to_owned(), |s| format!("had exited: {s}"));
            eprintln!(
                "===== {} (pid {}, {exit}) {} =====\n{}",
                process.label(),
                process.pid(),
                process.log_path().display(),
                process.log_tail(LOG_TAIL_LINES)
            );
        }
        eprintln!("===== end of vigil-lab {} logs =====", self.shared.run);
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if !self.keep {
            self.teardown();
        }
    }
}

/// Locks a lab mutex; a panic elsewhere must not stop teardown, so poisoning is ignored.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

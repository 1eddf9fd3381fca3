//! The two VRRP implementations under test, configured identically: VRRPv3, virtual router 51,
//! the same VIP and advert interval, no gratuitous-ARP delay; vigild without quorum fencing, or
//! with it ([`Quorum`]: lb1, lb2 and a witness as the three voters).

use std::fmt::{self, Write as _};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use vigil_integration::{Host, Process, daemons, workspace_binary};

/// The VIP with its prefix (the lab's segment is 10.0.0.0/24).
pub const VIP_CIDR: &str = "10.0.0.100/24";

/// A VRRP daemon implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Implementation {
    /// This workspace's `vigild`.
    Vigild,
    /// keepalived (VRRP subsystem only).
    Keepalived,
}

impl fmt::Display for Implementation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Vigild => "vigild",
            Self::Keepalived => "keepalived",
        })
    }
}

/// Where each implementation's binary is.
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `vigild`, next to the running executable.
    pub vigild: PathBuf,
    /// keepalived, if installed.
    pub keepalived: PathBuf,
}

impl Binaries {
    /// Finds both binaries or says which one is missing.
    pub fn find() -> anyhow::Result<Self> {
        let vigild = workspace_binary("vigild").context(
            "vigild is not built next to vigil-failover; build it in the same profile \
             (cargo build --release -p vigil-daemon --bins)",
        )?;
        let keepalived = daemons::keepalived_binary()
            .context("keepalived is not installed (scripts/install-deps installs it)")?;
        Ok(Self { vigild, keepalived })
    }
}

/// One daemon's settings for a series.
#[derive(Debug, Clone, Copy)]
pub struct Setup {
    /// Which implementation.
    pub implementation: Implementation,
    /// VRRP priority (150 for the master, 100 for the backup).
    pub priority: u8,
    /// Advertisement interval.
    pub interval: Duration,
    /// vigild only: `fencing = "quorum"` in this three-voter cluster; `None`: `fencing = "off"`
    /// and no cluster.
    pub quorum: Option<Quorum>,
    /// Real-time scheduling of the VRRP work.
    pub scheduling: Scheduling,
}

/// Real-time scheduling of both daemons' VRRP work (`vigil-failover --rt-priority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scheduling {
    /// Each daemon's own default: vigild's VRRP threads under `SCHED_RR` at 10 with
    /// `RLIMIT_RTTIME` 100 ms, keepalived with normal scheduling.
    #[default]
    Defaults,
    /// Both with normal scheduling (vigild: `vrrp_rt_priority = 0`).
    Normal,
    /// Both under `SCHED_RR` at this priority with the same `RLIMIT_RTTIME`
    /// ([`RLIMIT_RTIME`]): vigild's VRRP threads, keepalived's whole VRRP process
    /// (`vrrp_rt_priority` and `vrrp_rlimit_rtime` in `global_defs`).
    Realtime(u8),
}

impl fmt::Display for Scheduling {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Defaults => f.write_str("each daemon's default"),
            Self::Normal => f.write_str("normal scheduling"),
            Self::Realtime(p) => write!(f, "SCHED_RR priority {p}"),
        }
    }
}

/// The `RLIMIT_RTTIME` both daemons get under [`Scheduling::Realtime`]: vigild's default
/// `vrrp_rlimit_rtime`.
pub const RLIMIT_RTIME: Duration = Duration::from_millis(100);

/// The coordination cluster of a fenced series: lb1, lb2 and the witness (Raft ids 1, 2, 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quorum {
    /// The voters' addresses, in id order: lb1, lb2, witness.
    pub voters: [Ipv4Addr; 3],
    /// `[cluster.fencing] session_timeout`: how long a crashed owner's session outlives it.
    pub session_timeout: Duration,
}

/// Raft port of every voter (each host has its own network namespace).
const RAFT_PORT: u16 = 7401;

impl Quorum {
    /// The Raft id of the voter at `addr`.
    fn id_of(&self, addr: Ipv4Addr) -> Option<usize> {
        self.voters.iter().position(|v| *v == addr).map(|i| i + 1)
    }

    /// The `[cluster]` section of the voter on `host` (the witness when `witness`).
    fn section(&self, host: &Host, witness: bool) -> anyhow::Result<String> {
        let id = self
            .id_of(host.ipv4())
            .with_context(|| format!("{} is not a voter of the quorum", host.name()))?;
        let ms = self.session_timeout.as_millis();
        let mut c = format!(
            "[cluster]\nnode_id = {id}\nraft_listen = \"{addr}:{RAFT_PORT}\"\nwitness = {witness}\n\
             session_timeout_min = \"{ms}ms\"\n\
             heartbeat_interval = \"100ms\"\nelection_timeout_min = \"500ms\"\n\
             election_timeout_max = \"1s\"\n[cluster.fencing]\nsession_timeout = \"{ms}ms\"\n",
            addr = host.ipv4(),
        );
        for (i, peer) in self.voters.iter().enumerate().filter(|(i, _)| i + 1 != id) {
            // Writing to a String cannot fail.
            let _ = write!(
                c,
                "\n[[cluster.peers]]\nid = {}\naddress = \"{peer}:{RAFT_PORT}\"\n",
                i + 1
            );
        }
        Ok(c)
    }
}

/// Starts the witness of `quorum` on `host`: a voter with no VRRP instance.
pub fn start_witness(bins: &Binaries, host: &Host, quorum: &Quorum) -> anyhow::Result<Process> {
    let cluster = quorum.section(host, true)?;
    spawn_vigild(&bins.vigild, host, |state| {
        format!(
            "[global]\nnode_name = \"{name}\"\nstate_dir = \"{state}\"\n\n\
             [api]\nlisten = \"127.0.0.1:7400\"\n\n{cluster}",
            name = host.name(),
            state = state.display(),
        )
    })
}

/// Starts the daemon `setup` describes on `host`; its config lives in the host's lab directory.
pub fn start(bins: &Binaries, host: &Host, setup: Setup) -> anyhow::Result<Process> {
    match setup.implementation {
        Implementation::Vigild => start_vigild(&bins.vigild, host, setup),
        Implementation::Keepalived => start_keepalived(&bins.keepalived, host, setup),
    }
}

fn start_vigild(bin: &Path, host: &Host, setup: Setup) -> anyhow::Result<Process> {
    let cluster = match &setup.quorum {
        Some(quorum) => Some(quorum.section(host, false)?),
        None => None,
    };
    spawn_vigild(bin, host, |state| {
        vigild_config(host, setup, state, cluster.as_deref())
    })
}

/// Removes the state directory of the vigild on `host` (stopped), e.g. its Raft log.
pub fn wipe_state(host: &Host) -> anyhow::Result<()> {
    // The config is rewritten by the next start; only its directory is wanted here.
    let state = host.write_file("vigil.toml", "")?.with_file_name("state");
    match std::fs::remove_dir_all(&state) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", state.display()))
        }
        _ => Ok(()),
    }
}

/// Writes the config `config(state_dir)` returns as the host's `vigil.toml`, has vigild validate
/// it (`--check-config`), and starts vigild on `host` with plain logs.
pub fn spawn_vigild(
    bin: &Path,
    host: &Host,
    config: impl FnOnce(&Path) -> String,
) -> anyhow::Result<Process> {
    // Written twice: the lab decides where the host's directory is, and the state directory
    // sits next to the config so the lab's teardown removes it.
    let path = host.write_file("vigil.toml", "")?;
    let text = config(&path.with_file_name("state"));
    let config = path;
    std::fs::write(&config, text).with_context(|| format!("writing {}", config.display()))?;
    daemons::check_vigild_config(bin, &config)
        .with_context(|| format!("generated vigild config {} is invalid", config.display()))?;
    Ok(daemons::spawn_vigild(bin, host, &config)?)
}

/// vigild's config: one VRRPv3 instance, under quorum fencing when `cluster` (the `[cluster]`
/// section) is given.
fn vigild_config(host: &Host, setup: Setup, state: &Path, cluster: Option<&str>) -> String {
    let realtime = match setup.scheduling {
        Scheduling::Defaults => String::new(),
        Scheduling::Normal => "vrrp_rt_priority = 0\n".to_owned(),
        Scheduling::Realtime(p) => format!(
            "vrrp_rt_priority = {p}\nvrrp_rlimit_rtime = \"{}ms\"\n",
            RLIMIT_RTIME.as_millis()
        ),
    };
    format!(
        "[global]\nnode_name = \"{name}\"\nstate_dir = \"{state}\"\n{realtime}\n\
         [api]\nlisten = \"127.0.0.1:7400\"\n\n{cluster}\n\
         [[vrrp_instance]]\nname = \"vi_bench\"\ninterface = \"{iface}\"\nvrid = 51\n\
         version = 3\npriority = {prio}\nadvert_interval = \"{ms}ms\"\npreempt = true\n\
         garp_delay = \"0s\"\nfencing = \"{fencing}\"\nvips = [\"{VIP_CIDR}\"]\n",
        name = host.name(),
        state = state.display(),
        cluster = cluster.unwrap_or_default(),
        fencing = if cluster.is_some() { "quorum" } else { "off" },
        iface = host.iface(),
        prio = setup.priority,
        ms = setup.interval.as_millis(),
    )
}

fn start_keepalived(bin: &Path, host: &Host, setup: Setup) -> anyhow::Result<Process> {
    spawn_keepalived(bin, host, &keepalived_config(host, setup), &["-P"])
}

/// Writes `conf` as the host's `keepalived.conf` and starts keepalived on `host` in the
/// foreground with console logs, `subsystem` choosing what runs (`-P`: VRRP only, `-C`: the
/// checkers only). Its pid files live in the host's lab directory.
pub fn spawn_keepalived(
    bin: &Path,
    host: &Host,
    conf: &str,
    subsystem: &[&str],
) -> anyhow::Result<Process> {
    let conf = host.write_file("keepalived.conf", conf)?;
    Ok(daemons::spawn_keepalived(bin, host, &conf, subsystem)?)
}

/// keepalived's config for the same virtual router; `state BACKUP` everywhere so both
/// implementations start the same way and the priorities decide.
fn keepalived_config(host: &Host, setup: Setup) -> String {
    let realtime = match setup.scheduling {
        Scheduling::Defaults | Scheduling::Normal => String::new(),
        Scheduling::Realtime(p) => format!(
            "  vrrp_rt_priority {p}\n  vrrp_rlimit_rtime {}\n",
            RLIMIT_RTIME.as_micros()
        ),
    };
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_garp_master_delay 0\n{realtime}}}\n\
         vrrp_instance VI_bench {{\n  state BACKUP\n  interface {iface}\n  virtual_router_id 51\n\
         \x20 priority {prio}\n  version 3\n  advert_int {secs}\n\
         \x20 virtual_ipaddress {{\n    {VIP_CIDR} dev {iface}\n  }}\n}}\n",
        name = host.name(),
        iface = host.iface(),
        prio = setup.priority,
        secs = setup.interval.as_secs_f64(),
    )
}

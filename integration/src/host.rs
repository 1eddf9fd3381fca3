//! One lab host: a network namespace with `vnet0` on the lab bridge.

use std::ffi::OsStr;
use std::fmt;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::cmd;
use crate::error::{LabError, Result};
use crate::lab::Shared;
use crate::naming::HOST_IFACE;
use crate::netns::in_netns;
use crate::process::{Process, open_log};

/// What the lab records about each host (no handle back to the lab, so there is no `Arc` cycle).
#[derive(Clone, Debug)]
pub(crate) struct HostInfo {
    pub(crate) name: String,
    pub(crate) netns: String,
    pub(crate) index: usize,
}

/// A handle on one host of a [`crate::Lab`]; cheap to clone. It stays usable for as long as the
/// lab lives; after the lab is dropped its operations fail (the namespace is gone).
#[derive(Clone)]
pub struct Host {
    shared: Arc<Shared>,
    info: HostInfo,
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host")
            .field("name", &self.info.name)
            .field("netns", &self.info.netns)
            .field("ipv4", &self.ipv4())
            .finish_non_exhaustive()
    }
}

impl Host {
    pub(crate) fn from_info(shared: Arc<Shared>, info: HostInfo) -> Self {
        Self { shared, info }
    }

    pub(crate) fn belongs_to(&self, shared: &Arc<Shared>) -> bool {
        Arc::ptr_eq(&self.shared, shared)
    }

    /// The host's name in the lab (`"lb1"`).
    pub fn name(&self) -> &str {
        &self.info.name
    }

    /// The host's network namespace, for `ip netns exec`.
    pub fn netns(&self) -> &str {
        &self.info.netns
    }

    /// Position in the lab, from 0 in creation order.
    pub fn index(&self) -> usize {
        self.info.index
    }

    /// The lab interface inside the host (`vnet0`).
    pub fn iface(&self) -> &'static str {
        HOST_IFACE
    }

    /// The host's IPv4 address on the lab network, `10.0.0.<index + 1>` (prefix /24).
    pub fn ipv4(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, self.host_byte())
    }

    /// The host's unique-local IPv6 address, `fd00::<index + 1>` (prefix /64).
    pub fn ipv6(&self) -> Ipv6Addr {
        Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, u16::from(self.host_byte()))
    }

    /// Runs `argv` inside the host (`ip netns exec`) to completion and returns its stdout.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<String> {
        if argv.is_empty() {
            return Err(LabError::EmptyCommand);
        }
        let cmd_line = describe(argv);
        let output = Command::new("ip")
            .args(["netns", "exec", self.netns()])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .map_err(|source| LabError::Spawn {
                cmd: cmd_line.clone(),
                source,
            })?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(LabError::Command {
                cmd: format!("{cmd_line} (in {})", self.netns()),
                status: output.status.to_string(),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
            })
        }
    }

    /// Runs `ip args…` against the host's namespace (`ip -n`).
    pub fn ip(&self, args: &[&str]) -> Result<String> {
        cmd::ip_in(self.netns(), args)
    }

    /// Sets sysctls (`("net.ipv4.conf.all.arp_ignore", "1")`) inside the host.
    pub fn sysctl(&self, settings: &[(&str, &str)]) -> Result<()> {
        let settings: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
        cmd::sysctl_in(self.netns(), &settings)
    }

    /// Adds an address (`"10.0.0.100/24"`, `"fd00::100/64"`) to `vnet0`; IPv6 without DAD.
    pub fn add_address(&self, cidr: &str) -> Result<()> {
        let mut args = vec!["addr", "add", cidr, "dev", HOST_IFACE];
        if cidr.contains(':') {
            args.push("nodad");
        }
        self.ip(&args).map(drop)
    }

    /// Whether `addr` is configured on any interface of the host (e.g. a VIP a daemon manages).
    pub fn has_address(&self, addr: IpAddr) -> Result<bool> {
        let out = self.ip(&["-o", "addr", "show"])?;
        let wanted = addr.to_string();
        Ok(out.lines().any(|line| {
            line.split_whitespace()
                .filter_map(|word| word.split('/').next())
                .any(|word| word == wanted)
        }))
    }

    /// Turns the host into an LVS-DR real server for `vip`: `arp_ignore=1` and `arp_announce=2`
    /// (so it neither answers ARP for nor announces the VIP) and the VIP on `lo`.
    pub fn make_real_server(&self, vip: IpAddr) -> Result<()> {
        let mut settings = Vec::new();
        for scope in ["all", HOST_IFACE] {
            settings.push((format!("net.ipv4.conf.{scope}.arp_ignore"), "1"));
            settings.push((format!("net.ipv4.conf.{scope}.arp_announce"), "2"));
        }
        let settings: Vec<(&str, &str)> = settings.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        self.sysctl(&settings)?;
        let cidr = match vip {
            IpAddr::V4(v4) => format!("{v4}/32"),
            IpAddr::V6(v6) => format!("{v6}/128"),
        };
        self.ip(&["addr", "add", &cidr, "dev", "lo"]).map(drop)
    }

    /// Starts `argv` inside the host in its own process group, with `env` added to the
    /// environment and stdout/stderr appended to `<lab dir>/<host>.<name>.log`. The lab kills it
    /// when dropped.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        name: &str,
        argv: &[S],
        env: &[(&str, &str)],
    ) -> Result<Process> {
        crate::naming::validate_host_name(name)?;
        if argv.is_empty() {
            return Err(LabError::EmptyCommand);
        }
        let log = self.shared.dir.join(format!("{}.{name}.log", self.name()));
        let cmd_line = describe(argv);
        let (out, err) = open_log(&log, &cmd_line)?;
        let child = Command::new("ip")
            .args(["netns", "exec", self.netns()])
            .args(argv)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: cmd_line,
                source,
            })?;
        let process = Process::new(format!("{}/{name}", self.name()), child, log);
        self.shared.register(process.clone());
        Ok(process)
    }

    /// Writes `contents` to `<lab dir>/<host>/<file_name>` (e.g. a generated daemon config) and
    /// returns the path. `file_name` must be a plain file name.
    pub fn write_file(&self, file_name: &str, contents: &str) -> Result<PathBuf> {
        let mut parts = Path::new(file_name).components();
        if !matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(_)), None)
        ) {
            return Err(LabError::InvalidName {
                name: file_name.to_owned(),
            });
        }
        let dir = self.shared.dir.join(self.name());
        fs::create_dir_all(&dir).map_err(|e| LabError::io("create", &dir, e))?;
        let path = dir.join(file_name);
        fs::write(&path, contents).map_err(|e| LabError::io("write", &path, e))?;
        Ok(path)
    }

    /// Runs `f` on a thread inside the host's namespace (see [`crate::in_netns`]); sockets it
    /// creates stay in the host's namespace wherever they are used afterwards.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T> {
        in_netns(self.netns(), f)
    }

    /// A UDP socket bound to `addr` inside the host.
    pub fn udp_socket(&self, addr: SocketAddr) -> Result<UdpSocket> {
        self.enter(|| UdpSocket::bind(addr))?
            .map_err(|source| LabError::Netns {
                netns: self.netns().to_owned(),
                what: "bind UDP socket",
                source,
            })
    }

    fn host_byte(&self) -> u8 {
        // The lab refuses more hosts than fit in the last octet (see `MAX_HOSTS`).
        (self.info.index + 1) as u8
    }
}

fn describe<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter()
        .map(|arg| arg.as_ref().to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ")
}

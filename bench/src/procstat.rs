//! CPU time and resident memory of a daemon, read from `/proc`.
//!
//! A daemon is measured as its whole process group: keepalived forks a checker and a VRRP child
//! into its parent's group, vigild is one process, and both are started as group leaders by the
//! lab (`Host::spawn`). CPU is `utime + stime` (every thread of every process), so the figure is
//! CPU time actually spent by the daemon, which other load on the machine does not inflate the
//! way wall-clock-based sampling would.

use std::fs;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, which Linux fixes at 100 in
/// its user-space ABI whatever the kernel's internal `HZ` (`sysconf(_SC_CLK_TCK)` returns it).
const USER_HZ: f64 = 100.0;

/// The fields of `/proc/<pid>/stat` this module needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    /// Process group.
    pub pgrp: u32,
    /// User plus system time, in clock ticks.
    pub ticks: u64,
    /// User time alone, in clock ticks.
    pub user_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line. The command name (field 2) may contain spaces and
/// parentheses, so the fields are counted from the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    // Fields 3.. of proc(5); index 0 here is field 3 (state).
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| -> Option<u64> { fields.get(n - 3)?.parse().ok() };
    Some(Stat {
        pgrp: u32::try_from(field(5)?).ok()?,
        ticks: field(14)?.checked_add(field(15)?)?,
        user_ticks: field(14)?,
    })
}

/// `VmRSS` of `/proc/<pid>/status` in bytes; `None` for a process that is gone or a kernel thread.
fn vm_rss(pid: &str) -> Option<u64> {
    parse_vm_rss(&fs::read_to_string(format!("/proc/{pid}/status")).ok()?)
}

/// The `VmRSS:` line of a `/proc/<pid>/status` text, in bytes.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().strip_suffix("kB")?.trim().parse().ok()?;
    kib.checked_mul(1024)
}

/// The 1, 5 and 15-minute load averages of `/proc/loadavg`, space-separated ("?" if
/// unreadable): the record of how busy the machine was around a measurement.
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg").map_or_else(
        |_| "?".to_owned(),
        |s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
    )
}

/// Fails unless the soft limit on open files leaves room for `servers` listeners (one
/// descriptor each) plus the connections checking them.
pub fn ensure_open_files(servers: usize) -> anyhow::Result<()> {
    let limit = fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|limits| {
            let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
            line.split_whitespace().nth(3)?.parse::<usize>().ok()
        });
    if let Some(limit) = limit
        && limit < servers + 2048
    {
        bail!(
            "{servers} servers need about {} open files; the limit is {limit} (raise it with ulimit -n)",
            servers + 2048
        );
    }
    Ok(())
}

/// CPU time (user + system, every thread) this process has used so far.
pub fn own_cpu() -> anyhow::Result<Duration> {
    let line = fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    let stat = parse_stat(&line).context("parsing /proc/self/stat")?;
    Ok(ticks_to_duration(stat.ticks))
}

/// One `cpu` (whole machine) or `cpuN` line of `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTicks {
    /// Every state: user, nice, system, idle, iowait, irq, softirq, steal (guest time is
    /// already inside user and nice).
    pub total: u64,
    /// Idle.
    pub idle: u64,
    /// Idle with I/O outstanding.
    pub iowait: u64,
    /// In softirq context.
    pub softirq: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

impl CpuTicks {
    /// Every state but idle and iowait.
    pub fn busy(&self) -> u64 {
        self.total - self.idle - self.iowait
    }
}

/// The line of a `/proc/stat` text whose first word is `name` (`cpu`, or `cpu0`, `cpu1`, …).
pub fn parse_cpu_ticks(stat: &str, name: &str) -> Option<CpuTicks> {
    let line = stat
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let field = |i: usize| ticks.get(i).copied();
    Some(CpuTicks {
        total: ticks.get(..8)?.iter().sum(),
        idle: field(3)?,
        iowait: field(4)?,
        softirq: field(6)?,
        steal: field(7)?,
    })
}

/// A `/proc/<pid>/stat` time in clock ticks as a duration.
pub fn ticks_to_duration(ticks: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / USER_HZ)
}

/// What a process group has used so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Processes found in the group.
    pub processes: usize,
    /// CPU time (user + system) of the live processes.
    pub cpu: Duration,
    /// The user-space part of `cpu`.
    pub user: Duration,
    /// Sum of their resident sets, in bytes.
    pub rss_bytes: u64,
}

/// The usage of every live process in process group `pgid`.
pub fn group_usage(pgid: u32) -> anyhow::Result<Usage> {
    let mut usage = Usage {
        processes: 0,
        cpu: Duration::ZERO,
        user: Duration::ZERO,
        rss_bytes: 0,
    };
    let (mut ticks, mut user_ticks) = (0u64, 0u64);
    for entry in fs::read_dir("/proc").context("reading /proc")? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        // A process may exit between listing and reading; it simply no longer counts.
        let Ok(line) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some(stat) = parse_stat(&line) else {
            continue;
        };
        if stat.pgrp == pgid {
            usage.processes += 1;
            ticks += stat.ticks;
            user_ticks += stat.user_ticks;
            usage.rss_bytes += vm_rss(pid).unwrap_or(0);
        }
    }
    if usage.processes == 0 {
        bail!("no live process in process group {pgid}");
    }
    usage.cpu = Duration::from_secs_f64(ticks as f64 / USER_HZ);
    usage.user = Duration::from_secs_f64(user_ticks as f64 / USER_HZ);
    Ok(usage)
}

/// CPU use of a process group over a measured window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Wall-clock length of the window.
    pub elapsed: Duration,
    /// CPU time the group used in it.
    pub cpu: Duration,
    /// The user-space part of `cpu` (the rest is the kernel working for the group: for a
    /// checker on loopback, both ends of every TCP handshake).
    pub user: Duration,
    /// Resident memory at the end of the window, in bytes.
    pub rss_bytes: u64,
}

impl Window {
    /// CPU time over wall time, in percent of one core.
    pub fn cpu_percent(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.cpu.as_secs_f64() / self.elapsed.as_secs_f64() * 100.0
    }

    /// User-space CPU time over wall time, in percent of one core.
    pub fn user_percent(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.user.as_secs_f64() / self.elapsed.as_secs_f64() * 100.0
    }

    /// Resident memory in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_bytes as f64 / (1024.0 * 1024.0)
    }
}

/// A window being measured on several process groups at once.
#[derive(Debug)]
pub struct Meter {
    start: Instant,
    groups: Vec<(u32, Usage)>,
}

impl Meter {
    /// Takes the starting CPU times of `pgids`.
    pub fn start(pgids: &[u32]) -> anyhow::Result<Self> {
        let groups = pgids
            .iter()
            .map(|&g| Ok((g, group_usage(g)?)))
            .collect::<anyhow::Result<_>>()?;
        Ok(Self {
            start: Instant::now(),
            groups,
        })
    }

    /// Ends the window: one [`Window`] per group, in the order given to [`Meter::start`]. Fails
    /// if a group lost all its processes (a daemon that died during the window measured nothing).
    pub fn finish(self) -> anyhow::Result<Vec<Window>> {
        let elapsed = self.start.elapsed();
        self.groups
            .into_iter()
            .map(|(g, before)| {
                let now = group_usage(g)?;
                Ok(Window {
                    elapsed,
                    cpu: now.cpu.saturating_sub(before.cpu),
                    user: now.user.saturating_sub(before.user),
                    rss_bytes: now.rss_bytes,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_from_the_last_parenthesis() {
        // A command name with a space and a parenthesis, as proc(5) allows.
        let line = "4242 (keep (a) d) S 1 4242 4242 0 -1 4194560 100 0 0 0 \
                    37 12 0 0 20 0 3 0 1000 123456789 3210 18446744073709551615";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pgrp: 4242,
                ticks: 49,
                user_ticks: 37,
            })
        );
    }

    #[test]
    fn vm_rss_is_read_in_kib() {
        let status = "Name:\tvigild\nVmHWM:\t   20000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_vm_rss(status), Some(12_345 * 1024));
        assert_eq!(parse_vm_rss("Name:\tkthreadd\n"), None);
    }

    #[test]
    fn truncated_stat_is_none() {
        assert_eq!(parse_stat("1 (init) S 0 1"), None);
        assert_eq!(parse_stat("no parenthesis at all"), None);
    }

    #[test]
    fn own_group_is_measured() {
        // The test runner need not lead its group; measure the group it is in.
        let stat = parse_stat(&fs::read_to_string("/proc/self/stat").expect("own stat"))
            .expect("parse own stat");
        let usage = group_usage(stat.pgrp).expect("own group");
        assert!(usage.processes >= 1);
        assert!(usage.rss_bytes > 0, "{usage:?}");
    }

    #[test]
    fn cpu_percent_is_cpu_over_wall_time() {
        let w = Window {
            elapsed: Duration::from_secs(20),
            cpu: Duration::from_secs(1),
            user: Duration::from_millis(200),
            rss_bytes: 3 * 1024 * 1024,
        };
        assert!((w.cpu_percent() - 5.0).abs() < 1e-9);
        assert!((w.user_percent() - 1.0).abs() < 1e-9);
        assert!((w.rss_mib() - 3.0).abs() < 1e-9);
        let empty = Window {
            elapsed: Duration::ZERO,
            ..w
        };
        assert!(empty.cpu_percent().abs() < f64::EPSILON);
    }
}

//! Where the kernel's receive work runs while a health checker is measured.
//!
//! On loopback every packet is received in softirq context on the CPU that sent it, so a
//! checker connecting to local listeners is charged for the servers' half of each handshake
//! and for its own receive path. On a load balancer the real servers are other hosts, and the
//! checker's receive path runs in the NIC's interrupt and softirq, on whatever CPU the
//! interrupt is routed to. [`steer_loopback_rx`] reproduces that split inside a lab host:
//! Receive Packet Steering on the host's own `lo` queues every received packet to the chosen
//! CPU's backlog, and the checker is pinned to the other CPU ([`pin_thread`],
//! [`pin_process`]). What the checker still pays for is what it would pay on a real network:
//! its system calls, building and transmitting its packets, and being woken.
//!
//! The RPS mask is written through `ip netns exec`, which mounts a sysfs of the lab
//! namespace, so the host machine's `lo` is never touched (and the write is read back).
//! [`CpuTimes`] reads `/proc/stat` so that a run can show where the moved work went.

use std::fs;
use std::time::Duration;

use anyhow::{Context as _, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use vigil_integration::Host;

use crate::procstat::{parse_cpu_ticks, ticks_to_duration};

/// Which CPU checks and which CPU receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steering {
    /// The CPU the checker runs on.
    pub checker_cpu: usize,
    /// The CPU that receives every packet of the lab host (and runs the real servers).
    pub rx_cpu: usize,
}

impl Steering {
    /// The checker on CPU 0, receive work and servers on CPU 1; fails on a one-CPU machine.
    pub fn two_cpus() -> anyhow::Result<Self> {
        let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        if cpus < 2 {
            bail!("steering receive work away from the checker needs two CPUs; this has {cpus}");
        }
        Ok(Self {
            checker_cpu: 0,
            rx_cpu: 1,
        })
    }
}

/// The `rps_cpus` mask selecting `cpu` alone, as sysfs reads and writes it (hexadecimal).
fn rps_mask(cpu: usize) -> anyhow::Result<String> {
    if cpu >= 32 {
        bail!("CPU {cpu} is beyond the 32-bit mask this writes");
    }
    Ok(format!("{:x}", 1u32 << cpu))
}

/// Whether an `rps_cpus` read-back (`00000002`, or comma-separated 32-bit groups on machines
/// with many CPUs) selects exactly the CPUs of `mask`.
fn mask_matches(read_back: &str, mask: &str) -> bool {
    let digits: String = read_back.trim().chars().filter(|c| *c != ',').collect();
    let trimmed = digits.trim_start_matches('0');
    trimmed == mask.trim_start_matches('0')
}

/// Queues every packet `host` receives on its loopback device to `cpu`.
pub fn steer_loopback_rx(host: &Host, cpu: usize) -> anyhow::Result<()> {
    const QUEUE: &str = "/sys/class/net/lo/queues/rx-0/rps_cpus";
    let mask = rps_mask(cpu)?;
    // `ip netns exec` gives the shell a sysfs of the lab namespace: this is the lab's `lo`.
    let read_back = host
        .run(&["sh", "-c", &format!("echo {mask} > {QUEUE} && cat {QUEUE}")])
        .with_context(|| format!("setting {QUEUE} in {}", host.netns()))?;
    if !mask_matches(&read_back, &mask) {
        bail!(
            "{QUEUE} in {} reads {read_back:?} after writing {mask}",
            host.netns()
        );
    }
    Ok(())
}

fn only(cpu: usize) -> anyhow::Result<CpuSet> {
    let mut set = CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("CPU {cpu} is out of range"))?;
    Ok(set)
}

/// Pins the calling thread to `cpu`.
pub fn pin_thread(cpu: usize) -> anyhow::Result<()> {
    // Pid 0 is the calling thread.
    sched_setaffinity(Pid::from_raw(0), &only(cpu)?)
        .with_context(|| format!("pinning this thread to CPU {cpu}"))
}

/// Pins every thread of process `pid` to `cpu`; threads it starts later inherit the mask from
/// the thread that starts them.
pub fn pin_process(pid: u32, cpu: usize) -> anyhow::Result<()> {
    let set = only(cpu)?;
    let dir = format!("/proc/{pid}/task");
    for entry in fs::read_dir(&dir).with_context(|| format!("listing {dir}"))? {
        let name = entry.with_context(|| format!("listing {dir}"))?.file_name();
        let Some(tid) = name.to_str().and_then(|t| t.parse::<i32>().ok()) else {
            continue;
        };
        // A thread may have exited since the listing; that is not a failure.
        match sched_setaffinity(Pid::from_raw(tid), &set) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(e).with_context(|| format!("pinning thread {tid} to CPU {cpu}")),
        }
    }
    Ok(())
}

/// One CPU's times from `/proc/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    /// Every state but idle and iowait, in clock ticks.
    pub busy: u64,
    /// Time in softirq context, in clock ticks; part of `busy`.
    pub softirq: u64,
}

impl CpuTimes {
    /// The times of `cpu` now.
    pub fn read(cpu: usize) -> anyhow::Result<Self> {
        let stat = fs::read_to_string("/proc/stat").context("reading /proc/stat")?;
        Self::parse(&stat, cpu).with_context(|| format!("no cpu{cpu} line in /proc/stat"))
    }

    /// The times of `cpu` in a `/proc/stat` text.
    fn parse(stat: &str, cpu: usize) -> Option<Self> {
        let ticks = parse_cpu_ticks(stat, &format!("cpu{cpu}"))?;
        Some(Self {
            busy: ticks.busy(),
            softirq: ticks.softirq,
        })
    }

    /// Busy and softirq shares of one core between `self` and a later reading, in percent.
    pub fn percent_until(self, later: Self, elapsed: Duration) -> (f64, f64) {
        let share = |ticks: u64| {
            100.0 * ticks_to_duration(ticks).as_secs_f64() / elapsed.as_secs_f64().max(1e-9)
        };
        (
            share(later.busy.saturating_sub(self.busy)),
            share(later.softirq.saturating_sub(self.softirq)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_select_one_cpu_and_read_back_in_sysfs_form() {
        assert_eq!(rps_mask(0).unwrap(), "1");
        assert_eq!(rps_mask(1).unwrap(), "2");
        assert_eq!(rps_mask(13).unwrap(), "2000");
        assert!(rps_mask(32).is_err());
        assert!(mask_matches("00000002\n", "2"));
        assert!(mask_matches("00000000,00002000\n", "2000"));
        assert!(!mask_matches("00000000\n", "2"));
        assert!(!mask_matches("00000003\n", "2"));
    }

    #[test]
    fn cpu_lines_give_busy_and_softirq_ticks() {
        let stat = "cpu  10 0 20 500 5 1 7 2 0 0\n\
                    cpu0 4 0 8 250 2 0 3 1 0 0\n\
                    cpu1 6 0 12 250 3 1 4 1 0 0\n\
                    intr 1 2 3\n";
        let cpu1 = CpuTimes::parse(stat, 1).expect("cpu1");
        // user + nice + system + irq + softirq + steal
        assert_eq!(
            cpu1,
            CpuTimes {
                busy: 24,
                softirq: 4
            }
        );
        assert_eq!(CpuTimes::parse(stat, 0).expect("cpu0").busy, 16);
        assert!(CpuTimes::parse(stat, 2).is_none());
        let later = CpuTimes {
            busy: 124,
            softirq: 54,
        };
        let (busy, softirq) = cpu1.percent_until(later, Duration::from_secs(2));
        assert!((busy - 50.0).abs() < 1e-9 && (softirq - 25.0).abs() < 1e-9);
    }
}

//! vigild's and keepalived's checkers side by side on a kernel with IPVS (`vigil-checkbench
//! --vm`): this machine's kernel has none, and keepalived's checker refuses to run without it,
//! so both daemons run one after the other inside the VM `scripts/vm-run` boots (Debian's stock
//! kernel under qemu), on the same virtual-server config.
//!
//! The host side ([`run_host`]) boots the VM once with this very program, vigild and keepalived
//! in its initramfs, and passes the console through. The guest side ([`run_guest`]) serves N real
//! servers on loopback addresses (one address each, port 80: under DR keepalived gives every
//! real server the service's port), then for each daemon: starts it, waits until the kernel's
//! table holds every real server, measures CPU time and RSS from `/proc` over a window, and
//! times, several times, how long a real server whose listener was closed stays in the kernel's
//! table (`ipvsadm -Ln -t`), and how long a restarted one takes to come back. It prints one
//! table with both daemons and the ratios.
//!
//! Everything inside the VM runs under TCG emulation, roughly ten times slower than the host:
//! absolute CPU figures measure the emulator as much as the daemons. Both daemons pay the same
//! emulation, so the ratios are what the run is for.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::config::{self, CheckPlan, Forwarding, REALS_PER_VS};
use super::fleet::{Fleet, Protocol};
use super::logtime;
use crate::procstat::{Meter, Window};

/// Where `vm-run --add` puts the daemons inside the guest.
const GUEST_BIN: &str = "/bin";

/// The first line of the guest's table, so a caller can find it in the console output.
pub const TABLE_MARK: &str = "== vigil-checkbench --vm results ==";

/// How one VM run goes.
#[derive(Debug, Clone)]
pub struct VmSettings {
    /// Real servers, each checked once per second.
    pub servers: usize,
    /// Seconds from a full kernel table to the CPU window.
    pub settle: Duration,
    /// The CPU and memory window.
    pub window: Duration,
    /// Stop/restart repetitions per daemon.
    pub repetitions: usize,
    /// vigild's `--log-level` inside the VM (e.g. `info,vigil_checks=trace` for every
    /// attempt); when set, the log lines about the first stopped real server are printed.
    pub vigild_log: Option<String>,
    /// vigild checks by its half-open (SYN) probe; keepalived still by `TCP_CHECK`.
    pub half_open: bool,
}

impl VmSettings {
    /// The arguments that make the guest run with these settings.
    fn guest_args(&self) -> Vec<String> {
        vec![
            "--vm-guest".to_owned(),
            "--vm-servers".to_owned(),
            self.servers.to_string(),
            "--vm-settle-secs".to_owned(),
            self.settle.as_secs().to_string(),
            "--vm-window-secs".to_owned(),
            self.window.as_secs().to_string(),
            "--vm-reps".to_owned(),
            self.repetitions.to_string(),
        ]
        .into_iter()
        .chain(
            self.vigild_log
                .iter()
                .flat_map(|level| ["--vm-vigild-log".to_owned(), level.clone()]),
        )
        .chain(self.half_open.then(|| "--vm-half-open".to_owned()))
        .collect()
    }

    /// A generous bound for the whole VM run: boot, both daemons' start-up and shutdown, the
    /// windows and every repetition at its timeout.
    fn budget(&self) -> Duration {
        let per_daemon = START_LIMIT
            + self.settle
            + self.window
            + STOP_LIMIT
            + (TRANSITION_LIMIT * 2 + Duration::from_secs(1)) * self.repetitions as u32;
        Duration::from_secs(90) + per_daemon * 2
    }
}

/// The check: TCP connect every second, 1 s connect timeout, one retry 1 s later, DR.
pub fn plan() -> CheckPlan {
    CheckPlan {
        protocol: Protocol::Tcp,
        half_open: false,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        retries: 1,
        retry_delay: Duration::from_secs(1),
        forwarding: Forwarding::Dr,
    }
}

/// Real server `i` inside the VM: `127.2.<i / 250>.<i % 250 + 1>:80`.
pub fn guest_target(i: usize) -> SocketAddr {
    let (row, col) = ((i / 250) as u8, (i % 250 + 1) as u8);
    SocketAddr::from(([127, 2, row, col], 80))
}

/// Most real servers [`guest_target`] can address.
pub const MAX_GUEST_SERVERS: usize = 256 * 250;

/// Boots the VM with this program, `vigild` and `keepalived`, runs [`run_guest`] in it and
/// passes its console through to stdout; fails unless the guest program succeeded.
pub fn run_host(vigild: &Path, keepalived: &Path, settings: &VmSettings) -> anyhow::Result<()> {
    let vm_run = vm_run_script();
    let exe = std::env::current_exe().context("finding this program")?;
    println!(
        "booting the VM ({}) with {}, {} and {}",
        vm_run.display(),
        exe.display(),
        vigild.display(),
        keepalived.display()
    );
    let status = Command::new("bash")
        .arg(&vm_run)
        .arg("--add")
        .arg(vigild)
        .arg("--add")
        .arg(keepalived)
        .arg(&exe)
        .args(settings.guest_args())
        .env("VIGIL_VM_TIMEOUT", settings.budget().as_secs().to_string())
        .stdin(Stdio::null())
        .status()
        .with_context(|| format!("running {}", vm_run.display()))?;
    if !status.success() {
        bail!("the VM run failed: {status} (its console is above)");
    }
    Ok(())
}

/// `scripts/vm-run` of this checkout, or `VIGIL_VM_RUN`.
fn vm_run_script() -> PathBuf {
    std::env::var_os("VIGIL_VM_RUN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/vm-run"),
        PathBuf::from,
    )
}

/// One daemon checking the fleet inside the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Daemon {
    /// vigil's daemon.
    Vigild,
    /// keepalived's checker (`-C`).
    Keepalived,
}

impl std::fmt::Display for Daemon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Vigild => "vigild",
            Self::Keepalived => "keepalived",
        })
    }
}

/// What one daemon did inside the VM.
#[derive(Debug, Clone)]
pub struct GuestRun {
    /// Which daemon.
    pub daemon: Daemon,
    /// From its start to every real server in the kernel's table.
    pub table_complete: Duration,
    /// CPU and memory over the window.
    pub usage: Window,
    /// Processes in its group.
    pub processes: usize,
    /// Connections the fleet accepted per second in the window.
    pub checks_per_sec: f64,
    /// Listener closed → real server gone from the table (or weight 0); `None`: not within
    /// [`TRANSITION_LIMIT`].
    pub down: Vec<Option<Duration>>,
    /// Listener reopened → real server back with a positive weight.
    pub up: Vec<Option<Duration>>,
    /// vigild only: listener closed → its `real server down` log line (the checker's verdict,
    /// before the kernel is told); keepalived's console log has no timestamps.
    pub logged_down: Vec<Option<Duration>>,
}

/// The longest a daemon may take to fill the kernel's table.
const START_LIMIT: Duration = Duration::from_mins(2);
/// The longest a stopped daemon may take to exit before its group is killed.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// The longest a real server's change may take to reach the table before it counts as missed
/// (the bound for both is interval + timeout + retry delay + timeout = 4 s, plus slack for TCG).
const TRANSITION_LIMIT: Duration = Duration::from_secs(15);
/// Time between two reads of the kernel's table while timing a transition (see
/// [`kernel_table`] for why they are cheap).
const POLL: Duration = Duration::from_millis(20);

/// The guest side: serves `settings.servers` real servers, measures vigild then keepalived on
/// the same virtual servers, prints the table. Needs the kernel's IPVS and root.
pub fn run_guest(settings: &VmSettings) -> anyhow::Result<()> {
    if settings.servers == 0 || settings.servers > MAX_GUEST_SERVERS {
        bail!("--servers must be 1 to {MAX_GUEST_SERVERS} in the VM");
    }
    let targets: Vec<SocketAddr> = (0..settings.servers).map(guest_target).collect();
    let mut fleet = Fleet::start_here(targets, Protocol::Tcp).context("starting the fleet")?;
    println!(
        "{} real servers listening ({}..{}); check: TCP_CHECK every 1 s, connect_timeout 1 s, \
         retry 1, delay_before_retry 1 s, DR",
        settings.servers,
        fleet.targets()[0],
        fleet.targets()[settings.servers - 1]
    );
    // Under TCG the guest may fall back from the TSC to a clock that every `clock_gettime`
    // must ask the kernel (and the emulated hardware) for: a cost that grows with how often a
    // daemon reads the time, worth knowing when comparing two of them.
    let clock = "/sys/devices/system/clocksource/clocksource0/current_clocksource";
    println!(
        "guest clocksource: {}",
        std::fs::read_to_string(clock).map_or_else(|e| e.to_string(), |c| c.trim().to_owned())
    );
    let mut runs = Vec::new();
    for daemon in [Daemon::Vigild, Daemon::Keepalived] {
        runs.push(measure_daemon(daemon, &mut fleet, settings)?);
    }
    println!("\n{}", render(&runs, settings));
    Ok(())
}

fn measure_daemon(
    daemon: Daemon,
    fleet: &mut Fleet,
    settings: &VmSettings,
) -> anyhow::Result<GuestRun> {
    ipvsadm(&["-C"]).context("clearing the IPVS table")?;
    println!("\n==> {daemon}");
    let half_open = settings.half_open && daemon == Daemon::Vigild;
    let mut child = spawn(
        daemon,
        fleet.targets(),
        settings.vigild_log.as_deref(),
        half_open,
    )?;
    let pid = child.id();
    let result = (|| {
        let started = Instant::now();
        let table_complete = wait_for_table(&mut child, settings.servers, started)?;
        println!(
            "  kernel table complete after {:.1} s",
            table_complete.as_secs_f64()
        );
        std::thread::sleep(settings.settle);
        // Half-open checks make no connection: count them from vigild's metrics.
        let count = || -> anyhow::Result<u64> {
            if half_open {
                super::run::vigild_attempts_here()
            } else {
                Ok(fleet.connections())
            }
        };
        let before = count()?;
        let meter = Meter::start(&[pid])?;
        let window_start = Instant::now();
        std::thread::sleep(settings.window);
        let usage = meter.finish()?[0];
        let checks_per_sec =
            count()?.saturating_sub(before) as f64 / window_start.elapsed().as_secs_f64();
        if half_open {
            println!("  (half-open SYN checks, counted by vigild)");
        }
        let processes = crate::procstat::group_usage(pid)?.processes;
        println!(
            "  {checks_per_sec:.0} checks/s, CPU {:.2} % of the VM's core ({:.2} % user), \
             RSS {:.1} MiB, {processes} process(es)",
            usage.cpu_percent(),
            usage.user_percent(),
            usage.rss_mib()
        );
        let (mut down, mut up, mut stops) = (Vec::new(), Vec::new(), Vec::new());
        for rep in 0..settings.repetitions {
            let i = (rep * settings.servers / settings.repetitions.max(1) + 37) % settings.servers;
            let (stopped_at, d, u) = stop_and_restart(fleet, i)?;
            println!(
                "  {}: down after {}, back after {}",
                fleet.targets()[i],
                show(d),
                show(u)
            );
            down.push(d);
            up.push(u);
            stops.push((fleet.targets()[i], stopped_at));
            // Shifts the next stop against the one-second check rounds.
            std::thread::sleep(Duration::from_millis(370));
        }
        let logged_down = match daemon {
            Daemon::Vigild => {
                let log = std::fs::read_to_string(log_path(daemon))?;
                if settings.vigild_log.is_some()
                    && let Some((first, _)) = stops.first()
                {
                    print_lines_about(&log, *first);
                }
                logged_downs(&log, &stops)
            }
            Daemon::Keepalived => Vec::new(),
        };
        Ok(GuestRun {
            daemon,
            table_complete,
            usage,
            processes,
            checks_per_sec,
            down,
            up,
            logged_down,
        })
    })();
    stop(&mut child, pid);
    if result.is_err() {
        print_log_tail(daemon);
    }
    result
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(|| "NEVER".to_owned(), |d| format!("{} ms", d.as_millis()))
}

/// The last lines of vigild's log that name `real` (its checks' attempts when tracing is on).
fn print_lines_about(log: &str, real: SocketAddr) {
    let needle = format!("={real} ");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(&needle)).collect();
    println!("  vigild's log about {real} (last 40 lines):");
    for line in &lines[lines.len().saturating_sub(40)..] {
        println!("    {line}");
    }
}

/// Writes the daemon's config and starts it in a process group of its own, logging to
/// `/tmp/<daemon>.log`; `vigild_log` is vigild's `--log-level`.
fn spawn(
    daemon: Daemon,
    targets: &[SocketAddr],
    vigild_log: Option<&str>,
    half_open: bool,
) -> anyhow::Result<Child> {
    use std::os::unix::process::CommandExt as _;
    let log = std::fs::File::create(log_path(daemon)).context("creating the daemon's log")?;
    let mut command = match daemon {
        Daemon::Vigild => {
            let state = Path::new("/tmp/vigild-state");
            std::fs::create_dir_all(state)?;
            let path = "/tmp/vigild.toml";
            let plan = CheckPlan {
                half_open,
                ..plan()
            };
            std::fs::write(path, config::vigild("vm", state, targets, plan))?;
            let mut c = Command::new(Path::new(GUEST_BIN).join("vigild"));
            c.args(["--config", path]);
            if let Some(level) = vigild_log {
                c.args(["--log-level", level]);
            }
            c
        }
        Daemon::Keepalived => {
            let path = "/tmp/keepalived.conf";
            std::fs::write(path, config::keepalived(targets, plan()))?;
            let mut c = Command::new(Path::new(GUEST_BIN).join("keepalived"));
            // -l -G: log to stderr (the log file) and not to syslog, which without a syslog
            // daemon falls back to the console, one line per real server at shutdown.
            c.args([
                "-C",
                "-n",
                "-l",
                "-G",
                "-D",
                "-f",
                path,
                "-p",
                "/tmp/keepalived.pid",
                "-c",
                "/tmp/checkers.pid",
            ]);
            c
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    command
        .spawn()
        .with_context(|| format!("starting {daemon}"))
}

fn log_path(daemon: Daemon) -> String {
    format!("/tmp/{daemon}.log")
}

fn print_log_tail(daemon: Daemon) {
    let log = std::fs::read_to_string(log_path(daemon)).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    println!("  last lines of {daemon}'s log:");
    for line in &lines[lines.len().saturating_sub(20)..] {
        println!("    {line}");
    }
}

/// SIGTERM, then SIGKILL to the whole group if it has not exited within [`STOP_LIMIT`].
fn stop(child: &mut Child, pid: u32) {
    let group = Pid::from_raw(pid as i32);
    // Already gone is fine: it is stopped.
    let _ = killpg(group, Signal::SIGTERM);
    let deadline = Instant::now() + STOP_LIMIT;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            // keepalived's children leave with their parent; nothing else to wait for.
            let _ = killpg(group, Signal::SIGKILL);
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    println!("  did not exit within {STOP_LIMIT:?} of SIGTERM; killed");
    let _ = killpg(group, Signal::SIGKILL);
    let _ = child.wait();
}

/// Runs `ipvsadm` and returns its standard output.
fn ipvsadm(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ipvsadm")
        .args(args)
        .output()
        .context("running ipvsadm")?;
    if !out.status.success() {
        bail!(
            "ipvsadm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Waits until the kernel's table holds `servers` real servers with a positive weight.
fn wait_for_table(child: &mut Child, servers: usize, started: Instant) -> anyhow::Result<Duration> {
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("exited before its table was complete: {status}");
        }
        let table = kernel_table()?;
        let alive = table
            .lines()
            .filter_map(parse_dest)
            .filter(|(_, w)| *w > 0)
            .count();
        if alive >= servers {
            return Ok(started.elapsed());
        }
        if started.elapsed() > START_LIMIT {
            bail!("{alive} of {servers} real servers in the table after {START_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The kernel's IPVS table as `/proc/net/ip_vs` shows it: the same lines as `ipvsadm -Ln`, with
/// addresses in hex. Read instead of running `ipvsadm`: under TCG a fork and exec of a dynamically
/// linked program costs tens of milliseconds of the guest's one CPU, which the polling took from
/// the daemon being timed (the heavier daemon most); a read of this file costs a system call.
fn kernel_table() -> anyhow::Result<String> {
    std::fs::read_to_string("/proc/net/ip_vs").context("reading /proc/net/ip_vs")
}

/// A real-server line of `ipvsadm -Ln` (`  -> 127.2.0.5:80   Route   1   0   0`) or of
/// `/proc/net/ip_vs` (`  -> 7F020005:0050      Route   1      0          0`).
pub fn parse_dest(line: &str) -> Option<(SocketAddr, u32)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "->" {
        return None;
    }
    let addr = parse_addr(fields.next()?)?;
    let _forward = fields.next()?;
    Some((addr, fields.next()?.parse().ok()?))
}

/// `127.2.0.5:80`, or `/proc/net/ip_vs`'s IPv4 form `7F020005:0050`.
fn parse_addr(s: &str) -> Option<SocketAddr> {
    if let Ok(addr) = s.parse() {
        return Some(addr);
    }
    let (ip, port) = s.split_once(':')?;
    if ip.len() != 8 || port.len() != 4 {
        return None;
    }
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::from((ip.to_be_bytes(), port)))
}

/// The service lines' address (`TCP  0AC80001:0050 wlc`), in either form.
fn parse_service(line: &str) -> Option<SocketAddr> {
    let mut fields = line.split_whitespace();
    if !matches!(fields.next()?, "TCP" | "UDP" | "SCTP") {
        return None;
    }
    parse_addr(fields.next()?)
}

/// The weight of `real` under virtual server `vs` in `table`; `None`: not there.
fn weight_under(table: &str, vs: SocketAddr, real: SocketAddr) -> Option<u32> {
    let mut current = None;
    for line in table.lines() {
        if let Some(service) = parse_service(line) {
            current = Some(service);
        } else if let Some((addr, weight)) = parse_dest(line)
            && current == Some(vs)
            && addr == real
        {
            return Some(weight);
        }
    }
    None
}

/// The weight of `real` under its virtual server in the kernel's table; `None`: not there.
fn weight_in_table(real: SocketAddr) -> anyhow::Result<Option<u32>> {
    let i = guest_index(real).context("not a fleet address")?;
    let vs = config::virtual_server(i / REALS_PER_VS);
    Ok(weight_under(&kernel_table()?, vs, real))
}

/// The index of a [`guest_target`] address.
fn guest_index(addr: SocketAddr) -> Option<usize> {
    let SocketAddr::V4(v4) = addr else {
        return None;
    };
    let [a, b, row, col] = v4.ip().octets();
    ((a, b) == (127, 2) && col >= 1).then(|| usize::from(row) * 250 + usize::from(col) - 1)
}

/// For each `(real server, stop time)`, the time to vigild's first `real server down` line for
/// it after the stop.
fn logged_downs(log: &str, stops: &[(SocketAddr, SystemTime)]) -> Vec<Option<Duration>> {
    stops
        .iter()
        .map(|(addr, at)| {
            let needle = format!("real_server={addr} ");
            log.lines()
                .filter(|l| l.contains("real server down") && l.contains(&needle))
                .filter_map(logtime::parse_line)
                .find_map(|t| t.duration_since(*at).ok())
        })
        .collect()
}

/// Closes real server `i`'s listener and times its way out of the table, then reopens it and
/// times its way back; returns the wall-clock time of the close too.
fn stop_and_restart(
    fleet: &mut Fleet,
    i: usize,
) -> anyhow::Result<(SystemTime, Option<Duration>, Option<Duration>)> {
    let real = fleet.targets()[i];
    let stopped_at = fleet.stop_server(i)?;
    let stopped = Instant::now();
    let down = wait_table(real, stopped, |w| w.is_none_or(|w| w == 0))?;
    fleet.restart_server(i)?;
    let restarted = Instant::now();
    let up = wait_table(real, restarted, |w| w.is_some_and(|w| w > 0))?;
    Ok((stopped_at, down, up))
}

/// Polls the table until `done` holds for `real`'s weight; the time from `since`, or `None`
/// after [`TRANSITION_LIMIT`].
fn wait_table(
    real: SocketAddr,
    since: Instant,
    done: impl Fn(Option<u32>) -> bool,
) -> anyhow::Result<Option<Duration>> {
    while since.elapsed() < TRANSITION_LIMIT {
        if done(weight_in_table(real)?) {
            return Ok(Some(since.elapsed()));
        }
        std::thread::sleep(POLL);
    }
    Ok(None)
}

/// min/median/max in milliseconds of the measured delays, and how many were missed.
fn spread(delays: &[Option<Duration>]) -> String {
    let mut ms: Vec<u128> = delays.iter().flatten().map(Duration::as_millis).collect();
    ms.sort_unstable();
    let missed = delays.len() - ms.len();
    let mut out = match (ms.first(), ms.get(ms.len() / 2), ms.last()) {
        (Some(min), Some(med), Some(max)) => format!("{min}/{med}/{max}"),
        _ => "-".to_owned(),
    };
    if missed > 0 {
        let _ = write!(out, " ({missed} missed)");
    }
    out
}

fn median_ms(delays: &[Option<Duration>]) -> Option<f64> {
    let mut ms: Vec<f64> = delays
        .iter()
        .flatten()
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    ms.sort_by(f64::total_cmp);
    ms.get(ms.len() / 2).copied()
}

fn ratio(vigild: Option<f64>, keepalived: Option<f64>) -> String {
    match (vigild, keepalived) {
        (Some(v), Some(k)) if k > 0.0 => format!("{:.2}", v / k),
        _ => "-".to_owned(),
    }
}

/// The side-by-side table; the last column is vigild ÷ keepalived.
pub fn render(runs: &[GuestRun], settings: &VmSettings) -> String {
    let mut out = format!(
        "{TABLE_MARK}\n{} real servers, TCP_CHECK 1 s / 1 s / retry 1 / 1 s, DR; {} s window; \
         {} stop/restart repetitions; inside qemu TCG (1 vCPU): absolute figures are not \
         comparable with native ones, the ratios are\n\n\
         | measurement |",
        settings.servers,
        settings.window.as_secs(),
        settings.repetitions
    );
    for run in runs {
        let _ = write!(out, " {} |", run.daemon);
    }
    out.push_str(" vigild / keepalived |\n|---|");
    for _ in runs {
        out.push_str("---|");
    }
    out.push_str("---|\n");
    let find = |d: Daemon| runs.iter().find(|r| r.daemon == d);
    let (v, k) = (find(Daemon::Vigild), find(Daemon::Keepalived));
    let mut row = |name: &str,
                   cell: &dyn Fn(&GuestRun) -> String,
                   value: &dyn Fn(&GuestRun) -> Option<f64>| {
        let _ = write!(out, "| {name} |");
        for run in runs {
            let _ = write!(out, " {} |", cell(run));
        }
        let _ = writeln!(out, " {} |", ratio(v.and_then(value), k.and_then(value)));
    };
    row(
        "checks/s (server side)",
        &|r| format!("{:.0}", r.checks_per_sec),
        &|r| Some(r.checks_per_sec),
    );
    row(
        "CPU % of the VM's core (user)",
        &|r| {
            format!(
                "{:.2} ({:.2})",
                r.usage.cpu_percent(),
                r.usage.user_percent()
            )
        },
        &|r| Some(r.usage.cpu_percent()),
    );
    row(
        "CPU µs per check",
        &|r| format!("{:.0}", per_check_us(r)),
        &|r| Some(per_check_us(r)),
    );
    row(
        "RSS MiB (processes)",
        &|r| format!("{:.1} ({})", r.usage.rss_mib(), r.processes),
        &|r| Some(r.usage.rss_mib()),
    );
    row(
        "start → full kernel table, s",
        &|r| format!("{:.1}", r.table_complete.as_secs_f64()),
        &|r| Some(r.table_complete.as_secs_f64()),
    );
    row(
        "listener closed → out of table, ms min/med/max",
        &|r| spread(&r.down),
        &|r| median_ms(&r.down),
    );
    row(
        "listener closed → `real server down` logged, ms min/med/max",
        &|r| {
            if r.logged_down.is_empty() {
                "- (no timestamps)".to_owned()
            } else {
                spread(&r.logged_down)
            }
        },
        &|_| None,
    );
    row(
        "listener reopened → back in table, ms min/med/max",
        &|r| spread(&r.up),
        &|r| median_ms(&r.up),
    );
    out
}

fn per_check_us(run: &GuestRun) -> f64 {
    let checks = run.checks_per_sec * run.usage.elapsed.as_secs_f64();
    if checks > 0.0 {
        run.usage.cpu.as_secs_f64() * 1e6 / checks
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guest_targets_have_an_address_each_on_port_80_and_map_back() {
        assert_eq!(guest_target(0), "127.2.0.1:80".parse().unwrap());
        assert_eq!(guest_target(250), "127.2.1.1:80".parse().unwrap());
        for i in [0, 1, 249, 250, 1999, MAX_GUEST_SERVERS - 1] {
            assert_eq!(guest_index(guest_target(i)), Some(i), "{i}");
        }
        assert_eq!(guest_index("127.1.0.1:80".parse().unwrap()), None);
    }

    #[test]
    fn the_guest_gets_every_setting_and_vigilds_log_level_only_when_set() {
        let mut settings = VmSettings {
            servers: 300,
            settle: Duration::from_secs(5),
            window: Duration::from_secs(20),
            repetitions: 5,
            vigild_log: None,
            half_open: false,
        };
        let args = settings.guest_args().join(" ");
        assert_eq!(
            args,
            "--vm-guest --vm-servers 300 --vm-settle-secs 5 --vm-window-secs 20 --vm-reps 5"
        );
        settings.vigild_log = Some("info,vigil_checks=trace".to_owned());
        assert!(
            settings
                .guest_args()
                .join(" ")
                .ends_with("--vm-reps 5 --vm-vigild-log info,vigil_checks=trace")
        );
        settings.half_open = true;
        assert!(
            settings
                .guest_args()
                .join(" ")
                .ends_with("--vm-vigild-log info,vigil_checks=trace --vm-half-open")
        );
    }

    #[test]
    fn proc_net_ip_vs_parses_with_hex_addresses_per_service() {
        let table = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
TCP  0AC80001:0050 wlc 
  -> 7F020005:0050      Route   1      0          0         
TCP  0AC80002:0050 wlc 
  -> 7F020066:0050      Route   0      0          0         
";
        let (vs1, vs2) = (config::virtual_server(0), config::virtual_server(1));
        let (a, b): (SocketAddr, SocketAddr) = (
            "127.2.0.5:80".parse().unwrap(),
            "127.2.0.102:80".parse().unwrap(),
        );
        assert_eq!(weight_under(table, vs1, a), Some(1));
        assert_eq!(weight_under(table, vs2, b), Some(0));
        // Each real server only under its own service.
        assert_eq!(weight_under(table, vs2, a), None);
        assert_eq!(weight_under(table, vs1, b), None);
        assert_eq!(parse_addr("7F02000"), None);
        assert_eq!(parse_addr("7F02000G:0050"), None);
    }

    #[test]
    fn ipvsadm_real_server_lines_parse_and_headers_do_not() {
        let table = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.200.0.1:80 wlc
  -> 127.2.0.1:80                 Route   1      0          0
  -> 127.2.0.2:80                 Route   0      0          0
";
        let dests: Vec<_> = table.lines().filter_map(parse_dest).collect();
        assert_eq!(
            dests,
            vec![
                ("127.2.0.1:80".parse().unwrap(), 1),
                ("127.2.0.2:80".parse().unwrap(), 0)
            ]
        );
    }

    #[test]
    fn both_configs_are_dr_with_one_retry_after_a_second() {
        let targets: Vec<SocketAddr> = (0..150).map(guest_target).collect();
        let vigild = config::vigild("vm", Path::new("/tmp/s"), &targets, plan());
        assert!(vigild.contains("forwarding = \"dr\""), "{vigild}");
        assert!(
            vigild.contains("retries = 1\nretry_delay = \"1000ms\""),
            "{vigild}"
        );
        assert_eq!(vigild.matches("[[virtual_server]]").count(), 2);
        let ka = config::keepalived(&targets, plan());
        assert!(ka.contains("lb_kind DR"), "{ka}");
        assert!(ka.contains("retry 1\n      delay_before_retry 1\n"), "{ka}");
        assert!(ka.contains("real_server 127.2.0.101 80 {"), "{ka}");
        assert_eq!(
            config::virtual_server(1),
            "10.200.0.2:80".parse::<SocketAddr>().unwrap()
        );
    }

    #[test]
    fn vigild_down_lines_are_timed_from_the_stop_of_their_own_server() {
        let log = "\
2026-11-22T03:20:43.1Z  WARN vigil_daemon::lb::runtime: real server down real_server=127.2.0.5:80 state=down
2026-11-22T03:20:45.5Z  WARN vigil_daemon::lb::runtime: real server down real_server=127.2.0.5:80 state=down
2026-11-22T03:20:46Z  WARN vigil_daemon::lb::runtime: real server down real_server=127.2.0.55:80 state=down
";
        let stop = logtime::parse("2026-11-22T03:20:44Z").unwrap();
        let stops = [
            ("127.2.0.5:80".parse().unwrap(), stop),
            ("127.2.0.6:80".parse().unwrap(), stop),
        ];
        assert_eq!(
            logged_downs(log, &stops),
            vec![Some(Duration::from_millis(1500)), None]
        );
    }

    #[test]
    fn the_table_gives_ratios_and_spreads() {
        let window = Window {
            elapsed: Duration::from_secs(10),
            cpu: Duration::from_secs(1),
            user: Duration::from_millis(400),
            rss_bytes: 10 << 20,
        };
        let run = |daemon, cpu_ms, down_ms: &[u64]| GuestRun {
            daemon,
            table_complete: Duration::from_secs(2),
            usage: Window {
                cpu: Duration::from_millis(cpu_ms),
                ..window
            },
            processes: 1,
            checks_per_sec: 1000.0,
            down: down_ms
                .iter()
                .map(|&m| Some(Duration::from_millis(m)))
                .collect(),
            up: vec![None, Some(Duration::from_millis(900))],
            logged_down: Vec::new(),
        };
        let settings = VmSettings {
            servers: 1000,
            settle: Duration::from_secs(5),
            window: Duration::from_secs(10),
            repetitions: 3,
            vigild_log: None,
            half_open: false,
        };
        let table = render(
            &[
                run(Daemon::Vigild, 500, &[300, 100, 200]),
                run(Daemon::Keepalived, 1000, &[1000, 1200, 1100]),
            ],
            &settings,
        );
        assert!(table.starts_with(TABLE_MARK), "{table}");
        assert!(
            table.contains("| CPU % of the VM's core (user) | 5.00 (4.00) | 10.00 (4.00) | 0.50 |"),
            "{table}"
        );
        assert!(
            table.contains("| 100/200/300 | 1000/1100/1200 | 0.18 |"),
            "{table}"
        );
        assert!(table.contains("| 900/900/900 (1 missed) |"), "{table}");
        assert!(
            table.contains("| CPU µs per check | 50 | 100 | 0.50 |"),
            "{table}"
        );
    }
}

//! `vigil-gen`: build-time generator for the packaging (`packaging/build-deb`); not installed.
//!
//! - `vigil-gen man DIR` writes `vigild.8`, `vigilctl.8` and one `vigilctl-<command>.8` per
//!   subcommand, from the same clap definitions the binaries parse with, plus the hand-written
//!   sections below (files, signals, exit status, environment) that clap cannot know.
//! - `vigil-gen completions DIR` writes bash, zsh and fish completions for both binaries to
//!   `DIR/bash/<bin>`, `DIR/zsh/_<bin>` and `DIR/fish/<bin>.fish`, the names each shell's
//!   completion loader looks for.
//!
//! Generating from the clap definitions keeps the pages from drifting from `--help`.

use std::fmt::Write as _;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory, Parser, Subcommand};
use clap_complete::Shell;
use clap_mangen::Man;
use vigil_daemon::cli::Args;
use vigil_daemon::ctl::Cli;

/// vigil-gen: write vigil's man pages and shell completions (packaging helper).
#[derive(Debug, Parser)]
#[command(name = "vigil-gen", version, about)]
struct GenArgs {
    #[command(subcommand)]
    what: What,
}

#[derive(Debug, Subcommand)]
enum What {
    /// Write vigild.8, vigilctl.8 and vigilctl-<command>.8 into DIR (created if missing).
    Man {
        /// Output directory.
        dir: PathBuf,
    },
    /// Write bash, zsh and fish completions for vigild and vigilctl into DIR/<shell>/.
    Completions {
        /// Output directory.
        dir: PathBuf,
    },
}

/// A file that could not be written, with its path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
struct WriteError {
    path: PathBuf,
    source: std::io::Error,
}

fn main() -> ExitCode {
    let args = GenArgs::parse();
    let result = match &args.what {
        What::Man { dir } => man_pages(dir),
        What::Completions { dir } => completions(dir),
    };
    match result {
        Ok(written) => {
            for path in written {
                println!("{}", path.display());
            }
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("vigil-gen: {error}");
            ExitCode::FAILURE
        }
    }
}

fn man_pages(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    create_dir(dir)?;
    let version = env!("CARGO_PKG_VERSION");
    let vigild = Args::command().version(version);
    let mut vigilctl = Cli::command().version(version);
    // Building propagates the global flags into each subcommand and names it `vigilctl <sub>`.
    vigilctl.build();
    let mut written = vec![
        write_page(dir, "vigild", vigild, VIGILD_EXTRA)?,
        write_page(dir, "vigilctl", vigilctl.clone(), VIGILCTL_EXTRA)?,
    ];
    // clap's generated `help` subcommand needs no page of its own.
    for sub in vigilctl
        .get_subcommands()
        .filter(|s| s.get_name() != "help")
    {
        let name = format!("vigilctl-{}", sub.get_name());
        let see_also = ".SH \"SEE ALSO\"\n\\fBvigilctl\\fR(8), \\fBvigild\\fR(8)\n";
        // `Man` titles a page after the display name: give it the `git-commit`-style one.
        let page = sub.clone().display_name(name.clone()).version(version);
        written.push(write_page(dir, &name, page, see_also)?);
    }
    Ok(written)
}

/// Renders one section-8 page: clap's sections, then `extra` (raw roff), then the version.
fn write_page(dir: &Path, name: &str, cmd: Command, extra: &str) -> Result<PathBuf, WriteError> {
    let path = dir.join(format!("{name}.8"));
    let man_has_subcommands = cmd.has_subcommands();
    let man = Man::new(cmd)
        .section("8")
        .source(format!("vigil {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut page = Vec::new();
    let rendered = (|| {
        man.render_title(&mut page)?;
        man.render_name_section(&mut page)?;
        man.render_synopsis_section(&mut page)?;
        man.render_description_section(&mut page)?;
        man.render_options_section(&mut page)?;
        if man_has_subcommands {
            man.render_subcommands_section(&mut page)?;
        }
        page.write_all(extra.as_bytes())?;
        man.render_version_section(&mut page)
    })();
    rendered
        .and_then(|()| fs::write(&path, ascii_roff(&String::from_utf8_lossy(&page))))
        .map_err(|source| WriteError {
            path: path.clone(),
            source,
        })?;
    Ok(path)
}

/// groff's man macros expect ASCII input: anything else (the `—` in our help text) becomes a
/// `\[uXXXX]` escape, which renders as the same character.
fn ascii_roff(page: &str) -> String {
    let mut out = String::with_capacity(page.len());
    for c in page.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "\\[u{:04X}]", u32::from(c));
        }
    }
    out
}

fn completions(dir: &Path) -> Result<Vec<PathBuf>, WriteError> {
    let mut written = Vec::new();
    for (shell, sub) in [
        (Shell::Bash, "bash"),
        (Shell::Zsh, "zsh"),
        (Shell::Fish, "fish"),
    ] {
        let shell_dir = dir.join(sub);
        create_dir(&shell_dir)?;
        for (bin, mut cmd) in [("vigild", Args::command()), ("vigilctl", Cli::command())] {
            let file = match shell {
                Shell::Zsh => format!("_{bin}"),
                Shell::Fish => format!("{bin}.fish"),
                _ => bin.to_owned(),
            };
            let path = shell_dir.join(file);
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, bin, &mut script);
            fs::write(&path, script).map_err(|source| WriteError {
                path: path.clone(),
                source,
            })?;
            written.push(path);
        }
    }
    Ok(written)
}

fn create_dir(dir: &Path) -> Result<(), WriteError> {
    fs::create_dir_all(dir).map_err(|source| WriteError {
        path: dir.to_path_buf(),
        source,
    })
}

/// vigild.8 beyond the flags: how it runs, files, signals, exit status, environment.
const VIGILD_EXTRA: &str = r#".SH OPERATION
\fBvigild\fR loads and validates its configuration, binds its sockets, determines the initial
state and then tells systemd it is ready (\fBsd_notify\fR(3) READY=1 with a one\-line STATUS=
summary). A configuration with errors is never started: every error is printed on standard error
as \fIFILE\fR:\fILINE\fR:\fICOLUMN\fR: \fImessage\fR and the daemon exits with status 78.
.PP
Always validate a changed file first:
.PP
.RS
.nf
vigild \-\-check\-config \-\-config /etc/vigil/vigil.toml
.fi
.RE
.PP
then apply it with \fBsystemctl reload vigild\fR (which validates again and sends SIGHUP) or
\fBvigilctl reload\fR. A reload that fails validation is refused and the running configuration
stays in force; settings that cannot change at run time are reported as needing a restart.
.PP
A reload applies the differences only. VRRP instances whose settings did not change keep their
state and addresses (no transition, no notify script). A change of priority, advert interval,
virtual address list (without \fBfencing = "quorum"\fR) or tracking weights is applied to the
running instance: a master stays master, keeps the addresses that stay and announces the new
ones. Any other change (vrid, interface, transport, version, authentication, use_vmac, what is
tracked, \fBfencing = "quorum"\fR addresses, becoming or ceasing to be the address owner)
restarts the instance: a master hands over with a priority 0 advert first. Removed instances
release their addresses the same way. Health checks of real servers that stay keep their
state: no new rise or fall.
.PP
When systemd sets WatchdogSec=, \fBvigild\fR pings the watchdog only while each of its loops
makes progress (the control loop, every VRRP instance, the load balancer, the check scheduler,
the IPVS reconciler, fencing and the coordination node); the log names a silent one, and a hung
daemon is restarted.
.SH "QUORUM FENCING"
With \fB[cluster]\fR configured, VRRP instances default to \fBfencing = "quorum"\fR: a node holds
an instance's VIPs only while it owns the znode \fI/vigil/vrrp/<instance>/owner\fR in a live
coordination session, whose czxid is the fencing token (\fBVIGIL_FENCING_TOKEN\fR). That
session has its own timeout, \fB[cluster.fencing]\fR \fIsession_timeout\fR (default 3s), renewed
by a committed keep\-alive every \fIkeepalive_interval\fR (default 250ms). Its lease
ends \fIsession_timeout\fR \(mu (1 \(mi \fImax_clock_drift_ppm\fR / 10\(ha6)
\(mi \fImargin\fR after the send time of its last committed keep\-alive, and fenced VIPs carry
a kernel address lifetime of whole seconds ending \fIkernel_slack\fR before it, so a crashed or
frozen node's VIPs vanish by themselves before its session can expire at the quorum. The three
safety parameters live in \fB[cluster.fencing]\fR too (defaults 500, 200ms and 1s); with fenced
instances,
\fBvigild \-\-check\-config\fR refuses a \fIsession_timeout\fR too short for them and names the
shortest that works.
.PP
Failover time: a graceful stop or a preempting peer gets the VIPs at once (VIPs removed, znode
deleted, the successor claims on the deletion event). After a crash the successor waits for the
dead owner's session to expire: \fIsession_timeout\fR after its last keep\-alive, so between
\fIsession_timeout\fR \(mi \fIkeepalive_interval\fR and \fIsession_timeout\fR after the crash
(VRRP needs 2.6\(en3.6 s to notice it at 1 s adverts, so the defaults add little). The same
holds when the crashed node was also the Raft leader: the fencing session is renewed only by
committed writes, so the newly elected leader (1.5\(en2 s after the crash) knows when it applied
the last one and keeps that deadline instead of granting a fresh timeout.
.SH "REAL-TIME SCHEDULING"
Each VRRP unit (a sync group or a lone instance) runs on a thread of its own: socket, timers,
state machine, adverts, VIP changes and gratuitous ARP/NA. By default that thread, and no other,
runs under \fBSCHED_RR\fR at \fB[global] vrrp_rt_priority\fR (default 10; keepalived's
equivalent is off by default), so a saturated CPU cannot delay adverts and timers into false
failovers. \fBvrrp_rt_priority = 0\fR turns it off. Scripts run with normal scheduling
(\fBSCHED_RESET_ON_FORK\fR).
.PP
The safeguard is \fBRLIMIT_RTTIME\fR (\fB[global] vrrp_rlimit_rtime\fR, default 100ms, as
keepalived's \fBvrrp_rlimit_rtime\fR): a real\-time thread that runs that long without blocking
gets \fBvigild\fR killed by the kernel, and systemd restarts it. The threads become real\-time
only once a finite limit is in force: \fBvigild\fR sets it, or keeps the one the service manager
set (\fBLimitRTTIME=\fR). When the kernel refuses real\-time scheduling (no
\fBRLIMIT_RTPRIO\fR or CAP_SYS_NICE, \fBRestrictRealtime=yes\fR), one warning is logged and the
threads run with normal scheduling. The shipped unit allows it with \fBLimitRTPRIO=10\fR,
\fBLimitRTTIME=100ms\fR and \fBRestrictRealtime=no\fR; a higher priority needs a drop\-in
raising \fBLimitRTPRIO=\fR.
.SH FILES
.TP
.I /etc/vigil/vigil.toml
The configuration (TOML). Not shipped by the package; start from
\fI/usr/share/doc/vigil/examples/vigil.toml\fR. The unit does not start without it.
.TP
.I /etc/vigil/api.token
Conventional location of the control API bearer token (\fB[api] token_file\fR); keep it mode
0640, owner root, group vigil.
.TP
.I /var/lib/vigil
State directory (\fB[global] state_dir\fR): the coordination tree's Raft log and snapshots
(\fB[cluster] data_dir\fR, default \fI/var/lib/vigil/coord\fR) and the last known VRRP states.
Owned by the \fBvigil\fR user.
.TP
.I /run/vigil
Runtime directory, removed when the service stops.
.TP
.I /lib/systemd/system/vigild.service
The hardened systemd unit; see \fBsystemd.exec\fR(5) for its settings.
.SH SIGNALS
.TP
.B SIGHUP
Re\-read and validate the configuration and apply the differences; an invalid file is refused
and the old configuration keeps running.
.TP
.BR SIGTERM ", " SIGINT
Graceful stop: a VRRP master announces priority 0 and releases its virtual addresses so a
backup takes over at once, running notify scripts are given a bounded time, then exit 0.
.TP
.RB "A second " SIGTERM " or " SIGINT
Exit immediately (status 143 or 130), for a graceful stop that hangs.
.SH "EXIT STATUS"
Codes follow \fBsysexits\fR(3), so units and scripts can tell failures apart.
.TP
.B 0
Success; with \fB\-\-check\-config\fR, the configuration is valid.
.TP
.B 1
\fB\-\-check\-config\fR found errors (as \fBkeepalived \-t\fR does).
.TP
.B 64
Usage error (EX_USAGE): unknown flag or bad value, unusable \fB\-\-log\-level\fR filter.
.TP
.B 71
Operating\-system error (EX_OSERR): a socket cannot be bound, signal handlers or the runtime
cannot be set up.
.TP
.B 78
Configuration error (EX_CONFIG): invalid file, unreadable token file, unknown
\fBscript_user\fR. The unit sets RestartPreventExitStatus=78, since restarting cannot fix it.
.TP
.BR 130 ", " 143
Stopped by a second SIGINT or SIGTERM before the graceful stop finished.
.SH ENVIRONMENT
Every flag can also be set with the \fBVIGIL_*\fR variable shown next to it under OPTIONS
(VIGIL_CONFIG, VIGIL_CHECK_CONFIG, VIGIL_LOG_FORMAT, VIGIL_LOG_LEVEL), for example in a systemd
drop\-in (\fBsystemctl edit vigild\fR). A flag on the command line wins over the variable.
.TP
.B RUST_LOG
Log filter used when neither \fB\-\-log\-level\fR nor VIGIL_LOG_LEVEL is set.
.TP
.BR NOTIFY_SOCKET ", " WATCHDOG_USEC ", " WATCHDOG_PID
Set by systemd; readiness, reload and watchdog notifications. Removed from the environment of
notify scripts.
.PP
Notify scripts receive VIGIL_INSTANCE, VIGIL_STATE, VIGIL_OLD_STATE, VIGIL_PRIORITY, VIGIL_VRID,
VIGIL_REASON and VIGIL_FENCING_TOKEN; script health checks receive VIGIL_RS_ADDR and
VIGIL_RS_PORT. Under the packaged unit, scripts run as the \fBvigil\fR user with the unit's
capabilities, since the daemon does not run as root and so cannot switch to \fBscript_user\fR.
.SH "SEE ALSO"
\fBvigilctl\fR(8), \fBkeepalived\fR(8), \fBsystemd.service\fR(5), \fBsystemd.exec\fR(5),
\fBsysexits\fR(3), \fBipvsadm\fR(8)
"#;

/// vigilctl.8 beyond the flags: exit status, environment, see also.
const VIGILCTL_EXTRA: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success.
.TP
.B 1
\fBimport\-keepalived\fR: TOML was produced but some lines could not be converted (each is
listed on standard error). Coordination commands: the tree refused the operation (no such
node, node exists, bad version, not empty).
.TP
.B 64
Usage error (EX_USAGE).
.TP
.B 65
\fBimport\-keepalived\fR: the keepalived file has a syntax error (EX_DATAERR).
.TP
.B 66
An input file (the token file, the keepalived file or one it includes) cannot be read
(EX_NOINPUT).
.TP
.B 69
The daemon cannot be reached, timed out, or answered with a server error (EX_UNAVAILABLE).
.TP
.B 71
Operating\-system error (EX_OSERR), e.g. standard output cannot be written.
.TP
.B 73
\fBimport\-keepalived \-o\fR: the output file cannot be created (EX_CANTCREAT).
.TP
.B 75
\fBlock\fR, \fBelect\fR, \fBcreate \-\-ephemeral\fR: the session was lost (expired, or no
server confirmed it in time); \fBlock\fR killed its command first (EX_TEMPFAIL).
.TP
.B 76
The peer does not speak the vigil API (EX_PROTOCOL).
.TP
.B 77
Not authorised: missing or wrong API token, or the token file is not readable (EX_NOPERM).
.TP
.B 78
Configuration error (EX_CONFIG): the named config is invalid, or the daemon rejected a reload.
.SH ENVIRONMENT
Each global flag can be set with the variable shown next to it under OPTIONS: VIGIL_API,
VIGIL_CONFIG, VIGIL_TOKEN_FILE, VIGIL_TIMEOUT, VIGIL_COORD. Without \fB\-\-api\fR, the address comes from
\fB[api] listen\fR in the config (default \fI/etc/vigil/vigil.toml\fR), else 127.0.0.1:7400.
The coordination commands (\fBget\fR, \fBset\fR, \fBcreate\fR, \fBls\fR, \fBrm\fR,
\fBstat\fR, \fBwatch\fR, \fBmembers\fR, \fBlock\fR, \fBelect\fR) talk to \fB[cluster]
client_listen\fR instead (default 127.0.0.1:7402), or to \fB\-\-coord\fR.
.TP
.B VIGIL_FENCING_TOKEN
Set by \fBvigilctl lock\fR for its command: the lock's fencing token, strictly larger for
every later holder of the same lock.
.SH FILES
.TP
.I /etc/vigil/vigil.toml
Read for \fB[api] listen\fR and \fB[api] token_file\fR when the flags do not give them.
.SH "SEE ALSO"
\fBvigild\fR(8), \fBvigilctl\-status\fR(8), \fBvigilctl\-reload\fR(8),
\fBvigilctl\-import\-keepalived\fR(8)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_becomes_a_groff_escape() {
        assert_eq!(ascii_roff("a — b"), "a \\[u2014] b");
        assert_eq!(ascii_roff(".SH NAME\n"), ".SH NAME\n");
    }

    #[test]
    fn pages_cover_every_subcommand_and_the_hand_written_sections() {
        let dir = std::env::temp_dir().join(format!("vigil-gen-man-{}", std::process::id()));
        let written = man_pages(&dir).unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        for sub in Cli::command().get_subcommands() {
            assert!(
                names.contains(&format!("vigilctl-{}.8", sub.get_name())),
                "{names:?}"
            );
        }
        let vigild = fs::read_to_string(dir.join("vigild.8")).unwrap();
        for section in [
            ".SH FILES",
            ".SH SIGNALS",
            ".SH \"EXIT STATUS\"",
            ".SH ENVIRONMENT",
            ".SH \"REAL-TIME SCHEDULING\"",
        ] {
            assert!(vigild.contains(section), "{section} missing");
        }
        assert!(vigild.contains("\\-\\-check\\-config"), "flags rendered");
        assert!(written.iter().all(|p| fs::read(p).unwrap().is_ascii()));
        fs::remove_dir_all(&dir).unwrap();
    }
}

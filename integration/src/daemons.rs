//! Starting the VRRP daemons under test inside lab hosts: `vigild` (config validated first) and
//! keepalived (VRRP subsystem, foreground), each from a config file in the host's directory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{LabError, Result};
use crate::host::Host;
use crate::process::Process;

/// Where Debian and a source build put keepalived.
const KEEPALIVED_PATHS: [&str; 2] = ["/usr/sbin/keepalived", "/usr/local/sbin/keepalived"];

/// keepalived's binary, if installed.
pub fn keepalived_binary() -> Option<PathBuf> {
    KEEPALIVED_PATHS
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Runs `vigild --check-config` on `config`; the error carries vigild's complaints.
pub fn check_vigild_config(vigild: &Path, config: &Path) -> Result<()> {
    let out = Command::new(vigild)
        .args(["--check-config", "--config"])
        .arg(config)
        .output()
        .map_err(|source| LabError::Spawn {
            cmd: format!("{} --check-config", vigild.display()),
            source,
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(LabError::Command {
            cmd: format!(
                "{} --check-config --config {}",
                vigild.display(),
                config.display()
            ),
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        })
    }
}

/// Starts `vigild --config <config>` on `host` with plain logs at `info`.
pub fn spawn_vigild(vigild: &Path, host: &Host, config: &Path) -> Result<Process> {
    let argv = [vigild.as_os_str(), "--config".as_ref(), config.as_os_str()];
    host.spawn(
        "vigild",
        &argv,
        &[("VIGIL_LOG_FORMAT", "plain"), ("RUST_LOG", "info")],
    )
}

/// Starts keepalived on `host` in the foreground with console logs, from `conf`, with
/// `subsystem` choosing what runs (`-P`: VRRP only, `-C`: the checkers only). Its pid files
/// live next to `conf`; stale ones a SIGKILLed run left are removed first, or keepalived would
/// refuse to start.
pub fn spawn_keepalived(
    keepalived: &Path,
    host: &Host,
    conf: &Path,
    subsystem: &[&str],
) -> Result<Process> {
    let dir = conf.parent().unwrap_or(Path::new("."));
    let pids = [
        dir.join("keepalived.pid"),
        dir.join("keepalived-vrrp.pid"),
        dir.join("keepalived-checkers.pid"),
    ];
    for stale in &pids {
        match std::fs::remove_file(stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(LabError::io("remove", stale, e));
            }
            _ => {}
        }
    }
    let mut argv: Vec<&OsStr> = vec![
        keepalived.as_os_str(),
        "-n".as_ref(),
        "-l".as_ref(),
        "-D".as_ref(),
    ];
    argv.extend(subsystem.iter().map(OsStr::new));
    argv.extend([
        "-f".as_ref(),
        conf.as_os_str(),
        "-p".as_ref(),
        pids[0].as_os_str(),
        "-r".as_ref(),
        pids[1].as_os_str(),
        "-c".as_ref(),
        pids[2].as_os_str(),
    ]);
    host.spawn("keepalived", &argv, &[])
}

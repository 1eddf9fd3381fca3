//! Running the helper programs (`ip`, `nft`, `sysctl`) and turning failures into [`LabError`]s.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::error::{LabError, Result};

/// Runs `program args…` and returns its stdout; a non-zero exit becomes [`LabError::Command`].
pub(crate) fn run(program: &str, args: &[&str]) -> Result<String> {
    run_with_input(program, args, None)
}

/// Like [`run`], with `input` written to the program's stdin (used for `nft -f -`).
pub(crate) fn run_with_input(program: &str, args: &[&str], input: Option<&str>) -> Result<String> {
    let cmd_line = describe(program, args);
    let mut child = Command::new(program)
        .args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: cmd_line.clone(),
            source,
        })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        // A write error means the program exited early; its status and stderr below say why.
        let _ = stdin.write_all(text.as_bytes());
    }
    let output = child.wait_with_output().map_err(|source| LabError::Spawn {
        cmd: cmd_line.clone(),
        source,
    })?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(LabError::Command {
            cmd: cmd_line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

/// Runs `ip args…`.
pub(crate) fn ip(args: &[&str]) -> Result<String> {
    run("ip", args)
}

/// Runs `ip -n <netns> args…`: an iproute2 command acting inside `netns`.
pub(crate) fn ip_in(netns: &str, args: &[&str]) -> Result<String> {
    let mut full = vec!["-n", netns];
    full.extend_from_slice(args);
    run("ip", &full)
}

/// Sets sysctls inside `netns` with one `sysctl` process; `-e` skips keys this kernel lacks
/// (e.g. `net.bridge.*` before `br_netfilter` is loaded, when there is nothing to turn off).
pub(crate) fn sysctl_in(netns: &str, settings: &[String]) -> Result<()> {
    let mut args = vec!["netns", "exec", netns, "sysctl", "-q", "-e", "-w"];
    args.extend(settings.iter().map(String::as_str));
    run("ip", &args).map(drop)
}

/// Whether `tool` can be found in `PATH` (or the sbin directories root normally has).
pub(crate) fn tool_exists(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(Into::into))
        .any(|dir| Path::new(&dir).join(tool).is_file())
}

fn describe(program: &str, args: &[&str]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        line.push_str(arg);
    }
    line
}

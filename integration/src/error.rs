//! The one error type of the lab harness.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Everything that can go wrong while building, driving or tearing down a lab.
///
/// Each variant carries enough context (the command line, the namespace, the path) that a failing
/// test's message says what the harness was doing without a debugger.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// The harness needs `CAP_SYS_ADMIN`/`CAP_NET_ADMIN`; callers check [`crate::root_available`] first.
    #[error("the network lab needs root (effective uid is {euid})")]
    NotRoot {
        /// The effective uid the process runs with.
        euid: u32,
    },
    /// A helper program (`ip`, `nft`, `sysctl`, …) could not be started at all.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line, for the reader.
        cmd: String,
        /// Why `exec` failed (usually: not installed).
        source: io::Error,
    },
    /// A helper program ran but failed.
    #[error("`{cmd}` failed ({status}): {stderr}")]
    Command {
        /// The command line, for the reader.
        cmd: String,
        /// Exit status as the OS reports it.
        status: String,
        /// What the program printed on stderr, trimmed.
        stderr: String,
    },
    /// A required tool is missing; the message names the Debian package that provides it.
    #[error("`{tool}` is not installed (apt-get install -y {package})")]
    ToolMissing {
        /// The program looked for in `PATH`.
        tool: &'static str,
        /// The Debian package that ships it.
        package: &'static str,
    },
    /// A file or directory operation failed.
    #[error("{what} {path}: {source}", path = path.display())]
    Io {
        /// What the harness was doing (`"create"`, `"read"`, …).
        what: &'static str,
        /// The path it was doing it to.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A socket or thread operation inside a namespace failed.
    #[error("in netns {netns}: {what}: {source}")]
    Netns {
        /// The namespace the operation ran in.
        netns: String,
        /// What the harness was doing.
        what: &'static str,
        /// The OS error.
        source: io::Error,
    },
    /// A host, process or file name that cannot be used in namespace and file names.
    #[error(
        "invalid name {name:?}: use 1-20 characters of a-z, 0-9 and '-', starting with a letter"
    )]
    InvalidName {
        /// The rejected name.
        name: String,
    },
    /// A command to run was given as an empty argv.
    #[error("empty command line")]
    EmptyCommand,
    /// Two hosts with one name in one lab.
    #[error("host {name:?} already exists in this lab")]
    DuplicateHost {
        /// The repeated name.
        name: String,
    },
    /// A lookup by name found no host.
    #[error("no host named {name:?} in this lab")]
    UnknownHost {
        /// The name looked up.
        name: String,
    },
    /// The lab's address plan has room for 250 hosts.
    #[error("a lab holds at most {max} hosts")]
    TooManyHosts {
        /// The limit.
        max: usize,
    },
    /// A signal could not be delivered to a lab process.
    #[error("cannot send {signal} to process {name} (pid {pid}): {source}")]
    Signal {
        /// The lab's name for the process.
        name: String,
        /// Its pid (also its process-group id).
        pid: u32,
        /// The signal's name.
        signal: &'static str,
        /// The errno.
        source: nix::Error,
    },
    /// [`crate::wait_for`] ran out of time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The condition's description.
        what: String,
        /// How long it waited.
        after: Duration,
    },
}

/// Shorthand used across the crate.
pub type Result<T, E = LabError> = std::result::Result<T, E>;

impl LabError {
    pub(crate) fn io(what: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            what,
            path: path.into(),
            source,
        }
    }
}

//! sysexits(3) exit codes, so systemd units and scripts can tell failures apart.
//!
//! `vigild.service` sets `RestartPreventExitStatus=78`: restarting cannot fix a bad config.

/// Success.
pub const OK: u8 = 0;
/// `vigild --check-config` found errors (keepalived `-t` convention).
pub const CHECK_FAILED: u8 = 1;
/// Command line usage error.
pub const USAGE: u8 = 64;
/// An input file (e.g. the token file) cannot be read.
pub const NOINPUT: u8 = 66;
/// The daemon cannot be reached, or answered with a server error.
pub const UNAVAILABLE: u8 = 69;
/// An internal error (a bug).
pub const SOFTWARE: u8 = 70;
/// An operating-system error: cannot bind a socket, install signal handlers, start the runtime.
pub const OSERR: u8 = 71;
/// Try again: e.g. a shared-config change lost a race with another one and wrote nothing.
pub const TEMPFAIL: u8 = 75;
/// The peer answered something that is not the vigil API.
pub const PROTOCOL: u8 = 76;
/// Not authorised: missing or wrong API token.
pub const NOPERM: u8 = 77;
/// The configuration is invalid.
pub const CONFIG: u8 = 78;

//! Health checkers for LVS real servers and the single scheduler that runs them all.
//!
//! Checkers: TCP connect, TCP half-open (a SYN from a raw socket, answered by SYN-ACK or reset;
//! no connection), HTTP/HTTPS `GET` (status ranges, body regex, SHA-256/MD5 digest,
//! Host/SNI, optional certificate verification), script (exit code, or keepalived's dynamic
//! weight), DNS, UDP and SMTP. Each check has an interval, a timeout, retries with a delay,
//! rise/fall hysteresis and a random warm-up. Results leave as [`CheckEvent`]s (up, down,
//! weight) that the LVS reconciler and VRRP tracking consume; the scheduler also answers status
//! queries for `vigilctl` and metrics.
//!
//! # Layout
//! - [`spec`]: what to check — independent of the config file format.
//! - [`health`]: rise/fall hysteresis, pure.
//! - [`probe`]: one attempt of one check, one module per protocol.
//! - [`scheduler`]: one tokio task for all checks (timer heap, bounded in-flight probes, jitter).

pub mod health;
pub mod probe;
mod rng;
pub mod scheduler;
pub mod spec;

pub use health::{Health, Transition};
pub use probe::{Prepared, ProbeOutcome, probe};
pub use scheduler::{
    AttemptObserver, CheckEvent, CheckId, CheckStatus, Hooks, PROGRESS_EVERY, ProgressHook,
    Scheduler, SchedulerConfig,
};
pub use spec::{CheckKind, CheckSpec, Digest, HttpCheck, Source, Timing};

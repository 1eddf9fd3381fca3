//! Real-time scheduling of the VRRP unit threads (`[global] vrrp_rt_priority`, on by default)
//! and its safeguard, `RLIMIT_RTTIME` (`vrrp_rlimit_rtime`), as keepalived does when its
//! `vrrp_rt_priority` is set.
//!
//! Why on by default: at 10 ms adverts a backup declares the master dead after about 36 ms
//! without an advert. A normally scheduled daemon on a busy machine (builds, a CPU hog) is not
//! run for that long every so often, and either side then causes a false failover. `SCHED_RR` at
//! a low priority runs the VRRP threads ahead of every normal task, and only them: the API,
//! health checks, coordination and scripts keep normal scheduling.
//!
//! Why the limit: a real-time thread stuck in a loop would hold a CPU against every normal task.
//! With `RLIMIT_RTTIME` the kernel kills vigild once such a thread has run that long without
//! blocking, and the service manager restarts it; a VRRP thread blocks after every event. The
//! threads only go real-time when the limit is in force: vigild sets it, or finds one the
//! service manager set (`LimitRTTIME=`, when its seccomp filter refuses `setrlimit`).
//!
//! A refusal (`EPERM`: no `RLIMIT_RTPRIO`/`CAP_SYS_NICE`, `RestrictRealtime=yes`) costs one
//! warning for the whole process, and the threads run with normal scheduling.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What a unit thread asks for: `[global] vrrp_rt_priority` and `vrrp_rlimit_rtime`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Realtime {
    /// `SCHED_RR` priority; `None`: normal scheduling.
    pub(crate) priority: Option<u8>,
    /// The `RLIMIT_RTTIME` to put in force first.
    pub(crate) rlimit: Duration,
}

impl Realtime {
    /// The settings of `config`.
    pub(crate) fn of(config: &vigil_conf::Config) -> Self {
        Self {
            priority: config.global.vrrp_rt_priority,
            rlimit: config.global.vrrp_rlimit_rtime,
        }
    }
}

/// The `RLIMIT_RTTIME` in force (µs), decided once per process by the first unit thread, or
/// why none can be.
static LIMIT: OnceLock<Result<u64, String>> = OnceLock::new();
/// Whether a unit already logged the outcome (one line per process, not one per unit).
static LOGGED: AtomicBool = AtomicBool::new(false);

/// Puts the calling thread (a VRRP unit's) under `SCHED_RR` as `rt` asks, once the limit is in
/// force. Returns whether the thread is now real-time.
pub(crate) fn enter(unit: &str, rt: Realtime) -> bool {
    let Some(priority) = rt.priority else {
        return false;
    };
    let limit = LIMIT.get_or_init(|| {
        rttime_in_force(
            rt.rlimit,
            vigil_net::rttime_limit,
            vigil_net::set_rttime_limit,
        )
    });
    let outcome = match limit {
        Ok(micros) => vigil_net::set_thread_realtime(priority)
            .map(|()| *micros)
            .map_err(|e| refusal(priority, &e)),
        Err(why) => Err(format!(
            "RLIMIT_RTTIME cannot be put in force ({why}), and real-time threads without it \
             could hold a CPU forever"
        )),
    };
    let first = !LOGGED.swap(true, Ordering::Relaxed);
    match &outcome {
        Ok(micros) if first => tracing::info!(
            unit,
            priority,
            rlimit_rtime_us = micros,
            "VRRP threads run under SCHED_RR (vrrp_rt_priority); a thread that runs {} ms without blocking gets vigild killed (RLIMIT_RTTIME)",
            micros / 1000
        ),
        Ok(_) => tracing::debug!(unit, priority, "VRRP thread runs under SCHED_RR"),
        Err(why) if first => tracing::warn!(
            unit,
            priority,
            "VRRP threads run with normal scheduling, so a saturated CPU can delay adverts and cause false failovers: {why}; set vrrp_rt_priority = 0 to not ask"
        ),
        Err(why) => tracing::debug!(unit, priority, "normal scheduling: {why}"),
    }
    outcome.is_ok()
}

/// The operator's sentence for a refused `sched_setscheduler`.
fn refusal(priority: u8, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::PermissionDenied {
        format!(
            "SCHED_RR priority {priority} refused (EPERM): it needs LimitRTPRIO={priority} or \
             more (or CAP_SYS_NICE) and RestrictRealtime=no; the shipped unit has them, see \
             systemd/README.md"
        )
    } else {
        format!("SCHED_RR priority {priority} refused: {e}")
    }
}

/// Puts `RLIMIT_RTTIME` at `wanted`, or accepts the finite limit already in force when it
/// cannot be changed (under systemd, `LimitRTTIME=` with `setrlimit` filtered). Returns the
/// limit in force in µs, or why there is none. `get` and `set` are the system calls.
fn rttime_in_force(
    wanted: Duration,
    get: impl FnOnce() -> std::io::Result<(Option<u64>, Option<u64>)>,
    set: impl FnOnce(u64) -> std::io::Result<()>,
) -> Result<u64, String> {
    let micros = u64::try_from(wanted.as_micros()).unwrap_or(u64::MAX).max(1);
    let (soft, _) = get().map_err(|e| format!("getrlimit: {e}"))?;
    match set(micros) {
        Ok(()) => Ok(micros),
        Err(e) => match soft {
            Some(current) => {
                if current != micros {
                    tracing::info!(
                        wanted_us = micros,
                        in_force_us = current,
                        error = %e,
                        "vrrp_rlimit_rtime cannot be set; keeping the RLIMIT_RTTIME the service manager set (LimitRTTIME=)"
                    );
                }
                Ok(current)
            }
            None => Err(format!("setrlimit: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;

    fn eperm() -> io::Error {
        io::Error::from(io::ErrorKind::PermissionDenied)
    }

    #[test]
    fn the_limit_is_set_when_the_kernel_allows_it() {
        let mut set_to = None;
        let limit = rttime_in_force(
            Duration::from_millis(100),
            || Ok((None, None)),
            |us| {
                set_to = Some(us);
                Ok(())
            },
        );
        assert_eq!(limit, Ok(100_000));
        assert_eq!(set_to, Some(100_000));
    }

    #[test]
    fn a_limit_the_service_manager_set_is_kept_when_setrlimit_is_filtered() {
        let limit = rttime_in_force(
            Duration::from_millis(100),
            || Ok((Some(50_000), Some(50_000))),
            |_| Err(eperm()),
        );
        assert_eq!(limit, Ok(50_000));
    }

    #[test]
    fn without_any_limit_the_threads_stay_normal() {
        let limit = rttime_in_force(
            Duration::from_millis(100),
            || Ok((None, None)),
            |_| Err(eperm()),
        );
        assert!(limit.is_err_and(|why| why.contains("setrlimit")));
    }

    #[test]
    fn off_asks_for_nothing() {
        let rt = Realtime {
            priority: None,
            rlimit: Duration::from_millis(100),
        };
        assert!(!enter("test", rt));
    }

    #[test]
    fn eperm_tells_the_operator_what_the_unit_needs() {
        let why = refusal(10, &eperm());
        assert!(why.contains("LimitRTPRIO=10"), "{why}");
        assert!(why.contains("RestrictRealtime=no"), "{why}");
    }
}

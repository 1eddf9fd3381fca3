//! systemd integration over `sd_notify(3)`: `READY=1` once the config is loaded and the API
//! socket is bound, `RELOADING=1`/`READY=1` around reloads (what `Type=notify-reload` expects),
//! `STOPPING=1` at shutdown.
//!
//! Every call is a no-op without `NOTIFY_SOCKET`, so the daemon runs the same under systemd, in
//! a container or in a test. Failures are logged, never fatal: a lost notification must not
//! take a load balancer down.
//!
//! `NOTIFY_SOCKET` stays in the environment because we notify more than once; child processes
//! (notify scripts, in a later issue) must have it removed from their environment.

use std::time::Duration;

use sd_notify::NotifyState;

/// Start-up finished: config loaded, API socket bound.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A reload starts. systemd requires `MONOTONIC_USEC` alongside `RELOADING=1`, to match the
/// reload to the `READY=1` that ends it.
pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(error) => tracing::warn!(%error, "cannot read CLOCK_MONOTONIC for sd_notify"),
    }
}

/// Graceful shutdown starts.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!(%error, "sd_notify failed");
    }
}

/// The systemd watchdog hook (`WatchdogSec=`).
///
/// The ping must prove the daemon is *live*, not just that a timer task runs, so the real
/// liveness check (VRRP and coordination loops making progress) arrives with those issues; the
/// supervisor calls [`Watchdog::ping`] from its loop until then.
#[derive(Debug, Clone, Copy)]
pub struct Watchdog {
    interval: Option<Duration>,
}

impl Watchdog {
    /// Reads `WATCHDOG_USEC`/`WATCHDOG_PID`; disabled when they are absent or name another PID.
    pub fn from_env() -> Self {
        let mut usec = 0;
        let interval = sd_notify::watchdog_enabled(false, &mut usec)
            // Ping at half the deadline, as sd_watchdog_enabled(3) recommends.
            .then(|| Duration::from_micros(usec / 2))
            .filter(|d| !d.is_zero());
        Self { interval }
    }

    /// How often to ping; `None` when systemd does not watch this process.
    pub fn interval(&self) -> Option<Duration> {
        self.interval
    }

    /// Tells systemd the daemon is alive.
    pub fn ping(&self) {
        if self.interval.is_some() {
            send(&[NotifyState::Watchdog]);
        }
    }
}

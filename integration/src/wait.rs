//! Waiting for a condition with a deadline.

use std::thread;
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};

/// How often conditions are re-checked: fast enough for VRRP timings of tens of milliseconds,
/// slow enough not to steal a core from the daemons under test.
const POLL: Duration = Duration::from_millis(20);

/// Polls `cond` until it returns true or `timeout` passes; `what` names the condition in the error.
pub fn wait_for(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) -> Result<()> {
    wait_for_value(what, timeout, || cond().then_some(()))
}

/// Polls `probe` until it yields a value or `timeout` passes, and returns the value.
pub fn wait_for_value<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Option<T>,
) -> Result<T> {
    let start = Instant::now();
    loop {
        if let Some(value) = probe() {
            return Ok(value);
        }
        let elapsed = start.elapsed();
        if elapsed >= timeout {
            return Err(LabError::Timeout {
                what: what.to_owned(),
                after: elapsed,
            });
        }
        thread::sleep(POLL.min(timeout.saturating_sub(elapsed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_as_soon_as_the_condition_holds() {
        let mut calls = 0;
        let value = wait_for_value("third call", Duration::from_secs(5), || {
            calls += 1;
            (calls == 3).then_some(calls)
        });
        assert_eq!(value.ok(), Some(3));
    }

    #[test]
    fn times_out_with_the_condition_named() {
        let start = Instant::now();
        let err = wait_for("never", Duration::from_millis(60), || false)
            .expect_err("a false condition times out");
        assert!(start.elapsed() >= Duration::from_millis(60));
        assert!(err.to_string().contains("never"), "{err}");
    }
}

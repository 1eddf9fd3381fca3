//! [`Lease`]: how long this node may act as if its coordination session were alive.
//!
//! One lease per session. The shell reports every keep-alive it sends
//! ([`Lease::heartbeat_sent`], which records the local send time) and every one the quorum
//! acknowledged ([`Lease::heartbeat_acked`]); the deadline becomes the send time of the newest
//! acknowledged keep-alive plus the budget `T·(1 − max_drift) − margin`, and only ever moves
//! forward. See the crate docs for why the send time and what "acknowledged" must mean.
//!
//! A lease that lapsed (its deadline passed, whatever the reason: the quorum was unreachable,
//! the process was paused) or whose session the shell learned is gone is dead for good: later
//! acknowledgements are ignored and [`Lease::status`] stays `None`. The shell then abandons the
//! session and opens a new one, which is a new `Lease`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use thiserror::Error;

/// Largest accepted clock-rate bound: 10 %. Anything near it means broken hardware, and the
/// budget arithmetic stays far from zero.
pub const MAX_DRIFT_PPM_LIMIT: u32 = 100_000;

/// Parameters of every lease, from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseConfig {
    /// Bound on how much slower this node's monotonic clock may run than the clock of any
    /// coordination leader, in parts per million. If every clock is within ±ρ of true time,
    /// use at least `2ρ/(1+ρ)`; crystal oscillators are within 100 ppm, so 500 is generous.
    pub max_drift_ppm: u32,
    /// Slack subtracted from the deadline for the shell's own latency: the wake-up at the
    /// deadline firing late, the time removing the VIPs takes.
    pub margin: Duration,
    /// How often to send a keep-alive; a third of the session timeout at most. Frequent
    /// keep-alives keep the lease near its full length, which is what lets the session timeout
    /// (the cost of a crash) be short.
    pub keepalive_interval: Duration,
}

impl Default for LeaseConfig {
    fn default() -> Self {
        LeaseConfig {
            max_drift_ppm: 500,
            margin: Duration::from_millis(200),
            keepalive_interval: Duration::from_millis(250),
        }
    }
}

/// Why a lease cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LeaseError {
    /// `max_drift_ppm` above [`MAX_DRIFT_PPM_LIMIT`].
    #[error("max clock drift {ppm} ppm is above the limit of {MAX_DRIFT_PPM_LIMIT} ppm")]
    Drift {
        /// The configured value.
        ppm: u32,
    },
    /// The margin eats the whole session timeout: the node could never hold a VIP.
    #[error(
        "session timeout {timeout:?} leaves no lease after the clock-drift allowance and the margin {margin:?}"
    )]
    NoBudget {
        /// The session timeout granted by the cluster.
        timeout: Duration,
        /// The configured margin.
        margin: Duration,
    },
}

/// Identifies one keep-alive of a lease (increasing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HeartbeatId(u64);

/// The coordination session a lease belongs to (the coordination service's session id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SessionId(pub u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A valid lease as [`crate::Claim`]s see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseStatus {
    /// The session.
    pub session: SessionId,
    /// Local instant by which everything held under the lease must have been given up.
    pub deadline: Instant,
}

/// Where a lease is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    /// The deadline is in the future as far as the last call knew.
    Live,
    /// The deadline passed before an acknowledgement moved it.
    Lapsed,
    /// The shell reported the session expired or closed.
    Ended,
}

/// The local lease of one coordination session. See the module docs.
#[derive(Debug, Clone)]
pub struct Lease {
    session: SessionId,
    timeout: Duration,
    /// `T·(1 − max_drift) − margin`.
    budget: Duration,
    /// Between keep-alives: the configured interval, at most `T / 3`.
    interval: Duration,
    deadline: Instant,
    state: LeaseState,
    /// Send times of keep-alives not yet acknowledged, newer than the newest acknowledged one.
    in_flight: BTreeMap<HeartbeatId, Instant>,
    next_id: u64,
    newest_acked: Option<HeartbeatId>,
    last_sent: Instant,
}

impl Lease {
    /// The lease of a session the quorum just granted with `timeout`; `created_sent` is when
    /// the shell sent the create request (the session's first acknowledged keep-alive).
    pub fn new(
        config: LeaseConfig,
        session: SessionId,
        timeout: Duration,
        created_sent: Instant,
    ) -> Result<Lease, LeaseError> {
        let budget = budget(config, timeout)?;
        Ok(Lease {
            session,
            timeout,
            budget,
            interval: config.keepalive_interval.min(timeout / 3),
            deadline: created_sent + budget,
            state: LeaseState::Live,
            in_flight: BTreeMap::new(),
            next_id: 0,
            newest_acked: None,
            last_sent: created_sent,
        })
    }

    /// The session this lease belongs to.
    pub fn session(&self) -> SessionId {
        self.session
    }

    /// The session timeout the quorum granted.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// How far past a keep-alive's send time its acknowledgement carries the deadline.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// The current deadline (meaningful while [`LeaseState::Live`]).
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    /// Where the lease is, as of the last call that passed a time.
    pub fn state(&self) -> LeaseState {
        self.state
    }

    /// Time between keep-alives: the configured interval, at most a third of the timeout so
    /// that two in a row may be lost before the lease runs out.
    pub fn keepalive_interval(&self) -> Duration {
        self.interval
    }

    /// When the next keep-alive is due.
    pub fn next_heartbeat(&self) -> Instant {
        self.last_sent + self.interval
    }

    /// The shell sends a keep-alive now; it must report the outcome under the returned id.
    pub fn heartbeat_sent(&mut self, now: Instant) -> HeartbeatId {
        self.poll(now);
        let id = HeartbeatId(self.next_id);
        self.next_id += 1;
        self.last_sent = now;
        if self.state == LeaseState::Live {
            self.in_flight.insert(id, now);
        }
        id
    }

    /// The quorum acknowledged keep-alive `id` (see the crate docs for what that must mean).
    /// Returns whether the deadline moved. Acknowledgements older than the newest acknowledged
    /// one, or arriving after the lease died, change nothing.
    pub fn heartbeat_acked(&mut self, now: Instant, id: HeartbeatId) -> bool {
        self.poll(now);
        let Some(sent) = self.in_flight.remove(&id) else {
            return false;
        };
        // Anything older can no longer move the deadline.
        self.in_flight = self.in_flight.split_off(&id);
        self.newest_acked = Some(id);
        let deadline = sent + self.budget;
        if self.state != LeaseState::Live || deadline <= self.deadline {
            return false;
        }
        self.deadline = deadline;
        true
    }

    /// Keep-alive `id` failed or timed out: it will never be acknowledged.
    pub fn heartbeat_failed(&mut self, id: HeartbeatId) {
        self.in_flight.remove(&id);
    }

    /// The newest acknowledged keep-alive, if any.
    pub fn newest_acked(&self) -> Option<HeartbeatId> {
        self.newest_acked
    }

    /// The shell learned the session expired or was closed.
    pub fn session_ended(&mut self) {
        self.state = LeaseState::Ended;
        self.in_flight.clear();
    }

    /// Notes the passing of time: a live lease whose deadline is at or before `now` lapses.
    pub fn poll(&mut self, now: Instant) {
        if self.state == LeaseState::Live && now >= self.deadline {
            self.state = LeaseState::Lapsed;
            self.in_flight.clear();
        }
    }

    /// The lease as claims see it: `Some` while live at `now`.
    pub fn status(&mut self, now: Instant) -> Option<LeaseStatus> {
        self.poll(now);
        (self.state == LeaseState::Live).then_some(LeaseStatus {
            session: self.session,
            deadline: self.deadline,
        })
    }
}

/// `T·(1 − max_drift) − margin`, in whole nanoseconds.
fn budget(config: LeaseConfig, timeout: Duration) -> Result<Duration, LeaseError> {
    if config.max_drift_ppm > MAX_DRIFT_PPM_LIMIT {
        return Err(LeaseError::Drift {
            ppm: config.max_drift_ppm,
        });
    }
    let nanos = timeout.as_nanos() * u128::from(1_000_000 - config.max_drift_ppm) / 1_000_000;
    let drifted = Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX));
    match drifted.checked_sub(config.margin) {
        Some(budget) if !budget.is_zero() => Ok(budget),
        _ => Err(LeaseError::NoBudget {
            timeout,
            margin: config.margin,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(3);

    fn config() -> LeaseConfig {
        LeaseConfig {
            max_drift_ppm: 1_000,
            margin: Duration::from_millis(100),
            // Longer than T / 3, so capped to it.
            keepalive_interval: Duration::from_secs(5),
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn budget_takes_drift_and_margin_off_the_timeout() {
        let t0 = Instant::now();
        let lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        // 3 s · (1 − 0.001) − 0.1 s = 2.897 s.
        assert_eq!(lease.budget(), ms(2_897));
        assert_eq!(lease.deadline(), t0 + ms(2_897));
    }

    #[test]
    fn bad_parameters_are_typed_errors() {
        let t0 = Instant::now();
        let drift = LeaseConfig {
            max_drift_ppm: MAX_DRIFT_PPM_LIMIT + 1,
            ..config()
        };
        assert_eq!(
            Lease::new(drift, SessionId(1), T, t0).unwrap_err(),
            LeaseError::Drift {
                ppm: MAX_DRIFT_PPM_LIMIT + 1
            }
        );
        let margin = LeaseConfig {
            margin: T,
            ..config()
        };
        assert!(matches!(
            Lease::new(margin, SessionId(1), T, t0),
            Err(LeaseError::NoBudget { .. })
        ));
    }

    #[test]
    fn deadline_follows_the_send_time_of_the_acked_heartbeat_not_the_ack_time() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        let hb = lease.heartbeat_sent(t0 + ms(1_000));
        // The ack takes 700 ms: the deadline counts from the send.
        assert!(lease.heartbeat_acked(t0 + ms(1_700), hb));
        assert_eq!(lease.deadline(), t0 + ms(1_000) + lease.budget());
    }

    #[test]
    fn acks_of_older_heartbeats_than_the_newest_acked_are_ignored() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        let old = lease.heartbeat_sent(t0 + ms(1_000));
        let new = lease.heartbeat_sent(t0 + ms(2_000));
        assert!(lease.heartbeat_acked(t0 + ms(2_010), new));
        let deadline = lease.deadline();
        assert!(!lease.heartbeat_acked(t0 + ms(2_020), old));
        assert_eq!(lease.deadline(), deadline);
        assert_eq!(lease.newest_acked(), Some(new));
    }

    #[test]
    fn the_deadline_never_moves_back() {
        let t0 = Instant::now();
        let mut lease =
            Lease::new(config(), SessionId(7), T, t0 + ms(500)).expect("valid in this test");
        // A keep-alive "sent" before the session's creation request (cannot happen with a
        // monotonic clock, but the rule holds regardless).
        let early = lease.heartbeat_sent(t0 + ms(500));
        assert!(!lease.heartbeat_acked(t0 + ms(600), early));
        assert_eq!(lease.deadline(), t0 + ms(500) + lease.budget());
    }

    #[test]
    fn a_lapsed_lease_is_dead_even_if_an_ack_arrives_later() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        let hb = lease.heartbeat_sent(t0 + ms(2_000));
        // Paused past the deadline; the ack of a keep-alive sent before is processed after.
        let late = t0 + lease.budget() + ms(1);
        assert!(!lease.heartbeat_acked(late, hb));
        assert_eq!(lease.state(), LeaseState::Lapsed);
        assert_eq!(lease.status(late), None);
        let after = lease.heartbeat_sent(late + ms(10));
        assert!(!lease.heartbeat_acked(late + ms(20), after));
        assert_eq!(lease.status(late + ms(20)), None);
    }

    #[test]
    fn an_ended_session_ends_the_lease() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        let hb = lease.heartbeat_sent(t0 + ms(100));
        lease.session_ended();
        assert!(!lease.heartbeat_acked(t0 + ms(110), hb));
        assert_eq!(lease.status(t0 + ms(120)), None);
        assert_eq!(lease.state(), LeaseState::Ended);
    }

    #[test]
    fn status_is_live_strictly_before_the_deadline() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        let deadline = lease.deadline();
        assert_eq!(
            lease.status(
                deadline
                    .checked_sub(Duration::from_nanos(1))
                    .expect("after the epoch")
            ),
            Some(LeaseStatus {
                session: SessionId(7),
                deadline
            })
        );
        assert_eq!(lease.status(deadline), None);
    }

    #[test]
    fn heartbeats_are_due_every_third_of_the_timeout() {
        let t0 = Instant::now();
        let mut lease = Lease::new(config(), SessionId(7), T, t0).expect("valid in this test");
        assert_eq!(lease.next_heartbeat(), t0 + ms(1_000));
        lease.heartbeat_sent(t0 + ms(1_003));
        assert_eq!(lease.next_heartbeat(), t0 + ms(2_003));
    }

    #[test]
    fn a_shorter_keepalive_interval_keeps_the_lease_near_its_full_length() {
        let t0 = Instant::now();
        let frequent = LeaseConfig {
            keepalive_interval: ms(250),
            ..config()
        };
        let mut lease = Lease::new(frequent, SessionId(7), T, t0).expect("valid in this test");
        assert_eq!(lease.keepalive_interval(), ms(250));
        assert_eq!(lease.next_heartbeat(), t0 + ms(250));
        let hb = lease.heartbeat_sent(t0 + ms(250));
        assert_eq!(lease.next_heartbeat(), t0 + ms(500));
        assert!(lease.heartbeat_acked(t0 + ms(260), hb));
        // The deadline runs from the send time: 250 ms + 2.897 s.
        assert_eq!(lease.deadline(), t0 + ms(3_147));
    }
}

//! One test per rule of `Claim` (see `fence/src/claim.rs`), on virtual time.

use std::time::{Duration, Instant};

use vigil_fence::{
    Action, Claim, ClaimConfig, Lease, LeaseConfig, LeaseStatus, Owner, SessionId, Token,
};

const T: Duration = Duration::from_secs(10);
const S1: SessionId = SessionId(1);
const S2: SessionId = SessionId(2);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn lease_config() -> LeaseConfig {
    LeaseConfig {
        max_drift_ppm: 1_000,
        margin: ms(100),
        keepalive_interval: T / 3,
    }
}

fn drain(claim: &mut Claim) -> Vec<Action> {
    std::iter::from_fn(|| claim.poll_action()).collect()
}

/// A claim, a lease for `S1` created at `t0`, and VRRP wanting the VIPs; the create is
/// acknowledged with `token` at `t0 + 10 ms`. Returns what the claim asked for on the way.
struct Fixture {
    t0: Instant,
    lease: Lease,
    claim: Claim,
}

impl Fixture {
    fn new() -> Fixture {
        let t0 = Instant::now();
        let lease = Lease::new(lease_config(), S1, T, t0).expect("valid in this test");
        let claim = Claim::new(ClaimConfig::default(), t0);
        Fixture { t0, lease, claim }
    }

    fn at(&self, d: Duration) -> Instant {
        self.t0 + d
    }

    fn push_lease(&mut self, now: Instant) {
        let status = self.lease.status(now);
        self.claim.set_lease(now, status);
    }

    /// Lease, want, committed claim with `token`: VIPs held.
    fn holding(token: u64) -> (Fixture, Vec<Action>) {
        let mut f = Fixture::new();
        let now = f.at(ms(1));
        f.push_lease(now);
        f.claim.set_want(now, true);
        f.claim.claim_created(f.at(ms(10)), S1, Token(token));
        let actions = drain(&mut f.claim);
        (f, actions)
    }
}

#[test]
fn without_a_lease_the_claim_reports_a_quorum_fault_and_claims_nothing() {
    let t0 = Instant::now();
    let mut claim = Claim::new(ClaimConfig::default(), t0);
    claim.set_want(t0, true);
    assert_eq!(drain(&mut claim), [Action::QuorumFault(true)]);
    assert!(claim.quorum_fault());
    assert_eq!(claim.held_token(), None);
}

#[test]
fn vips_are_added_only_when_wanted_committed_and_leased() {
    let mut f = Fixture::new();
    let now = f.at(ms(1));
    f.claim.set_want(now, true);
    assert_eq!(drain(&mut f.claim), [Action::QuorumFault(true)]);
    f.push_lease(now);
    // Leased and wanted: claim, but no VIPs before the create committed.
    assert_eq!(
        drain(&mut f.claim),
        [
            Action::CreateOwner { session: S1 },
            Action::QuorumFault(false)
        ]
    );
    assert_eq!(f.claim.held_token(), None);
    // Committed: VIPs, with a lifetime ending (kernel lateness included) by the deadline.
    let now = f.at(ms(10));
    f.claim.claim_created(now, S1, Token(42));
    let budget = f.lease.budget(); // 9.89 s
    assert_eq!(budget, ms(9_890));
    assert_eq!(
        drain(&mut f.claim),
        [Action::AddVips {
            token: Token(42),
            lifetime: secs(8)
        }]
    );
    assert_eq!(f.claim.held_token(), Some(Token(42)));
    // Not wanted before the create committed: nothing is added, the znode is released.
    let mut g = Fixture::new();
    let now = g.at(ms(1));
    g.push_lease(now);
    g.claim.set_want(now, true);
    drain(&mut g.claim);
    g.claim.set_want(g.at(ms(5)), false);
    g.claim.claim_created(g.at(ms(10)), S1, Token(43));
    assert_eq!(
        drain(&mut g.claim),
        [Action::DeleteOwner {
            session: S1,
            token: Token(43)
        }]
    );
}

#[test]
fn the_kernel_lifetime_never_outlives_the_lease() {
    let (mut f, actions) = Fixture::holding(7);
    let Some(&Action::AddVips { lifetime, .. }) = actions.last() else {
        panic!("no AddVips in {actions:?}");
    };
    let slack = ClaimConfig::default().kernel_slack;
    assert!(f.at(ms(10)) + lifetime + slack <= f.lease.deadline());
    // Heartbeat acked late: the refresh lifetime is floored to what is left.
    let sent = f.at(secs(3));
    let hb = f.lease.heartbeat_sent(sent);
    let acked = f.at(ms(3_600));
    assert!(f.lease.heartbeat_acked(acked, hb));
    f.push_lease(acked);
    // Deadline 3 s + 9.89 s = 12.89 s; left 9.29 s; minus a second of kernel slack: 8 s.
    assert_eq!(
        drain(&mut f.claim),
        [Action::RefreshVips { lifetime: secs(8) }]
    );
    assert!(acked + secs(8) + slack <= f.lease.deadline());
    assert_eq!(f.claim.kernel_expiry(), Some(acked + secs(8)));
}

#[test]
fn a_refresh_never_shortens_what_the_kernel_already_has() {
    let mut f = Fixture::new();
    let hb = f.lease.heartbeat_sent(f.at(ms(100)));
    // Committed at 0.89 s: 9.89 s − 1 s − 0.89 s is exactly 8 s of kernel lifetime.
    let now = f.at(ms(890));
    f.push_lease(now);
    f.claim.set_want(now, true);
    f.claim.claim_created(now, S1, Token(7));
    assert_eq!(
        drain(&mut f.claim).last(),
        Some(&Action::AddVips {
            token: Token(7),
            lifetime: secs(8)
        })
    );
    // The ack moves the deadline by 0.1 s, but flooring would give the kernel 7 s from 1.09 s,
    // less than it has: no refresh.
    let now = f.at(ms(1_090));
    assert!(f.lease.heartbeat_acked(now, hb));
    f.push_lease(now);
    assert_eq!(drain(&mut f.claim), []);
    assert_eq!(f.claim.kernel_expiry(), Some(f.at(ms(8_890))));
}

#[test]
fn vips_go_at_the_lease_deadline_and_the_claim_is_stale_afterwards() {
    let (mut f, _) = Fixture::holding(7);
    let deadline = f.lease.deadline();
    assert_eq!(f.claim.poll_timeout(), Some(deadline));
    f.claim
        .tick(deadline.checked_sub(ms(1)).expect("after the epoch"));
    assert_eq!(drain(&mut f.claim), []);
    f.claim.tick(deadline);
    assert_eq!(
        drain(&mut f.claim),
        [Action::RemoveVips, Action::QuorumFault(true)]
    );
    assert_eq!(f.claim.owner(), Owner::Idle);
    // The lapsed session's lease never counts again, even if the shell passed it.
    let stale = LeaseStatus {
        session: S1,
        deadline: deadline + secs(5),
    };
    f.claim.set_lease(deadline + ms(1), Some(stale));
    assert_eq!(drain(&mut f.claim), []);
    assert_eq!(f.claim.held_token(), None);
}

#[test]
fn paused_past_the_lease_the_first_tick_removes_the_vips_and_the_old_token_never_returns() {
    let (mut f, _) = Fixture::holding(7);
    // SIGSTOP for 30 s: the first thing after SIGCONT is a late ack and a tick.
    let hb = f.lease.heartbeat_sent(f.at(secs(3)));
    let resumed = f.at(secs(33));
    assert!(!f.lease.heartbeat_acked(resumed, hb));
    f.push_lease(resumed);
    assert_eq!(
        drain(&mut f.claim),
        [Action::RemoveVips, Action::QuorumFault(true)]
    );
    // The late answer to a create of the dead session is ignored.
    f.claim.claim_created(resumed, S1, Token(7));
    assert_eq!(drain(&mut f.claim), []);
    // A new session: a new claim; the old znode is still there (its session not yet expired at
    // the quorum), so the claim waits, and is granted a larger token once it is gone.
    let new = Lease::new(lease_config(), S2, T, resumed).expect("valid in this test");
    f.claim.set_lease(
        resumed,
        Some(new.clone().status(resumed).expect("valid in this test")),
    );
    assert_eq!(
        drain(&mut f.claim),
        [
            Action::CreateOwner { session: S2 },
            Action::QuorumFault(false)
        ]
    );
    f.claim.owner_exists(resumed + ms(5), S1, Token(7));
    assert_eq!(drain(&mut f.claim), [Action::WatchOwner]);
    assert_eq!(f.claim.held_token(), None);
    f.claim.owner_gone(resumed + secs(1));
    assert_eq!(drain(&mut f.claim), [Action::CreateOwner { session: S2 }]);
    f.claim.claim_created(resumed + ms(1_010), S2, Token(90));
    assert!(matches!(
        drain(&mut f.claim)[..],
        [Action::AddVips {
            token: Token(90),
            ..
        }]
    ));
}

#[test]
fn an_ended_session_removes_the_vips_at_once() {
    let (mut f, _) = Fixture::holding(7);
    f.lease.session_ended();
    f.push_lease(f.at(secs(1)));
    assert_eq!(
        drain(&mut f.claim),
        [Action::RemoveVips, Action::QuorumFault(true)]
    );
}

#[test]
fn graceful_hand_over_removes_the_vips_before_deleting_the_znode() {
    let (mut f, _) = Fixture::holding(7);
    f.claim.set_want(f.at(secs(1)), false);
    assert_eq!(
        drain(&mut f.claim),
        [
            Action::RemoveVips,
            Action::DeleteOwner {
                session: S1,
                token: Token(7)
            }
        ]
    );
    // A failed delete is repeated after the retry interval, not in a tight loop.
    f.claim.release_failed(f.at(secs(2)));
    assert_eq!(drain(&mut f.claim), []);
    let retry = f.claim.poll_timeout().expect("valid in this test");
    assert_eq!(retry, f.at(secs(2)) + ClaimConfig::default().retry);
    f.claim.tick(retry);
    assert_eq!(
        drain(&mut f.claim),
        [Action::DeleteOwner {
            session: S1,
            token: Token(7)
        }]
    );
    f.claim.owner_deleted(retry + ms(5));
    assert_eq!(f.claim.owner(), Owner::Idle);
    assert_eq!(drain(&mut f.claim), []);
}

#[test]
fn a_foreign_owner_is_watched_and_the_claim_retried_when_it_is_gone() {
    let mut f = Fixture::new();
    let now = f.at(ms(1));
    f.push_lease(now);
    f.claim.set_want(now, true);
    drain(&mut f.claim);
    f.claim.owner_exists(f.at(ms(5)), SessionId(99), Token(3));
    assert_eq!(drain(&mut f.claim), [Action::WatchOwner]);
    assert_eq!(
        f.claim.owner(),
        Owner::Foreign {
            session: SessionId(99),
            token: Token(3)
        }
    );
    f.claim.tick(f.at(secs(2)));
    assert_eq!(drain(&mut f.claim), []);
    f.claim.owner_gone(f.at(ms(2_500)));
    assert_eq!(drain(&mut f.claim), [Action::CreateOwner { session: S1 }]);
}

/// A successor racing the expiry of a crashed owner's session: the deletion event arrives while
/// our create is in flight, and the create's `NodeExists` answer describes the owner that is
/// already gone. Waiting for its deletion would wait for the periodic re-read; the claim
/// creates again at once. A genuinely new owner answers `NodeExists` again and is watched.
#[test]
fn an_owner_deleted_while_our_create_was_in_flight_is_raced_again_at_once() {
    let mut f = Fixture::new();
    let now = f.at(ms(1));
    f.push_lease(now);
    f.claim.set_want(now, true);
    assert!(drain(&mut f.claim).contains(&Action::CreateOwner { session: S1 }));
    f.claim.owner_gone(f.at(ms(3)));
    assert_eq!(drain(&mut f.claim), []);
    f.claim.owner_exists(f.at(ms(5)), SessionId(99), Token(3));
    assert_eq!(drain(&mut f.claim), [Action::CreateOwner { session: S1 }]);
    assert_eq!(f.claim.owner(), Owner::Creating { session: S1 });
    // This time another node really holds it: watched, as usual.
    f.claim.owner_exists(f.at(ms(9)), SessionId(98), Token(4));
    assert_eq!(drain(&mut f.claim), [Action::WatchOwner]);
    assert_eq!(
        f.claim.owner(),
        Owner::Foreign {
            session: SessionId(98),
            token: Token(4)
        }
    );
}

#[test]
fn a_create_without_an_answer_is_resolved_by_reading_the_owner() {
    let mut f = Fixture::new();
    let now = f.at(ms(1));
    f.push_lease(now);
    f.claim.set_want(now, true);
    drain(&mut f.claim);
    // The create timed out: it may have committed. Read it before anything else.
    f.claim.claim_failed(f.at(ms(100)), S1);
    assert_eq!(drain(&mut f.claim), [Action::WatchOwner]);
    assert_eq!(f.claim.owner(), Owner::Unsure { session: S1 });
    // It had: the znode is ours and the VIPs go up.
    f.claim.owner_seen(f.at(ms(110)), Some((S1, Token(11))));
    assert!(matches!(
        drain(&mut f.claim)[..],
        [Action::AddVips {
            token: Token(11),
            ..
        }]
    ));
    // Had it not been wanted any more, it would have been released at once, or nobody could
    // claim while our session lives.
    let mut g = Fixture::new();
    let now = g.at(ms(1));
    g.push_lease(now);
    g.claim.set_want(now, true);
    g.claim.claim_failed(g.at(ms(100)), S1);
    g.claim.set_want(g.at(ms(105)), false);
    drain(&mut g.claim);
    g.claim.owner_seen(g.at(ms(110)), Some((S1, Token(11))));
    assert_eq!(
        drain(&mut g.claim),
        [Action::DeleteOwner {
            session: S1,
            token: Token(11)
        }]
    );
    // Nothing there: the create is repeated after the retry interval.
    let mut h = Fixture::new();
    let now = h.at(ms(1));
    h.push_lease(now);
    h.claim.set_want(now, true);
    h.claim.claim_failed(h.at(ms(100)), S1);
    h.claim.owner_seen(h.at(ms(110)), None);
    drain(&mut h.claim);
    assert_eq!(h.claim.poll_timeout(), Some(h.at(ms(600))));
    h.claim.tick(h.at(ms(600)));
    assert_eq!(drain(&mut h.claim), [Action::CreateOwner { session: S1 }]);
}

#[test]
fn observations_of_the_owner_count_only_while_waiting_on_a_foreign_one() {
    // Holding: a "gone" seen by a read that was answered before our create committed must not
    // make us drop and re-add the VIPs (our znode can only vanish with our session).
    let (mut f, _) = Fixture::holding(7);
    f.claim.owner_gone(f.at(secs(1)));
    assert_eq!(drain(&mut f.claim), []);
    assert_eq!(f.claim.held_token(), Some(Token(7)));
    // Releasing: only the delete's own answer ends it, not an older observation.
    f.claim.set_want(f.at(secs(2)), false);
    drain(&mut f.claim);
    f.claim.owner_gone(f.at(ms(2_001)));
    assert!(matches!(f.claim.owner(), Owner::Releasing { .. }));
    // Waiting on a foreign owner: a read finding our own live session's znode (the answer to
    // our create was lost) takes it.
    let mut g = Fixture::new();
    let now = g.at(ms(1));
    g.push_lease(now);
    g.claim.set_want(now, true);
    g.claim.owner_exists(g.at(ms(5)), SessionId(99), Token(3));
    g.claim
        .owner_seen(g.at(ms(900)), Some((SessionId(99), Token(3))));
    assert!(matches!(g.claim.owner(), Owner::Foreign { .. }));
    g.claim.owner_seen(g.at(ms(1_000)), Some((S1, Token(12))));
    assert!(matches!(
        drain(&mut g.claim).last(),
        Some(Action::AddVips {
            token: Token(12),
            ..
        })
    ));
}

#[test]
fn a_lease_shorter_than_the_kernel_minimum_adds_nothing() {
    // Acked late, only 1.5 s of lease left: with a second of kernel slack nothing is added.
    let mut f = Fixture::new();
    let now = f.at(ms(8_390));
    f.push_lease(now);
    f.claim.set_want(now, true);
    f.claim.claim_created(now, S1, Token(5));
    assert_eq!(
        drain(&mut f.claim),
        [
            Action::QuorumFault(true),
            Action::QuorumFault(false),
            Action::CreateOwner { session: S1 }
        ]
    );
    assert_eq!(f.claim.held_token(), None);
}

#[test]
fn an_unanswered_delete_never_lets_the_old_token_back_the_vips() {
    let (mut f, _) = Fixture::holding(7);
    f.claim.set_want(f.at(secs(1)), false);
    drain(&mut f.claim);
    // The delete may have committed and a successor claimed: wanting again must not re-add
    // the VIPs under token 7, only claim anew once the delete is confirmed.
    f.claim.release_failed(f.at(secs(2)));
    f.claim.set_want(f.at(ms(2_100)), true);
    assert_eq!(drain(&mut f.claim), []);
    assert_eq!(f.claim.held_token(), None);
    f.claim.tick(f.at(ms(2_500)));
    assert_eq!(
        drain(&mut f.claim),
        [Action::DeleteOwner {
            session: S1,
            token: Token(7)
        }]
    );
    f.claim.owner_deleted(f.at(ms(2_510)));
    assert_eq!(drain(&mut f.claim), [Action::CreateOwner { session: S1 }]);
}

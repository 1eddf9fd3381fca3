//! [`Claim`]: one VRRP instance's ownership of its VIPs under quorum fencing.
//!
//! Inputs are calls (`set_want`, `set_lease`, the outcomes of the shell's requests, `tick`),
//! each with the current local time; outputs are [`Action`]s drained with
//! [`Claim::poll_action`], to be executed **in order**, each finished before the next starts
//! (so a `RemoveVips` is done before the `DeleteOwner` that follows it), and one wake-up time,
//! [`Claim::poll_timeout`].
//!
//! The rules, each enforced in [`Claim::update`]:
//! - VIPs are added only while VRRP wants them, our owner znode is committed in the session of
//!   the current lease, and that lease is valid now; and only with a kernel lifetime of at
//!   least a second that ends, kernel lateness included, by the lease deadline.
//! - Held VIPs are refreshed whenever the lease moves (never past the lease deadline) and
//!   removed at the lease deadline at the latest (the wake-up [`Claim::poll_timeout`] asks for).
//! - A lease that lapsed or ended makes every claim of its session stale: VIPs go first, the
//!   claim is forgotten, and only a new session's new claim (a new, larger token) may add them
//!   again. Acknowledgements for the old session (late `claim_created`) are ignored.
//! - VRRP no longer wanting the VIPs: `RemoveVips`, then `DeleteOwner`, so the successor can
//!   claim at once.
//! - Someone else's owner znode: watch it, claim again once it is gone.
//! - No valid lease: [`Action::QuorumFault`]`(true)`, which the shell feeds to VRRP as a
//!   tracked fault so that a master cut off from the quorum hands mastership over (priority 0)
//!   instead of keeping its peer in backup while nobody holds the VIPs.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::lease::{LeaseStatus, SessionId};

/// A fencing token: the czxid of the owner znode, strictly larger for every new owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(pub u64);

impl std::fmt::Display for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Parameters of every claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimConfig {
    /// How late the kernel may remove an address after its lifetime ran out. Linux checks IPv4
    /// and IPv6 address lifetimes from a work item rounded up to whole seconds, so up to about
    /// a second; the lifetimes given to the kernel are shortened by this much.
    pub kernel_slack: Duration,
    /// Wait before repeating a create or delete that failed without a definite answer.
    pub retry: Duration,
}

impl Default for ClaimConfig {
    fn default() -> Self {
        ClaimConfig {
            kernel_slack: Duration::from_secs(1),
            retry: Duration::from_millis(500),
        }
    }
}

/// What the shell must do, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create the ephemeral owner znode in `session`; report `claim_created` with its czxid,
    /// `owner_exists` if a znode is already there, `claim_failed` otherwise (a lost answer
    /// included: the shell times the request out).
    CreateOwner {
        /// The session to create it in.
        session: SessionId,
    },
    /// Report `owner_gone` once the owner znode no longer exists (at once if it is already
    /// gone); `owner_seen` with fresh reads now and then guards against a missed event.
    WatchOwner,
    /// Delete our owner znode (only if its czxid is `token`); report `owner_deleted` (also when
    /// it was already gone) or `release_failed`.
    DeleteOwner {
        /// The session that owns it.
        session: SessionId,
        /// Its czxid.
        token: Token,
    },
    /// Add the instance's VIPs with this kernel lifetime (whole seconds).
    AddVips {
        /// The fencing token they are held under.
        token: Token,
        /// Kernel lifetime.
        lifetime: Duration,
    },
    /// Re-add the held VIPs with a new kernel lifetime (whole seconds).
    RefreshVips {
        /// Kernel lifetime.
        lifetime: Duration,
    },
    /// Remove the instance's VIPs.
    RemoveVips,
    /// Whether VRRP must treat the instance as faulty: `true` while there is no valid lease.
    QuorumFault(bool),
}

/// Where the owner znode stands, as far as this claim knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// No claim of ours, none in flight, no known foreign owner.
    Idle,
    /// `CreateOwner` issued in `session`.
    Creating {
        /// The session of the create.
        session: SessionId,
    },
    /// Our znode, committed in `session`.
    Owned {
        /// Its session.
        session: SessionId,
        /// Its czxid.
        token: Token,
    },
    /// A create in `session` failed without a definite answer: the znode may or may not be
    /// ours. Watched (and read) until that is known; a claim that is ours but no longer wanted
    /// is released, or nobody could ever claim again while our session lives.
    Unsure {
        /// The session of the failed create.
        session: SessionId,
    },
    /// Another session's znode (possibly one of our own dead sessions); watched.
    Foreign {
        /// Its session.
        session: SessionId,
        /// Its czxid.
        token: Token,
    },
    /// `DeleteOwner` issued for our znode.
    Releasing {
        /// Its session.
        session: SessionId,
        /// Its czxid.
        token: Token,
    },
}

/// The VIPs as this claim put them in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Vips {
    Absent,
    Held {
        token: Token,
        /// Local instant the kernel lifetime last given runs out.
        kernel_expiry: Instant,
        /// The lease deadline that lifetime was cut to: refreshed only when it moves (a
        /// refresh at every tick would gain at most the sub-second part flooring lost).
        basis: Instant,
    },
}

/// One instance's claim on its VIPs. See the module docs.
#[derive(Debug, Clone)]
pub struct Claim {
    config: ClaimConfig,
    want: bool,
    lease: Option<LeaseStatus>,
    /// The newest session whose lease died: nothing of it counts any more.
    dead_session: Option<SessionId>,
    owner: Owner,
    vips: Vips,
    /// A create or delete that failed is repeated no earlier than this.
    retry_at: Option<Instant>,
    /// The last delete failed without an answer: send it again when `retry_at` is due.
    resend_delete: bool,
    /// The owner znode was seen deleted while our create was in flight: a `NodeExists`
    /// answer to that create may describe the owner that is already gone.
    gone_while_creating: bool,
    fault_reported: Option<bool>,
    actions: VecDeque<Action>,
}

impl Claim {
    /// A claim that wants nothing yet and has no lease (so it reports a quorum fault).
    pub fn new(config: ClaimConfig, now: Instant) -> Claim {
        let mut claim = Claim {
            config,
            want: false,
            lease: None,
            dead_session: None,
            owner: Owner::Idle,
            vips: Vips::Absent,
            retry_at: None,
            resend_delete: false,
            gone_while_creating: false,
            fault_reported: None,
            actions: VecDeque::new(),
        };
        claim.update(now);
        claim
    }

    /// VRRP says we are (`true`) or are not master.
    pub fn set_want(&mut self, now: Instant, want: bool) {
        self.want = want;
        self.update(now);
    }

    /// The lease changed: a new session, a deadline that moved, or no valid lease.
    pub fn set_lease(&mut self, now: Instant, lease: Option<LeaseStatus>) {
        match (self.lease, lease) {
            (Some(old), new) if new.is_none_or(|n| n.session != old.session) => {
                self.kill_session(old.session);
            }
            _ => {}
        }
        if lease.is_some_and(|l| Some(l.session) == self.dead_session) {
            // A lease of a session that already died once never comes back.
            self.lease = None;
        } else {
            self.lease = lease;
        }
        self.update(now);
    }

    /// Our create in `session` committed; `token` is the znode's czxid.
    pub fn claim_created(&mut self, now: Instant, session: SessionId, token: Token) {
        self.gone_while_creating = false;
        if self.owner == (Owner::Creating { session }) && self.live_session() == Some(session) {
            self.owner = Owner::Owned { session, token };
        }
        // Otherwise the session died meanwhile: the znode dies with it.
        self.update(now);
    }

    /// Our create in `session` failed without a definite answer (timeout, no leader, lost
    /// connection): it may have committed. The claim watches the znode until a read says whose
    /// it is ([`Claim::owner_seen`]).
    pub fn claim_failed(&mut self, now: Instant, session: SessionId) {
        self.gone_while_creating = false;
        if self.owner == (Owner::Creating { session }) {
            self.owner = Owner::Unsure { session };
            self.retry_at = Some(now + self.config.retry);
            self.actions.push_back(Action::WatchOwner);
        }
        self.update(now);
    }

    /// The owner znode exists, owned by `session` with czxid `token` (the answer to our
    /// create).
    pub fn owner_exists(&mut self, now: Instant, session: SessionId, token: Token) {
        let gone_meanwhile = std::mem::take(&mut self.gone_while_creating);
        if let Owner::Creating { session: ours } = self.owner {
            if session == ours && self.live_session() == Some(ours) {
                // A repeated create of ours that had in fact committed.
                self.owner = Owner::Owned { session, token };
            } else if gone_meanwhile {
                // The owner this answer describes may be the one whose deletion we saw while
                // waiting for it (a successor racing the expiry of a crashed owner's
                // session): create again at once rather than wait for a deletion that has
                // already happened. A genuinely new owner answers `NodeExists` again.
                self.actions
                    .push_back(Action::CreateOwner { session: ours });
            } else {
                self.actions.push_back(Action::WatchOwner);
                self.owner = Owner::Foreign { session, token };
            }
        }
        self.update(now);
    }

    /// A fresh look at the owner znode (a read, or a watch event: `None` when it was deleted).
    /// It matters only while waiting on a foreign owner or after a failed create: gone, the
    /// claim is retried; ours (a create whose answer was lost), it is taken. Elsewhere an
    /// observation may predate our own request still in flight, so it is ignored (our own
    /// znode can vanish only with our session, which the lease covers), except that a deletion
    /// seen while our create is in flight is remembered for its answer
    /// ([`Claim::owner_exists`]).
    pub fn owner_seen(&mut self, now: Instant, owner: Option<(SessionId, Token)>) {
        if matches!(self.owner, Owner::Creating { .. }) && owner.is_none() {
            self.gone_while_creating = true;
        }
        if let Owner::Foreign { .. } | Owner::Unsure { .. } = self.owner {
            self.owner = match owner {
                None => Owner::Idle,
                Some((session, token)) if self.live_session() == Some(session) => {
                    // A pending create retry does not hold back a release.
                    self.retry_at = None;
                    Owner::Owned { session, token }
                }
                Some((session, token)) => Owner::Foreign { session, token },
            };
        }
        self.update(now);
    }

    /// The owner znode was deleted (watch event): [`Claim::owner_seen`] with `None`.
    pub fn owner_gone(&mut self, now: Instant) {
        self.owner_seen(now, None);
    }

    /// Our `DeleteOwner` is done (or found nothing to delete).
    pub fn owner_deleted(&mut self, now: Instant) {
        if let Owner::Releasing { .. } = self.owner {
            self.owner = Owner::Idle;
            self.resend_delete = false;
        }
        self.update(now);
    }

    /// Our delete failed without a definite answer: it is repeated after
    /// [`ClaimConfig::retry`]. The claim stays releasing: the delete may have committed and a
    /// successor may already own the znode, so the old token never backs VIPs again.
    pub fn release_failed(&mut self, now: Instant) {
        if let Owner::Releasing { .. } = self.owner {
            self.resend_delete = true;
            self.retry_at = Some(now + self.config.retry);
        }
        self.update(now);
    }

    /// Time passed (the shell calls this at [`Claim::poll_timeout`]).
    pub fn tick(&mut self, now: Instant) {
        self.update(now);
    }

    /// The next action to execute, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When the shell must call [`Claim::tick`] at the latest: the lease deadline (VIPs go and
    /// the fault is reported then) or a pending retry.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let deadline = self.lease.map(|l| l.deadline);
        match (deadline, self.retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether VRRP wants the VIPs.
    pub fn want(&self) -> bool {
        self.want
    }

    /// The owner znode as far as this claim knows.
    pub fn owner(&self) -> Owner {
        self.owner
    }

    /// The token the VIPs are held under, if they are.
    pub fn held_token(&self) -> Option<Token> {
        match self.vips {
            Vips::Held { token, .. } => Some(token),
            Vips::Absent => None,
        }
    }

    /// When the kernel lifetime of the held VIPs runs out (local time).
    pub fn kernel_expiry(&self) -> Option<Instant> {
        match self.vips {
            Vips::Held { kernel_expiry, .. } => Some(kernel_expiry),
            Vips::Absent => None,
        }
    }

    /// Whether the claim currently reports a quorum fault.
    pub fn quorum_fault(&self) -> bool {
        self.fault_reported.unwrap_or(true)
    }

    fn live_session(&self) -> Option<SessionId> {
        self.lease.map(|l| l.session)
    }

    /// Everything of `session` is stale from now on.
    fn kill_session(&mut self, session: SessionId) {
        self.dead_session = Some(self.dead_session.map_or(session, |d| d.max(session)));
        self.lease = None;
    }

    /// Applies every rule of the module docs at `now`.
    fn update(&mut self, now: Instant) {
        if let Some(lease) = self.lease
            && now >= lease.deadline
        {
            self.kill_session(lease.session);
        }
        let live = self.live_session();
        // Claims of a session that is not the live one are stale: forget them. Their znode
        // goes when the shell closes the session or the quorum expires it.
        match self.owner {
            Owner::Creating { session }
            | Owner::Unsure { session }
            | Owner::Owned { session, .. }
            | Owner::Releasing { session, .. }
                if Some(session) != live =>
            {
                self.owner = Owner::Idle;
            }
            _ => {}
        }
        self.update_vips(now);
        let retry_due = self.retry_at.is_none_or(|at| now >= at);
        if retry_due {
            self.retry_at = None;
        }
        match (self.owner, live) {
            (Owner::Idle, Some(session)) if self.want && retry_due => {
                self.owner = Owner::Creating { session };
                self.actions.push_back(Action::CreateOwner { session });
            }
            // VIPs are already gone (update_vips ran first, and does not hold them unless
            // wanted), so the successor may have the znode.
            (Owner::Owned { session, token }, _) if !self.want && retry_due => {
                self.owner = Owner::Releasing { session, token };
                self.actions
                    .push_back(Action::DeleteOwner { session, token });
            }
            (Owner::Releasing { session, token }, _) if self.resend_delete && retry_due => {
                self.resend_delete = false;
                self.actions
                    .push_back(Action::DeleteOwner { session, token });
            }
            _ => {}
        }
        let fault = live.is_none();
        if self.fault_reported != Some(fault) {
            self.fault_reported = Some(fault);
            self.actions.push_back(Action::QuorumFault(fault));
        }
    }

    fn update_vips(&mut self, now: Instant) {
        let entitled = match (self.owner, self.lease) {
            (Owner::Owned { session, token }, Some(lease))
                if self.want && session == lease.session && now < lease.deadline =>
            {
                Some((token, lease.deadline))
            }
            _ => None,
        };
        match (self.vips, entitled) {
            (Vips::Held { token: held, .. }, Some((token, _))) if held != token => {
                // Cannot happen (a new token needs a new claim, which needs the VIPs gone
                // first), but a token mismatch must never keep VIPs.
                self.remove_vips();
            }
            (Vips::Held { .. }, None) => self.remove_vips(),
            (
                Vips::Held {
                    token,
                    kernel_expiry,
                    basis,
                },
                Some((_, deadline)),
            ) if deadline > basis => {
                if let Some(lifetime) = self.lifetime(now, deadline)
                    && now + lifetime > kernel_expiry
                {
                    self.vips = Vips::Held {
                        token,
                        kernel_expiry: now + lifetime,
                        basis: deadline,
                    };
                    self.actions.push_back(Action::RefreshVips { lifetime });
                }
            }
            (Vips::Absent, Some((token, deadline))) => {
                if let Some(lifetime) = self.lifetime(now, deadline) {
                    self.vips = Vips::Held {
                        token,
                        kernel_expiry: now + lifetime,
                        basis: deadline,
                    };
                    self.actions.push_back(Action::AddVips { token, lifetime });
                }
            }
            _ => {}
        }
    }

    fn remove_vips(&mut self) {
        self.vips = Vips::Absent;
        self.actions.push_back(Action::RemoveVips);
    }

    /// The longest whole-second kernel lifetime that, kernel lateness included, ends by
    /// `deadline`; `None` below one second (the kernel has nothing shorter).
    fn lifetime(&self, now: Instant, deadline: Instant) -> Option<Duration> {
        let secs = deadline
            .checked_duration_since(now)?
            .checked_sub(self.config.kernel_slack)?
            .as_secs();
        (secs >= 1).then(|| Duration::from_secs(secs))
    }
}

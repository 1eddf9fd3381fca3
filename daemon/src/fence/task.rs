//! The fencing task: one coordination session with its [`Lease`], one [`Claim`] per fenced
//! instance, and the I/O both ask for. Every pass of the loop feeds the current time to the
//! cores and executes their actions in order; VIP changes are awaited inline (so a removal is
//! done before the `DeleteOwner` that follows it), coordination requests run as futures whose
//! outcomes come back to the loop.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinSet;
use vigil_conf as conf;
use vigil_coord::EventKind;
use vigil_coord::node::CoordNode;
use vigil_coord::raft::SmEvent;
use vigil_fence::{Action, Claim, Lease, Owner, SessionId, Token};
use vigil_net::Rtnl;

use super::requests::{self, CreateResult, KeepAlive, Outcome, OwnerNode, Released};
use super::vips::VipSet;
use super::{FenceSettings, FenceStatus, Request};
use crate::watchdog::Beacon;

/// Wait before asking again for a session after a failed create.
const SESSION_RETRY: Duration = Duration::from_secs(1);
/// While waiting on a foreign owner (or after a create without an answer), the owner znode is
/// read this often, in case a deletion event was missed.
const RECHECK: Duration = Duration::from_secs(1);

struct Member {
    conf: conf::VrrpInstance,
    claim: Claim,
    vips: Option<VipSet>,
    status: watch::Sender<FenceStatus>,
    /// `false` once its VRRP instance is gone; the member is dropped when the claim settled.
    registered: bool,
    /// The request id of the last delete, reused while retrying the same token.
    delete_id: Option<(Token, u64)>,
    recheck_at: Option<Instant>,
    /// The owner as last read (for the status).
    seen: Option<OwnerNode>,
    last_error: Option<String>,
}

struct Fencer {
    node: CoordNode,
    settings: FenceSettings,
    rtnl: Rtnl,
    lease: Option<Lease>,
    creating: bool,
    session_retry: Option<Instant>,
    /// Request ids of the current session's writes: increasing, never reused except on
    /// purpose (a delete retry).
    request_id: u64,
    members: BTreeMap<String, Member>,
    pending: JoinSet<Outcome>,
}

pub(super) async fn run(
    node: CoordNode,
    settings: FenceSettings,
    rtnl: Rtnl,
    mut rx: mpsc::UnboundedReceiver<Request>,
    liveness: Beacon,
) {
    let mut events = Some(node.subscribe());
    // Makes an idle loop come round for the watchdog (no fenced instance, a steady lease).
    let mut heartbeat = tokio::time::interval(crate::watchdog::BEAT_EVERY);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut fencer = Fencer {
        node,
        settings,
        rtnl,
        lease: None,
        creating: false,
        session_retry: None,
        request_id: 0,
        members: BTreeMap::new(),
        pending: JoinSet::new(),
    };
    loop {
        fencer.drive(Instant::now()).await;
        // After `drive`: its VIP changes are awaited inline, and a hung one must stop the beats.
        liveness.beat();
        let wake = fencer.next_wake();
        tokio::select! {
            _ = heartbeat.tick() => {}
            request = rx.recv() => match request {
                None => break,
                Some(Request::Shutdown { done }) => {
                    liveness.retire();
                    fencer.shutdown().await;
                    let _ = done.send(());
                    return;
                }
                Some(request) => fencer.request(request),
            },
            Some(joined) = fencer.pending.join_next(), if !fencer.pending.is_empty() => {
                if let Ok(outcome) = joined {
                    fencer.outcome(Instant::now(), outcome);
                }
            }
            event = recv(&mut events) => fencer.event(Instant::now(), event, &mut events),
            () = sleep_until(wake) => {}
        }
    }
    liveness.retire();
    fencer.shutdown().await;
}

async fn recv(events: &mut Option<broadcast::Receiver<SmEvent>>) -> Result<SmEvent, RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

impl Fencer {
    fn next_id(&mut self) -> u64 {
        self.request_id += 1;
        self.request_id
    }

    fn request(&mut self, request: Request) {
        let now = Instant::now();
        match request {
            Request::Register { instance, status } => {
                let name = instance.name.clone();
                let vips = match VipSet::resolve(&instance) {
                    Ok(vips) => Some(vips),
                    Err(e) => {
                        tracing::error!(instance = %name, error = %e, "fenced VIPs cannot be resolved");
                        None
                    }
                };
                // Re-registered (a reload restarted the unit) before the old claim settled.
                if let Some(member) = self.members.get_mut(&name) {
                    member.status = status;
                    member.registered = true;
                    member.conf = *instance;
                    member.vips = vips;
                } else {
                    let claim = Claim::new(self.settings.claim, now);
                    self.members.insert(
                        name,
                        Member {
                            conf: *instance,
                            claim,
                            vips,
                            status,
                            registered: true,
                            delete_id: None,
                            recheck_at: None,
                            seen: None,
                            last_error: None,
                        },
                    );
                }
            }
            Request::Want { instance, want } => {
                if let Some(member) = self.members.get_mut(&instance) {
                    member.claim.set_want(now, want);
                }
            }
            Request::Unregister { instance } => {
                if let Some(member) = self.members.get_mut(&instance) {
                    member.registered = false;
                    member.claim.set_want(now, false);
                }
            }
            Request::Shutdown { .. } => {}
        }
    }

    /// Feeds `now` to the lease and every claim, and executes what they ask for.
    async fn drive(&mut self, now: Instant) {
        self.drive_session(now);
        let status = self.lease.as_mut().and_then(|l| l.status(now));
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in names {
            let Some(member) = self.members.get_mut(&name) else {
                continue;
            };
            member.claim.set_lease(now, status);
            member.claim.tick(now);
            if matches!(
                member.claim.owner(),
                Owner::Foreign { .. } | Owner::Unsure { .. }
            ) && member.recheck_at.is_some_and(|at| now >= at)
            {
                member.recheck_at = Some(now + RECHECK);
                self.pending
                    .spawn(requests::see_owner(self.node.clone(), name.clone()));
            }
            self.execute(&name, now).await;
        }
        // Instances gone from the config leave once their claim let go.
        self.members.retain(|_, m| {
            m.registered
                || !(m.claim.held_token().is_none()
                    && matches!(m.claim.owner(), Owner::Idle | Owner::Foreign { .. }))
        });
        // A lease that died is given up; its znodes go with the session.
        if let Some(lease) = self.lease.as_mut()
            && lease.status(now).is_none()
        {
            let session = lease.session();
            tracing::warn!(%session, state = ?lease.state(), "fencing lease lost; VIPs removed, opening a new session");
            self.lease = None;
            self.pending.spawn(close(self.node.clone(), session));
            self.drive_session(now);
        }
    }

    fn drive_session(&mut self, now: Instant) {
        if self.lease.is_none() {
            // No session for a daemon without fenced instances (a witness, `fencing = "off"`).
            if !self.creating
                && !self.members.is_empty()
                && self.session_retry.is_none_or(|at| now >= at)
            {
                self.creating = true;
                self.session_retry = None;
                let timeout =
                    u32::try_from(self.settings.session_timeout.as_millis()).unwrap_or(u32::MAX);
                self.pending
                    .spawn(requests::create_session(self.node.clone(), timeout));
            }
            return;
        }
        if let Some(lease) = self.lease.as_mut()
            && lease.status(now).is_some()
            && now >= lease.next_heartbeat()
        {
            let id = lease.heartbeat_sent(now);
            let session = lease.session();
            let request_id = self.next_id();
            self.pending.spawn(requests::keep_alive(
                self.node.clone(),
                session,
                id,
                request_id,
            ));
        }
    }

    fn next_wake(&self) -> Option<Instant> {
        let lease = self
            .lease
            .as_ref()
            .map(|l| l.next_heartbeat().min(l.deadline()));
        let claims = self
            .members
            .values()
            .flat_map(|m| [m.claim.poll_timeout(), m.recheck_at]);
        [lease, self.session_retry]
            .into_iter()
            .chain(claims)
            .flatten()
            .min()
    }

    /// Executes the claim's actions of instance `name`, in order.
    async fn execute(&mut self, name: &str, now: Instant) {
        let node_name = self.settings.node_name.clone();
        let Some(member) = self.members.get_mut(name) else {
            return;
        };
        while let Some(action) = member.claim.poll_action() {
            match action {
                Action::AddVips { token, lifetime } => {
                    let errors = match &member.vips {
                        Some(vips) => vips.add(&self.rtnl, lifetime).await,
                        None => vec!["VIPs not resolved".to_owned()],
                    };
                    tracing::info!(instance = name, %token, ?lifetime, "fenced VIPs added");
                    note_errors(member, name, errors);
                }
                Action::RefreshVips { lifetime } => {
                    let errors = match &member.vips {
                        Some(vips) => vips.add(&self.rtnl, lifetime).await,
                        None => Vec::new(),
                    };
                    tracing::debug!(instance = name, ?lifetime, "fenced VIPs refreshed");
                    note_errors(member, name, errors);
                }
                Action::RemoveVips => {
                    let errors = match &member.vips {
                        Some(vips) => vips.remove(&self.rtnl).await,
                        None => Vec::new(),
                    };
                    tracing::info!(instance = name, "fenced VIPs removed");
                    note_errors(member, name, errors);
                }
                Action::CreateOwner { session } => {
                    let first = self.request_id + 1;
                    self.request_id += requests::CREATE_OWNER_IDS;
                    let ids = first..first + requests::CREATE_OWNER_IDS;
                    self.pending.spawn(requests::create_owner(
                        self.node.clone(),
                        name.to_owned(),
                        session,
                        node_name.clone(),
                        ids,
                    ));
                }
                Action::WatchOwner => {
                    member.recheck_at = Some(now + RECHECK);
                    self.pending
                        .spawn(requests::see_owner(self.node.clone(), name.to_owned()));
                }
                Action::DeleteOwner { session, token } => {
                    let id = match member.delete_id {
                        Some((t, id)) if t == token => id,
                        _ => {
                            self.request_id += 1;
                            member.delete_id = Some((token, self.request_id));
                            self.request_id
                        }
                    };
                    self.pending.spawn(requests::delete_owner(
                        self.node.clone(),
                        name.to_owned(),
                        session,
                        id,
                    ));
                }
                Action::QuorumFault(fault) => {
                    if fault {
                        tracing::warn!(
                            instance = name,
                            "no valid quorum lease: VRRP treats the instance as faulty"
                        );
                    } else {
                        tracing::info!(instance = name, "quorum lease valid");
                    }
                }
            }
        }
        publish(member, &node_name);
    }

    fn outcome(&mut self, now: Instant, outcome: Outcome) {
        match outcome {
            Outcome::Session { sent, result } => {
                self.creating = false;
                match result {
                    Ok((session, timeout_ms)) if self.lease.is_none() => {
                        let timeout = Duration::from_millis(u64::from(timeout_ms));
                        match Lease::new(self.settings.lease, session, timeout, sent) {
                            Ok(lease) => {
                                tracing::info!(%session, ?timeout, budget = ?lease.budget(), "fencing session opened");
                                self.check_kernel_lifetime(&lease);
                                self.request_id = 0;
                                self.lease = Some(lease);
                            }
                            Err(e) => {
                                tracing::error!(%session, error = %e, "fencing session unusable");
                                self.session_retry = Some(now + SESSION_RETRY);
                                self.pending.spawn(close(self.node.clone(), session));
                            }
                        }
                    }
                    // One session at a time; an extra one (a retried create) is closed.
                    Ok((session, _)) => {
                        self.pending.spawn(close(self.node.clone(), session));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot open a fencing session; retrying");
                        self.session_retry = Some(now + SESSION_RETRY);
                    }
                }
            }
            Outcome::Heartbeat {
                session,
                id,
                result,
            } => {
                let Some(lease) = self.lease.as_mut().filter(|l| l.session() == session) else {
                    return;
                };
                match result {
                    KeepAlive::Acked => {
                        lease.heartbeat_acked(now, id);
                    }
                    KeepAlive::Expired => {
                        tracing::warn!(%session, "fencing session expired at the quorum");
                        lease.session_ended();
                    }
                    KeepAlive::Failed(why) => {
                        tracing::debug!(%session, %why, "keep-alive not acknowledged");
                        lease.heartbeat_failed(id);
                    }
                }
            }
            Outcome::Create {
                instance,
                session,
                result,
            } => {
                if let CreateResult::SessionGone = result {
                    self.end_session(session);
                }
                let Some(member) = self.members.get_mut(&instance) else {
                    return;
                };
                match result {
                    CreateResult::Created(token) => {
                        tracing::info!(instance, %token, "owner znode created");
                        member.seen = None;
                        member.claim.claim_created(now, session, token);
                    }
                    CreateResult::Exists(owner) => {
                        tracing::info!(instance, owner = %owner.node, token = %owner.token, "owned elsewhere; waiting for it to go");
                        member.claim.owner_exists(now, owner.session, owner.token);
                        member.seen = Some(owner);
                    }
                    CreateResult::SessionGone => member.claim.claim_failed(now, session),
                    CreateResult::Failed(why) => {
                        tracing::warn!(instance, %why, "owner znode create failed");
                        member.last_error = Some(why);
                        member.claim.claim_failed(now, session);
                    }
                }
            }
            Outcome::Seen { instance, result } => {
                let Some(member) = self.members.get_mut(&instance) else {
                    return;
                };
                match result {
                    Ok(owner) => {
                        member
                            .claim
                            .owner_seen(now, owner.as_ref().map(|o| (o.session, o.token)));
                        member.seen = owner;
                    }
                    Err(e) => tracing::debug!(instance, error = %e, "owner read failed"),
                }
            }
            Outcome::Closed => {}
            Outcome::Delete { instance, result } => {
                let Some(member) = self.members.get_mut(&instance) else {
                    return;
                };
                match result {
                    Released::Done | Released::SessionGone => {
                        member.delete_id = None;
                        member.seen = None;
                        member.claim.owner_deleted(now);
                    }
                    Released::Failed(why) => {
                        tracing::warn!(instance, %why, "owner znode delete failed; retrying");
                        member.claim.release_failed(now);
                    }
                }
            }
        }
    }

    /// Says loudly when the lease is too short for kernel lifetimes: VIPs need at least one
    /// whole second that ends, kernel lateness included, inside the lease, and it must outlast
    /// the keep-alive interval or the VIPs flap between refreshes.
    fn check_kernel_lifetime(&self, lease: &Lease) {
        let slack = self.settings.claim.kernel_slack;
        let needed = slack + Duration::from_secs(1) + lease.keepalive_interval();
        if lease.budget() < needed {
            tracing::error!(
                timeout = ?lease.timeout(),
                budget = ?lease.budget(),
                kernel_slack = ?slack,
                "the session timeout is too short for fenced VIPs: their kernel lifetime \
                 (whole seconds, plus up to the kernel slack of lateness) must fit in the lease \
                 and outlast the keep-alive interval; VIPs will not be added or will flap \
                 (`vigild --check-config` names the shortest timeout that works)"
            );
        }
    }

    fn end_session(&mut self, session: SessionId) {
        if let Some(lease) = self.lease.as_mut()
            && lease.session() == session
        {
            lease.session_ended();
        }
    }

    fn event(
        &mut self,
        now: Instant,
        event: Result<SmEvent, RecvError>,
        events: &mut Option<broadcast::Receiver<SmEvent>>,
    ) {
        match event {
            Ok(SmEvent::Applied {
                events: applied, ..
            }) => {
                for e in applied {
                    if e.kind != EventKind::NodeDeleted {
                        continue;
                    }
                    if let Some(member) = self
                        .members
                        .iter_mut()
                        .find(|(name, _)| requests::owner_path(name) == e.path)
                        .map(|(_, m)| m)
                    {
                        member.claim.owner_gone(now);
                    }
                }
            }
            // Events were missed: look again at whatever we wait on.
            Ok(SmEvent::SnapshotInstalled { .. }) | Err(RecvError::Lagged(_)) => {
                for member in self.members.values_mut() {
                    member.recheck_at = Some(now);
                }
            }
            Err(RecvError::Closed) => *events = None,
        }
    }

    async fn shutdown(&mut self) {
        let now = Instant::now();
        let names: Vec<String> = self.members.keys().cloned().collect();
        for name in &names {
            if let Some(member) = self.members.get_mut(name) {
                member.claim.set_want(now, false);
            }
            // VIPs go inline; the deletes it asks for are superseded by the close below.
            self.execute(name, now).await;
        }
        if let Some(lease) = self.lease.take() {
            requests::close_session(self.node.clone(), lease.session()).await;
        }
    }
}

async fn close(node: CoordNode, session: SessionId) -> Outcome {
    requests::close_session(node, session).await;
    Outcome::Closed
}

fn note_errors(member: &mut Member, name: &str, errors: Vec<String>) {
    for e in errors {
        tracing::error!(instance = name, error = %e, "fenced VIP change failed");
        member.last_error = Some(e);
    }
}

/// Publishes `member`'s status when it changed.
fn publish(member: &Member, node_name: &str) {
    let (owner, token) = match member.claim.owner() {
        Owner::Owned { token, .. } | Owner::Releasing { token, .. } => {
            (Some(node_name.to_owned()), Some(token.0))
        }
        Owner::Foreign { token, .. } => {
            (member.seen.as_ref().map(|o| o.node.clone()), Some(token.0))
        }
        Owner::Idle | Owner::Creating { .. } | Owner::Unsure { .. } => (None, None),
    };
    let status = FenceStatus {
        quorum: !member.claim.quorum_fault(),
        owner,
        token,
        holding: member.claim.held_token().is_some(),
        last_error: member.last_error.clone(),
    };
    member.status.send_if_modified(|current| {
        let changed = *current != status;
        if changed {
            *current = status;
        }
        changed
    });
}

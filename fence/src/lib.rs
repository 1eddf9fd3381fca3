//! Quorum fencing of VIPs: the session [`Lease`] and the per-instance ownership [`Claim`].
//! Pure: no sockets, no clock reads, no tokio, no knowledge of VRRP or of the coordination
//! service's API; the daemon wires them (`daemon/src/fence/`).
//!
//! # The guarantee
//!
//! For every VRRP instance with `fencing = "quorum"`: a node holds the instance's VIPs only
//! while it holds the ephemeral znode `/vigil/vrrp/<instance>/owner` of a live session, so two
//! nodes never hold them at once and a node cut off from the quorum lets them go; the znode's
//! czxid is the **fencing token**, strictly larger for every new owner.
//!
//! # Why the lease is safe
//!
//! Notation: the session timeout is `T`; a keep-alive is sent at local time `s`.
//!
//! 1. **What an acknowledgement must mean.** The shell counts a keep-alive as acknowledged only
//!    if it was a write of the session (a session-bound `sync`) that *committed*: the leader
//!    `L` (term `t`) that proposed it first touched the session (deadline `r + T`, `r ≥ s`, on
//!    its clock) and a quorum then accepted the entry in term `t`. A heartbeat the leader only
//!    touches in memory is not enough: a deposed leader that has not noticed yet would accept
//!    it, and a read-index round afterwards may be served by a different leader.
//! 2. **No expiry before `s + T`.** Session `S` ends only by an `ExpireSession` entry applied
//!    after our write `W` (or `W` would have failed). Terms never decrease along the log, so
//!    that entry's term is `t` or later. If `t`: `L` proposed it once its tracker deadline,
//!    at least `r + T`, had passed. If later: its leader was elected with a vote from a member
//!    that accepted `W` first (the vote and the commit quorums intersect, and a member that
//!    has voted in a newer term refuses entries of term `t`), so after `r`; a new leader gives
//!    every session a full timeout from its take-over, so again not before `r + T`. The same
//!    reasoning covers an expiry proposed by a stale leader and committed later by another.
//! 3. **Clocks.** Those `T` run on a leader's clock. With this node's clock at most a factor
//!    `1 − max_drift` slower than any leader's, `T·(1 − max_drift)` local time ends before `T`
//!    leader time, so the local deadline `s + T·(1 − max_drift) − margin` is before the
//!    quorum's earliest possible expiry; `margin` covers the shell's own latency in acting on
//!    the deadline. The session's creation counts as the first keep-alive (its send time).
//! 4. **Successors.** Another node can create the owner znode only after ours is gone: after
//!    our session expired (so after our deadline, when our VIPs were already removed), or
//!    after we deleted it (which we do only after removing the VIPs). Its czxid is the zxid of
//!    a later write, hence larger: tokens strictly increase.
//! 5. **Frozen or crashed daemons.** VIPs carry a kernel lifetime (whole seconds, floored)
//!    ending, with the kernel's lateness, by the lease deadline, refreshed as the lease moves:
//!    a daemon that stops running loses its VIPs before its session can expire. A daemon that
//!    resumes after a pause finds its lease lapsed: the lease is dead for good and the claim
//!    stale; it needs a new session and a new claim, with a larger token.
//!
//! Consequence for failover: a crashed owner is replaced once the quorum expires its session,
//! up to `T` after its last keep-alive (plus the leader's expiry tick and the successor's
//! create); its VIPs left its kernel before that, so the successor waits for nothing else. If
//! the crashed owner was also the coordination leader, a new leader must be elected first and
//! gives every session a full `T` from its take-over (it cannot know when the old leader last
//! heard from each client): about `T` + the election. A graceful hand-over (lower priority,
//! shutdown) is immediate: VIPs removed, znode deleted, successor claims (after an election
//! when the node handing over led the cluster). Measured: `bench/README.md`.
//!
//! # Layout
//!
//! - `lease`: [`Lease`], the deadline of one session from its acknowledged keep-alives.
//! - `claim`: [`Claim`], one instance's ownership: inputs from VRRP, the lease and the owner
//!   znode; [`Action`]s for the shell (znode requests, VIP adds/refreshes/removals, the quorum
//!   fault fed back to VRRP).

mod claim;
mod lease;

pub use claim::{Action, Claim, ClaimConfig, Owner, Token};
pub use lease::{
    HeartbeatId, Lease, LeaseConfig, LeaseError, LeaseState, LeaseStatus, MAX_DRIFT_PPM_LIMIT,
    SessionId,
};

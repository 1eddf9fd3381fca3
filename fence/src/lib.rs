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
//!    `L` (term `t`) that proposed it first counted it for the session (deadline `r + T`,
//!    `r ≥ s`, on its clock) and a quorum then accepted the entry in term `t`. A heartbeat the
//!    leader only touches in memory is not enough: a deposed leader that has not noticed yet
//!    would accept it, and a read-index round afterwards may be served by a different leader.
//! 2. **No expiry before `s + T`.** The session is a *committed-writes* session
//!    (`vigil_coord::Liveness::CommittedWrites`, fixed at its creation and replicated): only
//!    its committed writes renew it, heartbeats are refused. Every coordination member records
//!    its own monotonic instant at which it applied the session's latest write; the leader also
//!    counts a write it proposes from when it received it. The leader expires the session once
//!    `T` has passed on its clock since the latest of those. Session `S` ends only by an
//!    `ExpireSession` entry `E` applied after our write `W` (or `W` would have failed). Terms
//!    never decrease along the log, so `E`'s term is `t` or later.
//!    - If `t`: `L` proposed `E` once its deadline, at least `r + T`, had passed. (`L` received
//!      `W` before deciding: once it decides an expiry it refuses the session's further
//!      writes, so none can commit ahead of `E`.)
//!    - If `t' > t`: `E`'s leader `L'` was elected with a vote from a member that accepted `W`
//!      first (the vote and the commit quorums intersect, and a member that has voted in a
//!      newer term refuses entries of term `t`), so `W` was in its log before the first entry
//!      of its own term (openraft's blank entry). `L'` expires no committed-writes session
//!      before it applied an entry of term `t'`: until then its apply times may be too old
//!      (committed entries it has not applied yet). By then it applied `W`, at an instant `a`
//!      after `W` was proposed, so after `r ≥ s`, and `E` came no earlier than `a + T`.
//!      A member that restarted or installed a snapshot since takes that moment as the last
//!      write: later, so only later expiries.
//!
//!    The same reasoning covers an expiry proposed by a stale leader and committed later by
//!    another: its term is its proposer's. (Heartbeat sessions, e.g. the `/vigil/members`
//!    records', keep ZooKeeper's rule: a new leader gives each a full `T` from its take-over,
//!    as it cannot know what the old one heard.)
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
//! the crashed owner was also the coordination leader, a new leader must be elected first; it
//! expires the session `T` after it applied the last keep-alive that committed (a follower
//! applies an entry about one Raft heartbeat after its commit), or as soon as it applied its
//! term's first entry if that is later: again about `T` after the last keep-alive (unless the
//! election takes longer), not election + `T` as with a full timeout from the take-over. A
//! graceful hand-over (lower priority, shutdown) is immediate: VIPs removed, znode deleted,
//! successor claims (after an election when the node handing over led the cluster). Measured:
//! `bench/README.md`.
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

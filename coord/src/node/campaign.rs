//! One early election after start, when no leader has been heard from.
//!
//! openraft 0.9.25 stamps the persisted vote with the start time, and a node whose vote is
//! committed (every member of a cluster that ever had a leader) waits `leader_lease +
//! election_timeout` from that stamp before it campaigns: 800 ms plus a random 400–800 ms with
//! the default timeouts, on top of loading the snapshot. After a whole-cluster restart nobody
//! leads during that wait, so clients see 1.2–1.6 s of unavailability that buys nothing.
//!
//! This task asks openraft for one election ([`openraft::Raft::trigger`], `elect()`) once the
//! voters' leader lease (`election_timeout_max`, stamped at their own start) has run out, plus
//! a random jitter so that members started together do not all campaign at once; and only if
//! this node is still a follower that knows of no leader and is a voter of a multi-voter
//! membership.
//!
//! Why that is safe: an election is always safe in Raft (a vote is granted only to a log at
//! least as up to date, at most once per term); timers only affect liveness. The lease keeps a
//! live cluster undisturbed: a voter that heard from a leader within `election_timeout_max`
//! rejects the request, exactly as for openraft's own timer-driven election, which would fire
//! under the same condition ("no leader heard") only a few hundred milliseconds later. If the
//! early campaign splits the vote or is refused, openraft's normal timers take over as before.

use std::hash::{BuildHasher as _, Hasher as _};
use std::sync::Arc;
use std::time::Duration;

use openraft::ServerState;

use super::Inner;

/// Waits for the voters' lease to run out, then campaigns once if nobody leads yet.
pub(super) async fn run(inner: Arc<Inner>) {
    let config = &inner.config;
    let delay = config.election_timeout_max + jitter(config.election_timeout_min / 2);
    let mut stop = inner.stop.subscribe();
    tokio::select! {
        () = tokio::time::sleep(delay) => {}
        _ = stop.wait_for(|s| *s) => return,
    }
    let campaign = {
        let m = inner.raft.metrics().borrow().clone();
        let voters = m.membership_config.membership().voter_ids().count();
        m.state == ServerState::Follower
            && m.current_leader.is_none()
            && voters > 1
            && m.membership_config
                .membership()
                .voter_ids()
                .any(|id| id == inner.id)
    };
    if !campaign {
        return;
    }
    tracing::info!(
        node = inner.id,
        after = ?delay,
        "no leader heard since start: campaigning without waiting for the election timer"
    );
    if let Err(e) = inner.raft.trigger().elect().await {
        tracing::debug!(node = inner.id, error = %e, "early election not started");
    }
}

/// A random duration below `max` (zero if `max` is zero), from the process's randomly keyed
/// hasher: enough to spread members that started at the same moment.
fn jitter(max: Duration) -> Duration {
    let nanos = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if nanos == 0 {
        return Duration::ZERO;
    }
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(u64::from(std::process::id()));
    Duration::from_nanos(h.finish() % nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_below_its_bound_and_varies() {
        assert_eq!(jitter(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_millis(200);
        let samples: Vec<Duration> = (0..64).map(|_| jitter(max)).collect();
        assert!(samples.iter().all(|d| *d < max), "{samples:?}");
        let first = samples[0];
        assert!(
            samples.iter().any(|d| *d != first),
            "64 draws were all {first:?}"
        );
    }
}

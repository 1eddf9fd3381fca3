//! Who starts a brand-new coordination cluster, and when.
//!
//! A Raft cluster is born once, when one node writes the first membership entry. Doing that a
//! second time — say, on a node whose data directory was wiped — would start a second, empty
//! cluster beside the real one. The rule, checked on every attempt:
//!
//! 1. Only the node with the lowest id of `[cluster]` (itself and its peers) ever bootstraps.
//!    Every other node waits for a leader to contact it; a node added later (`vigilctl members
//!    add`) is contacted the same way.
//! 2. It bootstraps only while its own Raft state is empty: it never voted and holds no log
//!    entry. A node that restarts with its data keeps its log and simply rejoins.
//! 3. And only once **every** peer has answered a [`PeerRequest::Probe`] saying its state is
//!    empty too. One peer that answers as a cluster member vetoes it for good (this node then
//!    waits to be contacted, and says how to re-add it if its data was lost); a peer that cannot
//!    be reached keeps it waiting.
//!
//! Why every peer, not a majority: a committed cluster's entries live on a majority, so a
//! majority of empty answers would already rule out a healthy cluster — but not one that runs
//! on a majority this node's probe happened not to reach while another member never joined.
//! Waiting for all members costs nothing on the first start of a site (all members are being
//! installed) and keeps that corner closed. A member that never comes up blocks the first
//! start; remove it from the configs (or give the lowest id to a member that is up).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use vigil_coord::node::CoordNode;
use vigil_coord::raft::network::{PeerClient, PeerRequest, PeerResponse, PeerTls};

/// What a peer said to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerState {
    /// Never voted, no log entry.
    Empty,
    /// Holds Raft state: it is (or was) a member of a cluster.
    Member {
        /// Its term.
        term: u64,
        /// The leader it follows, if any.
        leader: Option<u64>,
    },
    /// No answer (down, partitioned, TLS refused, an older vigild).
    Unknown(String),
}

/// What this node should do about bootstrapping now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Write the first membership entry.
    Initialize,
    /// Not this node's job: a lower id bootstraps, or this node already holds Raft state.
    NotMine,
    /// A peer runs a cluster: never bootstrap; wait to be contacted by its leader.
    Join {
        /// The peer that answered as a member.
        peer: u64,
    },
    /// Some peers have not answered yet; ask again later.
    Wait {
        /// Peers without an answer, with the reason.
        unanswered: Vec<(u64, String)>,
    },
}

/// The rule of the module docs. `members` holds every configured id (this node included);
/// `answers` what each peer said.
pub fn decide(
    me: u64,
    members: &BTreeMap<u64, String>,
    self_initialized: bool,
    answers: &BTreeMap<u64, PeerState>,
) -> Decision {
    if self_initialized || members.keys().next().is_some_and(|&lowest| lowest != me) {
        return Decision::NotMine;
    }
    let peers = members.keys().filter(|&&id| id != me);
    let mut unanswered = Vec::new();
    for &peer in peers {
        match answers.get(&peer) {
            Some(PeerState::Empty) => {}
            Some(PeerState::Member { .. }) => return Decision::Join { peer },
            Some(PeerState::Unknown(reason)) => unanswered.push((peer, reason.clone())),
            None => unanswered.push((peer, "not asked yet".to_owned())),
        }
    }
    if unanswered.is_empty() {
        Decision::Initialize
    } else {
        Decision::Wait { unanswered }
    }
}

/// Asks one peer what Raft state it holds.
pub async fn probe(client: &PeerClient, timeout: Duration) -> PeerState {
    match client.call(PeerRequest::Probe, timeout).await {
        Ok(PeerResponse::Probe(p)) if p.initialized => PeerState::Member {
            term: p.term,
            leader: p.leader,
        },
        Ok(PeerResponse::Probe(_)) => PeerState::Empty,
        Ok(PeerResponse::Refused(reason)) => PeerState::Unknown(format!("refused: {reason}")),
        Ok(other) => PeerState::Unknown(format!("unexpected answer {other:?}")),
        Err(e) => PeerState::Unknown(e.to_string()),
    }
}

/// Where the bootstrapper stands, for `vigilctl status`.
pub type Progress = watch::Receiver<Option<String>>;

/// Runs the rule until this node holds Raft state (bootstrapped or contacted) or `stop` fires.
/// Publishes why it is still waiting on `progress` (`None` once the node is a member).
pub async fn run(
    node: CoordNode,
    members: BTreeMap<u64, String>,
    tls: Option<PeerTls>,
    every: Duration,
    progress: watch::Sender<Option<String>>,
    mut stop: watch::Receiver<bool>,
) {
    let me = node.id();
    let clients: BTreeMap<u64, Arc<PeerClient>> = members
        .iter()
        .filter(|&(&id, _)| id != me)
        .map(|(&id, addr)| (id, Arc::new(PeerClient::new(addr.clone(), tls.clone()))))
        .collect();
    let mut last_logged: Option<String> = None;
    loop {
        let initialized = node.is_initialized().await.unwrap_or(true);
        let mut answers = BTreeMap::new();
        if !initialized && members.keys().next() == Some(&me) {
            answers = probe_all(&clients, every.max(Duration::from_secs(1))).await;
        }
        let (waiting, done) = match decide(me, &members, initialized, &answers) {
            Decision::Initialize => match node.initialize(&members).await {
                Ok(true) => {
                    tracing::info!(
                        node = me,
                        ?members,
                        "bootstrapped a new coordination cluster"
                    );
                    (None, true)
                }
                // Contacted by a leader between the check and now: a member after all.
                Ok(false) => (None, true),
                Err(e) => (Some(format!("bootstrap failed: {e}")), false),
            },
            Decision::NotMine if initialized => (None, true),
            Decision::NotMine => (
                Some(format!(
                    "waiting for node {} (the lowest id) to bootstrap the cluster, or for a leader to add this node",
                    members.keys().next().copied().unwrap_or(me)
                )),
                false,
            ),
            Decision::Join { peer } => {
                let text = format!(
                    "not bootstrapping: peer {peer} already runs a cluster; waiting for its leader \
                     to contact this node. If this node's data dir was lost, re-add it: \
                     `vigilctl members remove {me}`, then `members add {me} ADDR` and `promote {me}`"
                );
                (Some(text), false)
            }
            Decision::Wait { unanswered } => {
                let list: Vec<String> = unanswered
                    .iter()
                    .map(|(id, why)| format!("{id} ({why})"))
                    .collect();
                (
                    Some(format!(
                        "waiting to bootstrap until every peer answers with an empty state; no answer from {}",
                        list.join(", ")
                    )),
                    false,
                )
            }
        };
        if waiting != last_logged {
            if let Some(text) = &waiting {
                tracing::warn!(node = me, "{text}");
            }
            last_logged.clone_from(&waiting);
        }
        progress.send_replace(waiting);
        if done {
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

/// Probes every peer at once, each bounded by `timeout`.
async fn probe_all(
    clients: &BTreeMap<u64, Arc<PeerClient>>,
    timeout: Duration,
) -> BTreeMap<u64, PeerState> {
    let mut set = tokio::task::JoinSet::new();
    for (&id, client) in clients {
        let client = Arc::clone(client);
        set.spawn(async move { (id, probe(&client, timeout).await) });
    }
    let mut out = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        if let Ok((id, state)) = joined {
            out.insert(id, state);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(ids: &[u64]) -> BTreeMap<u64, String> {
        ids.iter()
            .map(|id| (*id, format!("10.0.0.{id}:7401")))
            .collect()
    }

    fn answers(list: &[(u64, PeerState)]) -> BTreeMap<u64, PeerState> {
        list.iter().cloned().collect()
    }

    #[test]
    fn only_the_lowest_id_with_an_empty_state_and_empty_peers_initializes() {
        let m = members(&[1, 2, 3]);
        let all_empty = answers(&[(2, PeerState::Empty), (3, PeerState::Empty)]);
        assert_eq!(decide(1, &m, false, &all_empty), Decision::Initialize);
        assert_eq!(decide(2, &m, false, &all_empty), Decision::NotMine);
        assert_eq!(decide(1, &m, true, &all_empty), Decision::NotMine);
    }

    #[test]
    fn a_single_member_peer_vetoes_even_when_the_others_are_empty() {
        let m = members(&[1, 2, 3]);
        let a = answers(&[
            (2, PeerState::Empty),
            (
                3,
                PeerState::Member {
                    term: 7,
                    leader: Some(3),
                },
            ),
        ]);
        assert_eq!(decide(1, &m, false, &a), Decision::Join { peer: 3 });
    }

    #[test]
    fn an_unreachable_peer_keeps_the_bootstrapper_waiting() {
        let m = members(&[1, 2, 3]);
        let a = answers(&[
            (2, PeerState::Empty),
            (3, PeerState::Unknown("connection refused".into())),
        ]);
        assert_eq!(
            decide(1, &m, false, &a),
            Decision::Wait {
                unanswered: vec![(3, "connection refused".into())]
            }
        );
        // A peer never asked counts as unanswered, not as empty.
        let only_2 = answers(&[(2, PeerState::Empty)]);
        assert!(matches!(
            decide(1, &m, false, &only_2),
            Decision::Wait { .. }
        ));
    }

    #[test]
    fn a_lone_member_bootstraps_at_once() {
        let m = members(&[5]);
        assert_eq!(decide(5, &m, false, &BTreeMap::new()), Decision::Initialize);
    }

    #[test]
    fn a_node_added_with_a_lower_id_than_the_cluster_never_bootstraps_over_it() {
        // Node 0 is not allowed by the config, but a new node 1 joining a cluster of 2, 3 is.
        let m = members(&[1, 2, 3]);
        let a = answers(&[
            (
                2,
                PeerState::Member {
                    term: 3,
                    leader: Some(2),
                },
            ),
            (3, PeerState::Unknown("timed out".into())),
        ]);
        assert_eq!(decide(1, &m, false, &a), Decision::Join { peer: 2 });
    }

    /// A fresh node in a temporary directory, on a loopback port.
    async fn fresh(id: u64, dir: &std::path::Path) -> CoordNode {
        let mut config = vigil_coord::node::CoordConfig::new(
            id,
            "127.0.0.1:0".parse().unwrap(),
            dir.join(format!("n{id}")),
        );
        config.election_timeout_min = Duration::from_millis(200);
        config.election_timeout_max = Duration::from_millis(400);
        config.heartbeat_interval = Duration::from_millis(50);
        CoordNode::start(config).await.unwrap()
    }

    fn temp_dir(tag: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("vigil-bootstrap-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn run_until_settled(
        node: &CoordNode,
        members: BTreeMap<u64, String>,
    ) -> (watch::Receiver<Option<String>>, watch::Sender<bool>) {
        let (progress, waiting) = watch::channel(None);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(run(
            node.clone(),
            members,
            None,
            Duration::from_millis(100),
            progress,
            stopped,
        ));
        (waiting, stop)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_wiped_lowest_id_waits_instead_of_bootstrapping_beside_a_running_cluster() {
        let dir = temp_dir("veto");
        // Node 2 already runs a cluster (of itself); node 1 comes up empty, as after a wipe.
        let running = fresh(2, &dir).await;
        let client = PeerClient::new(running.local_addr().to_string(), None);
        assert_eq!(
            probe(&client, Duration::from_secs(1)).await,
            PeerState::Empty
        );
        let alone = BTreeMap::from([(2, running.local_addr().to_string())]);
        assert!(running.initialize(&alone).await.unwrap());
        assert!(matches!(
            probe(&client, Duration::from_secs(1)).await,
            PeerState::Member { .. }
        ));
        let wiped = fresh(1, &dir).await;
        let members = BTreeMap::from([
            (1, wiped.local_addr().to_string()),
            (2, running.local_addr().to_string()),
        ]);
        let (mut waiting, stop) = run_until_settled(&wiped, members);
        let said = tokio::time::timeout(Duration::from_secs(5), async {
            waiting
                .wait_for(|w| {
                    w.as_deref()
                        .is_some_and(|w| w.contains("peer 2 already runs"))
                })
                .await
                .is_ok()
        })
        .await
        .unwrap_or(false);
        assert!(said, "no veto: {:?}", *waiting.borrow());
        assert!(
            !wiped.is_initialized().await.unwrap(),
            "the wiped node bootstrapped"
        );
        stop.send_replace(true);
        for node in [wiped, running] {
            node.shutdown().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_lowest_id_bootstraps_once_every_peer_answers_empty() {
        let dir = temp_dir("init");
        let (one, two) = (fresh(1, &dir).await, fresh(2, &dir).await);
        let members = BTreeMap::from([
            (1, one.local_addr().to_string()),
            (2, two.local_addr().to_string()),
        ]);
        let (mut waiting_1, _stop_1) = run_until_settled(&one, members.clone());
        let (mut waiting_2, _stop_2) = run_until_settled(&two, members);
        // Node 2 never bootstraps; node 1 does, and both end up members of one cluster.
        let settled = tokio::time::timeout(Duration::from_secs(10), async {
            waiting_1.wait_for(Option::is_none).await.unwrap();
            loop {
                if one.status().leader.is_some() && one.status().leader == two.status().leader {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            waiting_2.wait_for(Option::is_none).await.unwrap();
        })
        .await;
        assert!(settled.is_ok(), "{:?} / {:?}", one.status(), two.status());
        assert_eq!(one.status().voters.len(), 2);
        for node in [one, two] {
            node.shutdown().await.unwrap();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

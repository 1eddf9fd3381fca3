//! `[cluster]` (vigil-conf) → [`CoordConfig`] and the client API's [`ApiConfig`].

use std::collections::BTreeMap;
use std::time::Duration;

use vigil_conf::Cluster;
use vigil_coord::SessionConfig;
use vigil_coord::api::ApiConfig;
use vigil_coord::node::CoordConfig;
use vigil_coord::raft::network::TlsConfig;

/// The node's config. `initial_members` stays empty: the daemon decides about bootstrapping
/// itself ([`super::bootstrap`]), so the node never initializes on its own.
pub fn coord_config(cluster: &Cluster) -> CoordConfig {
    let mut config = CoordConfig::new(cluster.node_id, cluster.raft_listen, &cluster.data_dir);
    config.heartbeat_interval = cluster.heartbeat_interval;
    config.election_timeout_min = cluster.election_timeout_min;
    config.election_timeout_max = cluster.election_timeout_max;
    config.sessions = sessions(cluster);
    config.tls = cluster.tls.as_ref().map(|files| TlsConfig {
        ca: files.ca.clone(),
        cert: files.cert.clone(),
        key: files.key.clone(),
    });
    config
}

/// The client API's settings; authentication is the daemon's (see [`super::serve_api`]).
pub fn api_config(cluster: &Cluster) -> ApiConfig {
    ApiConfig {
        token: None,
        sessions: sessions(cluster),
        ..ApiConfig::default()
    }
}

fn sessions(cluster: &Cluster) -> SessionConfig {
    SessionConfig {
        min_timeout_ms: millis(cluster.session_timeout_min),
        max_timeout_ms: millis(cluster.session_timeout_max),
    }
}

/// Saturating: conf bounds these durations far below `u32::MAX` ms anyway.
pub(crate) fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// Every configured member (this node and its peers), id → Raft address: the voters a new
/// cluster starts with.
///
/// This node's own entry is `raft_listen`, so the address written into the membership must be
/// one peers can reach: a wildcard is refused for the node that bootstraps (the lowest id).
/// Other nodes are written into the membership by the bootstrapper, from its own config.
pub fn initial_members(cluster: &Cluster) -> Result<BTreeMap<u64, String>, String> {
    let mut members: BTreeMap<u64, String> = cluster
        .peers
        .iter()
        .map(|p| (p.id, p.address.to_string()))
        .collect();
    let lowest = members.keys().all(|&id| id > cluster.node_id);
    if lowest && cluster.raft_listen.ip().is_unspecified() {
        return Err(format!(
            "[cluster] raft_listen = \"{}\" is a wildcard, but node {} has the lowest id and \
             writes its own address into the new cluster's membership: set raft_listen to the \
             address its peers use for it",
            cluster.raft_listen, cluster.node_id
        ));
    }
    members.insert(cluster.node_id, cluster.raft_listen.to_string());
    Ok(members)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use vigil_conf::{ClusterPeer, TlsFiles};

    use super::*;

    fn cluster(node_id: u64, raft_listen: &str) -> Cluster {
        Cluster {
            node_id,
            peers: vec![
                ClusterPeer {
                    id: 2,
                    address: "10.0.0.2:7401".parse().unwrap(),
                },
                ClusterPeer {
                    id: 3,
                    address: "10.0.0.3:7401".parse().unwrap(),
                },
            ],
            data_dir: PathBuf::from("/var/lib/vigil/coord"),
            session_timeout: Duration::from_secs(10),
            session_timeout_min: Duration::from_secs(2),
            session_timeout_max: Duration::from_mins(1),
            heartbeat_interval: Duration::from_millis(50),
            election_timeout_min: Duration::from_millis(300),
            election_timeout_max: Duration::from_millis(600),
            raft_listen: raft_listen.parse().unwrap(),
            client_listen: "127.0.0.1:7402".parse().unwrap(),
            tls: Some(TlsFiles {
                ca: "/ca.pem".into(),
                cert: "/c.pem".into(),
                key: "/k.pem".into(),
            }),
            witness: false,
            fencing: vigil_conf::FencingParams::default(),
        }
    }

    #[test]
    fn maps_timings_sessions_and_tls_and_never_self_initializes() {
        let c = coord_config(&cluster(1, "10.0.0.1:7401"));
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listen, "10.0.0.1:7401".parse().unwrap());
        assert_eq!(c.data_dir, PathBuf::from("/var/lib/vigil/coord"));
        assert_eq!(c.heartbeat_interval, Duration::from_millis(50));
        assert_eq!(c.election_timeout_min, Duration::from_millis(300));
        assert_eq!(c.election_timeout_max, Duration::from_millis(600));
        assert_eq!(c.sessions.min_timeout_ms, 2_000);
        assert_eq!(c.sessions.max_timeout_ms, 60_000);
        assert_eq!(c.tls.as_ref().map(|t| t.key.clone()), Some("/k.pem".into()));
        assert!(c.initial_members.is_empty());
        assert!(!c.bootstrap);
    }

    #[test]
    fn members_are_self_and_peers() {
        let m = initial_members(&cluster(1, "10.0.0.1:7401")).unwrap();
        assert_eq!(
            m.into_iter().collect::<Vec<_>>(),
            [
                (1, "10.0.0.1:7401".to_owned()),
                (2, "10.0.0.2:7401".to_owned()),
                (3, "10.0.0.3:7401".to_owned()),
            ]
        );
    }

    #[test]
    fn a_wildcard_address_is_refused_only_for_the_bootstrapper() {
        let err = initial_members(&cluster(1, "0.0.0.0:7401")).unwrap_err();
        assert!(err.contains("wildcard"), "{err}");
        // Node 4 with peers 2 and 3 is not the lowest: the wildcard is harmless there.
        assert!(initial_members(&cluster(4, "0.0.0.0:7401")).is_ok());
    }
}

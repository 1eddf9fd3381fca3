//! `[cluster]`: the coordination quorum.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use super::Refs;
use crate::duration::format_duration;
use crate::model::{Cluster, ClusterPeer, Global, TlsFiles};
use crate::walk::{Ctx, Table};

const RAFT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 7401);
const CLIENT_LISTEN: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 7402);

pub(super) fn cluster(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    global: &Global,
    refs: &mut Refs,
) -> Option<Cluster> {
    let ids = 1..=i64::MAX;
    let id_span = t.value_span("node_id");
    let node_id = t.req_int(cx, "node_id", ids.clone());
    if let Some(id) = node_id {
        refs.cluster_ids.push((id as u64, id_span));
    }
    let mut peers = Vec::new();
    for mut p in t.tables(cx, "peers", "a [[cluster.peers]] entry") {
        let id_span = p.value_span("id");
        let id = p.req_int(cx, "id", ids.clone());
        let address: Option<SocketAddr> = p.req(cx, "address");
        p.finish(cx);
        if let Some(id) = id {
            refs.cluster_ids.push((id as u64, id_span));
            if let Some(address) = address {
                if let Some(other) = peers.iter().find(|p: &&ClusterPeer| p.address == address) {
                    cx.error(
                        &p.value_span("address"),
                        format!(
                            "peer address {address} is already used by peer {}",
                            other.id
                        ),
                    );
                }
                peers.push(ClusterPeer {
                    id: id as u64,
                    address,
                });
            }
        }
    }

    let data_dir = t.get(cx, "data_dir", global.state_dir.join("coord"));
    let secs = Duration::from_secs;
    let session_timeout = t
        .opt_duration(cx, "session_timeout", secs(1)..=Duration::from_hours(1))
        .unwrap_or(secs(10));
    let session_timeout_min = t
        .opt_duration(cx, "session_timeout_min", secs(1)..=Duration::from_hours(1))
        .unwrap_or(secs(2));
    let session_timeout_max = t
        .opt_duration(
            cx,
            "session_timeout_max",
            secs(1)..=Duration::from_hours(24),
        )
        .unwrap_or(secs(60));
    if !(session_timeout_min..=session_timeout_max).contains(&session_timeout) {
        cx.error(
            &t.value_span("session_timeout"),
            format!(
                "session timeouts must satisfy session_timeout_min ({}) <= session_timeout ({}) <= session_timeout_max ({})",
                format_duration(session_timeout_min),
                format_duration(session_timeout),
                format_duration(session_timeout_max)
            ),
        );
    }
    let ms = Duration::from_millis;
    let heartbeat_interval = t
        .opt_duration(cx, "heartbeat_interval", ms(10)..=secs(60))
        .unwrap_or(ms(100));
    let election_timeout_min = t
        .opt_duration(cx, "election_timeout_min", ms(20)..=secs(300))
        .unwrap_or(ms(500));
    let election_timeout_max = t
        .opt_duration(cx, "election_timeout_max", ms(20)..=secs(300))
        .unwrap_or(secs(1));
    if heartbeat_interval >= election_timeout_min {
        cx.error(
            &t.value_span("heartbeat_interval"),
            "heartbeat_interval must be shorter than election_timeout_min, or followers start elections against a live leader",
        );
    }
    if election_timeout_min >= election_timeout_max {
        cx.error(
            &t.value_span("election_timeout_max"),
            "election_timeout_max must be greater than election_timeout_min",
        );
    }
    if session_timeout_min <= election_timeout_max {
        cx.error(
            &t.value_span("session_timeout_min"),
            "session_timeout_min must exceed election_timeout_max, or a leader change alone could expire sessions",
        );
    }
    let raft_listen = t.get(cx, "raft_listen", RAFT_LISTEN);
    let client_listen = t.get(cx, "client_listen", CLIENT_LISTEN);
    let tls = t.table(cx, "tls", "[cluster.tls]").and_then(|mut tls| {
        let files = (tls.req(cx, "ca"), tls.req(cx, "cert"), tls.req(cx, "key"));
        tls.finish(cx);
        match files {
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles { ca, cert, key }),
            _ => None,
        }
    });
    if peers.len() == 1 {
        cx.warn(
            &t.span(),
            "a two-member cluster loses its quorum when either member is down; add a third \
             member (a witness is enough)",
        );
    }
    let witness = t.get(cx, "witness", false);
    if witness {
        refs.witness = Some(t.value_span("witness"));
    }
    t.finish(cx);
    Some(Cluster {
        node_id: node_id? as u64,
        peers,
        data_dir,
        session_timeout,
        session_timeout_min,
        session_timeout_max,
        heartbeat_interval,
        election_timeout_min,
        election_timeout_max,
        raft_listen,
        client_listen,
        tls,
        witness,
    })
}

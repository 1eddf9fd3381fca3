//! `[cluster]`: the coordination quorum.

use std::net::{Ipv4Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::Refs;
use crate::duration::format_duration;
use crate::model::{Cluster, ClusterPeer, Fencing, FencingParams, Global, TlsFiles, VrrpInstance};
use crate::walk::{Ctx, Span, Table};

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
    let bounds = session_timeout_min..=session_timeout_max;
    let (fencing, fencing_timeout_at) = match t.table(cx, "fencing", "[cluster.fencing]") {
        Some(mut f) => {
            let params = fencing_params(cx, &mut f, &bounds);
            let at = f.value_span("session_timeout");
            f.finish(cx);
            (params, at)
        }
        None => (FencingParams::default(), t.span()),
    };
    refs.fencing_session_timeout = Some(fencing_timeout_at);
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
        fencing,
    })
}

/// `[cluster.fencing]`; `bounds` are the session timeouts the cluster grants.
fn fencing_params(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    bounds: &RangeInclusive<Duration>,
) -> FencingParams {
    let defaults = FencingParams::default();
    let session_timeout = t
        .opt_duration(
            cx,
            "session_timeout",
            Duration::from_secs(1)..=Duration::from_hours(1),
        )
        .unwrap_or(defaults.session_timeout);
    if !bounds.contains(&session_timeout) {
        cx.error(
            &t.value_span("session_timeout"),
            format!(
                "the fencing session_timeout ({}) must lie within [cluster] session_timeout_min \
                 ({}) and session_timeout_max ({}): the cluster grants no other",
                format_duration(session_timeout),
                format_duration(*bounds.start()),
                format_duration(*bounds.end())
            ),
        );
    }
    let keepalive_interval = t
        .opt_duration(
            cx,
            "keepalive_interval",
            Duration::from_millis(10)..=Duration::from_mins(20),
        )
        .unwrap_or(defaults.keepalive_interval);
    if keepalive_interval > session_timeout / 3 {
        cx.error(
            &t.value_span("keepalive_interval"),
            format!(
                "keepalive_interval ({}) must be at most a third of the fencing session_timeout \
                 ({}), so that two lost keep-alives do not end the session",
                format_duration(keepalive_interval),
                format_duration(session_timeout)
            ),
        );
    }
    let max_drift = i64::from(FencingParams::MAX_CLOCK_DRIFT_PPM);
    let max_clock_drift_ppm = t
        .opt_int(cx, "max_clock_drift_ppm", 0..=max_drift)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(defaults.max_clock_drift_ppm);
    if max_clock_drift_ppm < 200 {
        cx.warn(
            &t.value_span("max_clock_drift_ppm"),
            "max_clock_drift_ppm below 200 assumes better clocks than crystal oscillators \
             guarantee (±100 ppm each, so two can be 200 ppm apart); a slow clock could keep \
             a VIP past the quorum's expiry of its session",
        );
    }
    let margin = t
        .opt_duration(cx, "margin", Duration::ZERO..=Duration::from_secs(10))
        .unwrap_or(defaults.margin);
    let kernel_slack = t
        .opt_duration(cx, "kernel_slack", Duration::ZERO..=Duration::from_secs(10))
        .unwrap_or(defaults.kernel_slack);
    if kernel_slack < Duration::from_secs(1) {
        cx.warn(
            &t.value_span("kernel_slack"),
            "kernel_slack below 1s: Linux removes expired addresses up to about a second late, \
             so a crashed or frozen node's VIP could outlive its lease",
        );
    }
    FencingParams {
        session_timeout,
        keepalive_interval,
        max_clock_drift_ppm,
        margin,
        kernel_slack,
    }
}

/// With fenced VRRP instances, the session timeout must leave room for the fencing parameters:
/// otherwise fenced VIPs are never added, or flap between keep-alives. `at` is the span of
/// `[cluster.fencing] session_timeout` (a table when the key is absent).
pub(super) fn check_fencing(
    cx: &mut Ctx<'_>,
    cluster: &Cluster,
    instances: &[VrrpInstance],
    at: &Span,
) {
    let Some(fenced) = instances
        .iter()
        .find(|i| i.fencing == Fencing::Quorum && !i.address_owner)
    else {
        return;
    };
    let params = cluster.fencing;
    if params.timeout_fits(params.session_timeout) {
        return;
    }
    let shortest = params.min_session_timeout().map_or_else(
        || "no session timeout works with them".to_owned(),
        |d| format!("use at least \"{}\"", format_duration(d)),
    );
    cx.error(
        at,
        format!(
            "the fencing session_timeout \"{}\" is too short for quorum fencing (instance \
             \"{}\" and any other with fencing = \"quorum\"): a fenced VIP's kernel lifetime \
             (whole seconds, plus kernel_slack {} of lateness) must fit in the lease (the \
             timeout less {} ppm clock drift and the {} margin) and outlast the keep-alive \
             interval ({}); {shortest}, or change the other [cluster.fencing] parameters",
            format_duration(params.session_timeout),
            fenced.name,
            format_duration(params.kernel_slack),
            params.max_clock_drift_ppm,
            format_duration(params.margin),
            format_duration(params.keepalive_for(params.session_timeout)),
        ),
    );
}

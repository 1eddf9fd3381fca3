//! `[[virtual_server]]` and `[[virtual_server.real_server]]`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::keywords::SchedFlag;
use super::{Refs, check};
use crate::model::{
    AddressFamily, Forwarding, Persistence, Protocol, RealServer, SchedFlags, Scheduler,
    VirtualServer, VsKey,
};
use crate::walk::{Ctx, Span, Table};

/// One `[[virtual_server]]`; `node_name` is the default SMTP HELO of its checks.
pub(super) fn virtual_server(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    node_name: &str,
    refs: &mut Refs,
) -> Option<VirtualServer> {
    let service = service(cx, t);
    if let Some((key, span)) = &service {
        refs.vs_keys.push((*key, span.clone()));
        t.set_what(format!("[[virtual_server]] {key}"));
    }
    let group = t.opt_spanned::<String>(cx, "group").map(|(g, span)| {
        refs.groups.push((g.clone(), span));
        g
    });
    let scheduler = t.get(cx, "scheduler", Scheduler::Wlc);
    let mut sched_flags = SchedFlags::default();
    for flag in t
        .opt::<Vec<SchedFlag>>(cx, "scheduler_flags")
        .unwrap_or_default()
    {
        match flag {
            SchedFlag::Fallback => sched_flags.fallback = true,
            SchedFlag::Port => sched_flags.port = true,
        }
    }
    if sched_flags != SchedFlags::default() && !matches!(scheduler, Scheduler::Sh | Scheduler::Mh) {
        cx.error(
            &t.value_span("scheduler_flags"),
            "`scheduler_flags` apply only to the sh and mh schedulers",
        );
    }
    let forwarding = t.get(cx, "forwarding", Forwarding::Dr);
    let family = service.as_ref().map(|(k, _)| k.family());

    let persistence = persistence(cx, t, family);
    let quorum = t
        .opt_int(cx, "quorum", 0..=i64::from(u32::MAX))
        .map_or(1, |q| q as u32);
    let hysteresis = t
        .opt_int(cx, "hysteresis", 0..=i64::from(u32::MAX))
        .map_or(0, |h| h as u32);
    if hysteresis > 0 && hysteresis >= quorum {
        cx.error(
            &t.value_span("hysteresis"),
            "`hysteresis` must be less than `quorum`",
        );
    }
    let sorry_server = t
        .opt_spanned::<SocketAddr>(cx, "sorry_server")
        .map(|(addr, span)| {
            if family.is_some_and(|f| f != AddressFamily::of(&addr.ip())) {
                cx.error(
                    &span,
                    "sorry_server does not match the virtual server's address family",
                );
            }
            addr
        });
    let inhibit_on_failure = t.get(cx, "inhibit_on_failure", false);
    let alpha = t.get(cx, "alpha", false);
    let omega = t.get(cx, "omega", false);

    let default_port = match service.as_ref().map(|(k, _)| *k) {
        Some(VsKey::Addr { addr, .. }) => addr.port(),
        _ => 0,
    };
    let mut real_servers = Vec::new();
    let mut seen: Vec<((IpAddr, u16), Span)> = Vec::new();
    for mut rs in t.tables(cx, "real_server", "[[virtual_server.real_server]]") {
        let span = rs.value_span("address");
        let port_span = rs.key_span("port");
        if let Some(r) = real_server(cx, &mut rs, default_port, family, forwarding, node_name) {
            // IPVS cannot rewrite ports with dr or tun: packets reach the real server on the
            // virtual server's port whatever is configured.
            if let Some(port_span) = port_span
                && forwarding != Forwarding::Nat
                && default_port != 0
                && r.port != default_port
            {
                cx.warn(
                    &port_span,
                    format!(
                        "port {} differs from the virtual server's {default_port}, but only nat \
                         can map ports; with {forwarding} traffic arrives on {default_port}",
                        r.port
                    ),
                );
            }
            if let Some((_, first)) = seen.iter().find(|(k, _)| *k == (r.addr, r.port)) {
                let line = cx.line_of(first);
                cx.error(
                    &span,
                    format!(
                        "duplicate real server {} port {} (first at line {line})",
                        r.addr, r.port
                    ),
                );
            }
            seen.push(((r.addr, r.port), span));
            real_servers.push(r);
        }
    }
    let total: u64 = real_servers.iter().map(|r| u64::from(r.weight)).sum();
    if !real_servers.is_empty() && total < u64::from(quorum) {
        cx.warn(
            &t.value_span("quorum"),
            format!("quorum {quorum} exceeds the total weight {total} of all real servers: the service can never be up"),
        );
    }
    t.finish(cx);
    Some(VirtualServer {
        service: service?.0,
        group,
        scheduler,
        sched_flags,
        forwarding,
        persistence,
        quorum,
        hysteresis,
        sorry_server,
        inhibit_on_failure,
        alpha,
        omega,
        real_servers,
    })
}

/// Exactly one of `address` (+ `protocol`) or `fwmark` (+ `family`).
fn service(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>) -> Option<(VsKey, Span)> {
    let address = t.opt_spanned::<SocketAddr>(cx, "address");
    let fwmark_span = t.value_span("fwmark");
    let fwmark = t
        .opt_int(cx, "fwmark", 1..=i64::from(u32::MAX))
        .map(|m| m as u32);
    let protocol = t.opt::<Protocol>(cx, "protocol");
    let family = t.opt::<AddressFamily>(cx, "family");
    let has_address = t.key_span("address").is_some();
    let has_fwmark = t.key_span("fwmark").is_some();
    if has_address && has_fwmark {
        cx.error(&fwmark_span, "set either `address` or `fwmark`, not both");
        return None;
    }
    if !has_address && !has_fwmark {
        cx.error(
            &t.span(),
            format!("{} needs `address = \"IP:PORT\"` or `fwmark = N`", t.what()),
        );
        return None;
    }
    if has_address && let Some(span) = t.key_span("family") {
        cx.error(
            &span,
            "`family` applies to fwmark services only; the address gives the family",
        );
    }
    if has_fwmark && let Some(span) = t.key_span("protocol") {
        cx.error(
            &span,
            "`protocol` does not apply to fwmark services (the mark selects the traffic)",
        );
    }
    if let Some((addr, span)) = address {
        return Some((
            VsKey::Addr {
                addr,
                protocol: protocol.unwrap_or_default(),
            },
            span,
        ));
    }
    Some((
        VsKey::Fwmark {
            mark: fwmark?,
            family: family.unwrap_or(AddressFamily::Ipv4),
        },
        fwmark_span,
    ))
}

/// `persistence_timeout` (whole seconds: IPVS counts seconds) and `persistence_netmask` (prefix).
fn persistence(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    family: Option<AddressFamily>,
) -> Option<Persistence> {
    let max_prefix = family.map_or(128, AddressFamily::max_prefix);
    let prefix = t
        .opt_int(cx, "persistence_netmask", 0..=i64::from(max_prefix))
        .map(|p| p as u8);
    let Some((timeout, span)) = t.opt_spanned::<Duration>(cx, "persistence_timeout") else {
        if let Some(span) = t.key_span("persistence_netmask")
            && t.key_span("persistence_timeout").is_none()
        {
            cx.error(&span, "`persistence_netmask` needs `persistence_timeout`");
        }
        return None;
    };
    if timeout.subsec_nanos() != 0 || timeout.is_zero() || timeout.as_secs() > u64::from(u32::MAX) {
        cx.error(
            &span,
            "`persistence_timeout` must be a whole number of seconds, at least 1s",
        );
        return None;
    }
    Some(Persistence {
        timeout,
        prefix_len: prefix.unwrap_or(max_prefix),
    })
}

fn real_server(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    default_port: u16,
    family: Option<AddressFamily>,
    forwarding: Forwarding,
    node_name: &str,
) -> Option<RealServer> {
    let address = t.opt_spanned::<IpAddr>(cx, "address");
    if t.key_span("address").is_none() {
        cx.error(
            &t.span(),
            "missing required key `address` in [[virtual_server.real_server]]",
        );
    }
    if let Some((addr, span)) = &address {
        t.set_what(format!("[[virtual_server.real_server]] {addr}"));
        // Only tunnelling can carry one family inside the other.
        if forwarding != Forwarding::Tun && family.is_some_and(|f| f != AddressFamily::of(addr)) {
            cx.error(
                span,
                format!("real server {addr} does not match the virtual server's address family"),
            );
        }
    }
    let port = t
        .opt_int(cx, "port", 0..=65_535)
        .map_or(default_port, |p| p as u16);
    let weight = t.opt_int(cx, "weight", 0..=65_535).map_or(1, |w| w as u32);
    let thresholds = 0..=i64::from(i32::MAX);
    let upper_threshold = t
        .opt_int(cx, "upper_threshold", thresholds.clone())
        .map_or(0, |u| u as u32);
    let lower_threshold = t
        .opt_int(cx, "lower_threshold", thresholds)
        .map_or(0, |l| l as u32);
    if upper_threshold > 0 && lower_threshold > upper_threshold {
        cx.error(
            &t.value_span("lower_threshold"),
            "`lower_threshold` must not exceed `upper_threshold`",
        );
    }
    let checks = t
        .tables(cx, "check", "[[virtual_server.real_server.check]]")
        .into_iter()
        .filter_map(|mut c| check::check(cx, &mut c, port, node_name))
        .collect();
    t.finish(cx);
    Some(RealServer {
        addr: address?.0,
        port,
        weight,
        upper_threshold,
        lower_threshold,
        checks,
    })
}

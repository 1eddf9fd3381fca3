//! `[[vrrp_instance]]` and `[[vrrp_sync_group]]`.

use std::net::IpAddr;
use std::time::Duration;

use toml::de::DeValue;

use super::keywords::TransportKind;
use super::{Refs, track, vip};
use crate::duration::format_duration;
use crate::model::{
    AddressFamily, Auth, Fencing, Garp, Notify, SyncGroup, Transport, V3Checksum, VrrpInstance,
    VrrpVersion,
};
use crate::walk::{Argv, Ctx, FromToml, Span, Table, Val};

impl FromToml for VrrpVersion {
    fn from_toml(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<Self> {
        match i64::from_toml(cx, v)? {
            2 => Some(Self::V2),
            3 => Some(Self::V3),
            n => {
                cx.error(
                    &v.span(),
                    format!("`version` = {n}: VRRP version must be 2 or 3"),
                );
                None
            }
        }
    }
}

/// One `[[vrrp_instance]]`. Returns `None` when a required key is missing or invalid; every
/// problem has been reported either way.
pub(super) fn instance(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    has_cluster: bool,
    refs: &mut Refs,
) -> Option<VrrpInstance> {
    let name_span = t.value_span("name");
    let name: Option<String> = t.req(cx, "name");
    if let Some(n) = &name {
        refs.instances.push((n.clone(), name_span));
        t.set_what(format!("[[vrrp_instance]] \"{n}\""));
    }
    let interface: Option<String> = t.req(cx, "interface");
    let vrid_span = t.value_span("vrid");
    let vrid = t.req_int(cx, "vrid", 1..=255).map(|v| v as u8);
    let priority_span = t.value_span("priority");
    let priority = t.opt_int(cx, "priority", 1..=255).map_or(100, |p| p as u8);
    let (version, version_span) = t
        .opt_spanned(cx, "version")
        .unwrap_or((VrrpVersion::V3, t.span()));
    let advert_interval = advert_interval(cx, t, version);

    let (family, vips) = vip::family_and_vips(cx, t, refs);
    if version == VrrpVersion::V2 && family == Some(AddressFamily::Ipv6) {
        cx.error(
            &version_span,
            "VRRPv2 is IPv4-only (RFC 3768); use version = 3 for IPv6",
        );
    }
    if let (Some(i), Some(f), Some(v)) = (&interface, family, vrid) {
        refs.vrids.push(((i.clone(), f, v), vrid_span));
    }
    let transport = transport(cx, t, family);

    let preempt = t.get(cx, "preempt", true);
    let preempt_delay = t.opt_duration(
        cx,
        "preempt_delay",
        Duration::ZERO..=Duration::from_hours(1),
    );
    if !preempt && let Some(span) = t.key_span("preempt_delay") {
        cx.error(
            &span,
            "`preempt_delay` has no effect with preempt = false; remove one of them",
        );
    }
    let accept_mode = t.get(cx, "accept_mode", false);
    let address_owner = t.get(cx, "address_owner", false);
    if priority == 255 && !address_owner {
        cx.error(
            &priority_span,
            "priority 255 is reserved for the address owner (RFC 5798 §5.2.4): set address_owner = true \
             if the VIPs are this router's own addresses, else use 1..=254",
        );
    }
    if address_owner && priority != 255 {
        cx.error(
            &t.value_span("address_owner"),
            "an address owner must have priority = 255 (RFC 5798 §5.2.4)",
        );
    }

    let garp = Garp {
        count: t.opt_int(cx, "garp_count", 1..=100).map_or(5, |n| n as u32),
        // "0s" turns the second burst off.
        delay: t
            .opt_duration(cx, "garp_delay", Duration::ZERO..=Duration::from_hours(1))
            .map_or(Some(Duration::from_secs(5)), |d| {
                Some(d).filter(|d| !d.is_zero())
            }),
        refresh: t.opt_duration(
            cx,
            "garp_refresh",
            Duration::from_secs(1)..=Duration::from_hours(24),
        ),
        refresh_count: t
            .opt_int(cx, "garp_refresh_count", 1..=100)
            .map_or(1, |n| n as u32),
    };
    let auth = auth(cx, t, version);
    let track = track::track(cx, t, refs);
    let notify = Notify {
        master: t.opt::<Argv>(cx, "notify_master").map(|a| a.0),
        backup: t.opt::<Argv>(cx, "notify_backup").map(|a| a.0),
        fault: t.opt::<Argv>(cx, "notify_fault").map(|a| a.0),
        stop: t.opt::<Argv>(cx, "notify_stop").map(|a| a.0),
        any: t.opt::<Argv>(cx, "notify").map(|a| a.0),
        timeout: t
            .opt_duration(
                cx,
                "notify_timeout",
                Duration::from_millis(100)..=Duration::from_hours(1),
            )
            .unwrap_or(Duration::from_secs(10)),
    };
    let default_fencing = if has_cluster {
        Fencing::Quorum
    } else {
        Fencing::Off
    };
    let fencing = t.get(cx, "fencing", default_fencing);
    if fencing == Fencing::Quorum && !has_cluster {
        cx.error(
            &t.value_span("fencing"),
            "fencing = \"quorum\" needs a [cluster] section (or use fencing = \"off\")",
        );
    }
    let v3_checksum = t.get(cx, "v3_checksum", V3Checksum::WithPseudoHeader);
    if let Some(span) = t.key_span("v3_checksum")
        && (version == VrrpVersion::V2 || family == Some(AddressFamily::Ipv6))
    {
        cx.error(
            &span,
            "`v3_checksum` applies only to VRRPv3 over IPv4 (IPv6 always uses the pseudo-header)",
        );
    }
    let use_vmac = t.get(cx, "use_vmac", false);
    let vmac_name = vmac_name(cx, t, use_vmac, interface.as_deref());
    if use_vmac && let (Some(f), Some(v)) = (family, vrid) {
        let default = match f {
            AddressFamily::Ipv4 => format!("vrrp.{v}"),
            AddressFamily::Ipv6 => format!("vrrp6.{v}"),
        };
        let span = t
            .key_span("vmac_name")
            .map_or_else(|| t.value_span("use_vmac"), |_| t.value_span("vmac_name"));
        refs.vmacs
            .push((vmac_name.clone().unwrap_or(default), span));
    }
    t.finish(cx);

    Some(VrrpInstance {
        name: name?,
        interface: interface?,
        vrid: vrid?,
        priority,
        advert_interval: advert_interval?,
        version,
        family: family?,
        transport: transport?,
        vips: vips?,
        preempt,
        preempt_delay: preempt_delay.unwrap_or(Duration::ZERO),
        accept_mode,
        address_owner,
        garp,
        auth,
        track,
        notify,
        fencing,
        v3_checksum,
        use_vmac,
        vmac_name,
    })
}

/// `vmac_name`: only with `use_vmac = true`, a valid Linux interface name (1..=15 bytes, no
/// `/`, `:` or whitespace, not `.` or `..`), not the instance's own interface.
fn vmac_name(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    use_vmac: bool,
    interface: Option<&str>,
) -> Option<String> {
    let (name, span) = t.opt_spanned::<String>(cx, "vmac_name")?;
    let problem = if !use_vmac {
        Some("`vmac_name` needs use_vmac = true".to_owned())
    } else if name.is_empty() || name.len() > 15 {
        Some(format!(
            "`vmac_name` \"{name}\" must be 1 to 15 bytes long (a Linux interface name)"
        ))
    } else if name == "."
        || name == ".."
        || name.contains(['/', ':'])
        || name.contains(char::is_whitespace)
    {
        Some(format!(
            "`vmac_name` \"{name}\" is not a valid interface name (no `/`, `:` or whitespace, not `.` or `..`)"
        ))
    } else if interface == Some(name.as_str()) {
        Some(format!(
            "`vmac_name` \"{name}\" is the instance's own interface; the macvlan needs a name of its own"
        ))
    } else {
        None
    };
    match problem {
        Some(msg) => {
            cx.error(&span, msg);
            None
        }
        None => Some(name),
    }
}

/// v2 carries whole seconds in 8 bits (RFC 3768 §5.3.7); v3 centiseconds in 12 bits
/// (RFC 5798 §5.2.7).
fn advert_interval(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    version: VrrpVersion,
) -> Option<Duration> {
    let Some((d, span)) = t.opt_spanned::<Duration>(cx, "advert_interval") else {
        return t
            .raw("advert_interval")
            .is_none()
            .then_some(Duration::from_secs(1));
    };
    let shown = format_duration(d);
    let problem = match version {
        VrrpVersion::V2 if d.subsec_nanos() != 0 || !(1..=255).contains(&d.as_secs()) => Some(
            format!("VRRPv2 `advert_interval` must be whole seconds in 1s..=255s, got \"{shown}\""),
        ),
        VrrpVersion::V3 if d < Duration::from_millis(10) || d > Duration::from_millis(40_950) => {
            Some(format!(
                "VRRPv3 `advert_interval` must be in 10ms..=40s950ms, got \"{shown}\""
            ))
        }
        VrrpVersion::V3 if d.as_nanos() % 10_000_000 != 0 => Some(format!(
            "VRRPv3 `advert_interval` must be a multiple of 10ms, got \"{shown}\""
        )),
        _ => None,
    };
    match problem {
        Some(msg) => {
            cx.error(&span, msg);
            None
        }
        None => Some(d),
    }
}

/// `transport`, `unicast_source`, `unicast_peers`. Unicast without peers is an error, never a
/// silent fall-back to multicast; peers without `transport = "unicast"` are refused likewise.
fn transport(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    family: Option<AddressFamily>,
) -> Option<Transport> {
    let kind = t.get(cx, "transport", TransportKind::Multicast);
    let source = t.opt_spanned::<IpAddr>(cx, "unicast_source");
    let peers_span = t.value_span("unicast_peers");
    let peers: Option<Vec<(IpAddr, Span)>> = t.opt_items(cx, "unicast_peers");
    let wrong_family = |addr: &IpAddr| family.is_some_and(|f| AddressFamily::of(addr) != f);
    match kind {
        TransportKind::Multicast => {
            for key in ["unicast_source", "unicast_peers"] {
                if let Some(span) = t.key_span(key) {
                    cx.error(
                        &span,
                        format!("`{key}` needs transport = \"unicast\" (multicast is the default)"),
                    );
                }
            }
            Some(Transport::Multicast)
        }
        TransportKind::Unicast => {
            let peers = match peers {
                Some(p) if !p.is_empty() => p,
                Some(_) => {
                    cx.error(
                        &peers_span,
                        "`unicast_peers` is empty: transport = \"unicast\" needs at least one peer",
                    );
                    return None;
                }
                // Present but malformed: already reported.
                None if t.key_span("unicast_peers").is_some() => return None,
                None => {
                    cx.error(
                        &t.value_span("transport"),
                        "transport = \"unicast\" needs `unicast_peers` (at least one address)",
                    );
                    return None;
                }
            };
            for (p, span) in peers.iter().filter(|(p, _)| wrong_family(p)) {
                cx.error(
                    span,
                    format!("unicast peer {p} does not match the instance's address family"),
                );
            }
            if let Some((s, span)) = &source
                && wrong_family(s)
            {
                cx.error(
                    span,
                    format!("unicast_source {s} does not match the instance's address family"),
                );
            }
            let peers = peers.into_iter().map(|(p, _)| p).collect();
            Some(Transport::Unicast {
                source: source.map(|(s, _)| s),
                peers,
            })
        }
    }
}

/// `auth_pass`: VRRPv2 only, 1..=8 bytes (RFC 3768 §5.3.6.1).
fn auth(cx: &mut Ctx<'_>, t: &mut Table<'_, '_>, version: VrrpVersion) -> Option<Auth> {
    let (pass, span) = t.opt_spanned::<String>(cx, "auth_pass")?;
    if version == VrrpVersion::V3 {
        cx.error(&span, "authentication does not exist in VRRPv3 (RFC 5798 §9); remove `auth_pass` or use version = 2");
        return None;
    }
    if pass.is_empty() || pass.len() > 8 {
        cx.error(&span, "`auth_pass` must be 1..=8 bytes (RFC 3768)");
        return None;
    }
    cx.warn(
        &span,
        "VRRPv2 simple password authentication is for interop only: it is sent in clear text",
    );
    Some(Auth::SimplePassword(pass))
}

/// One `[[vrrp_sync_group]]`.
pub(super) fn sync_group(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    refs: &mut Refs,
) -> Option<SyncGroup> {
    let name_span = t.value_span("name");
    let name: Option<String> = t.req(cx, "name");
    if let Some(n) = &name {
        refs.sync_groups.push((n.clone(), name_span));
        t.set_what(format!("[[vrrp_sync_group]] \"{n}\""));
    }
    let mut instances = Vec::new();
    if let Some(v) = t.raw("instances") {
        if let DeValue::Array(items) = v.get_ref() {
            for item in items {
                if let Some(i) = String::from_toml(cx, item) {
                    refs.sync_members.push((i.clone(), item.span()));
                    instances.push(i);
                }
            }
            if items.is_empty() {
                cx.error(
                    &v.span(),
                    "`instances` must list at least one vrrp_instance",
                );
            }
        } else {
            cx.error(
                &v.span(),
                format!(
                    "`instances` must be an array, found {}",
                    v.get_ref().type_str()
                ),
            );
        }
    } else {
        cx.error(
            &t.span(),
            format!("missing required key `instances` in {}", t.what()),
        );
    }
    t.finish(cx);
    Some(SyncGroup {
        name: name?,
        instances,
    })
}

//! The `family` and `vips` keys of a VRRP instance.

use std::net::IpAddr;

use toml::de::DeValue;

use super::Refs;
use crate::model::{AddressFamily, Vip};
use crate::walk::{Ctx, Span, Table, Val};

/// `family` and `vips`: the family defaults to the first VIP's; every VIP must match it.
pub(super) fn family_and_vips(
    cx: &mut Ctx<'_>,
    t: &mut Table<'_, '_>,
    refs: &mut Refs,
) -> (Option<AddressFamily>, Option<Vec<Vip>>) {
    let explicit: Option<AddressFamily> = t.opt(cx, "family");
    let explicit_bad = t.raw("family").is_some() && explicit.is_none();
    let Some(v) = t.raw("vips") else {
        cx.error(
            &t.span(),
            format!("missing required key `vips` in {}", t.what()),
        );
        return (explicit, None);
    };
    let DeValue::Array(items) = v.get_ref() else {
        cx.error(
            &v.span(),
            format!("`vips` must be an array, found {}", v.get_ref().type_str()),
        );
        return (explicit, None);
    };
    if items.is_empty() {
        cx.error(&v.span(), "`vips` must list at least one address");
    }
    let parsed: Vec<Option<(Vip, Span)>> = items.iter().map(|item| vip(cx, item)).collect();
    refs.vips.extend(
        parsed
            .iter()
            .flatten()
            .map(|(v, span)| (v.addr, span.clone())),
    );
    // RFC 5798 §5.2.9: an IPv6 advert's first address must be the link-local one.
    if let Some((first, span)) = parsed.first().and_then(Option::as_ref)
        && let IpAddr::V6(v6) = first.addr
        && !v6.is_unicast_link_local()
    {
        cx.warn(
            span,
            format!(
                "the first IPv6 VIP {v6} is not link-local; RFC 5798 §5.2.9 wants the \
                 link-local address first (other VRRP implementations may drop the adverts)"
            ),
        );
    }
    let family = explicit.or_else(|| {
        parsed
            .iter()
            .flatten()
            .next()
            .map(|(v, _)| AddressFamily::of(&v.addr))
    });
    if let Some(family) = family.filter(|_| !explicit_bad) {
        for (vip, span) in parsed.iter().flatten() {
            if AddressFamily::of(&vip.addr) != family {
                cx.error(
                    span,
                    format!(
                        "VIP {} does not match the instance's address family ({family})",
                        vip.addr
                    ),
                );
            }
        }
    }
    (
        family,
        parsed.into_iter().map(|p| p.map(|(v, _)| v)).collect(),
    )
}

/// `"addr[/len]"` or `{ address = "addr[/len]", label = "…", dev = "…" }`.
fn vip(cx: &mut Ctx<'_>, v: &Val<'_>) -> Option<(Vip, Span)> {
    match v.get_ref() {
        DeValue::String(s) => cidr(cx, s, &v.span()).map(|(addr, prefix_len)| {
            (
                Vip {
                    addr,
                    prefix_len,
                    label: None,
                    dev: None,
                },
                v.span(),
            )
        }),
        DeValue::Table(inner) => {
            let mut e = Table::new(inner, v.span(), "a `vips` entry");
            let span = e.value_span("address");
            let addr: Option<String> = e.req(cx, "address");
            let label: Option<String> = e.opt(cx, "label");
            let dev = e.opt(cx, "dev");
            e.finish(cx);
            let (addr, prefix_len) = cidr(cx, &addr?, &span)?;
            if label.is_some() && addr.is_ipv6() {
                cx.error(&span, "`label` exists for IPv4 addresses only");
            }
            Some((
                Vip {
                    addr,
                    prefix_len,
                    label,
                    dev,
                },
                span,
            ))
        }
        other => {
            cx.error(
                &v.span(),
                format!(
                    "expected an address string or {{ address = … }}, found {}",
                    other.type_str()
                ),
            );
            None
        }
    }
}

/// `"addr"` or `"addr/len"`.
fn cidr(cx: &mut Ctx<'_>, s: &str, span: &Span) -> Option<(IpAddr, u8)> {
    let (addr, len) = s.split_once('/').map_or((s, None), |(a, l)| (a, Some(l)));
    let Ok(addr) = addr.parse::<IpAddr>() else {
        cx.error(span, format!("invalid IP address \"{s}\""));
        return None;
    };
    let max = AddressFamily::of(&addr).max_prefix();
    match len.map(str::parse::<u8>) {
        None => Some((addr, max)),
        Some(Ok(l)) if l <= max => Some((addr, l)),
        Some(_) => {
            cx.error(
                span,
                format!("invalid prefix length in \"{s}\" (0..={max})"),
            );
            None
        }
    }
}

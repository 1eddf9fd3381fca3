//! IPVS commands and attributes (`include/uapi/linux/ip_vs.h`, parsed by
//! `net/netfilter/ipvs/ip_vs_ctl.c`).
//!
//! Byte order follows the kernel's `nla_get_*` calls: ports (service, destination, tunnel) are
//! big-endian; AF, protocol, fwmark, weights, thresholds, timeout are host order. The persistence
//! netmask is a `__be32` mask for IPv4 but a host-order prefix length for IPv6. Addresses are the
//! 16-byte `union nf_inet_addr`, IPv4 in the first four bytes.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::DecodeError;
use super::attr::{Attr, AttrWriter, Attrs};
// The header's names, spelled as in ip_vs.h; listing ~80 of them would hide the code.
#[allow(clippy::wildcard_imports)]
use super::consts::*;
use super::message;
use crate::model::{
    DestKey, Destination, Family, Forwarding, ObservedDest, ObservedService, Persistence, Service,
    ServiceFlags, ServiceKey, Stats, TunnelType,
};

/// One IPVS request, before framing.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Request<'a> {
    NewService(&'a Service),
    SetService(&'a Service),
    DelService(&'a ServiceKey),
    /// Dump of every service.
    GetServices,
    NewDest(&'a ServiceKey, &'a Destination),
    SetDest(&'a ServiceKey, &'a Destination),
    DelDest(&'a ServiceKey, &'a DestKey),
    /// Dump of one service's destinations.
    GetDests(&'a ServiceKey),
    GetInfo,
    Flush,
}

impl Request<'_> {
    /// The framed request for the IPVS family `family`.
    pub(crate) fn encode(&self, family: u16, seq: u32) -> Vec<u8> {
        let (cmd, flags) = match self {
            Self::NewService(_) => (IPVS_CMD_NEW_SERVICE, NLM_F_REQUEST | NLM_F_ACK),
            Self::SetService(_) => (IPVS_CMD_SET_SERVICE, NLM_F_REQUEST | NLM_F_ACK),
            Self::DelService(_) => (IPVS_CMD_DEL_SERVICE, NLM_F_REQUEST | NLM_F_ACK),
            Self::GetServices => (IPVS_CMD_GET_SERVICE, NLM_F_REQUEST | NLM_F_DUMP),
            Self::NewDest(..) => (IPVS_CMD_NEW_DEST, NLM_F_REQUEST | NLM_F_ACK),
            Self::SetDest(..) => (IPVS_CMD_SET_DEST, NLM_F_REQUEST | NLM_F_ACK),
            Self::DelDest(..) => (IPVS_CMD_DEL_DEST, NLM_F_REQUEST | NLM_F_ACK),
            Self::GetDests(_) => (IPVS_CMD_GET_DEST, NLM_F_REQUEST | NLM_F_DUMP),
            // ACK so that every non-dump request ends with an ack or an error.
            Self::GetInfo => (IPVS_CMD_GET_INFO, NLM_F_REQUEST | NLM_F_ACK),
            Self::Flush => (IPVS_CMD_FLUSH, NLM_F_REQUEST | NLM_F_ACK),
        };
        message::request(
            family,
            flags,
            seq,
            cmd,
            IPVS_GENL_VERSION,
            |w| match *self {
                Self::NewService(svc) | Self::SetService(svc) => {
                    w.nested(IPVS_CMD_ATTR_SERVICE, |w| put_service(w, svc));
                }
                Self::DelService(key) | Self::GetDests(key) => {
                    w.nested(IPVS_CMD_ATTR_SERVICE, |w| put_service_key(w, key));
                }
                Self::NewDest(key, dest) | Self::SetDest(key, dest) => {
                    w.nested(IPVS_CMD_ATTR_SERVICE, |w| put_service_key(w, key));
                    w.nested(IPVS_CMD_ATTR_DEST, |w| put_dest(w, dest));
                }
                Self::DelDest(key, dest) => {
                    w.nested(IPVS_CMD_ATTR_SERVICE, |w| put_service_key(w, key));
                    w.nested(IPVS_CMD_ATTR_DEST, |w| put_dest_key(w, dest));
                }
                Self::GetServices | Self::GetInfo | Self::Flush => {}
            },
        )
    }
}

fn af(family: Family) -> u16 {
    match family {
        Family::V4 => AF_INET,
        Family::V6 => AF_INET6,
    }
}

fn nf_inet_addr(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => {
            let mut out = [0; 16];
            out[..4].copy_from_slice(&a.octets());
            out
        }
        IpAddr::V6(a) => a.octets(),
    }
}

/// What `ip_vs_genl_parse_service` needs to find a service: AF, then fwmark or proto/addr/port.
fn put_service_key(w: &mut AttrWriter<'_>, key: &ServiceKey) {
    w.u16(IPVS_SVC_ATTR_AF, af(key.family()));
    let (proto, addr, port) = match *key {
        ServiceKey::Tcp(a, p) => (IPPROTO_TCP, a, p),
        ServiceKey::Udp(a, p) => (IPPROTO_UDP, a, p),
        ServiceKey::Sctp(a, p) => (IPPROTO_SCTP, a, p),
        ServiceKey::Fwmark(mark, _) => return w.u32(IPVS_SVC_ATTR_FWMARK, mark),
    };
    w.u16(IPVS_SVC_ATTR_PROTOCOL, proto);
    w.bytes(IPVS_SVC_ATTR_ADDR, &nf_inet_addr(addr));
    w.be16(IPVS_SVC_ATTR_PORT, port);
}

/// The full attribute set NEW/SET_SERVICE require (sched name, flags, timeout and netmask are all
/// mandatory there, persistent or not).
fn put_service(w: &mut AttrWriter<'_>, svc: &Service) {
    put_service_key(w, &svc.key);
    w.string(IPVS_SVC_ATTR_SCHED_NAME, svc.scheduler.name());
    if let Some(pe) = &svc.pe_name {
        w.string(IPVS_SVC_ATTR_PE_NAME, pe);
    }
    let mut flags = svc.flags.bits();
    if svc.persistence.is_some() {
        flags |= IP_VS_SVC_F_PERSISTENT;
    }
    // struct ip_vs_flags { flags; mask }: a full mask replaces every bit, like ipvsadm.
    let mut ip_vs_flags = [0; 8];
    ip_vs_flags[..4].copy_from_slice(&flags.to_ne_bytes());
    ip_vs_flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
    w.bytes(IPVS_SVC_ATTR_FLAGS, &ip_vs_flags);
    let family = svc.key.family();
    let (timeout, prefix) = match svc.persistence {
        Some(p) => (p.timeout_s, p.netmask_prefix),
        None => (0, if family == Family::V4 { 32 } else { 128 }),
    };
    w.u32(IPVS_SVC_ATTR_TIMEOUT, timeout);
    match family {
        Family::V4 => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(prefix.min(32)))
                .unwrap_or(0);
            w.bytes(IPVS_SVC_ATTR_NETMASK, &mask.to_be_bytes());
        }
        Family::V6 => w.u32(IPVS_SVC_ATTR_NETMASK, u32::from(prefix)),
    }
}

fn put_dest_key(w: &mut AttrWriter<'_>, dest: &DestKey) {
    w.bytes(IPVS_DEST_ATTR_ADDR, &nf_inet_addr(dest.addr));
    w.be16(IPVS_DEST_ATTR_PORT, dest.port);
}

fn put_dest(w: &mut AttrWriter<'_>, dest: &Destination) {
    put_dest_key(w, &dest.key);
    let fwd = match dest.fwd {
        Forwarding::Nat => IP_VS_CONN_F_MASQ,
        Forwarding::Local => IP_VS_CONN_F_LOCALNODE,
        Forwarding::Tunnel => IP_VS_CONN_F_TUNNEL,
        Forwarding::DirectRoute => IP_VS_CONN_F_DROUTE,
        Forwarding::Bypass => IP_VS_CONN_F_BYPASS,
    };
    w.u32(IPVS_DEST_ATTR_FWD_METHOD, fwd);
    w.u32(IPVS_DEST_ATTR_WEIGHT, dest.weight);
    w.u32(IPVS_DEST_ATTR_U_THRESH, dest.upper_threshold);
    w.u32(IPVS_DEST_ATTR_L_THRESH, dest.lower_threshold);
    w.u16(IPVS_DEST_ATTR_ADDR_FAMILY, af(Family::of(dest.key.addr)));
    // Only non-default encapsulations are sent: absent means IP-in-IP, and kernels before 5.2
    // ignore the attributes anyway.
    if dest.fwd == Forwarding::Tunnel {
        match dest.tunnel {
            TunnelType::Ipip => {}
            TunnelType::Gue { port, flags } => {
                w.u8(IPVS_DEST_ATTR_TUN_TYPE, IP_VS_CONN_F_TUNNEL_TYPE_GUE);
                w.be16(IPVS_DEST_ATTR_TUN_PORT, port);
                w.u16(IPVS_DEST_ATTR_TUN_FLAGS, flags);
            }
            TunnelType::Gre { flags } => {
                w.u8(IPVS_DEST_ATTR_TUN_TYPE, IP_VS_CONN_F_TUNNEL_TYPE_GRE);
                w.u16(IPVS_DEST_ATTR_TUN_FLAGS, flags);
            }
        }
    }
}

/// Finds the nested `ty` attribute of a reply and returns its children by type (last one wins).
fn nested_map<'a>(
    attrs: &'a [u8],
    ty: u16,
    what: &'static str,
) -> Result<BTreeMap<u16, Attr<'a>>, DecodeError> {
    for attr in Attrs::new(attrs) {
        let attr = attr?;
        if attr.ty == ty {
            return attr.nested().map(|a| a.map(|a| (a.ty, a))).collect();
        }
    }
    Err(DecodeError::Missing(what))
}

fn get<'a>(
    map: &BTreeMap<u16, Attr<'a>>,
    ty: u16,
    what: &'static str,
) -> Result<Attr<'a>, DecodeError> {
    map.get(&ty).copied().ok_or(DecodeError::Missing(what))
}

fn family(raw: u16) -> Result<Family, DecodeError> {
    match raw {
        AF_INET => Ok(Family::V4),
        AF_INET6 => Ok(Family::V6),
        other => Err(DecodeError::UnknownFamily(other)),
    }
}

fn addr(attr: Attr<'_>, family: Family) -> Result<IpAddr, DecodeError> {
    Ok(match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(attr.array::<4>()?)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(attr.array::<16>()?)),
    })
}

/// Decodes one `IPVS_CMD_NEW_SERVICE` dump message.
pub(crate) fn decode_service(attrs: &[u8]) -> Result<ObservedService, DecodeError> {
    let m = nested_map(attrs, IPVS_CMD_ATTR_SERVICE, "IPVS_CMD_ATTR_SERVICE")?;
    let fam = family(get(&m, IPVS_SVC_ATTR_AF, "IPVS_SVC_ATTR_AF")?.u16()?)?;
    let fwmark = m
        .get(&IPVS_SVC_ATTR_FWMARK)
        .map(Attr::u32)
        .transpose()?
        .unwrap_or(0);
    let key = if fwmark != 0 {
        ServiceKey::Fwmark(fwmark, fam)
    } else {
        let a = addr(get(&m, IPVS_SVC_ATTR_ADDR, "IPVS_SVC_ATTR_ADDR")?, fam)?;
        let port = get(&m, IPVS_SVC_ATTR_PORT, "IPVS_SVC_ATTR_PORT")?.be16()?;
        match get(&m, IPVS_SVC_ATTR_PROTOCOL, "IPVS_SVC_ATTR_PROTOCOL")?.u16()? {
            IPPROTO_TCP => ServiceKey::Tcp(a, port),
            IPPROTO_UDP => ServiceKey::Udp(a, port),
            IPPROTO_SCTP => ServiceKey::Sctp(a, port),
            other => return Err(DecodeError::UnknownProtocol(other)),
        }
    };
    let sched = get(&m, IPVS_SVC_ATTR_SCHED_NAME, "IPVS_SVC_ATTR_SCHED_NAME")?.string()?;
    let flags_attr = get(&m, IPVS_SVC_ATTR_FLAGS, "IPVS_SVC_ATTR_FLAGS")?.array::<4>()?;
    let raw_flags = u32::from_ne_bytes(flags_attr);
    let persistence = if raw_flags & IP_VS_SVC_F_PERSISTENT == 0 {
        None
    } else {
        let timeout_s = get(&m, IPVS_SVC_ATTR_TIMEOUT, "IPVS_SVC_ATTR_TIMEOUT")?.u32()?;
        let netmask = get(&m, IPVS_SVC_ATTR_NETMASK, "IPVS_SVC_ATTR_NETMASK")?;
        let netmask_prefix = match fam {
            Family::V4 => u32::from_be_bytes(netmask.array()?).leading_ones() as u8,
            Family::V6 => netmask.u32()?.min(128) as u8,
        };
        Some(Persistence {
            timeout_s,
            netmask_prefix,
        })
    };
    let pe_name = m
        .get(&IPVS_SVC_ATTR_PE_NAME)
        .map(Attr::string)
        .transpose()?;
    let Ok(scheduler) = sched.parse();
    let service = Service {
        key,
        scheduler,
        flags: ServiceFlags::from_bits_truncate(raw_flags),
        persistence,
        pe_name,
    };
    let stats = stats(&m, IPVS_SVC_ATTR_STATS64, IPVS_SVC_ATTR_STATS)?;
    Ok(ObservedService {
        service,
        stats,
        dests: BTreeMap::new(),
    })
}

/// Decodes one `IPVS_CMD_NEW_DEST` dump message; `svc_family` covers kernels that do not send
/// `IPVS_DEST_ATTR_ADDR_FAMILY` (before 3.18).
pub(crate) fn decode_dest(attrs: &[u8], svc_family: Family) -> Result<ObservedDest, DecodeError> {
    let m = nested_map(attrs, IPVS_CMD_ATTR_DEST, "IPVS_CMD_ATTR_DEST")?;
    let fam = match m.get(&IPVS_DEST_ATTR_ADDR_FAMILY) {
        Some(a) => family(a.u16()?)?,
        None => svc_family,
    };
    let key = DestKey {
        addr: addr(get(&m, IPVS_DEST_ATTR_ADDR, "IPVS_DEST_ATTR_ADDR")?, fam)?,
        port: get(&m, IPVS_DEST_ATTR_PORT, "IPVS_DEST_ATTR_PORT")?.be16()?,
    };
    let fwd_raw = get(&m, IPVS_DEST_ATTR_FWD_METHOD, "IPVS_DEST_ATTR_FWD_METHOD")?.u32()?;
    let fwd = match fwd_raw & IP_VS_CONN_F_FWD_MASK {
        IP_VS_CONN_F_MASQ => Forwarding::Nat,
        IP_VS_CONN_F_LOCALNODE => Forwarding::Local,
        IP_VS_CONN_F_TUNNEL => Forwarding::Tunnel,
        IP_VS_CONN_F_DROUTE => Forwarding::DirectRoute,
        IP_VS_CONN_F_BYPASS => Forwarding::Bypass,
        other => return Err(DecodeError::UnknownForwarding(other)),
    };
    let opt_u32 = |ty| {
        m.get(&ty)
            .map(Attr::u32)
            .transpose()
            .map(Option::unwrap_or_default)
    };
    let tunnel = if fwd == Forwarding::Tunnel {
        let flags = m
            .get(&IPVS_DEST_ATTR_TUN_FLAGS)
            .map(Attr::u16)
            .transpose()?
            .unwrap_or(0);
        match m
            .get(&IPVS_DEST_ATTR_TUN_TYPE)
            .map(Attr::u8)
            .transpose()?
            .unwrap_or(0)
        {
            IP_VS_CONN_F_TUNNEL_TYPE_IPIP => TunnelType::Ipip,
            IP_VS_CONN_F_TUNNEL_TYPE_GUE => TunnelType::Gue {
                port: m
                    .get(&IPVS_DEST_ATTR_TUN_PORT)
                    .map(Attr::be16)
                    .transpose()?
                    .unwrap_or(0),
                flags,
            },
            IP_VS_CONN_F_TUNNEL_TYPE_GRE => TunnelType::Gre { flags },
            other => return Err(DecodeError::UnknownTunnel(other)),
        }
    } else {
        TunnelType::Ipip
    };
    let dest = Destination {
        key,
        weight: get(&m, IPVS_DEST_ATTR_WEIGHT, "IPVS_DEST_ATTR_WEIGHT")?.u32()?,
        fwd,
        upper_threshold: opt_u32(IPVS_DEST_ATTR_U_THRESH)?,
        lower_threshold: opt_u32(IPVS_DEST_ATTR_L_THRESH)?,
        tunnel,
    };
    Ok(ObservedDest {
        dest,
        active_conns: opt_u32(IPVS_DEST_ATTR_ACTIVE_CONNS)?,
        inactive_conns: opt_u32(IPVS_DEST_ATTR_INACT_CONNS)?,
        persist_conns: opt_u32(IPVS_DEST_ATTR_PERSIST_CONNS)?,
        stats: stats(&m, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_STATS)?,
    })
}

/// Counters from the 64-bit set when the kernel sends it (≥ 4.1), else the 32-bit one. Each
/// counter is read at the width it arrives in: `STATS` mixes u32 and u64 fields.
fn stats(m: &BTreeMap<u16, Attr<'_>>, ty64: u16, ty32: u16) -> Result<Stats, DecodeError> {
    let Some(nest) = m.get(&ty64).or_else(|| m.get(&ty32)) else {
        return Ok(Stats::default());
    };
    let mut s = Stats::default();
    for attr in nest.nested() {
        let attr = attr?;
        let v = match attr.payload.len() {
            4 => u64::from(attr.u32()?),
            _ if attr.ty == IPVS_STATS_ATTR_PAD => continue,
            _ => attr.u64()?,
        };
        let field = match attr.ty {
            IPVS_STATS_ATTR_CONNS => &mut s.conns,
            IPVS_STATS_ATTR_INPKTS => &mut s.inpkts,
            IPVS_STATS_ATTR_OUTPKTS => &mut s.outpkts,
            IPVS_STATS_ATTR_INBYTES => &mut s.inbytes,
            IPVS_STATS_ATTR_OUTBYTES => &mut s.outbytes,
            IPVS_STATS_ATTR_CPS => &mut s.cps,
            IPVS_STATS_ATTR_INPPS => &mut s.inpps,
            IPVS_STATS_ATTR_OUTPPS => &mut s.outpps,
            IPVS_STATS_ATTR_INBPS => &mut s.inbps,
            IPVS_STATS_ATTR_OUTBPS => &mut s.outbps,
            _ => continue,
        };
        *field = v;
    }
    Ok(s)
}

/// `IPVS_CMD_SET_INFO` (the reply to GET_INFO): the IPVS version code and connection-table size.
pub(crate) fn decode_info(attrs: &[u8]) -> Result<(u32, u32), DecodeError> {
    let m: BTreeMap<u16, Attr<'_>> = Attrs::new(attrs)
        .map(|a| a.map(|a| (a.ty, a)))
        .collect::<Result<_, _>>()?;
    Ok((
        get(&m, IPVS_INFO_ATTR_VERSION, "IPVS_INFO_ATTR_VERSION")?.u32()?,
        get(
            &m,
            IPVS_INFO_ATTR_CONN_TAB_SIZE,
            "IPVS_INFO_ATTR_CONN_TAB_SIZE",
        )?
        .u32()?,
    ))
}

#[cfg(test)]
#[path = "ipvs_tests.rs"]
mod tests;

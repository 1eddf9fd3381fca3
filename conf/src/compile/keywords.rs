//! How each enum is spelled in the config file.

use crate::model::{
    AddressFamily, DnsType, Fencing, Forwarding, LogFormat, Protocol, Scheduler, V3Checksum,
};
use crate::walk::Keyword;

impl Keyword for LogFormat {
    const WHAT: &'static str = "log format";
    const ALL: &'static [(&'static str, Self)] = &[("plain", Self::Plain), ("json", Self::Json)];
}

impl Keyword for AddressFamily {
    const WHAT: &'static str = "address family";
    const ALL: &'static [(&'static str, Self)] = &[("ipv4", Self::Ipv4), ("ipv6", Self::Ipv6)];
}

impl Keyword for Fencing {
    const WHAT: &'static str = "fencing mode";
    const ALL: &'static [(&'static str, Self)] = &[("quorum", Self::Quorum), ("off", Self::Off)];
}

impl Keyword for V3Checksum {
    const WHAT: &'static str = "v3 checksum mode";
    const ALL: &'static [(&'static str, Self)] = &[
        ("with-pseudo-header", Self::WithPseudoHeader),
        ("without-pseudo-header", Self::WithoutPseudoHeader),
        ("accept-both", Self::AcceptBoth),
    ];
}

impl Keyword for Scheduler {
    const WHAT: &'static str = "scheduler";
    const ALL: &'static [(&'static str, Self)] = &[
        ("rr", Self::Rr),
        ("wrr", Self::Wrr),
        ("lc", Self::Lc),
        ("wlc", Self::Wlc),
        ("lblc", Self::Lblc),
        ("lblcr", Self::Lblcr),
        ("dh", Self::Dh),
        ("sh", Self::Sh),
        ("sed", Self::Sed),
        ("nq", Self::Nq),
        ("fo", Self::Fo),
        ("ovf", Self::Ovf),
        ("mh", Self::Mh),
        ("twos", Self::Twos),
    ];
}

impl Keyword for Forwarding {
    const WHAT: &'static str = "forwarding method";
    const ALL: &'static [(&'static str, Self)] =
        &[("dr", Self::Dr), ("nat", Self::Nat), ("tun", Self::Tun)];
}

impl Keyword for Protocol {
    const WHAT: &'static str = "protocol";
    const ALL: &'static [(&'static str, Self)] =
        &[("tcp", Self::Tcp), ("udp", Self::Udp), ("sctp", Self::Sctp)];
}

impl Keyword for DnsType {
    const WHAT: &'static str = "DNS record type";
    const ALL: &'static [(&'static str, Self)] = &[
        ("A", Self::A),
        ("AAAA", Self::Aaaa),
        ("CNAME", Self::Cname),
        ("MX", Self::Mx),
        ("NS", Self::Ns),
        ("PTR", Self::Ptr),
        ("SOA", Self::Soa),
        ("SRV", Self::Srv),
        ("TXT", Self::Txt),
    ];
}

/// `transport` of a VRRP instance (the peers live in their own key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TransportKind {
    Multicast,
    Unicast,
}

impl Keyword for TransportKind {
    const WHAT: &'static str = "transport";
    const ALL: &'static [(&'static str, Self)] =
        &[("multicast", Self::Multicast), ("unicast", Self::Unicast)];
}

/// `type` of a health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CheckType {
    Tcp,
    Http,
    Https,
    Script,
    Dns,
    Udp,
    Smtp,
}

impl Keyword for CheckType {
    const WHAT: &'static str = "check type";
    const ALL: &'static [(&'static str, Self)] = &[
        ("tcp", Self::Tcp),
        ("http", Self::Http),
        ("https", Self::Https),
        ("script", Self::Script),
        ("dns", Self::Dns),
        ("udp", Self::Udp),
        ("smtp", Self::Smtp),
    ];
}

/// One entry of `scheduler_flags`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SchedFlag {
    Fallback,
    Port,
}

impl Keyword for SchedFlag {
    const WHAT: &'static str = "scheduler flag";
    const ALL: &'static [(&'static str, Self)] =
        &[("fallback", Self::Fallback), ("port", Self::Port)];
}

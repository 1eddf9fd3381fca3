//! `ipvsadm`, the kernel's own reference client, as an independent witness: the kernel tests
//! read the table back with `ipvsadm -Ln` (parsed here) as well as with vigil's netlink client,
//! and play external changes with it.
//!
//! The listing keeps what `-Ln` shows and config sets: per service its scheduler and the option
//! words after it (scheduler flags, persistence, one-packet), per destination its forwarding
//! method and weight. [`expected`] renders desired virtual servers in the same terms.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use vigil_lvs::{DestKey, Family, Forwarding, Scheduler, ServiceFlags, ServiceKey, VirtualServer};

/// One service of `ipvsadm -Ln`, with its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The scheduler's name.
    pub(crate) scheduler: String,
    /// The rest of the service line, single-spaced, e.g. `(sh-port) persistent 60 mask 64 ops`.
    pub(crate) options: String,
    /// Forwarding method and weight by destination.
    pub(crate) dests: BTreeMap<DestKey, (Forwarding, u32)>,
}

/// The whole `ipvsadm -Ln` listing.
pub(crate) type Listing = BTreeMap<ServiceKey, Listed>;

/// Whether `ipvsadm` can be run here.
pub(crate) fn available() -> bool {
    Command::new("ipvsadm").arg("--version").output().is_ok()
}

/// Runs `ipvsadm` with the whitespace-separated `args` in the caller's network namespace;
/// panics with its output if it fails.
pub(crate) fn run(args: &str) -> String {
    let out = Command::new("ipvsadm")
        .args(args.split_whitespace())
        .output()
        .unwrap_or_else(|e| panic!("running ipvsadm {args}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "ipvsadm {args}: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The kernel's table as `ipvsadm -Ln` shows it.
pub(crate) fn list() -> Listing {
    let text = run("-Ln");
    parse(&text).unwrap_or_else(|e| panic!("ipvsadm -Ln: {e}:\n{text}"))
}

/// Parses `ipvsadm -Ln` output (ipvsadm 1.31's format).
pub(crate) fn parse(text: &str) -> Result<Listing, String> {
    let mut listing = Listing::new();
    let mut current: Option<ServiceKey> = None;
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            []
            | ["IP", "Virtual", "Server", ..]
            | ["Prot", ..]
            | ["->", "RemoteAddress:Port", ..] => {}
            ["->", addr, fwd, weight, _active, _inactive] => {
                let svc =
                    current.ok_or_else(|| format!("destination before any service: {line}"))?;
                let (addr, port) = addr_port(addr)?;
                let fwd = match *fwd {
                    "Route" => Forwarding::DirectRoute,
                    "Masq" => Forwarding::Nat,
                    "Tunnel" => Forwarding::Tunnel,
                    "Local" => Forwarding::Local,
                    other => return Err(format!("unknown forwarding {other:?}")),
                };
                let weight = weight
                    .parse()
                    .map_err(|e| format!("weight in {line:?}: {e}"))?;
                if let Some(listed) = listing.get_mut(&svc) {
                    listed.dests.insert(DestKey { addr, port }, (fwd, weight));
                }
            }
            [proto, rest @ ..] if !line.starts_with(' ') => {
                let (key, rest) = service_key(proto, rest)?;
                let [scheduler, options @ ..] = rest else {
                    return Err(format!("no scheduler in {line:?}"));
                };
                let listed = Listed {
                    scheduler: (*scheduler).to_owned(),
                    options: options.join(" "),
                    dests: BTreeMap::new(),
                };
                if listing.insert(key, listed).is_some() {
                    return Err(format!("service listed twice: {line:?}"));
                }
                current = Some(key);
            }
            _ => return Err(format!("unexpected line {line:?}")),
        }
    }
    Ok(listing)
}

fn service_key<'a>(
    proto: &str,
    rest: &'a [&'a str],
) -> Result<(ServiceKey, &'a [&'a str]), String> {
    if proto == "FWM" {
        let [mark, rest @ ..] = rest else {
            return Err("FWM without a mark".into());
        };
        let mark = mark.parse().map_err(|e| format!("mark {mark:?}: {e}"))?;
        return Ok(match rest {
            ["IPv6", rest @ ..] => (ServiceKey::Fwmark(mark, Family::V6), rest),
            _ => (ServiceKey::Fwmark(mark, Family::V4), rest),
        });
    }
    let [addr, rest @ ..] = rest else {
        return Err(format!("{proto} without an address"));
    };
    let (a, p) = addr_port(addr)?;
    let key = match proto {
        "TCP" => ServiceKey::Tcp(a, p),
        "UDP" => ServiceKey::Udp(a, p),
        "SCTP" => ServiceKey::Sctp(a, p),
        other => return Err(format!("unknown protocol {other:?}")),
    };
    Ok((key, rest))
}

/// `10.0.0.1:80` or `[2001:db8::1]:80`.
fn addr_port(s: &str) -> Result<(IpAddr, u16), String> {
    let (addr, port) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("no port in {s:?}"))?;
    let addr = addr.trim_start_matches('[').trim_end_matches(']');
    Ok((
        addr.parse().map_err(|e| format!("address {addr:?}: {e}"))?,
        port.parse().map_err(|e| format!("port {port:?}: {e}"))?,
    ))
}

/// What `ipvsadm -Ln` should show for exactly these virtual servers.
pub(crate) fn expected(vss: &[VirtualServer]) -> Listing {
    vss.iter()
        .map(|vs| {
            let svc = &vs.service;
            let mut options = Vec::new();
            let names: &[(ServiceFlags, &str)] = match svc.scheduler {
                Scheduler::Sh => &[
                    (ServiceFlags::SH_FALLBACK, "sh-fallback"),
                    (ServiceFlags::SH_PORT, "sh-port"),
                ],
                Scheduler::Mh => &[
                    (ServiceFlags::MH_FALLBACK, "mh-fallback"),
                    (ServiceFlags::MH_PORT, "mh-port"),
                ],
                _ => &[],
            };
            let sched_flags = (ServiceFlags::SCHED1 | ServiceFlags::SCHED2 | ServiceFlags::SCHED3)
                .bits()
                & svc.flags.bits();
            let named: Vec<&str> = names
                .iter()
                .filter(|(f, _)| svc.flags.contains(*f))
                .map(|(_, n)| *n)
                .collect();
            assert_eq!(
                named.len(),
                sched_flags.count_ones() as usize,
                "expected(): how ipvsadm names {:?} for {} is not modelled",
                svc.flags,
                svc.scheduler.name()
            );
            if !named.is_empty() {
                options.push(format!("({})", named.join(",")));
            }
            if let Some(p) = svc.persistence {
                options.push(format!("persistent {}", p.timeout_s));
                // ipvsadm leaves out the mask that means "per client".
                match svc.key.family() {
                    Family::V4 if p.netmask_prefix < 32 => {
                        let mask = u32::MAX.checked_shl(32 - u32::from(p.netmask_prefix));
                        options.push(format!("mask {}", Ipv4Addr::from(mask.unwrap_or(0))));
                    }
                    Family::V6 if p.netmask_prefix < 128 => {
                        options.push(format!("mask {}", p.netmask_prefix));
                    }
                    Family::V4 | Family::V6 => {}
                }
            }
            if let Some(pe) = &svc.pe_name {
                options.push(format!("pe {pe}"));
            }
            if svc.flags.contains(ServiceFlags::ONE_PACKET) {
                options.push("ops".to_owned());
            }
            let listed = Listed {
                scheduler: svc.scheduler.name().to_owned(),
                options: options.join(" "),
                dests: vs
                    .dests
                    .iter()
                    .map(|d| (d.key, (d.fwd, d.weight)))
                    .collect(),
            };
            (svc.key, listed)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigil_lvs::{Destination, Persistence, Service};

    /// ipvsadm 1.31's output under Debian's 6.1 kernel, captured in the VM.
    const SAMPLE: &str = "\
IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  192.0.2.1:80 wrr
  -> 10.0.0.2:80                  Route   3      0          0         
  -> 10.0.0.3:8080                Masq    0      0          0         
SCTP 192.0.2.2:3868 fo
  -> 127.0.0.1:3868               Route   1      0          0         
UDP  [2001:db8::1]:53 sh (sh-fallback,sh-port) persistent 600 mask 64 ops
  -> [2001:db8::10]:53            Route   1      0          0         
FWM  7 IPv6 rr
  -> [2001:db8::7]:0              Tunnel  2      0          0         
FWM  42 mh (mh-port) persistent 300 mask 255.255.255.0
  -> 10.0.0.6:0                   Tunnel  2      0          0         
";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn vs(service: Service, dests: Vec<Destination>) -> VirtualServer {
        VirtualServer { service, dests }
    }

    #[test]
    fn parses_what_expected_renders() {
        let tcp = Service::new(ServiceKey::Tcp(ip("192.0.2.1"), 80), Scheduler::Wrr);
        let sctp = Service::new(ServiceKey::Sctp(ip("192.0.2.2"), 3868), Scheduler::Fo);
        let udp = Service {
            flags: ServiceFlags::SH_FALLBACK | ServiceFlags::SH_PORT | ServiceFlags::ONE_PACKET,
            persistence: Some(Persistence {
                timeout_s: 600,
                netmask_prefix: 64,
            }),
            ..Service::new(ServiceKey::Udp(ip("2001:db8::1"), 53), Scheduler::Sh)
        };
        let fw6 = Service::new(ServiceKey::Fwmark(7, Family::V6), Scheduler::Rr);
        let fw4 = Service {
            flags: ServiceFlags::MH_PORT,
            persistence: Some(Persistence {
                timeout_s: 300,
                netmask_prefix: 24,
            }),
            ..Service::new(ServiceKey::Fwmark(42, Family::V4), Scheduler::Mh)
        };
        let d = |a: &str, port, w, fwd| Destination::new(ip(a), port, w, fwd);
        let want = expected(&[
            vs(
                tcp,
                vec![
                    d("10.0.0.2", 80, 3, Forwarding::DirectRoute),
                    d("10.0.0.3", 8080, 0, Forwarding::Nat),
                ],
            ),
            vs(sctp, vec![d("127.0.0.1", 3868, 1, Forwarding::DirectRoute)]),
            vs(udp, vec![d("2001:db8::10", 53, 1, Forwarding::DirectRoute)]),
            vs(fw6, vec![d("2001:db8::7", 0, 2, Forwarding::Tunnel)]),
            vs(fw4, vec![d("10.0.0.6", 0, 2, Forwarding::Tunnel)]),
        ]);
        assert_eq!(parse(SAMPLE).unwrap(), want);
    }

    #[test]
    fn per_client_persistence_has_no_mask_and_garbage_is_refused() {
        let svc = Service {
            persistence: Some(Persistence {
                timeout_s: 60,
                netmask_prefix: 32,
            }),
            ..Service::new(ServiceKey::Tcp(ip("192.0.2.1"), 80), Scheduler::Rr)
        };
        let listing = expected(&[vs(svc, Vec::new())]);
        assert_eq!(listing.values().next().unwrap().options, "persistent 60");
        assert!(parse("  -> 10.0.0.2:80 Route 1 0 0").is_err());
        assert!(parse("TCP  192.0.2.1:80 wrr\n  -> 10.0.0.2:80 Bridge 1 0 0").is_err());
        assert!(parse("ICMP 192.0.2.1:80 wrr").is_err());
        assert!(parse("TCP  192.0.2.1 wrr").is_err());
    }
}

//! The two daemons' configurations for the same fleet: one virtual server per real-server
//! address (a hundred real servers each), every real server with one check, the same interval,
//! timeout and verdict rules for both.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::fleet::{HEALTH_PATH, Protocol};

/// The check every real server gets.
#[derive(Debug, Clone, Copy)]
pub struct CheckPlan {
    /// TCP connect or HTTP GET.
    pub protocol: Protocol,
    /// TCP by vigild's half-open (SYN) check rather than a connect; keepalived has none and
    /// connects.
    pub half_open: bool,
    /// Time between rounds.
    pub interval: Duration,
    /// Connect (and, for HTTP, response) timeout.
    pub timeout: Duration,
    /// Extra attempts before a round fails (keepalived's `retry`).
    pub retries: u32,
    /// Pause before each extra attempt (keepalived's `delay_before_retry`).
    pub retry_delay: Duration,
    /// How the virtual servers forward.
    pub forwarding: Forwarding,
}

/// LVS forwarding method of the generated virtual servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forwarding {
    /// NAT: real servers may listen on any port.
    Nat,
    /// Direct routing: keepalived gives every real server the service's port, so each real
    /// server needs an address of its own and listens on the service's port.
    Dr,
}

impl Forwarding {
    fn vigild(self) -> &'static str {
        match self {
            Self::Nat => "nat",
            Self::Dr => "dr",
        }
    }

    fn keepalived(self) -> &'static str {
        match self {
            Self::Nat => "NAT",
            Self::Dr => "DR",
        }
    }
}

/// Real servers per virtual server.
pub const REALS_PER_VS: usize = 100;

/// The virtual server address for group `k` of real servers (never contacted: the kernel has
/// no IPVS, and with IPVS it would only be a table entry).
fn virtual_address(k: usize) -> String {
    // k / 250 < 256 for any fleet the address plan allows.
    format!("10.200.{}.{}:80", k / 250, k % 250 + 1)
}

/// Real servers in groups of [`REALS_PER_VS`], in order (one address of the fleet's plan);
/// each group becomes one virtual server.
fn groups(targets: &[SocketAddr]) -> impl Iterator<Item = &[SocketAddr]> {
    targets.chunks(REALS_PER_VS)
}

/// The virtual server address for group `k` (see [`groups`]).
pub fn virtual_server(k: usize) -> SocketAddr {
    virtual_address(k)
        .parse()
        .unwrap_or_else(|_| unreachable!("a well-formed address"))
}

/// Where the generated vigild config's API listens (inside the lab host).
pub const VIGILD_API: &str = "127.0.0.1:7400";

/// vigild's config: no VRRP, the load balancer only. `warmup` = interval spreads the first
/// rounds over one interval, as keepalived spreads its checkers.
pub fn vigild(node: &str, state: &Path, targets: &[SocketAddr], plan: CheckPlan) -> String {
    let mut out = format!(
        "[global]\nnode_name = \"{node}\"\nstate_dir = \"{}\"\n\n\
         [api]\nlisten = \"{VIGILD_API}\"\n",
        state.display()
    );
    let (interval, timeout) = (plan.interval.as_millis(), plan.timeout.as_millis());
    let retry_delay = plan.retry_delay.as_millis();
    for (k, group) in groups(targets).enumerate() {
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "\n[[virtual_server]]\naddress = \"{}\"\nforwarding = \"{}\"\n",
            virtual_address(k),
            plan.forwarding.vigild()
        );
        for rs in group {
            let _ = write!(
                out,
                "\n[[virtual_server.real_server]]\naddress = \"{}\"\nport = {}\n\n\
                 [[virtual_server.real_server.check]]\ntype = \"{}\"\n\
                 interval = \"{interval}ms\"\ntimeout = \"{timeout}ms\"\nwarmup = \"{interval}ms\"\n\
                 retries = {}\nretry_delay = \"{retry_delay}ms\"\nrise = 1\nfall = 1\n",
                rs.ip(),
                rs.port(),
                plan.protocol,
                plan.retries,
            );
            if plan.protocol == Protocol::Http {
                let _ = writeln!(out, "path = \"{HEALTH_PATH}\"\nstatus = [200]");
            } else if plan.half_open {
                out.push_str("half_open = true\n");
            }
        }
    }
    out
}

/// keepalived's config for the same servers: `delay_loop` = interval, `connect_timeout` =
/// timeout, `retry` and `delay_before_retry` = the plan's retries and their delay.
pub fn keepalived(targets: &[SocketAddr], plan: CheckPlan) -> String {
    let secs = |d: Duration| {
        let s = d.as_secs_f64();
        if s.fract() == 0.0 {
            format!("{s:.0}")
        } else {
            format!("{s}")
        }
    };
    let (interval, timeout) = (secs(plan.interval), secs(plan.timeout));
    let (retries, retry_delay) = (plan.retries, secs(plan.retry_delay));
    let lb_kind = plan.forwarding.keepalived();
    let mut out = String::from("global_defs {\n  router_id checkbench\n}\n");
    for (k, group) in groups(targets).enumerate() {
        let vs = virtual_address(k);
        let (ip, port) = vs.split_once(':').unwrap_or((&vs, "80"));
        let _ = write!(
            out,
            "virtual_server {ip} {port} {{\n  delay_loop {interval}\n  lb_algo wlc\n  \
             lb_kind {lb_kind}\n  protocol TCP\n"
        );
        for rs in group {
            let check = match plan.protocol {
                Protocol::Tcp => {
                    format!(
                        "TCP_CHECK {{\n      connect_timeout {timeout}\n      retry {retries}\n      \
                         delay_before_retry {retry_delay}\n    }}"
                    )
                }
                Protocol::Http => format!(
                    "HTTP_GET {{\n      url {{\n        path {HEALTH_PATH}\n        status_code 200\n      }}\n      \
                     connect_timeout {timeout}\n      retry {retries}\n      \
                     delay_before_retry {retry_delay}\n    }}"
                ),
            };
            let _ = write!(
                out,
                "  real_server {} {} {{\n    weight 1\n    {check}\n  }}\n",
                rs.ip(),
                rs.port()
            );
        }
        out.push_str("}\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::fleet::target;
    use super::*;

    fn plan(protocol: Protocol) -> CheckPlan {
        CheckPlan {
            protocol,
            half_open: false,
            interval: Duration::from_secs(1),
            timeout: Duration::from_millis(1500),
            retries: 0,
            retry_delay: Duration::from_secs(1),
            forwarding: Forwarding::Nat,
        }
    }

    #[test]
    fn one_virtual_server_per_address() {
        let targets: Vec<SocketAddr> = (0..250).map(target).collect();
        let vigild = vigild("lb", Path::new("/tmp/s"), &targets, plan(Protocol::Tcp));
        assert_eq!(vigild.matches("[[virtual_server]]").count(), 3);
        assert_eq!(
            vigild.matches("[[virtual_server.real_server]]").count(),
            250
        );
        assert!(vigild.contains("address = \"10.200.0.3:80\""), "{vigild}");
        assert!(vigild.contains("timeout = \"1500ms\""), "{vigild}");
        let ka = keepalived(&targets, plan(Protocol::Tcp));
        assert_eq!(ka.matches("virtual_server ").count(), 3);
        assert_eq!(ka.matches("TCP_CHECK").count(), 250);
        assert!(ka.contains("connect_timeout 1.5\n"), "{ka}");
        assert!(ka.contains("delay_loop 1\n"), "{ka}");
        assert!(ka.contains("real_server 127.1.0.3 20049 {"), "{ka}");
    }

    #[test]
    fn http_variant_checks_the_health_path_for_200() {
        let targets = [target(0)];
        let vigild = vigild("lb", Path::new("/tmp/s"), &targets, plan(Protocol::Http));
        assert!(vigild.contains("type = \"http\"\n"), "{vigild}");
        assert!(
            vigild.contains("path = \"/health\"\nstatus = [200]"),
            "{vigild}"
        );
        let ka = keepalived(&targets, plan(Protocol::Http));
        assert!(ka.contains("path /health\n        status_code 200"), "{ka}");
    }
    #[test]
    fn the_half_open_variant_is_vigilds_alone() {
        let targets = [target(0)];
        let half_open = CheckPlan {
            half_open: true,
            ..plan(Protocol::Tcp)
        };
        let vigild = vigild("lb", Path::new("/tmp/s"), &targets, half_open);
        assert!(
            vigild.contains("type = \"tcp\"\n") && vigild.contains("half_open = true\n"),
            "{vigild}"
        );
        let connect = super::vigild("lb", Path::new("/tmp/s"), &targets, plan(Protocol::Tcp));
        assert!(!connect.contains("half_open"), "{connect}");
        assert_eq!(
            keepalived(&targets, half_open),
            keepalived(&targets, plan(Protocol::Tcp))
        );
    }
}

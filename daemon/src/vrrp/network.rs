//! The sockets and kernel calls of one instance: adverts in and out, VIPs, announcements.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use vigil_conf as conf;
use vigil_net::{Announcer, Family, Lifetime, NetError, Received, Rtnl, SocketConfig, Vip, iface};
use vigil_vrrp::packet::{Advertisement, ChecksumMode};

use super::config::checksum_mode;

/// Spacing of the packets of one announcement burst: quick enough that a client's ARP cache is
/// right within tens of milliseconds, spaced so that one lost frame does not lose them all.
const ANNOUNCE_SPACING: Duration = Duration::from_millis(20);

/// Where one VIP lives.
#[derive(Debug, Clone)]
struct VipPlace {
    ifindex: u32,
    interface: String,
    vip: Vip,
}

/// One instance's network: its VRRP socket, its VIPs and its announcers.
#[derive(Debug)]
pub(crate) struct Network {
    /// Receives, and sends unless `vmac_sender` does. On the instance's interface, or with
    /// `use_vmac` and multicast on the vmac, so that adverts carry the virtual MAC.
    socket: vigil_net::VrrpSocket,
    /// `use_vmac` with unicast peers: sends from the vmac, while unicast adverts arrive on the
    /// parent.
    vmac_sender: Option<vigil_net::VrrpSocket>,
    /// The multicast group, or every unicast peer.
    destinations: Vec<IpAddr>,
    /// Unicast: adverts from anyone else are dropped, as keepalived does.
    peers: Option<Vec<IpAddr>>,
    checksum: ChecksumMode,
    rtnl: Rtnl,
    /// Changed when a reload changes the VIP list in place ([`Network::extend_vips`]).
    vips: Mutex<HashMap<IpAddr, VipPlace>>,
    /// Opened on first use, per interface.
    announcers: Mutex<HashMap<String, Arc<Announcer>>>,
    /// The VIPs are the router's own addresses (priority 255): never added or removed by us.
    owner: bool,
}

impl Network {
    /// Opens the socket and netlink connection for `instance`. Must run in the daemon's network
    /// namespace, inside the tokio runtime.
    pub(crate) fn open(instance: &conf::VrrpInstance) -> Result<Self, NetError> {
        let family = match instance.family {
            conf::AddressFamily::Ipv4 => Family::V4,
            conf::AddressFamily::Ipv6 => Family::V6,
        };
        let vmac = instance.vmac_interface();
        let (socket_config, destinations, peers) = match &instance.transport {
            // A multicast frame whose source MAC is one of our private-mode macvlans' goes to
            // that macvlan only, never to the parent: with `use_vmac`, the peer's adverts (from
            // the same virtual MAC) arrive on our vmac, so the socket lives there (as in
            // keepalived). The vmac has no address of its own: the source is the parent's.
            conf::Transport::Multicast => {
                let config = match &vmac {
                    Some(vmac) => SocketConfig {
                        source: Some(parent_source(&instance.interface, family)?),
                        ..SocketConfig::multicast(vmac, family)
                    },
                    None => SocketConfig::multicast(&instance.interface, family),
                };
                (config, None, None)
            }
            conf::Transport::Unicast { source, peers } => {
                let config = SocketConfig {
                    interface: instance.interface.clone(),
                    family,
                    source: *source,
                    join_group: false,
                };
                (config, Some(peers.clone()), Some(peers.clone()))
            }
        };
        let socket = vigil_net::VrrpSocket::open(&socket_config)?;
        // Unicast adverts are addressed to the parent's MAC and arrive there; they leave from
        // the vmac all the same, with the parent's source (an IPv6 vmac carries the parent's
        // link-local address for this, see `vigil_net`'s vmac module).
        let unicast = matches!(instance.transport, conf::Transport::Unicast { .. });
        let vmac_sender = vmac
            .filter(|_| unicast)
            .map(|vmac| {
                vigil_net::VrrpSocket::open(&SocketConfig {
                    interface: vmac,
                    family,
                    source: Some(socket.source()),
                    join_group: false,
                })
            })
            .transpose()?;
        let destinations = destinations.unwrap_or_else(|| vec![socket.group()]);
        let vips = Mutex::new(vip_places(instance)?);
        Ok(Self {
            socket,
            vmac_sender,
            destinations,
            peers,
            checksum: checksum_mode(instance.v3_checksum),
            rtnl: Rtnl::connect()?,
            vips,
            announcers: Mutex::new(HashMap::new()),
            owner: instance.address_owner,
        })
    }

    /// Learns the VIPs of `instance` (a reload changed the list in place) while keeping the
    /// others, so that the ones leaving the list can still be removed; then
    /// [`retain_vips`](Self::retain_vips) forgets them. The kernel is not touched. On error (a
    /// new VIP's device is missing) nothing changes.
    pub(crate) fn extend_vips(&self, instance: &conf::VrrpInstance) -> Result<(), NetError> {
        let places = vip_places(instance)?;
        self.vips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(places);
        Ok(())
    }

    /// Forgets the VIPs that are not in `instance`'s list.
    pub(crate) fn retain_vips(&self, instance: &conf::VrrpInstance) {
        self.vips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|addr, _| instance.vips.iter().any(|v| v.addr == *addr));
    }

    /// Where `addr` lives, if it is one of our VIPs.
    fn place(&self, addr: &IpAddr) -> Option<VipPlace> {
        self.vips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(addr)
            .cloned()
    }

    /// Our advert source, the instance's primary address.
    pub(crate) fn source(&self) -> IpAddr {
        self.socket.source()
    }

    /// The checksum convention for decoding.
    pub(crate) fn checksum(&self) -> ChecksumMode {
        self.checksum
    }

    /// Whether a unicast instance knows `src` as a peer (always true for multicast).
    pub(crate) fn accepts_from(&self, src: IpAddr) -> bool {
        self.peers.as_ref().is_none_or(|peers| peers.contains(&src))
    }

    /// The next packet.
    pub(crate) async fn recv(&self) -> Result<Received, NetError> {
        self.socket.recv().await
    }

    /// The next packet already queued, without waiting; `None` when there is none.
    pub(crate) fn try_recv(&self) -> Option<Result<Received, NetError>> {
        self.socket.try_recv()
    }

    /// Encodes and sends `advert` to the group or to each unicast peer. Returns one error per
    /// destination that failed; the others are still tried.
    pub(crate) async fn send_advert(&self, advert: &Advertisement) -> Vec<String> {
        let mut errors = Vec::new();
        let sender = self.vmac_sender.as_ref().unwrap_or(&self.socket);
        for &dst in &self.destinations {
            let result = match advert.encode(self.socket.source(), dst, self.checksum) {
                Ok(message) => sender.send(dst, &message).await.map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = result {
                errors.push(format!("send advert to {dst}: {e}"));
            }
        }
        errors
    }

    /// Configures `addrs` (IPv6 without DAD). Returns the ones now held and the errors.
    pub(crate) async fn add_vips(&self, addrs: &[IpAddr]) -> (Vec<IpAddr>, Vec<String>) {
        let mut held = Vec::new();
        let mut errors = Vec::new();
        for addr in addrs {
            let Some(place) = self.place(addr) else {
                errors.push(format!("VIP {addr} is not configured"));
                continue;
            };
            if self.owner {
                held.push(*addr);
                continue;
            }
            match self.rtnl.add_address(place.ifindex, &place.vip).await {
                Ok(()) => held.push(*addr),
                Err(e) => errors.push(e.to_string()),
            }
        }
        (held, errors)
    }

    /// Removes `addrs`. Returns the errors.
    pub(crate) async fn remove_vips(&self, addrs: &[IpAddr]) -> Vec<String> {
        if self.owner {
            return Vec::new();
        }
        let mut errors = Vec::new();
        for addr in addrs {
            let Some(place) = self.place(addr) else {
                continue;
            };
            if let Err(e) = self
                .rtnl
                .remove_address(place.ifindex, place.vip.addr, place.vip.prefix_len)
                .await
            {
                errors.push(e.to_string());
            }
        }
        errors
    }

    /// Deletes this instance's VIPs that a crashed run left on the interfaces, so that a node
    /// that starts as backup does not answer for them. Returns the ones removed.
    pub(crate) async fn remove_leftovers(&self) -> Result<Vec<IpAddr>, NetError> {
        if self.owner {
            return Ok(Vec::new());
        }
        let mut removed = Vec::new();
        let vips = self
            .vips
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut ifindexes: Vec<u32> = vips.values().map(|p| p.ifindex).collect();
        ifindexes.sort_unstable();
        ifindexes.dedup();
        for ifindex in ifindexes {
            for present in self.rtnl.addresses(ifindex).await? {
                let Some(place) = vips.get(&present.addr) else {
                    continue;
                };
                if place.ifindex == ifindex
                    && self
                        .rtnl
                        .remove_address(ifindex, present.addr, present.prefix_len)
                        .await?
                {
                    removed.push(present.addr);
                }
            }
        }
        Ok(removed)
    }

    /// Starts a burst of `count` gratuitous ARPs / unsolicited NAs for `addrs`, on the interface
    /// each VIP lives on, without waiting for it to finish.
    pub(crate) fn announce(&self, addrs: &[IpAddr], count: u32) -> Vec<String> {
        let mut by_interface: HashMap<String, Vec<IpAddr>> = HashMap::new();
        for addr in addrs {
            if let Some(place) = self.place(addr) {
                by_interface
                    .entry(place.interface.clone())
                    .or_default()
                    .push(*addr);
            }
        }
        let mut errors = Vec::new();
        for (interface, addrs) in by_interface {
            let mut announcers = self
                .announcers
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let announcer = match announcers.get(&interface) {
                Some(a) => Arc::clone(a),
                None => match Announcer::open(&interface, None) {
                    Ok(a) => {
                        let a = Arc::new(a);
                        announcers.insert(interface.clone(), Arc::clone(&a));
                        a
                    }
                    Err(e) => {
                        errors.push(e.to_string());
                        continue;
                    }
                },
            };
            drop(announcers);
            tokio::spawn(async move {
                if let Err(e) = announcer.burst(&addrs, count, ANNOUNCE_SPACING).await {
                    tracing::warn!(interface = %interface, error = %e, "announcement burst failed");
                }
            });
        }
        errors
    }
}

/// The parent's address that a vmac's adverts carry as their source: its primary IPv4 address
/// or its IPv6 link-local address, as a socket on the parent would choose.
fn parent_source(parent: &str, family: Family) -> Result<IpAddr, NetError> {
    Ok(match family {
        Family::V4 => IpAddr::V4(iface::primary_ipv4(parent)?),
        Family::V6 => IpAddr::V6(iface::link_local_v6(parent)?),
    })
}

/// Where each of `instance`'s VIPs lives.
fn vip_places(instance: &conf::VrrpInstance) -> Result<HashMap<IpAddr, VipPlace>, NetError> {
    let mut vips = HashMap::new();
    for v in &instance.vips {
        let interface = instance.vip_interface(v);
        let ifindex = iface::ifindex(&interface)?;
        let vip = Vip {
            addr: v.addr,
            prefix_len: v.prefix_len,
            label: v.label.clone(),
            lifetime: lifetime(instance.fencing),
        };
        vips.insert(
            v.addr,
            VipPlace {
                ifindex,
                interface,
                vip,
            },
        );
    }
    Ok(vips)
}

/// The kernel lifetime of a VIP this module adds: forever. Fenced VIPs (`quorum`) are never
/// added here but by the fencing task, with a lifetime inside its lease (`crate::fence`).
fn lifetime(fencing: conf::Fencing) -> Lifetime {
    match fencing {
        conf::Fencing::Off | conf::Fencing::Quorum => Lifetime::Forever,
    }
}

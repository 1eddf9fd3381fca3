//! [`Announcer`]: gratuitous ARP and unsolicited Neighbor Advertisement over `AF_PACKET`.
//!
//! A new master announces its VIPs so that neighbours move their ARP / neighbour cache entries
//! to its MAC (RFC 5798 §6.4.1, §6.4.2). Frames are built whole (see [`frame`]) and sent on a
//! raw packet socket, so the sender MAC can be a VRRP virtual MAC and the IPv6 source can be the
//! VIP itself even while it is not (yet) configured, as keepalived does.
//!
//! What Linux neighbours do with them: an existing ARP entry is overridden by a gratuitous ARP
//! (even within `locktime`); a missing entry is created only with `arp_accept=1`. An unsolicited
//! NA with the override flag updates an existing neighbour entry (to STALE with the new MAC); a
//! missing one is created only with `accept_untracked_na` (Linux 5.19 and later). Either way the
//! hosts that talk to the VIP, which have entries, follow the move.

pub mod frame;

use std::net::IpAddr;
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use crate::error::NetError;
use crate::iface::{self, MacAddr};
use crate::sys::packet_addr;

/// Sends address announcements on one interface.
#[derive(Debug)]
pub struct Announcer {
    socket: Socket,
    interface: String,
    ifindex: u32,
    mac: MacAddr,
    router: bool,
}

impl Announcer {
    /// Opens a send-only packet socket on `interface`, announcing `mac` or, when `None`, the
    /// interface's own MAC. NAs carry the router flag (RFC 5798 §6.4.2); see
    /// [`Announcer::with_router_flag`]. Must run in the interface's network namespace.
    pub fn open(interface: &str, mac: Option<MacAddr>) -> Result<Self, NetError> {
        let ifindex = iface::ifindex(interface)?;
        let mac = match mac {
            Some(mac) => mac,
            None => iface::mac(interface)?,
        };
        // Protocol 0: the socket receives nothing, so no frame queues up on it.
        let socket = Socket::new(Domain::PACKET, Type::RAW, None)
            .map_err(|e| NetError::io("open AF_PACKET socket", interface, e))?;
        Ok(Self {
            socket,
            interface: interface.to_owned(),
            ifindex,
            mac,
            router: true,
        })
    }

    /// Sets whether NAs carry the router flag. A host (not a router) sharing an address with
    /// VRRP semantics clears it so that neighbours do not take it for a default router.
    #[must_use]
    pub fn with_router_flag(mut self, router: bool) -> Self {
        self.router = router;
        self
    }

    /// The MAC address announced.
    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// Sends one announcement for `addr`: a gratuitous ARP for IPv4, an NA for IPv6.
    ///
    /// Blocking, but only for as long as the kernel takes to queue one frame on the interface.
    pub fn announce(&self, addr: IpAddr) -> Result<(), NetError> {
        let (bytes, ethertype, dest) = match addr {
            IpAddr::V4(v4) => (
                frame::gratuitous_arp(self.mac, v4),
                frame::ETH_P_ARP,
                frame::BROADCAST,
            ),
            IpAddr::V6(v6) => (
                frame::unsolicited_na(self.mac, v6, self.router),
                frame::ETH_P_IPV6,
                frame::ALL_NODES_MAC,
            ),
        };
        let to = packet_addr(self.ifindex, ethertype, dest.0);
        self.socket
            .send_to(&bytes, &to)
            .map_err(|e| NetError::io("send announcement", &self.interface, e))?;
        Ok(())
    }

    /// Announces every address in `addrs`, `count` times, waiting `delay` between rounds
    /// (keepalived's `garp_master_repeat` and `garp_interval`).
    pub async fn burst(
        &self,
        addrs: &[IpAddr],
        count: u32,
        delay: Duration,
    ) -> Result<(), NetError> {
        for round in 0..count {
            if round > 0 {
                tokio::time::sleep(delay).await;
            }
            for addr in addrs {
                self.announce(*addr)?;
            }
        }
        Ok(())
    }
}

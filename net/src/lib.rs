//! Linux network I/O for vigil: the bytes and addresses that the VRRP engine needs moved.
//!
//! This crate knows nothing of the VRRP state machine. It opens raw VRRP sockets and hands over
//! undecoded messages with their IP metadata, adds and removes virtual addresses (with
//! kernel-enforced lifetimes for quorum leases), announces addresses with gratuitous ARP and
//! unsolicited neighbour advertisements, reports link state, and creates VRRP virtual-MAC
//! interfaces. The daemon wires these to `vigil-vrrp`'s sans-I/O core.
//!
//! Everything acts in the network namespace of the thread that opens the socket or connection,
//! which is what lets the tests run each side in its own lab namespace. Async operations need a
//! tokio runtime with I/O and time enabled.
//!
//! ```no_run
//! # async fn demo() -> Result<(), vigil_net::NetError> {
//! use std::time::Duration;
//! use vigil_net::{Announcer, Family, Lifetime, Rtnl, SocketConfig, Vip, VrrpSocket, iface};
//!
//! // One socket per interface and family serves every VRRP instance there.
//! let socket = VrrpSocket::open(&SocketConfig::multicast("eth0", Family::V4))?;
//! let packet = socket.recv().await?; // decode with vigil_vrrp::packet::Advertisement::decode
//! # let _ = packet;
//! # let message: Vec<u8> = Vec::new();
//! socket.send(socket.group(), &message).await?; // encoded for socket.source() → group
//!
//! // Becoming master: the VIP with a kernel-enforced lease, then the announcements.
//! let rtnl = Rtnl::connect()?;
//! let lease = Lifetime::Lease(Duration::from_secs(10));
//! let vip = Vip { lifetime: lease, ..Vip::new("10.0.0.100".parse().unwrap(), 24) };
//! rtnl.add_address(iface::ifindex("eth0")?, &vip).await?;
//! Announcer::open("eth0", None)?.burst(&[vip.addr], 5, Duration::from_secs(1)).await?;
//! # Ok(())
//! # }
//! ```
//!
//! # Layout
//!
//! - `vrrp_socket.rs`: [`VrrpSocket`] — raw protocol-112 sockets per interface and family
//!   (IPv4 with our own header, IPv6 with ancillary data), multicast or unicast.
//! - `netlink.rs`: [`Rtnl`] — the route-netlink connection the next modules use.
//! - `addr.rs`: VIP management on [`Rtnl`] — add (with lifetime, label, nodad), refresh,
//!   remove, list.
//! - `link.rs`: [`LinkMonitor`] — link up/down events from `RTNLGRP_LINK`.
//! - `vmac.rs`: VRRP virtual-MAC (macvlan) interfaces on [`Rtnl`].
//! - `garp.rs`: [`Announcer`] — gratuitous ARP and unsolicited NA bursts over `AF_PACKET`;
//!   `garp/frame.rs` builds the frames.
//! - `iface.rs`: synchronous interface facts — index, addresses, link-local, MAC.
//! - `sys.rs`: the only `unsafe` code — a `sockaddr_ll` for `AF_PACKET`, `IP_MULTICAST_IF` by
//!   interface index, registering sockets with tokio, and [`set_thread_realtime`] with its
//!   safeguard [`set_rttime_limit`] for the VRRP threads.
//! - `error.rs`: [`NetError`].
//!
//! `examples/vrrp-probe.rs` sends, receives and announces by hand, for interop checks against
//! keepalived or a packet capture.

#![warn(missing_docs)]

mod addr;
mod error;
mod garp;
pub mod iface;
mod link;
mod netlink;
mod sys;
mod vmac;
mod vrrp_socket;

pub use addr::{AddressInfo, Lifetime, Vip};
pub use error::NetError;
pub use garp::{Announcer, frame};
pub use iface::MacAddr;
pub use link::{LinkEvent, LinkMonitor, LinkState};
pub use netlink::Rtnl;
pub use sys::{MallocTuning, rttime_limit, set_rttime_limit, set_thread_realtime, tune_malloc};
pub use vmac::{ParentArp, vmac_name};
pub use vrrp_socket::{Family, Received, SocketConfig, VrrpSocket};

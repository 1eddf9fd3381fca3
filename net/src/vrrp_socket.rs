//! [`VrrpSocket`]: a raw IP protocol-112 socket for one interface and one address family.
//!
//! Choices (keepalived-compatible wire bytes matter):
//!
//! - **IPv4 uses `IP_HDRINCL`.** We write the header ourselves with [`Ipv4Header::vrrp`]: TTL 255
//!   and TOS 0xc0 exactly as keepalived sends them, an incrementing identification, and the
//!   configured source address for multicast and unicast alike, without depending on the
//!   routing table's choice of source. The kernel still fills in the header checksum. Receiving
//!   returns the whole datagram; [`parse_ipv4`] checks the header and yields the TTL.
//! - **IPv6 leaves `IPV6_CHECKSUM` off** (the default for raw sockets of protocols other than
//!   ICMPv6; keepalived sets it to 6): the codec computes the VRRP checksum with the
//!   pseudo-header, and on receipt the kernel must pass packets with a bad checksum up so that
//!   the daemon can count them (RFC 5798 §7.1) instead of having them vanish. Hop limit 255 is
//!   set for multicast and unicast, and traffic class 0xc0 as keepalived does. The source (the
//!   interface's link-local address, RFC 5798 §5.1.2.1) is chosen per packet with
//!   `IPV6_PKTINFO` rather than `bind`, because a bound raw IPv6 socket would stop receiving
//!   unicast adverts sent to the interface's other addresses. `IPV6_RECVHOPLIMIT` and
//!   `IPV6_RECVPKTINFO` give the hop limit, destination and interface of each received packet.
//! - Both families bind to the interface (`SO_BINDTODEVICE`), join the VRRP group on it when asked
//!   (and receive no other group: `IP_MULTICAST_ALL`/`IPV6_MULTICAST_ALL` off), and turn multicast
//!   loop-back off. Unicast adverts to any of the interface's addresses arrive either way; the
//!   daemon tells them apart by [`Received::dst`]. Packets whose source is one of the interface's own
//!   addresses are dropped as well (a second line of defence, e.g. for unicast to ourselves).
//!
//! One socket per interface and family serves every VRRP instance there; the daemon demultiplexes
//! by VRID after decoding.

use std::io::{IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};

use nix::cmsg_space;
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, SockaddrIn6, recvmsg, sendmsg,
    setsockopt, sockopt,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use vigil_vrrp::ip::{
    Ipv4Header, PROTO_VRRP, VRRP_GROUP_V4, VRRP_GROUP_V6, VRRP_TOS, VRRP_TTL, parse_ipv4,
};

use crate::error::NetError;
use crate::iface;

/// Largest datagram accepted: a VRRPv3 message with 255 IPv6 addresses (4088 bytes) plus a
/// maximal IPv4 header, rounded up. Anything longer is not VRRP and is reported as truncated.
const RECV_BUFFER: usize = 4200;

/// Address family of a [`VrrpSocket`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: VRRPv2 or VRRPv3.
    V4,
    /// IPv6: VRRPv3 only.
    V6,
}

/// How to open a [`VrrpSocket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketConfig {
    /// Interface name (`"eth0"`).
    pub interface: String,
    /// Address family.
    pub family: Family,
    /// Source of everything sent. `None`: the interface's primary IPv4 address, or its IPv6
    /// link-local address, looked up when the socket opens.
    pub source: Option<IpAddr>,
    /// Join the VRRP multicast group (224.0.0.18 / ff02::12) on the interface. Unicast-only
    /// instances leave it off so that they do not hear other clusters' multicast adverts.
    pub join_group: bool,
}

impl SocketConfig {
    /// A multicast socket on `interface` with the default source.
    pub fn multicast(interface: &str, family: Family) -> Self {
        Self {
            interface: interface.to_owned(),
            family,
            source: None,
            join_group: true,
        }
    }
}

/// One received VRRP packet, before decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Source address from the IP header.
    pub src: IpAddr,
    /// Destination address (the group or one of our unicast addresses).
    pub dst: IpAddr,
    /// The IPv4 TTL or IPv6 hop limit; RFC 5798 §7.1 requires 255, the caller checks.
    pub ttl_or_hop_limit: u8,
    /// Interface the packet arrived on.
    pub ifindex: u32,
    /// The VRRP message (for IPv4, the bytes after the IP header).
    pub payload: Vec<u8>,
}

/// A raw VRRP socket bound to one interface, usable from many tasks at once (`&self` methods).
#[derive(Debug)]
pub struct VrrpSocket {
    fd: AsyncFd<Socket>,
    interface: String,
    ifindex: u32,
    family: Family,
    source: IpAddr,
    /// IPv4 identification of the next datagram; keepalived increments it per packet as well.
    next_id: AtomicU16,
    /// The interface's addresses: packets from them are our own and are dropped.
    own: Mutex<Vec<IpAddr>>,
    own_dropped: AtomicU64,
}

impl VrrpSocket {
    /// Opens the socket. Must run inside a tokio runtime, on a thread in the network namespace
    /// that owns `config.interface`.
    pub fn open(config: &SocketConfig) -> Result<Self, NetError> {
        crate::netlink::require_runtime("open VRRP socket")?;
        let name = config.interface.as_str();
        let ifindex = iface::ifindex(name)?;
        let source = match (config.family, config.source) {
            (Family::V4, Some(src @ IpAddr::V4(_))) | (Family::V6, Some(src @ IpAddr::V6(_))) => {
                src
            }
            (_, Some(other)) => {
                return Err(NetError::Invalid(format!(
                    "source {other} does not match the socket family {:?}",
                    config.family
                )));
            }
            (Family::V4, None) => IpAddr::V4(iface::primary_ipv4(name)?),
            (Family::V6, None) => IpAddr::V6(iface::link_local_v6(name)?),
        };
        let socket = match config.family {
            Family::V4 => open_v4(name, ifindex, config.join_group)?,
            Family::V6 => open_v6(name, ifindex, config.join_group)?,
        };
        let mut own = iface::addresses(name)?;
        own.push(source);
        let fd = crate::sys::register(socket)
            .map_err(|e| NetError::io("register with tokio", name, e))?;
        Ok(Self {
            fd,
            interface: name.to_owned(),
            ifindex,
            family: config.family,
            source,
            next_id: AtomicU16::new(1),
            own: Mutex::new(own),
            own_dropped: AtomicU64::new(0),
        })
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The socket's family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// The source address of everything sent; the codec needs it for the checksum.
    pub fn source(&self) -> IpAddr {
        self.source
    }

    /// The VRRP multicast group of this family.
    pub fn group(&self) -> IpAddr {
        match self.family {
            Family::V4 => IpAddr::V4(VRRP_GROUP_V4),
            Family::V6 => IpAddr::V6(VRRP_GROUP_V6),
        }
    }

    /// How many received packets were dropped because they came from one of our own addresses.
    pub fn own_dropped(&self) -> u64 {
        self.own_dropped.load(Ordering::Relaxed)
    }

    /// Re-reads the interface's addresses for the own-packet filter. Call it when the
    /// interface's addresses change; must run in the socket's network namespace.
    pub fn refresh_own_addresses(&self) -> Result<(), NetError> {
        let mut fresh = iface::addresses(&self.interface)?;
        fresh.push(self.source);
        *self
            .own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// Sends the VRRP message `message` (encoded by the codec for [`VrrpSocket::source`] and
    /// `dst`) to `dst`: [`VrrpSocket::group`] or a unicast peer.
    pub async fn send(&self, dst: IpAddr, message: &[u8]) -> Result<(), NetError> {
        match (self.source, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                let datagram = Ipv4Header::vrrp(src, dst, id)
                    .encode(message)
                    .map_err(|e| NetError::Invalid(e.to_string()))?;
                let to = SockAddr::from(SocketAddrV4::new(dst, 0));
                self.fd
                    .async_io(Interest::WRITABLE, |sock| sock.send_to(&datagram, &to))
                    .await
                    .map_err(|e| NetError::io("send", &self.interface, e))?;
                Ok(())
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let scope = if needs_scope(dst) { self.ifindex } else { 0 };
                let to = SockaddrIn6::from(SocketAddrV6::new(dst, 0, 0, scope));
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: src.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                self.fd
                    .async_io(Interest::WRITABLE, |sock| {
                        let iov = [IoSlice::new(message)];
                        let cmsgs = [ControlMessage::Ipv6PacketInfo(&info)];
                        sendmsg(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::empty(), Some(&to))
                            .map_err(std::io::Error::from)
                    })
                    .await
                    .map_err(|e| NetError::io("send", &self.interface, e))?;
                Ok(())
            }
            (_, dst) => Err(NetError::Invalid(format!(
                "destination {dst} does not match the {:?} socket on {}",
                self.family, self.interface
            ))),
        }
    }

    /// Waits for the next VRRP packet not sent by this host.
    ///
    /// A [`NetError::Malformed`] concerns that one packet ([`NetError::is_packet_error`]);
    /// other errors mean the socket is broken.
    pub async fn recv(&self) -> Result<Received, NetError> {
        loop {
            let raw = self
                .fd
                .async_io(Interest::READABLE, |sock| read_raw(sock, self.family))
                .await
                .map_err(|e| NetError::io("receive", &self.interface, e))?;
            if let Some(received) = self.accept(raw)? {
                return Ok(received);
            }
        }
    }

    /// The next VRRP packet already queued in the socket, without waiting: `None` once the
    /// queue is empty. A daemon whose timer and socket became ready together (after a
    /// scheduling stall) reads what is queued before it acts on the timer.
    pub fn try_recv(&self) -> Option<Result<Received, NetError>> {
        loop {
            // The descriptor is non-blocking; reading beside the reactor is fine: a reader
            // waiting in `recv` finds the queue empty and waits for the next packet.
            let raw = match read_raw(self.fd.get_ref(), self.family) {
                Ok(raw) => raw,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return None,
                Err(e) => return Some(Err(NetError::io("receive", &self.interface, e))),
            };
            match self.accept(raw) {
                Ok(Some(received)) => return Some(Ok(received)),
                Ok(None) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }

    /// Validates one datagram; `None` for our own packets (counted and dropped).
    fn accept(&self, raw: Raw) -> Result<Option<Received>, NetError> {
        let received = match raw {
            Raw::V4 { buf, len } => self.finish_v4(&buf, len)?,
            Raw::V6(raw) => self.finish_v6(raw)?,
        };
        let own = self
            .own
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&received.src);
        if !own {
            return Ok(Some(received));
        }
        self.own_dropped.fetch_add(1, Ordering::Relaxed);
        tracing::trace!(iface = %self.interface, src = %received.src, "dropped own VRRP packet");
        Ok(None)
    }

    fn finish_v4(&self, buf: &[u8], len: Option<usize>) -> Result<Received, NetError> {
        let len = len.ok_or_else(|| self.malformed("datagram larger than any VRRP packet"))?;
        let datagram =
            parse_ipv4(&buf[..len], PROTO_VRRP).map_err(|e| self.malformed(&e.to_string()))?;
        Ok(Received {
            src: IpAddr::V4(datagram.header.src),
            dst: IpAddr::V4(datagram.header.dst),
            ttl_or_hop_limit: datagram.header.ttl,
            ifindex: self.ifindex,
            payload: datagram.payload.to_vec(),
        })
    }

    fn finish_v6(&self, raw: RawV6) -> Result<Received, NetError> {
        if raw.truncated {
            return Err(self.malformed("datagram larger than any VRRP packet"));
        }
        let (Some(src), Some(dst), Some(ifindex), Some(hop)) =
            (raw.src, raw.dst, raw.ifindex, raw.hop_limit)
        else {
            return Err(self.malformed("missing source, IPV6_PKTINFO or IPV6_HOPLIMIT"));
        };
        Ok(Received {
            src: IpAddr::V6(src),
            dst: IpAddr::V6(dst),
            ttl_or_hop_limit: hop,
            ifindex,
            payload: raw.buf,
        })
    }

    fn malformed(&self, reason: &str) -> NetError {
        NetError::Malformed {
            iface: self.interface.clone(),
            reason: reason.to_owned(),
        }
    }
}

/// One datagram as `recvmsg` returned it, before validation.
enum Raw {
    V4 { buf: Vec<u8>, len: Option<usize> },
    V6(RawV6),
}

/// One non-blocking `recvmsg` on the socket of `family`.
fn read_raw(sock: &Socket, family: Family) -> std::io::Result<Raw> {
    match family {
        Family::V4 => read_v4(sock),
        Family::V6 => read_v6(sock),
    }
}

fn read_v4(sock: &Socket) -> std::io::Result<Raw> {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrIn>(sock.as_raw_fd(), &mut iov, None, MsgFlags::empty())
        .map_err(std::io::Error::from)?;
    let (bytes, truncated) = (msg.bytes, msg.flags.contains(MsgFlags::MSG_TRUNC));
    Ok(Raw::V4 {
        buf,
        len: if truncated { None } else { Some(bytes) },
    })
}

fn read_v6(sock: &Socket) -> std::io::Result<Raw> {
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut cmsg = cmsg_space!(libc::in6_pktinfo, libc::c_int);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrIn6>(
        sock.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let mut raw = RawV6 {
        len: msg.bytes,
        truncated: msg.flags.contains(MsgFlags::MSG_TRUNC),
        src: msg.address.map(|a| a.ip()),
        dst: None,
        ifindex: None,
        hop_limit: None,
        buf: Vec::new(),
    };
    // A truncated control buffer only loses ancillary data, reported below.
    if let Ok(cmsgs) = msg.cmsgs() {
        for c in cmsgs {
            match c {
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    raw.dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                    raw.ifindex = Some(info.ipi6_ifindex);
                }
                ControlMessageOwned::Ipv6HopLimit(h) => {
                    raw.hop_limit = u8::try_from(h).ok();
                }
                _ => {}
            }
        }
    }
    buf.truncate(raw.len);
    raw.buf = buf;
    Ok(Raw::V6(raw))
}

/// What one IPv6 `recvmsg` yielded, before validation.
struct RawV6 {
    len: usize,
    truncated: bool,
    src: Option<Ipv6Addr>,
    dst: Option<Ipv6Addr>,
    ifindex: Option<u32>,
    hop_limit: Option<u8>,
    buf: Vec<u8>,
}

/// Link-local unicast and link/interface-local multicast destinations need the interface as
/// scope id.
fn needs_scope(dst: Ipv6Addr) -> bool {
    dst.is_unicast_link_local()
        || (dst.is_multicast() && matches!(dst.segments()[0] & 0x000f, 1 | 2))
}

fn open_v4(name: &str, ifindex: u32, join: bool) -> Result<Socket, NetError> {
    let io = |op| move |e: std::io::Error| NetError::io(op, name, e);
    let socket = Socket::new(
        Domain::IPV4,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO_VRRP))),
    )
    .map_err(io("open raw IPv4 socket"))?;
    socket
        .bind_device(Some(name.as_bytes()))
        .map_err(io("SO_BINDTODEVICE"))?;
    socket
        .set_header_included_v4(true)
        .map_err(io("IP_HDRINCL"))?;
    // Only groups this socket joined, not every group some socket on the host joined: a
    // unicast-only socket must not hear multicast adverts (keepalived does the same).
    socket
        .set_multicast_all_v4(false)
        .map_err(io("IP_MULTICAST_ALL"))?;
    socket
        .set_multicast_loop_v4(false)
        .map_err(io("IP_MULTICAST_LOOP"))?;
    crate::sys::set_multicast_if_index_v4(&socket, ifindex).map_err(io("IP_MULTICAST_IF"))?;
    if join {
        socket
            .join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))
            .map_err(io("join 224.0.0.18"))?;
    }
    socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    Ok(socket)
}

fn open_v6(name: &str, ifindex: u32, join: bool) -> Result<Socket, NetError> {
    let io = |op| move |e: std::io::Error| NetError::io(op, name, e);
    let socket = Socket::new(
        Domain::IPV6,
        Type::RAW,
        Some(Protocol::from(i32::from(PROTO_VRRP))),
    )
    .map_err(io("open raw IPv6 socket"))?;
    socket
        .bind_device(Some(name.as_bytes()))
        .map_err(io("SO_BINDTODEVICE"))?;
    socket
        .set_multicast_all_v6(false)
        .map_err(io("IPV6_MULTICAST_ALL"))?;
    socket
        .set_multicast_loop_v6(false)
        .map_err(io("IPV6_MULTICAST_LOOP"))?;
    socket
        .set_multicast_hops_v6(u32::from(VRRP_TTL))
        .map_err(io("IPV6_MULTICAST_HOPS"))?;
    socket
        .set_unicast_hops_v6(u32::from(VRRP_TTL))
        .map_err(io("IPV6_UNICAST_HOPS"))?;
    // keepalived sends IPv6 adverts with traffic class CS6, as IPv4 with TOS 0xc0.
    socket
        .set_tclass_v6(u32::from(VRRP_TOS))
        .map_err(io("IPV6_TCLASS"))?;
    socket
        .set_multicast_if_v6(ifindex)
        .map_err(io("IPV6_MULTICAST_IF"))?;
    socket
        .set_recv_hoplimit_v6(true)
        .map_err(io("IPV6_RECVHOPLIMIT"))?;
    setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)
        .map_err(|e| NetError::io("IPV6_RECVPKTINFO", name, e))?;
    if join {
        socket
            .join_multicast_v6(&VRRP_GROUP_V6, ifindex)
            .map_err(io("join ff02::12"))?;
    }
    socket.set_nonblocking(true).map_err(io("O_NONBLOCK"))?;
    Ok(socket)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_scoped_destinations_get_a_scope_id() {
        assert!(needs_scope(VRRP_GROUP_V6));
        assert!(needs_scope("fe80::1".parse().unwrap()));
        assert!(!needs_scope("fd00::1".parse().unwrap()));
        assert!(!needs_scope("ff05::12".parse().unwrap()));
    }

    #[test]
    fn opening_needs_a_runtime_and_a_source_of_the_socket_family() {
        let config = SocketConfig {
            source: Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ..SocketConfig::multicast("lo", Family::V4)
        };
        assert!(matches!(
            VrrpSocket::open(&config),
            Err(NetError::NoRuntime(_))
        ));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = runtime.enter();
        assert!(matches!(
            VrrpSocket::open(&config),
            Err(NetError::Invalid(_))
        ));
    }
}

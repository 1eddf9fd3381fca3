//! Sockets with the check's source address or interface applied.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::spec::Source;

/// Connects to `target` from `source`.
pub(super) async fn connect_tcp(target: SocketAddr, source: &Source) -> io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(dev) = &source.bind_device {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(addr) = source.bind_addr {
        sock.bind(SocketAddr::new(addr, 0))?;
    }
    // Checks open and close connections at a high rate; without NODELAY small requests wait on
    // Nagle and skew the measured latency.
    let stream = sock.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A UDP socket connected to `target` (so ICMP errors surface as `ECONNREFUSED`).
pub(super) async fn connect_udp(target: SocketAddr, source: &Source) -> io::Result<UdpSocket> {
    let domain = if target.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    if let Some(dev) = &source.bind_device {
        sock.bind_device(Some(dev.as_bytes()))?;
    }
    if let Some(addr) = source.bind_addr {
        sock.bind(&SocketAddr::new(addr, 0).into())?;
    }
    let sock = UdpSocket::from_std(StdUdpSocket::from(sock))?;
    sock.connect(target).await?;
    Ok(sock)
}

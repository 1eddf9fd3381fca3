//! Sockets with the check's source address or interface applied.

use std::io;
use std::net::{SocketAddr, UdpSocket as StdUdpSocket};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::spec::Source;

/// A TCP socket for `target`, bound as `source` says.
fn tcp_socket(target: SocketAddr, source: &Source) -> io::Result<TcpSocket> {
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
    Ok(sock)
}

/// Connects to `target` from `source`, for a check that exchanges data.
pub(super) async fn connect_tcp(target: SocketAddr, source: &Source) -> io::Result<TcpStream> {
    let sock = tcp_socket(target, source)?;
    // Checks open and close connections at a high rate; without NODELAY small requests wait on
    // Nagle and skew the measured latency. Set before connecting, it costs no extra round of
    // the event loop.
    sock.set_nodelay(true)?;
    sock.connect(target).await
}

/// The TCP check: connects to `target` and closes at once with a reset.
///
/// An abortive close (`SO_LINGER` 0, so the kernel sends RST) instead of FIN: the check has
/// nothing to say, the FIN/ACK exchange would double the packets per check, and the side that
/// closes first keeps a TIME_WAIT socket for a minute — at 10,000 checks a second that is
/// 600,000 sockets, and every new connect pays for searching past them for a port. HAProxy's
/// connect-only checks close the same way. Linger 0 never blocks the thread on close. No
/// NODELAY: nothing is sent, and at 10,000 checks a second every system call counts. Linger is
/// set once connected, so a refused connect (a down server) costs no call for it.
pub(super) async fn connect_and_reset(target: SocketAddr, source: &Source) -> io::Result<()> {
    let stream = tcp_socket(target, source)?.connect(target).await?;
    socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO))
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

//! Is there a path between two hosts? A UDP round trip answers it.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::error::{LabError, Result};
use crate::host::Host;

/// How long each side listens before the request is sent again; short, so a probe that had to wait
/// for ARP resolution (or for a just-healed link) succeeds soon after.
const SLICE: Duration = Duration::from_millis(50);

/// Which of a host's lab addresses a probe uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Family {
    /// `10.0.0.<n>`.
    V4,
    /// `fd00::<n>` (unique-local, configured without DAD).
    V6,
}

/// Sends a datagram from `from` to `to`'s lab address and has `to` answer it; true when the answer
/// arrives within `timeout`. Both sockets live in their hosts' namespaces, so the datagrams cross
/// the lab bridge (and its partition filters) exactly as a daemon's would.
pub(crate) fn udp_exchange(
    from: &Host,
    to: &Host,
    family: Family,
    timeout: Duration,
) -> Result<bool> {
    static NONCE: AtomicU64 = AtomicU64::new(0);
    let addr = |host: &Host| match family {
        Family::V4 => IpAddr::V4(host.ipv4()),
        Family::V6 => IpAddr::V6(host.ipv6()),
    };
    let server = to.udp_socket(SocketAddr::new(addr(to), 0))?;
    let client = from.udp_socket(SocketAddr::new(addr(from), 0))?;
    let server_addr = server
        .local_addr()
        .map_err(|e| net_error(to, "local_addr", e))?;
    let request = format!(
        "vigil-lab probe {} {}",
        std::process::id(),
        NONCE.fetch_add(1, Ordering::Relaxed)
    );
    let reply = format!("{request} reply");
    for socket in [&server, &client] {
        socket
            .set_read_timeout(Some(SLICE))
            .map_err(|e| net_error(to, "set_read_timeout", e))?;
    }

    let start = Instant::now();
    while start.elapsed() < timeout {
        // Errors such as EHOSTUNREACH (ARP failed while cut) just mean "not yet".
        let _ = client.send_to(request.as_bytes(), server_addr);
        if let Some(peer) = receive(&server, request.as_bytes()) {
            let _ = server.send_to(reply.as_bytes(), peer);
            if receive(&client, reply.as_bytes()).is_some() {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Waits one slice for `expected` on `socket`, skipping stale datagrams of earlier attempts.
fn receive(socket: &UdpSocket, expected: &[u8]) -> Option<SocketAddr> {
    let mut buf = [0u8; 128];
    let deadline = Instant::now() + SLICE;
    while Instant::now() < deadline {
        match socket.recv_from(&mut buf) {
            Ok((len, peer)) if &buf[..len] == expected => return Some(peer),
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return None;
            }
            Err(_) => return None,
        }
    }
    None
}

fn net_error(host: &Host, what: &'static str, source: std::io::Error) -> LabError {
    LabError::Netns {
        netns: host.netns().to_owned(),
        what,
        source,
    }
}

//! Who answers for the VIP: a UDP responder on each load balancer replies with its host name,
//! and the client probes the VIP to tell which one holds it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_integration::Host;

/// The VIP's address (see [`super::daemon::VIP_CIDR`]).
pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
/// Port of the responders.
const ECHO_PORT: u16 = 9999;

/// UDP responders; they stop when dropped.
#[derive(Debug)]
pub struct Responders {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Responders {
    /// Starts one responder on each of `hosts`.
    pub fn start(hosts: &[&Host]) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut responders = Self {
            stop: Arc::clone(&stop),
            threads: Vec::new(),
        };
        for host in hosts {
            let socket = host.udp_socket(SocketAddr::from(([0, 0, 0, 0], ECHO_PORT)))?;
            // Bounds how long a responder takes to notice `stop`.
            socket.set_read_timeout(Some(Duration::from_millis(100)))?;
            let (name, stop) = (host.name().to_owned(), Arc::clone(&stop));
            responders.threads.push(std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((_, from)) = socket.recv_from(&mut buf) {
                        let _ = socket.send_to(name.as_bytes(), from);
                    }
                }
            }));
        }
        Ok(responders)
    }
}

impl Drop for Responders {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn vip_addr() -> SocketAddr {
    SocketAddr::new(IpAddr::V4(VIP), ECHO_PORT)
}

/// Which host answers one probe from `client` within `wait`, if any.
pub fn who_answers(client: &Host, wait: Duration) -> Option<String> {
    let socket = client
        .udp_socket(SocketAddr::from(([0, 0, 0, 0], 0)))
        .ok()?;
    socket.send_to(b"who", vip_addr()).ok()?;
    receive(&socket, Instant::now() + wait)
}

/// The next answer before `deadline`, if any.
fn receive(socket: &UdpSocket, deadline: Instant) -> Option<String> {
    let left = deadline
        .checked_duration_since(Instant::now())
        .filter(|d| !d.is_zero())?;
    socket.set_read_timeout(Some(left)).ok()?;
    let mut buf = [0u8; 64];
    let (n, _) = socket.recv_from(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// Probes the VIP from `client` every `every` until `want` answers; returns the time from
/// `since` to that answer, or `None` after `limit`. Every probe goes out after this call starts,
/// and answers from anyone else — the dead master's host keeps the VIP configured and its
/// responder keeps answering — are ignored.
pub fn probe_until(
    client: &Host,
    want: &str,
    since: Instant,
    every: Duration,
    limit: Duration,
) -> anyhow::Result<Option<Duration>> {
    let socket = client.udp_socket(SocketAddr::from(([0, 0, 0, 0], 0)))?;
    let vip = vip_addr();
    while since.elapsed() < limit {
        // A send error (no route or neighbour yet) is part of the outage: keep probing.
        let _ = socket.send_to(b"who", vip);
        let next_probe = Instant::now() + every;
        while let Some(answer) = receive(&socket, next_probe) {
            if answer == want {
                return Ok(Some(since.elapsed()));
            }
        }
    }
    Ok(None)
}

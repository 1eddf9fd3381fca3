//! The real servers: thousands of listeners on loopback addresses inside one lab host, served by
//! one tokio runtime in the benchmark process, so the server side costs one epoll loop rather
//! than a process per server and never limits the check rate.
//!
//! Listener `i` is `127.1.<a / 250>.<a % 250 + 1>:<20000 + i % 100>` with `a = i / 100`: a
//! hundred ports on each of as many loopback addresses as needed (the whole of 127/8 is local).
//! Every accepted connection is counted, which is the check rate the daemon really achieved.

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use vigil_integration::Host;

/// Ports per loopback address.
pub const PORTS_PER_ADDRESS: usize = 100;
/// First port on each address.
pub const BASE_PORT: u16 = 20_000;
/// The HTTP variant's health path.
pub const HEALTH_PATH: &str = "/health";
/// Most listeners the address plan can express (250 addresses per /16 row, 256 rows).
pub const MAX_SERVERS: usize = 256 * 250 * PORTS_PER_ADDRESS;

/// What the real servers speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// Accept and close: all a TCP connect check needs.
    Tcp,
    /// Read one request, answer `200 OK` with a two-byte body, close.
    Http,
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Tcp => "tcp",
            Self::Http => "http",
        })
    }
}

/// The address of listener `i` (see the module docs).
pub fn target(i: usize) -> SocketAddr {
    let a = i / PORTS_PER_ADDRESS;
    // `i < MAX_SERVERS` keeps `a / 250` below 256 and the port offset below 100.
    let (row, col) = ((a / 250) as u8, (a % 250 + 1) as u8);
    let port = BASE_PORT + (i % PORTS_PER_ADDRESS) as u16;
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(127, 1, row, col), port))
}

/// The running real servers; dropping the fleet closes every listener.
pub struct Fleet {
    /// Owns the serving tasks: dropping it closes every listener.
    runtime: tokio::runtime::Runtime,
    protocol: Protocol,
    targets: Vec<SocketAddr>,
    stops: Vec<Option<oneshot::Sender<oneshot::Sender<SystemTime>>>>,
    connections: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fleet")
            .field("servers", &self.targets.len())
            .field("connections", &self.connections())
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Binds `n` listeners inside `host` and starts serving them.
    pub fn start(host: &Host, n: usize, protocol: Protocol) -> anyhow::Result<Self> {
        if n == 0 || n > MAX_SERVERS {
            bail!("the fleet holds 1 to {MAX_SERVERS} servers, not {n}");
        }
        let targets: Vec<SocketAddr> = (0..n).map(target).collect();
        let listeners = host
            .enter(|| bind_all(&targets))
            .context("entering the lab host")??;
        Self::serve_all(targets, listeners, protocol)
    }

    /// Binds a listener on each of `targets` in the calling thread's network namespace and
    /// starts serving them (the VM benchmark's real servers, which need one address each).
    pub fn start_here(targets: Vec<SocketAddr>, protocol: Protocol) -> anyhow::Result<Self> {
        if targets.is_empty() {
            bail!("a fleet needs at least one server");
        }
        let listeners = bind_all(&targets)?;
        Self::serve_all(targets, listeners, protocol)
    }

    fn serve_all(
        targets: Vec<SocketAddr>,
        listeners: Vec<std::net::TcpListener>,
        protocol: Protocol,
    ) -> anyhow::Result<Self> {
        // Two workers: the HTTP variant parses and answers 10,000 requests a second.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("fleet")
            .enable_all()
            .build()
            .context("starting the fleet's runtime")?;
        let mut fleet = Self {
            runtime,
            protocol,
            stops: Vec::with_capacity(targets.len()),
            targets,
            connections: Arc::new(AtomicU64::new(0)),
            answered: Arc::new(AtomicU64::new(0)),
        };
        for listener in listeners {
            let stop = fleet.spawn(listener)?;
            fleet.stops.push(Some(stop));
        }
        Ok(fleet)
    }

    /// Serves `listener` on the fleet's runtime; the sender stops it.
    fn spawn(
        &self,
        listener: std::net::TcpListener,
    ) -> anyhow::Result<oneshot::Sender<oneshot::Sender<SystemTime>>> {
        let listener = {
            let _guard = self.runtime.enter();
            TcpListener::from_std(listener).context("registering a listener")?
        };
        let (stop, stopped) = oneshot::channel();
        self.runtime.spawn(serve(
            listener,
            self.protocol,
            Arc::clone(&self.connections),
            Arc::clone(&self.answered),
            stopped,
        ));
        Ok(stop)
    }

    /// Every listener's address, in index order.
    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    /// Connections accepted so far, over all listeners.
    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// HTTP requests answered so far (zero for the TCP variant).
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    /// Closes listener `i`, so connects to it are refused from now on, and returns the time the
    /// socket was closed.
    pub fn stop_server(&mut self, i: usize) -> anyhow::Result<SystemTime> {
        let stop = self
            .stops
            .get_mut(i)
            .and_then(Option::take)
            .with_context(|| format!("server {i} does not exist or was stopped already"))?;
        let (ack, closed) = oneshot::channel();
        if stop.send(ack).is_err() {
            bail!("server {i} had already ended");
        }
        // The runtime's own threads answer; blocking here on the bench thread is fine.
        closed
            .blocking_recv()
            .with_context(|| format!("server {i} ended without closing"))
    }

    /// Opens stopped listener `i` again, in the calling thread's network namespace (use it for
    /// [`start_here`](Self::start_here) fleets), and returns the time it started listening.
    pub fn restart_server(&mut self, i: usize) -> anyhow::Result<SystemTime> {
        let addr = *self
            .targets
            .get(i)
            .with_context(|| format!("server {i} does not exist"))?;
        if self.stops[i].is_some() {
            bail!("server {i} is running");
        }
        let listener = bind_all(&[addr])?.remove(0);
        let at = SystemTime::now();
        self.stops[i] = Some(self.spawn(listener)?);
        Ok(at)
    }
}

/// Non-blocking listeners on `targets` (std sets `SO_REUSEADDR`, so a restarted server can bind
/// again while its old connections are in `TIME_WAIT`).
fn bind_all(targets: &[SocketAddr]) -> anyhow::Result<Vec<std::net::TcpListener>> {
    targets
        .iter()
        .map(|addr| {
            let l = std::net::TcpListener::bind(addr).with_context(|| format!("binding {addr}"))?;
            l.set_nonblocking(true)?;
            Ok(l)
        })
        .collect()
}

async fn serve(
    listener: TcpListener,
    protocol: Protocol,
    connections: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    mut stop: oneshot::Receiver<oneshot::Sender<SystemTime>>,
) {
    loop {
        tokio::select! {
            ack = &mut stop => {
                drop(listener);
                if let Ok(ack) = ack {
                    let _ = ack.send(SystemTime::now());
                }
                return;
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.fetch_add(1, Ordering::Relaxed);
                    if protocol == Protocol::Http {
                        tokio::spawn(answer(stream, Arc::clone(&answered)));
                    }
                    // TCP: dropping the stream closes it; the check only needed the handshake.
                }
                // Out of file descriptors or a connection reset before accept: back off a little
                // instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }
}

/// The whole response: status, a fixed body, and no keep-alive.
const RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// Reads one request head (bounded in size and time) and answers it.
async fn answer(mut stream: TcpStream, answered: Arc<AtomicU64>) {
    let mut buf = [0u8; 4096];
    let mut len = 0;
    let read_head = async {
        while len < buf.len() {
            match stream.read(&mut buf[len..]).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => {
                    len += n;
                    if buf[..len].windows(4).any(|w| w == b"\r\n\r\n") {
                        return true;
                    }
                }
            }
        }
        false
    };
    let complete = tokio::time::timeout(Duration::from_secs(3), read_head)
        .await
        .unwrap_or(false);
    if complete && stream.write_all(RESPONSE).await.is_ok() {
        answered.fetch_add(1, Ordering::Relaxed);
        let _ = stream.shutdown().await;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};

    use vigil_integration::{Lab, root_available};

    use super::*;

    #[test]
    fn servers_count_connections_answer_http_and_stop_on_demand() {
        if !root_available("fleet serves and stops") {
            return;
        }
        let lab = Lab::with_hosts(&["lb", "web"]).expect("lab");
        let lb = lab.host("lb").expect("host");
        let connect = |addr: SocketAddr| {
            lb.enter(|| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2)))
                .expect("enter")
        };

        let mut tcp = Fleet::start(&lb, 150, Protocol::Tcp).expect("tcp fleet");
        assert_eq!(tcp.targets().len(), 150);
        for addr in [target(0), target(149)] {
            drop(connect(addr).expect("connect"));
        }
        vigil_integration::wait_for("two accepts", Duration::from_secs(5), || {
            tcp.connections() == 2
        })
        .expect("both connections counted");
        let before = SystemTime::now();
        let closed = tcp.stop_server(149).expect("stop");
        assert!(closed >= before);
        // Other tests of this binary fork children: until their exec closes it, a child holds
        // a copy of the listener, which still accepts. So refusal comes within a moment.
        vigil_integration::wait_for("a stopped server refuses", Duration::from_secs(5), || {
            connect(target(149)).is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)
        })
        .expect("the stopped server refuses");
        assert!(tcp.stop_server(149).is_err(), "stopping twice is an error");
        assert!(connect(target(148)).is_ok(), "the others still serve");
        drop(tcp);

        // Its own host: the TCP fleet's listeners may live on for a moment in a forked child.
        let web = lab.host("web").expect("host");
        let http = Fleet::start(&web, 1, Protocol::Http).expect("http fleet");
        let mut stream = web
            .enter(|| std::net::TcpStream::connect_timeout(&target(0), Duration::from_secs(2)))
            .expect("enter")
            .expect("connect");
        stream
            .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            .expect("request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("response");
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(response.ends_with("\r\n\r\nok"), "{response}");
        assert_eq!((http.connections(), http.answered()), (1, 1));
    }

    #[test]
    fn fleets_of_no_servers_or_too_many_are_refused() {
        if !root_available("fleet size bounds") {
            return;
        }
        let lab = Lab::with_hosts(&["lb"]).expect("lab");
        let lb = lab.host("lb").expect("host");
        assert!(Fleet::start(&lb, 0, Protocol::Tcp).is_err());
        assert!(Fleet::start(&lb, MAX_SERVERS + 1, Protocol::Tcp).is_err());
    }

    #[test]
    fn targets_fill_a_hundred_ports_per_address() {
        assert_eq!(target(0), "127.1.0.1:20000".parse().expect("addr"));
        assert_eq!(target(99), "127.1.0.1:20099".parse().expect("addr"));
        assert_eq!(target(100), "127.1.0.2:20000".parse().expect("addr"));
        assert_eq!(target(9_999), "127.1.0.100:20099".parse().expect("addr"));
        assert_eq!(target(25_000), "127.1.1.1:20000".parse().expect("addr"));
        assert_eq!(
            target(MAX_SERVERS - 1),
            "127.1.255.250:20099".parse().expect("addr")
        );
    }

    #[test]
    fn targets_are_distinct() {
        let mut all: Vec<SocketAddr> = (0..30_000).map(target).collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 30_000);
    }
}

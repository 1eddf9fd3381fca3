//! The outgoing side: one pipelined TCP connection per peer, re-established with exponential
//! backoff.
//!
//! A [`PeerClient`] is shared by everything that talks to one peer (openraft's replication
//! stream, its vote requests, forwarded client requests). Each call gets a request id, is
//! written whole under the connection's write lock, and waits for the response with that id;
//! a reader task routes responses to their callers. When the connection breaks every waiting
//! call fails at once and the next call reconnects — unless the previous attempt failed less
//! than the backoff delay ago, in which case it fails fast as unreachable.

use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

use super::frame;
use super::message::{Envelope, PeerRequest, PeerResponse};
use super::tls::{self, PeerTls, WriteHalf};

/// First delay after a failed connect; doubled per failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(50);
/// Longest delay between connect attempts. openraft backs off on its own as well
/// ([`openraft::network::RaftNetwork::backoff`]), so this only stops a burst of callers (votes,
/// forwarded requests) from hammering a dead address.
const MAX_BACKOFF: Duration = Duration::from_millis(500);
/// Longest a connect (TLS handshake included) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Why a call to a peer failed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection could be made (or we are backing off after a failure).
    #[error("peer {addr} unreachable: {reason}")]
    Unreachable {
        /// The peer's address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// The connection failed while the call was in flight; the peer may have acted on it.
    #[error("connection to {addr} failed: {source}")]
    Network {
        /// The peer's address.
        addr: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// No answer in time; the peer may have acted on it.
    #[error("no answer from {addr} within {timeout:?}")]
    Timeout {
        /// The peer's address.
        addr: String,
        /// The deadline that passed.
        timeout: Duration,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<PeerResponse>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One live connection.
struct Conn {
    writer: Arc<tokio::sync::Mutex<WriteHalf>>,
    pending: Pending,
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn")
            .field("closed", &self.closed.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Link {
    conn: Option<Arc<Conn>>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// A connection manager for one peer.
#[derive(Debug)]
pub struct PeerClient {
    addr: String,
    tls: Option<PeerTls>,
    source: Option<IpAddr>,
    next_id: AtomicU64,
    link: tokio::sync::Mutex<Link>,
}

impl PeerClient {
    /// A client for the peer at `addr` (`host:port`), over mutual TLS if `tls` is set;
    /// connects on first use.
    pub fn new(addr: String, tls: Option<PeerTls>) -> PeerClient {
        PeerClient {
            addr,
            tls,
            source: None,
            next_id: AtomicU64::new(1),
            link: tokio::sync::Mutex::new(Link::default()),
        }
    }

    /// Connects from `source` (the kernel picks the port) instead of the address the routing
    /// table prefers: on a multi-homed host this keeps peer traffic on the cluster network,
    /// and on loopback it tells peers (or a fault-injecting proxy) apart by source address.
    #[must_use]
    pub fn bound_to(mut self, source: Option<IpAddr>) -> PeerClient {
        self.source = source;
        self
    }

    /// The peer's address.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn call(
        &self,
        request: PeerRequest,
        timeout: Duration,
    ) -> Result<PeerResponse, CallError> {
        let deadline = Instant::now() + timeout;
        let conn = self.connection(timeout).await?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = frame::encode(&Envelope { id, body: request }).map_err(|source| {
            CallError::Network {
                addr: self.addr.clone(),
                source,
            }
        })?;
        let (tx, rx) = oneshot::channel();
        lock(&conn.pending).insert(id, tx);
        if conn.closed.load(Ordering::Acquire) {
            // The reader may have cleared the table just before the insert.
            lock(&conn.pending).remove(&id);
            return Err(CallError::Network {
                addr: self.addr.clone(),
                source: io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed"),
            });
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let exchange = async {
            {
                let mut w = conn.writer.lock().await;
                if let Err(source) = frame::write(&mut *w, &frame).await {
                    conn.closed.store(true, Ordering::Release);
                    return Err(CallError::Network {
                        addr: self.addr.clone(),
                        source,
                    });
                }
            }
            rx.await.map_err(|_| CallError::Network {
                addr: self.addr.clone(),
                source: io::Error::new(io::ErrorKind::ConnectionAborted, "connection closed"),
            })
        };
        if let Ok(result) = tokio::time::timeout(remaining, exchange).await {
            result
        } else {
            lock(&conn.pending).remove(&id);
            Err(CallError::Timeout {
                addr: self.addr.clone(),
                timeout,
            })
        }
    }

    /// The live connection, or a new one.
    async fn connection(&self, timeout: Duration) -> Result<Arc<Conn>, CallError> {
        let mut link = self.link.lock().await;
        if let Some(conn) = &link.conn {
            if !conn.closed.load(Ordering::Acquire) {
                return Ok(Arc::clone(conn));
            }
            link.conn = None;
        }
        if let Some(at) = link.retry_at
            && Instant::now() < at
        {
            return Err(CallError::Unreachable {
                addr: self.addr.clone(),
                reason: "backing off after a failed connect".into(),
            });
        }
        let connect = async {
            let stream = match self.source {
                None => TcpStream::connect(&self.addr).await?,
                Some(source) => connect_from(source, &self.addr).await?,
            };
            // Raft messages are small and latency-bound.
            stream.set_nodelay(true)?;
            tls::connect(stream, self.tls.as_ref(), &self.addr).await
        };
        let (reader, writer) =
            match tokio::time::timeout(timeout.min(CONNECT_TIMEOUT), connect).await {
                Ok(Ok(halves)) => halves,
                Ok(Err(e)) => return Err(self.failed(&mut link, e.to_string())),
                Err(_) => return Err(self.failed(&mut link, "connect timed out".into())),
            };
        link.failures = 0;
        link.retry_at = None;
        let conn = Arc::new(Conn {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            pending: Pending::default(),
            closed: Arc::new(AtomicBool::new(false)),
        });
        let pending = Arc::clone(&conn.pending);
        let closed = Arc::clone(&conn.closed);
        let addr = self.addr.clone();
        let mut reader = tokio::io::BufReader::with_capacity(frame::READ_BUFFER, reader);
        tokio::spawn(async move {
            loop {
                match frame::read::<_, Envelope<PeerResponse>>(&mut reader).await {
                    Ok(Some(Envelope { id, body })) => {
                        if let Some(tx) = lock(&pending).remove(&id) {
                            let _ = tx.send(body);
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(peer = %addr, error = %e, "peer connection failed");
                        break;
                    }
                }
            }
            closed.store(true, Ordering::Release);
            // Dropping the senders fails every waiting call at once.
            lock(&pending).clear();
        });
        link.conn = Some(Arc::clone(&conn));
        Ok(conn)
    }

    fn failed(&self, link: &mut Link, reason: String) -> CallError {
        link.failures = link.failures.saturating_add(1);
        let backoff = MIN_BACKOFF
            .saturating_mul(1 << link.failures.saturating_sub(1).min(6))
            .min(MAX_BACKOFF);
        link.retry_at = Some(Instant::now() + backoff);
        tracing::debug!(peer = %self.addr, %reason, ?backoff, "cannot connect to peer");
        CallError::Unreachable {
            addr: self.addr.clone(),
            reason,
        }
    }
}

/// Connects to `addr` (`host:port`) from `source`, trying each resolved address of `source`'s
/// family in turn.
async fn connect_from(source: IpAddr, addr: &str) -> io::Result<TcpStream> {
    let mut last = None;
    for target in tokio::net::lookup_host(addr).await? {
        if target.is_ipv4() != source.is_ipv4() {
            continue;
        }
        let socket = if source.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind((source, 0).into())?;
        match socket.connect(target).await {
            Ok(stream) => return Ok(stream),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            format!("{addr} has no address of the family of {source}"),
        )
    }))
}

//! The half-open TCP check (F5's "TCP half-open" monitor, nmap's SYN scan): a hand-built SYN
//! from a raw socket; a SYN-ACK means something listens, a reset means nothing does, silence
//! until the timeout means the server is gone.
//!
//! Why, beside the connect check: a connect check costs the checker a socket, a descriptor, an
//! epoll registration and five or six system calls, and the server an accepted connection. A
//! SYN probe costs a share of one `sendmmsg` and one `recvmmsg`, and the server only a request
//! socket: the kernel, finding no socket for the SYN-ACK, answers it with a reset itself, so no
//! connection is ever established or accepted. It proves less than a connect (the listener
//! exists and the kernel answers; not that the application calls `accept`), which is why it is
//! a choice per check and not the default.
//!
//! How the source port stays ours: an ordinary TCP socket is bound to it and never connected or
//! listening, so no real connection can use the port, while bound-only sockets are invisible to
//! the kernel's receive lookup (hence the reset). The raw socket carries a classic BPF filter
//! that keeps only segments to that port, truncated to the headers, so the kernel copies
//! nothing else to it.
//!
//! Answers are not waited for one by one: the raw socket is never registered with the event
//! loop, which would wake the scheduler for every SYN-ACK. The scheduler [`drain`]s it each
//! time it comes round, and at least every [`TICK`] while probes are out, so at a high rate
//! one wake-up collects many answers (this is where the half-open check saves the most; see
//! bench/README.md). A verdict is therefore up to one tick late, and its latency up to one tick
//! high.
//!
//! [`drain`]: SynProber::drain

use std::collections::HashMap;
use std::collections::hash_map::{Entry, RandomState};
use std::future::Future;
use std::hash::{BuildHasher as _, BuildHasherDefault, Hasher};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::AsRawFd as _;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use nix::sys::socket::{MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};
use socket2::{Domain, Protocol, Socket, Type};

use super::segment;
use crate::rng::SplitMix64;
use crate::spec::Source;

/// Longest wait between two drains of the raw sockets while probes are out.
pub(crate) const TICK: Duration = Duration::from_millis(8);
/// How long a looked-up source address is trusted. The source decides the checksum; a route
/// that changes makes probes fail (and look again) until then.
const ROUTE_TTL: Duration = Duration::from_secs(30);
/// Most answers read in one drain of one socket, so that a flood cannot hold the scheduler.
const DRAIN_MAX: usize = 8192;

/// The raw sockets and the probes in flight of one scheduler; shared by its attempts.
#[derive(Default)]
pub(crate) struct SynProber {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Few: one per distinct (family, bind address, device) among the half-open checks.
    senders: Vec<Sender>,
    routes: HashMap<(IpAddr, Option<String>), (IpAddr, Instant)>,
    /// By the acknowledgement number an answer carries (our sequence number + 1).
    pending: HashMap<u32, Pending, BuildHasherDefault<AckHasher>>,
    queue: Vec<Queued>,
    isn: Isn,
}

struct Sender {
    v6: bool,
    source: Source,
    raw: Socket,
    /// Holds `port`: bound, never connected, never listening.
    _claim: Socket,
    port: u16,
}

struct Pending {
    target: SocketAddr,
    port: u16,
    /// `Ok(true)`: SYN-ACK; `Ok(false)`: reset; `Err`: the SYN could not be sent (an errno).
    answer: Option<Result<bool, i32>>,
    waker: Option<Waker>,
}

/// A SYN queued by [`SynProber::queue`], sent by [`SynProber::flush`].
struct Queued {
    sender: usize,
    syn: [u8; segment::SYN_LEN],
    to: SockaddrStorage,
    ack: u32,
}

impl SynProber {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any probe awaits its answer (the scheduler then drains at least every [`TICK`]).
    pub(crate) fn in_flight(&self) -> bool {
        !self.lock().pending.is_empty()
    }

    /// [`queue`](Self::queue) and [`flush`](Self::flush) at once, for an attempt that is not
    /// part of a scheduler's batch. A SYN that cannot be sent fails its probe's [`wait`].
    pub(crate) fn send(&self, target: SocketAddr, source: &Source) -> io::Result<u32> {
        let ack = self.queue(target, source)?;
        self.flush();
        Ok(ack)
    }

    /// Registers a probe of `target` from `source` and queues its SYN for
    /// [`flush`](Self::flush), which sends every queued SYN in one system call (`sendmmsg`);
    /// the number names the probe for [`wait`]. The scheduler queues the SYNs of the attempts
    /// it starts together and flushes before it sleeps.
    pub(crate) fn queue(&self, target: SocketAddr, source: &Source) -> io::Result<u32> {
        let mut state = self.lock();
        let q = state.prepare(target, source)?;
        let ack = q.ack;
        state.queue.push(q);
        Ok(ack)
    }

    /// Sends every queued SYN. One that cannot be sent fails its probe with the error, and the
    /// route towards its target, which may have moved, is looked up again next time.
    pub(crate) fn flush(&self) {
        let mut state = self.lock();
        if state.queue.is_empty() {
            return;
        }
        let state = &mut *state;
        let mut queue = std::mem::take(&mut state.queue);
        // Usually one sender; each run of one sender's SYNs is one batch.
        queue.sort_by_key(|q| q.sender);
        for batch in queue.chunk_by(|a, b| a.sender == b.sender) {
            for chunk in batch.chunks(FLUSH_MAX) {
                let fd = state.senders[chunk[0].sender].raw.as_raw_fd();
                let sent = send_batch(fd, chunk).unwrap_or(0);
                // The first unsent SYN failed (or the batch did): send the rest one by one to
                // learn each one's error.
                for q in &chunk[sent..] {
                    let sender = &state.senders[q.sender];
                    if let Err(e) = nix::sys::socket::sendto(
                        sender.raw.as_raw_fd(),
                        &q.syn,
                        &q.to,
                        MsgFlags::empty(),
                    ) && let Some(p) = state.pending.get_mut(&q.ack)
                    {
                        p.answer = Some(Err(e as i32));
                        if let Some(w) = p.waker.take() {
                            w.wake();
                        }
                        let route = (p.target.ip(), sender.source.bind_device.clone());
                        state.routes.remove(&route);
                    }
                }
            }
        }
        queue.clear();
        // Keep the buffer for the next batch.
        state.queue = queue;
    }
}

/// Most SYNs in one `sendmmsg`.
const FLUSH_MAX: usize = 256;

/// Sends `batch` with one `sendmmsg`; how many went.
fn send_batch(fd: std::os::fd::RawFd, batch: &[Queued]) -> nix::Result<usize> {
    let slices: Vec<[IoSlice<'_>; 1]> = batch.iter().map(|q| [IoSlice::new(&q.syn)]).collect();
    let addrs: Vec<Option<SockaddrStorage>> = batch.iter().map(|q| Some(q.to)).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(batch.len(), None);
    let sent = sendmmsg(fd, &mut headers, &slices, &addrs, [], MsgFlags::empty())?;
    Ok(sent.count())
}

impl State {
    /// Everything a SYN to `target` needs, its probe registered as pending.
    fn prepare(&mut self, target: SocketAddr, source: &Source) -> io::Result<Queued> {
        let from = self.source_for(target.ip(), source)?;
        let sender = self.sender(target.is_ipv6(), source)?;
        let port = self.senders[sender].port;
        let (isn, ack) = loop {
            let isn = self.isn.next();
            // Unique among the probes out, so that an answer names exactly one.
            if !self.pending.contains_key(&isn.wrapping_add(1)) {
                break (isn, isn.wrapping_add(1));
            }
        };
        let syn = segment::syn(from, port, target.ip(), target.port(), isn).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("source {from} and target {target} are of different families"),
            )
        })?;
        // A raw socket takes the protocol from the socket, so the port must be zero; an IPv6
        // link-local target keeps its scope.
        let mut to = target;
        to.set_port(0);
        self.pending.insert(
            ack,
            Pending {
                target,
                port,
                answer: None,
                waker: None,
            },
        );
        Ok(Queued {
            sender,
            syn,
            to: SockaddrStorage::from(to),
            ack,
        })
    }
}

impl SynProber {
    /// The answer to probe `ack` (`true`: SYN-ACK), once [`drain`](Self::drain) has read it.
    fn poll_answer(&self, ack: u32, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut state = self.lock();
        let Entry::Occupied(mut e) = state.pending.entry(ack) else {
            // Only a finished probe is forgotten, and a finished probe is not polled again.
            return Poll::Ready(Ok(false));
        };
        if let Some(answer) = e.get().answer {
            e.remove();
            return Poll::Ready(answer.map_err(io::Error::from_raw_os_error));
        }
        match &mut e.get_mut().waker {
            Some(w) if w.will_wake(cx.waker()) => {}
            w => *w = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Gives up on probe `ack` (timed out or cancelled): a late answer will match nothing.
    fn forget(&self, ack: u32) {
        self.lock().pending.remove(&ack);
    }

    /// Reads every answer queued on the raw sockets and wakes the probes they answer. Answers
    /// that match no probe out (late, repeated, or someone else's) are dropped.
    pub(crate) fn drain(&self) {
        let mut state = self.lock();
        let State {
            senders, pending, ..
        } = &mut *state;
        let mut bufs = [[0u8; segment::SNAP_LEN as usize]; RECV_BATCH];
        let mut got: Vec<(usize, Option<Ipv6Addr>)> = Vec::with_capacity(RECV_BATCH);
        for sender in senders.iter() {
            for _ in 0..DRAIN_MAX / RECV_BATCH {
                got.clear();
                // EAGAIN: all read. Any other error is the socket's (e.g. ENOBUFS after an
                // overrun): the probes it lost time out, and the next drain reads on.
                if receive_batch(sender.raw.as_raw_fd(), &mut bufs, &mut got).is_err() {
                    break;
                }
                for (buf, &(n, from)) in bufs.iter().zip(&got) {
                    let packet = &buf[..n.min(buf.len())];
                    let answer = if sender.v6 {
                        from.zip(segment::parse_tcp(packet))
                            .map(|(from, a)| (IpAddr::V6(from), a))
                    } else {
                        segment::parse_v4(packet).map(|(from, a)| (IpAddr::V4(from), a))
                    };
                    let Some((from, answer)) = answer else {
                        continue;
                    };
                    let Some(p) = pending.get_mut(&answer.ack) else {
                        continue;
                    };
                    if p.answer.is_some()
                        || p.port != answer.to_port
                        || p.target.ip() != from
                        || p.target.port() != answer.from_port
                    {
                        continue;
                    }
                    p.answer = Some(Ok(answer.accepting));
                    if let Some(w) = p.waker.take() {
                        w.wake();
                    }
                }
                if got.len() < RECV_BATCH {
                    break;
                }
            }
        }
    }
}

/// Most answers read with one `recvmmsg`.
const RECV_BATCH: usize = 64;

/// Reads up to [`RECV_BATCH`] queued packets with one `recvmmsg`; appends each one's length and
/// (for IPv6, whose raw sockets deliver no IP header) its source to `got`.
fn receive_batch(
    fd: std::os::fd::RawFd,
    bufs: &mut [[u8; segment::SNAP_LEN as usize]; RECV_BATCH],
    got: &mut Vec<(usize, Option<Ipv6Addr>)>,
) -> nix::Result<()> {
    let mut slices: Vec<[IoSliceMut<'_>; 1]> =
        bufs.iter_mut().map(|b| [IoSliceMut::new(b)]).collect();
    let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(RECV_BATCH, None);
    let msgs = recvmmsg(
        fd,
        &mut headers,
        slices.iter_mut(),
        MsgFlags::MSG_DONTWAIT,
        None,
    )?;
    got.extend(msgs.map(|m| {
        let from = m
            .address
            .and_then(|a| a.as_sockaddr_in6().map(nix::sys::socket::SockaddrIn6::ip));
        (m.bytes, from)
    }));
    Ok(())
}

impl State {
    /// The address the kernel sends from towards `target` (it goes into the checksum): the
    /// configured one, else what a connected UDP socket is given, cached for [`ROUTE_TTL`].
    fn source_for(&mut self, target: IpAddr, source: &Source) -> io::Result<IpAddr> {
        if let Some(addr) = source.bind_addr {
            return Ok(addr);
        }
        let now = Instant::now();
        let key = (target, source.bind_device.clone());
        if let Some((addr, at)) = self.routes.get(&key)
            && now.duration_since(*at) < ROUTE_TTL
        {
            return Ok(*addr);
        }
        let udp = Socket::new(domain(target.is_ipv6()), Type::DGRAM, Some(Protocol::UDP))?;
        if let Some(dev) = &source.bind_device {
            udp.bind_device(Some(dev.as_bytes()))?;
        }
        // Connecting a UDP socket sends nothing; it only asks the routing table.
        udp.connect(&SocketAddr::new(target, 9).into())?;
        let addr = udp
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("no source address"))?
            .ip();
        self.routes.insert(key, (addr, now));
        Ok(addr)
    }

    /// The index of the raw socket for probes of this family from `source`, opened on first
    /// use.
    fn sender(&mut self, v6: bool, source: &Source) -> io::Result<usize> {
        if let Some(i) = self
            .senders
            .iter()
            .position(|s| s.v6 == v6 && s.source == *source)
        {
            return Ok(i);
        }
        self.senders.push(Sender::open(v6, source)?);
        Ok(self.senders.len() - 1)
    }
}

impl Sender {
    fn open(v6: bool, source: &Source) -> io::Result<Self> {
        let wildcard = if v6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let local = SocketAddr::new(source.bind_addr.unwrap_or(wildcard), 0);
        let claim = Socket::new(domain(v6), Type::STREAM, None)?;
        if let Some(dev) = &source.bind_device {
            claim.bind_device(Some(dev.as_bytes()))?;
        }
        claim.bind(&local.into())?;
        let port = claim
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("no port claimed"))?
            .port();
        let raw =
            Socket::new(domain(v6), Type::RAW.nonblocking(), Some(Protocol::TCP)).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!(
                        "opening a raw TCP socket for half-open checks (needs CAP_NET_RAW): {e}"
                    ),
                )
            })?;
        // Filter first, then bind: until filtered the socket sees every TCP packet of the host.
        if v6 {
            raw.attach_filter(&segment::port_filter_v6(port))?;
        } else {
            raw.attach_filter(&segment::port_filter_v4(port))?;
        }
        if let Some(dev) = &source.bind_device {
            raw.bind_device(Some(dev.as_bytes()))?;
        }
        if source.bind_addr.is_some() {
            raw.bind(&local.into())?;
        }
        // Whatever arrived before the filter applied.
        let mut buf = [MaybeUninit::<u8>::uninit(); 64];
        // Nonblocking: ends at the first EAGAIN.
        while raw.recv(&mut buf).is_ok() {}
        Ok(Sender {
            v6,
            source: source.clone(),
            raw,
            _claim: claim,
            port,
        })
    }
}

fn domain(v6: bool) -> Domain {
    if v6 { Domain::IPV6 } else { Domain::IPV4 }
}

/// Initial sequence numbers: unpredictable, so that an off-path host cannot make a dead server
/// look alive with a forged SYN-ACK without guessing 32 bits (and the port).
struct Isn(SplitMix64);

impl Default for Isn {
    fn default() -> Self {
        // `RandomState` is seeded from the OS's random source; no dependency needed for that.
        Isn(SplitMix64(RandomState::new().hash_one(std::process::id())))
    }
}

impl Isn {
    fn next(&mut self) -> u32 {
        self.0.next() as u32
    }
}

/// The keys are random already.
#[derive(Default)]
struct AckHasher(u64);

impl Hasher for AckHasher {
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// One probe out: resolves to the answer; dropped unanswered (timed out), it is forgotten.
struct Answer {
    prober: Arc<SynProber>,
    ack: u32,
    done: bool,
}

impl Future for Answer {
    type Output = io::Result<bool>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let answer = self.prober.poll_answer(self.ack, cx);
        if answer.is_ready() {
            self.done = true;
        }
        answer
    }
}

impl Drop for Answer {
    fn drop(&mut self) {
        if !self.done {
            self.prober.forget(self.ack);
        }
    }
}

/// The answer to a probe sent (or queued, see [`SynProber::queue`]) as `ack`: up on a SYN-ACK,
/// refused on a reset. The caller bounds it with the timeout and drains `prober` while it runs.
pub(crate) async fn wait(prober: Arc<SynProber>, ack: io::Result<u32>) -> io::Result<()> {
    let answer = Answer {
        prober,
        ack: ack?,
        done: false,
    };
    if answer.await? {
        Ok(())
    } else {
        // As an OS error, so that a server that stays down reads like a refused connect and
        // its detail is not formatted again every round.
        Err(io::Error::from_raw_os_error(
            nix::errno::Errno::ECONNREFUSED as i32,
        ))
    }
}

/// Runs `attempt`, a half-open attempt outside a scheduler, draining `prober` every
/// millisecond as the scheduler would on its passes.
pub(super) async fn drained<F: Future>(prober: &SynProber, attempt: F) -> F::Output {
    tokio::pin!(attempt);
    loop {
        tokio::select! {
            r = &mut attempt => return r,
            () = tokio::time::sleep(Duration::from_millis(1)) => prober.drain(),
        }
    }
}

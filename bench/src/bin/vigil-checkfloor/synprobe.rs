//! The half-open (SYN) probe: F5's "TCP half-open" monitor, nmap's SYN scan.
//!
//! One raw `IPPROTO_TCP` socket sends a hand-built SYN to each server and reads the replies: a
//! SYN-ACK is up, a reset is down, nothing within the timeout is down. The source port is
//! claimed by an ordinary TCP socket bound to it and never connected or listening, so no real
//! connection can use the port and the kernel, finding no socket for the SYN-ACK, answers it with
//! a reset itself: the server's half-open connection is gone without an `accept`. Per check
//! that is one `sendto` and one `recv` on the checker's side, no socket, no descriptor, no epoll
//! registration; on the server's side a request socket instead of a connection.
//!
//! The raw socket is bound to the source address (so it sees only packets to that address)
//! and carries a classic BPF filter that keeps only segments to the claimed port, truncated to
//! the headers, so the kernel copies nothing else to it. IPv4 only.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read as _};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context as _, bail};
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use vigil_checks::probe::segment::{self, SNAP_LEN};

use crate::drive::{Prober, Tally};

/// Successive initial sequence numbers differ by this (odd, so all 2^32 values come round).
const ISN_STEP: u32 = 0x9e37_79b9;
const RAW: Token = Token(0);

/// SYN probes of every server in the fleet; see the module docs.
pub(crate) struct SynProber {
    raw: Socket,
    /// Holds the source port: bound, never connected, never listening.
    _claim: Socket,
    source: Ipv4Addr,
    port: u16,
    targets: Vec<SocketAddrV4>,
    by_addr: HashMap<SocketAddrV4, usize>,
    /// Per target, the acknowledgement number a reply to the SYN in flight carries.
    pending: Vec<Option<u32>>,
    /// (deadline, target, expected ack) in send order, which with one timeout is deadline order.
    deadlines: VecDeque<(Instant, usize, u32)>,
    timeout: Duration,
    isn: u32,
    /// Replies that matched no SYN in flight (late, or a retransmitted SYN-ACK).
    strays: u64,
}

impl SynProber {
    /// Opens the raw socket on `source`, claims a port there, and registers with `poll`.
    pub(crate) fn new(
        poll: &Poll,
        source: Ipv4Addr,
        targets: &[SocketAddr],
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let targets: Vec<SocketAddrV4> = targets
            .iter()
            .map(|t| match t {
                SocketAddr::V4(t) => Ok(*t),
                SocketAddr::V6(_) => bail!("the half-open probe is IPv4 only, not {t}"),
            })
            .collect::<anyhow::Result<_>>()?;
        let claim = Socket::new(Domain::IPV4, Type::STREAM, None).context("socket")?;
        claim
            .bind(&SocketAddrV4::new(source, 0).into())
            .with_context(|| format!("claiming a port on {source}"))?;
        let port = claim
            .local_addr()?
            .as_socket_ipv4()
            .context("an IPv4 port")?
            .port();
        let raw = Socket::new(Domain::IPV4, Type::RAW.nonblocking(), Some(Protocol::TCP))
            .context("a raw TCP socket (needs CAP_NET_RAW)")?;
        // Filter first, then bind: until bound the socket sees every TCP packet of the host.
        raw.attach_filter(&segment::port_filter_v4(port))
            .context("SO_ATTACH_FILTER")?;
        raw.bind(&SocketAddrV4::new(source, 0).into())
            .context("binding the raw socket")?;
        drain(&raw)?;
        poll.registry()
            .register(&mut SourceFd(&raw.as_raw_fd()), RAW, Interest::READABLE)
            .context("epoll_ctl")?;
        let by_addr = targets.iter().enumerate().map(|(i, &t)| (t, i)).collect();
        // Not secret, only different from run to run; the acks are checked against it.
        let isn = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos());
        Ok(Self {
            raw,
            _claim: claim,
            source,
            port,
            pending: vec![None; targets.len()],
            targets,
            by_addr,
            deadlines: VecDeque::new(),
            timeout,
            isn,
            strays: 0,
        })
    }

    /// Replies that matched no probe in flight so far.
    pub(crate) fn strays(&self) -> u64 {
        self.strays
    }

    fn reply(&mut self, packet: &[u8], tally: &mut Tally) {
        let Some((from, reply)) = segment::parse_v4(packet).filter(|(_, r)| r.to_port == self.port)
        else {
            self.strays += 1;
            return;
        };
        let from = SocketAddrV4::new(from, reply.from_port);
        let Some(&target) = self.by_addr.get(&from) else {
            self.strays += 1;
            return;
        };
        if self.pending[target] != Some(reply.ack) {
            self.strays += 1;
            return;
        }
        self.pending[target] = None;
        if reply.accepting {
            tally.up += 1;
        } else {
            tally.down += 1;
        }
    }
}

impl Prober for SynProber {
    fn start(
        &mut self,
        _poll: &Poll,
        target: usize,
        now: Instant,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        if self.pending[target].take().is_some() {
            // Still unanswered when its next probe is due.
            tally.timed_out += 1;
        }
        self.isn = self.isn.wrapping_add(ISN_STEP);
        let dst = self.targets[target];
        let syn = segment::syn(
            self.source.into(),
            self.port,
            (*dst.ip()).into(),
            dst.port(),
            self.isn,
        )
        .expect("both IPv4");
        // The port of a raw socket's destination is ignored; the segment carries it.
        let to = SockAddr::from(SocketAddrV4::new(*dst.ip(), 0));
        match self.raw.send_to(&syn, &to) {
            Ok(_) => {
                let ack = self.isn.wrapping_add(1);
                self.pending[target] = Some(ack);
                self.deadlines.push_back((now + self.timeout, target, ack));
            }
            // A full send buffer or no route: this probe failed, the next may not.
            Err(_) => tally.down += 1,
        }
        Ok(())
    }

    fn ready(&mut self, _event: &Event, tally: &mut Tally) -> anyhow::Result<()> {
        let mut buf = [0u8; SNAP_LEN as usize];
        // Edge-triggered: read every queued reply.
        loop {
            match (&self.raw).read(&mut buf) {
                Ok(n) => self.reply(&buf[..n], tally),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e).context("reading the raw socket"),
            }
        }
    }

    fn expire(&mut self, now: Instant, tally: &mut Tally) {
        while let Some(&(deadline, target, ack)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.pending[target] == Some(ack) {
                self.pending[target] = None;
                tally.timed_out += 1;
            }
        }
    }
}

/// Discards whatever reached `raw` before its filter and binding applied.
fn drain(raw: &Socket) -> anyhow::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        match (&*raw).read(&mut buf) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("draining the raw socket"),
        }
    }
}

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
use socket2::{Domain, Protocol, SockAddr, SockFilter, Socket, Type};

use crate::drive::{Prober, Tally};

const FIN: u8 = 0x01;
const SYN: u8 = 0x02;
const RST: u8 = 0x04;
const ACK: u8 = 0x10;
/// A SYN's header: 20 bytes plus the MSS option, as every real stack sends one.
const SYN_LEN: usize = 24;
/// Bytes of a reply the filter lets through: the longest IPv4 header plus the TCP header up to
/// its flags.
const SNAP_LEN: u32 = 60 + 14;
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
        raw.attach_filter(&port_filter(port))
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
        let Some(reply) = parse_reply(packet).filter(|r| r.to_port == self.port) else {
            self.strays += 1;
            return;
        };
        let Some(&target) = self.by_addr.get(&reply.from) else {
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
        let segment = syn(self.source, self.port, dst, self.isn);
        // The port of a raw socket's destination is ignored; the segment carries it.
        let to = SockAddr::from(SocketAddrV4::new(*dst.ip(), 0));
        match self.raw.send_to(&segment, &to) {
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

/// A classic BPF program for a raw IPv4 socket (the packet starts at the IP header): keep TCP
/// segments to `port`, cut to [`SNAP_LEN`] bytes; drop the rest.
fn port_filter(port: u16) -> [SockFilter; 5] {
    // Opcodes from linux/filter.h.
    const LDX_B_MSH: u16 = 0xb1; // BPF_LDX | BPF_B | BPF_MSH: X = 4 * (P[k] & 0xf)
    const LD_H_IND: u16 = 0x48; // BPF_LD | BPF_H | BPF_IND: A = P[X + k], 16 bits
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    [
        SockFilter::new(LDX_B_MSH, 0, 0, 0), // X = IP header length
        SockFilter::new(LD_H_IND, 0, 0, 2),  // A = TCP destination port
        SockFilter::new(JEQ_K, 0, 1, u32::from(port)),
        SockFilter::new(RET_K, 0, 0, SNAP_LEN),
        SockFilter::new(RET_K, 0, 0, 0),
    ]
}

/// The TCP header of a SYN from `source:sport` to `dst` with sequence number `seq`.
fn syn(source: Ipv4Addr, sport: u16, dst: SocketAddrV4, seq: u32) -> [u8; SYN_LEN] {
    let mut s = [0u8; SYN_LEN];
    s[0..2].copy_from_slice(&sport.to_be_bytes());
    s[2..4].copy_from_slice(&dst.port().to_be_bytes());
    s[4..8].copy_from_slice(&seq.to_be_bytes());
    // Acknowledgement number 0; data offset in 32-bit words.
    s[12] = ((SYN_LEN / 4) as u8) << 4;
    s[13] = SYN;
    s[14..16].copy_from_slice(&64_240u16.to_be_bytes());
    // Checksum (16..18) and urgent pointer (18..20) zero for now; option MSS 1460.
    s[20..24].copy_from_slice(&[2, 4, 0x05, 0xb4]);
    let sum = tcp_checksum(source, *dst.ip(), &s);
    s[16..18].copy_from_slice(&sum.to_be_bytes());
    s
}

/// The ones' complement sum of `bytes` as 16-bit big-endian words (RFC 1071), added to `acc`.
fn sum_words(mut acc: u64, bytes: &[u8]) -> u64 {
    let mut words = bytes.chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(*last) << 8;
    }
    acc
}

/// Folds the carries back in and complements: the Internet checksum of a sum.
fn finish(mut acc: u64) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The TCP checksum of `segment` (its checksum field zero, or as sent: then a correct one
/// gives 0) between `src` and `dst`, over the IPv4 pseudo-header (RFC 793 §3.1).
fn tcp_checksum(src: Ipv4Addr, dst: Ipv4Addr, segment: &[u8]) -> u16 {
    let mut pseudo = [0u8; 12];
    pseudo[0..4].copy_from_slice(&src.octets());
    pseudo[4..8].copy_from_slice(&dst.octets());
    pseudo[9] = 6; // IPPROTO_TCP
    pseudo[10..12].copy_from_slice(&(segment.len() as u16).to_be_bytes());
    finish(sum_words(sum_words(0, &pseudo), segment))
}

/// A server's answer to a SYN, as far as the probe cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Reply {
    from: SocketAddrV4,
    to_port: u16,
    /// Our sequence number plus one, if this answers our SYN.
    ack: u32,
    /// SYN-ACK (listening) rather than a reset.
    accepting: bool,
}

/// Reads an IPv4 packet as a raw TCP socket delivers it; `None` for anything but a SYN-ACK or
/// a reset that acknowledges something. Never trusts a length it has not checked.
fn parse_reply(packet: &[u8]) -> Option<Reply> {
    let (&first, _) = packet.split_first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_len < 20 || *packet.get(9)? != 6 {
        return None;
    }
    let src = Ipv4Addr::from(<[u8; 4]>::try_from(packet.get(12..16)?).ok()?);
    let tcp = packet.get(header_len..header_len + 14)?;
    let flags = tcp[13];
    let accepting = match flags & (FIN | SYN | RST | ACK) {
        f if f == SYN | ACK => true,
        f if f == RST | ACK => false,
        _ => return None,
    };
    Some(Reply {
        from: SocketAddrV4::new(src, u16::from_be_bytes([tcp[0], tcp[1]])),
        to_port: u16::from_be_bytes([tcp[2], tcp[3]]),
        ack: u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]),
        accepting,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checksum_is_rfc_1071s() {
        // RFC 1071 §3's worked example: the sum is ddf2, the checksum its complement.
        let bytes = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum_words(0, &bytes)), !0xddf2);
        // An odd length pads with a zero byte.
        assert_eq!(finish(sum_words(0, &[0xab])), !0xab00);
        assert_eq!(finish(sum_words(0, &[0xff; 16_000])), 0);
    }

    #[test]
    fn a_syn_carries_our_port_sequence_and_a_valid_checksum() {
        let (src, dst) = (
            Ipv4Addr::LOCALHOST,
            "127.1.0.7:20042".parse().expect("addr"),
        );
        let s = syn(src, 40_123, dst, 0xdead_beef);
        assert_eq!(u16::from_be_bytes([s[0], s[1]]), 40_123);
        assert_eq!(u16::from_be_bytes([s[2], s[3]]), 20_042);
        assert_eq!(u32::from_be_bytes([s[4], s[5], s[6], s[7]]), 0xdead_beef);
        assert_eq!(&s[8..12], &[0; 4]);
        assert_eq!(s[12] >> 4, 6, "data offset covers the MSS option");
        assert_eq!(s[13], SYN);
        assert_eq!(&s[20..24], &[2, 4, 0x05, 0xb4]);
        // Summed with its checksum in place, a correct segment gives zero...
        assert_eq!(tcp_checksum(src, *dst.ip(), &s), 0);
        // ...and not between other addresses, or with a bit flipped.
        assert_ne!(tcp_checksum(Ipv4Addr::new(127, 0, 0, 2), *dst.ip(), &s), 0);
        let mut flipped = s;
        flipped[5] ^= 0x10;
        assert_ne!(tcp_checksum(src, *dst.ip(), &flipped), 0);
    }

    /// An IPv4 packet from `from` to 127.0.0.1:`to_port` with `options` bytes of IP options.
    fn packet(from: SocketAddrV4, to_port: u16, ack: u32, flags: u8, options: usize) -> Vec<u8> {
        let mut p = vec![0u8; 20 + options];
        p[0] = 0x40 | ((20 + options) / 4) as u8;
        p[9] = 6;
        p[12..16].copy_from_slice(&from.ip().octets());
        p[16..20].copy_from_slice(&[127, 0, 0, 1]);
        let mut tcp = [0u8; 20];
        tcp[0..2].copy_from_slice(&from.port().to_be_bytes());
        tcp[2..4].copy_from_slice(&to_port.to_be_bytes());
        tcp[8..12].copy_from_slice(&ack.to_be_bytes());
        tcp[12] = 5 << 4;
        tcp[13] = flags;
        p.extend_from_slice(&tcp);
        p
    }

    #[test]
    fn syn_acks_and_resets_are_told_apart_and_nothing_else_is_a_reply() {
        let from: SocketAddrV4 = "127.1.0.3:20001".parse().expect("addr");
        for options in [0, 4, 40] {
            let up = parse_reply(&packet(from, 40_000, 7, SYN | ACK, options)).expect("syn-ack");
            assert_eq!(
                up,
                Reply {
                    from,
                    to_port: 40_000,
                    ack: 7,
                    accepting: true
                }
            );
            let down = parse_reply(&packet(from, 40_000, 7, RST | ACK, options)).expect("rst");
            assert!(!down.accepting);
        }
        // ECN bits on a SYN-ACK do not matter.
        assert!(parse_reply(&packet(from, 1, 1, SYN | ACK | 0x40, 0)).is_some_and(|r| r.accepting));
        for flags in [ACK, SYN, RST, FIN | ACK, SYN | RST | ACK, SYN | ACK | FIN] {
            assert_eq!(
                parse_reply(&packet(from, 1, 1, flags, 0)),
                None,
                "{flags:#x}"
            );
        }
        let mut v6 = packet(from, 1, 1, SYN | ACK, 0);
        v6[0] = 0x65;
        assert_eq!(parse_reply(&v6), None);
        let mut udp = packet(from, 1, 1, SYN | ACK, 0);
        udp[9] = 17;
        assert_eq!(parse_reply(&udp), None);
    }

    #[test]
    fn truncated_or_lying_packets_are_not_replies_and_do_not_panic() {
        let from: SocketAddrV4 = "127.1.0.3:20001".parse().expect("addr");
        let whole = packet(from, 40_000, 7, SYN | ACK, 8);
        for n in 0..whole.len() {
            let expected = (n >= 28 + 14).then_some(());
            assert_eq!(parse_reply(&whole[..n]).map(|_| ()), expected, "{n} bytes");
        }
        // A header length beyond the packet, and one below the minimum.
        for ihl in [0x4f, 0x44] {
            let mut p = whole.clone();
            p[0] = ihl;
            assert_eq!(parse_reply(&p), None);
        }
    }
}

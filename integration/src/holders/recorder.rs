//! The netlink side of the recorder: per host, one thread reading address notifications and
//! one dumping the address table every few milliseconds.
//!
//! Both sockets are created inside the host's namespace (a socket keeps its namespace), then
//! each is driven from an ordinary thread of its own: one blocks in `recv` on the
//! notifications, the other sleeps until its next dump.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};
use socket2::SockRef;

use super::timeline::{Observation, Source};
use crate::error::{LabError, Result};
use crate::host::Host;

/// Receive buffer of the notification socket: a burst of address changes (a daemon flushing
/// many addresses) must not overflow it while the thread is dumping.
const RCVBUF: usize = 4 << 20;
/// A dump answer that does not complete in this long is abandoned (and retried next period).
/// Long: a dump waits while the kernel's RTNL lock is held (namespace churn of other labs can
/// hold it for hundreds of milliseconds), and a late answer is still a valid sample.
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);

/// What the threads share with the [`super::HolderRecorder`]. Observations go through a
/// channel, not a shared mutex: the recorder threads run `SCHED_FIFO`, and a lock held by a
/// normal-priority reader that a loaded machine preempts would stall them (priority inversion).
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Notifications the kernel dropped (`ENOBUFS`); the dumps still see the truth.
    pub(crate) overruns: AtomicU64,
    /// Dumps done, all hosts together.
    pub(crate) dumps: AtomicU64,
    /// The longest time between two dumps of one host, in microseconds.
    pub(crate) worst_dump_gap_us: AtomicU64,
}

/// One host's two sockets, made inside its namespace.
pub(crate) struct Sockets {
    pub(crate) events: Socket,
    pub(crate) dumps: Socket,
}

impl Sockets {
    /// Opens both sockets inside `host`; the notification socket is subscribed before the
    /// first dump, so no change can fall between the two.
    pub(crate) fn open(host: &Host) -> Result<Self> {
        let netns = host.netns().to_owned();
        let err = move |what: &'static str| {
            let netns = netns.clone();
            move |source: std::io::Error| LabError::Netns {
                netns,
                what,
                source,
            }
        };
        host.enter(|| -> std::io::Result<Self> {
            let mut events = Socket::new(NETLINK_ROUTE)?;
            let groups = (libc::RTMGRP_IPV4_IFADDR | libc::RTMGRP_IPV6_IFADDR) as u32;
            events.bind(&SocketAddr::new(0, groups))?;
            SockRef::from(&events).set_recv_buffer_size(RCVBUF)?;
            let mut dumps = Socket::new(NETLINK_ROUTE)?;
            dumps.bind_auto()?;
            SockRef::from(&dumps).set_read_timeout(Some(DUMP_TIMEOUT))?;
            Ok(Self { events, dumps })
        })?
        .map_err(err("open route netlink sockets"))
    }
}

/// How often the notification thread wakes up without a notification, to see `stop`.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// What a host's two threads need besides their socket.
pub(crate) struct Watch {
    /// The host's index.
    pub(crate) host: usize,
    /// The address watched.
    pub(crate) vip: IpAddr,
    /// Time zero of every observation.
    pub(crate) epoch: Instant,
    /// Set to end the threads.
    pub(crate) stop: Arc<AtomicBool>,
    /// Counters.
    pub(crate) shared: Arc<Shared>,
    /// Where observations go.
    pub(crate) out: Sender<Observation>,
}

/// The notification thread of one host; returns when `stop` is set.
pub(crate) fn watch_events(socket: &Socket, watch: &Watch) -> std::io::Result<()> {
    let Watch {
        host,
        vip,
        epoch,
        stop,
        shared,
        out,
    } = watch;
    let (host, vip) = (*host, *vip);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut held_on: Vec<u32> = Vec::new();
    SockRef::from(socket).set_read_timeout(Some(STOP_CHECK))?;
    realtime();
    while !stop.load(Ordering::Relaxed) {
        buf.clear();
        match socket.recv(&mut buf, 0) {
            Ok(_) => {
                let at = epoch.elapsed();
                for (message, added) in address_messages(&buf) {
                    if !matches_vip(&message, vip) {
                        continue;
                    }
                    let index = message.header.index;
                    // The kernel only deletes an address that exists: a deletion on an
                    // interface not seen yet means the VIP was held there since before the
                    // recording started (its initial state comes from the first dump).
                    if !added && !held_on.contains(&index) {
                        held_on.push(index);
                    }
                    let before = !held_on.is_empty();
                    if added {
                        if !held_on.contains(&index) {
                            held_on.push(index);
                        }
                    } else {
                        held_on.retain(|&i| i != index);
                    }
                    let after = !held_on.is_empty();
                    // Lifetime refreshes are RTM_NEWADDR too; only changes are observations.
                    if before != after {
                        let _ = out.send(Observation {
                            at,
                            host,
                            held: after,
                            source: Source::Event,
                        });
                    }
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock
                        | std::io::ErrorKind::TimedOut
                        | std::io::ErrorKind::Interrupted
                ) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                shared.overruns.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The dump thread of one host: a dump every `period` (sleeping in between, which uses a
/// high-resolution timer, unlike a socket timeout); returns when `stop` is set.
pub(crate) fn watch_dumps(socket: &Socket, period: Duration, watch: &Watch) -> std::io::Result<()> {
    let Watch {
        host,
        vip,
        epoch,
        stop,
        shared,
        out,
    } = watch;
    let (host, vip) = (*host, *vip);
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut last_dump: Option<Instant> = None;
    let mut seq = 0u32;
    realtime();
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
            continue;
        }
        next = (next + period).max(now);
        seq = seq.wrapping_add(1);
        let Some(held) = dump(socket, seq, vip, &mut buf)? else {
            continue;
        };
        let until = epoch.elapsed();
        let _ = out.send(Observation {
            at: now.duration_since(*epoch),
            host,
            held,
            source: Source::Dump { until },
        });
        shared.dumps.fetch_add(1, Ordering::Relaxed);
        if let Some(last) = last_dump {
            let gap = now.duration_since(last).as_micros() as u64;
            shared.worst_dump_gap_us.fetch_max(gap, Ordering::Relaxed);
        }
        last_dump = Some(now);
    }
    Ok(())
}

/// Moves the calling thread to `SCHED_FIFO` (through `chrt`, no `unsafe` here), so that on a
/// loaded machine its dumps stay on time and notifications are read at once. It sleeps in
/// `recv` between dumps and does microseconds of work per dump, so it cannot starve anything.
/// Best effort: without the privilege it just runs at normal priority.
fn realtime() {
    let tid = nix::unistd::gettid().to_string();
    let _ = std::process::Command::new("chrt")
        .args(["-f", "-p", "10", &tid])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
}

/// Asks for every address and reports whether `vip` is among them; `None` when the answer
/// did not complete in time (the next period retries).
fn dump(
    socket: &Socket,
    seq: u32,
    vip: IpAddr,
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    header.sequence_number = seq;
    let mut request = NetlinkMessage::new(
        header,
        NetlinkPayload::InnerMessage(RouteNetlinkMessage::GetAddress(AddressMessage::default())),
    );
    request.finalize();
    let mut bytes = vec![0u8; request.buffer_len()];
    request.serialize(&mut bytes);
    socket.send(&bytes, 0)?;
    let mut held = false;
    loop {
        buf.clear();
        match socket.recv(buf, 0) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(None);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        for message in messages(buf) {
            if message.header.sequence_number != seq {
                // The tail of an abandoned earlier dump.
                continue;
            }
            match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => {
                    held |= matches_vip(&m, vip);
                }
                NetlinkPayload::Done(_) => return Ok(Some(held)),
                NetlinkPayload::Error(e) => return Err(e.to_io()),
                _ => {}
            }
        }
    }
}

/// Every netlink message in one datagram (a dump packs several); undecodable ones are skipped.
fn messages(buf: &[u8]) -> Vec<NetlinkMessage<RouteNetlinkMessage>> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + 16 <= buf.len() {
        let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&buf[offset..]) else {
            break;
        };
        let len = message.header.length as usize;
        if len < 16 {
            break;
        }
        out.push(message);
        // Messages are 4-byte aligned inside a datagram.
        offset += (len + 3) & !3;
    }
    out
}

/// The address notifications of a datagram: (message, true for added).
fn address_messages(buf: &[u8]) -> Vec<(AddressMessage, bool)> {
    messages(buf)
        .into_iter()
        .filter_map(|m| match m.payload {
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => Some((a, true)),
            NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => Some((a, false)),
            _ => None,
        })
        .collect()
}

/// Whether an address message is about `vip` (IPv4 names it in `IFA_LOCAL`, IPv6 in
/// `IFA_ADDRESS`; either counts).
fn matches_vip(message: &AddressMessage, vip: IpAddr) -> bool {
    message.attributes.iter().any(|a| match a {
        AddressAttribute::Local(addr) | AddressAttribute::Address(addr) => *addr == vip,
        _ => false,
    })
}

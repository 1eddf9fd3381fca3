//! The master's VRRP adverts as the client sees them, so that a run's fault lands at a chosen
//! point of the master's own advert cycle.
//!
//! Timing the fault from when the harness *noticed* the master serving (its polls take tens of
//! milliseconds, more under load) puts it anywhere up to that much later in the cycle than
//! planned: a kill planned 975 ms after an advert at 1 s adverts then lands just *after* the
//! next advert, and the backup detects the crash a whole interval later than the run's phase
//! says. Measured on the fenced series, where noticing takes longest: 3.5–3.6 s outages for
//! runs planned at 2.6–2.8 s, with the claim itself taking 10–20 ms. Timing from an advert
//! the client received (the bridge floods 224.0.0.18 to every port, so the backup received it
//! within microseconds too) removes that error for every implementation alike.

use std::io::{self, IoSliceMut};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use nix::errno::Errno;
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeSpec;
use socket2::{Domain, Protocol, Socket, Type};
use vigil_integration::Host;

/// IP protocol number of VRRP (RFC 9568 section 5.1.1.4).
const VRRP_PROTOCOL: i32 = 112;
/// Where VRRP over IPv4 is sent.
const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// VRRP packet type: advertisement (the only one).
const ADVERTISEMENT: u8 = 1;

/// A raw socket on one lab host receiving every VRRP packet on its link, each with the
/// kernel's receive time (so a harness thread that runs late still knows when an advert came).
#[derive(Debug)]
pub struct Adverts {
    socket: Socket,
}

/// How a wait for a fault's moment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// The moment came, no advert meanwhile, and the harness woke within the tolerance.
    OnTime,
    /// The harness woke later than the tolerance allows.
    Late,
    /// An advert came meanwhile (the newest arrived then): the moment is in the next cycle.
    Advert(Instant),
}

impl Adverts {
    /// Starts receiving VRRP adverts on `host` (its lab interface joins 224.0.0.18).
    pub fn listen(host: &Host) -> anyhow::Result<Adverts> {
        let local = host.ipv4();
        let socket = host
            .enter(|| -> io::Result<Socket> {
                let socket =
                    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(VRRP_PROTOCOL)))?;
                socket.join_multicast_v4(&VRRP_GROUP, &local)?;
                setsockopt(&socket, sockopt::ReceiveTimestampns, &true)?;
                Ok(socket)
            })?
            .with_context(|| format!("VRRP listener on {}", host.name()))?;
        Ok(Adverts { socket })
    }

    /// When the next advert from `from` arrived, waiting at most `limit`; adverts queued
    /// before this call do not count.
    pub fn next_from(&self, from: Ipv4Addr, limit: Duration) -> io::Result<Option<Instant>> {
        while self.receive(MsgFlags::MSG_DONTWAIT)?.is_some() {}
        self.next_before(from, Instant::now() + limit)
    }

    /// Waits until `deadline`, the moment of a fault planned after an advert from `from`: says
    /// whether it came as planned, or the harness woke more than `tolerance` late, or `from`
    /// advertised again meanwhile.
    pub fn wait_until(
        &self,
        from: Ipv4Addr,
        deadline: Instant,
        tolerance: Duration,
    ) -> io::Result<Wait> {
        let mut newest = self.next_before(from, deadline)?;
        let woke = Instant::now();
        // What arrived while this thread waited for a CPU.
        while let Some((source, at)) = self.receive(MsgFlags::MSG_DONTWAIT)? {
            if source == Some(from) {
                newest = newest.max(Some(at));
            }
        }
        Ok(match newest {
            Some(at) => Wait::Advert(at),
            None if woke.saturating_duration_since(deadline) > tolerance => Wait::Late,
            None => Wait::OnTime,
        })
    }

    /// When the first advert from `from` before `deadline` arrived, if one did.
    fn next_before(&self, from: Ipv4Addr, deadline: Instant) -> io::Result<Option<Instant>> {
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Ok(None);
            };
            self.socket.set_read_timeout(Some(left))?;
            if let Some((Some(source), at)) = self.receive(MsgFlags::empty())?
                && source == from
            {
                return Ok(Some(at));
            }
        }
    }

    /// One packet: the advert's sender (`None`: not an advert) and when it arrived; `None`
    /// when nothing came (the read timeout, a signal, or nothing queued with `MSG_DONTWAIT`).
    fn receive(&self, flags: MsgFlags) -> io::Result<Option<(Option<Ipv4Addr>, Instant)>> {
        let mut buf = [0u8; 1500];
        let (len, stamp) = {
            let mut iov = [IoSliceMut::new(&mut buf)];
            let mut control = nix::cmsg_space!(TimeSpec);
            let msg =
                match recvmsg::<()>(self.socket.as_raw_fd(), &mut iov, Some(&mut control), flags) {
                    Ok(msg) => msg,
                    Err(Errno::EAGAIN | Errno::EINTR) => return Ok(None),
                    Err(e) => return Err(e.into()),
                };
            let stamp = msg.cmsgs().ok().and_then(|mut cmsgs| {
                cmsgs.find_map(|c| match c {
                    ControlMessageOwned::ScmTimestampns(ts) => Some(ts),
                    _ => None,
                })
            });
            (msg.bytes, stamp)
        };
        let arrived = arrival(stamp, Instant::now(), SystemTime::now());
        Ok(Some((buf.get(..len).and_then(advert_source), arrived)))
    }
}

/// The monotonic instant of a kernel receive time `stamp` (wall clock), given the clocks read
/// together just now; `now` when there is no stamp or it is in the future.
fn arrival(stamp: Option<TimeSpec>, now: Instant, wall: SystemTime) -> Instant {
    stamp
        .and_then(|ts| {
            let secs = u64::try_from(ts.tv_sec()).ok()?;
            let nanos = u32::try_from(ts.tv_nsec()).ok()?;
            let ago = wall
                .duration_since(UNIX_EPOCH + Duration::new(secs, nanos))
                .ok()?;
            now.checked_sub(ago)
        })
        .unwrap_or(now)
}

/// The sender of `packet` (an IPv4 datagram as a raw socket returns it, header included) if it
/// is a VRRP advertisement of a live router: priority 0, a master stepping down, is not a tick
/// of its advert timer.
fn advert_source(packet: &[u8]) -> Option<Ipv4Addr> {
    let (&version_ihl, _) = packet.split_first()?;
    let header_len = usize::from(version_ihl & 0x0f) * 4;
    if version_ihl >> 4 != 4 || header_len < 20 || *packet.get(9)? != 112 {
        return None;
    }
    let source: [u8; 4] = packet.get(12..16)?.try_into().ok()?;
    let vrrp = packet.get(header_len..)?;
    let (&version_type, rest) = vrrp.split_first()?;
    let priority = *rest.get(1)?;
    (matches!(version_type >> 4, 2 | 3) && version_type & 0x0f == ADVERTISEMENT && priority != 0)
        .then_some(Ipv4Addr::from(source))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 header (20 bytes, protocol `proto`, from 10.0.0.1) and a VRRP header.
    fn packet(proto: u8, version_type: u8, priority: u8) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 40, 0, 0, 0, 0, 255, proto, 0, 0];
        p.extend([10, 0, 0, 1, 224, 0, 0, 18]);
        p.extend([version_type, 51, priority, 1, 0, 100, 0, 0, 10, 0, 0, 100]);
        p
    }

    /// A VRRPv3 advert for virtual router 51 at priority 150 (the kernel adds the IP header).
    const ADVERT: [u8; 12] = [0x31, 51, 150, 1, 0, 100, 0, 0, 10, 0, 0, 100];
    const EVERY: Duration = Duration::from_millis(100);

    /// Sends `count` adverts from `host`, one every [`EVERY`].
    fn advertise(host: &Host, count: u32) -> std::thread::JoinHandle<()> {
        let local = host.ipv4();
        let socket = host
            .enter(|| -> io::Result<Socket> {
                let socket =
                    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(VRRP_PROTOCOL)))?;
                socket.set_multicast_if_v4(&local)?;
                socket.set_multicast_ttl_v4(255)?;
                Ok(socket)
            })
            .expect("netns")
            .expect("sender socket");
        let group = std::net::SocketAddr::from((VRRP_GROUP, 0)).into();
        std::thread::spawn(move || {
            for _ in 0..count {
                socket.send_to(&ADVERT, &group).expect("send advert");
                std::thread::sleep(EVERY);
            }
        })
    }

    /// A lab of two hosts on one bridge: one advertising every 100 ms, the client listening.
    /// The client learns each advert's arrival, a wait for a moment inside the cycle never
    /// reports an advert, and a wait past the next advert reports that one, a cycle later.
    #[test]
    fn the_client_times_a_moment_in_the_advert_cycle() {
        if !vigil_integration::root_available("VRRP advert listener") {
            return;
        }
        let lab = vigil_integration::Lab::with_hosts(&["lb1", "client"]).expect("lab");
        let (lb1, client) = (
            lab.host("lb1").expect("lb1"),
            lab.host("client").expect("client"),
        );
        let adverts = Adverts::listen(&client).expect("listener");
        let sender = advertise(&lb1, 15);
        let from = lb1.ipv4();
        let first = adverts
            .next_from(from, Duration::from_secs(2))
            .expect("receive")
            .expect("an advert within 2 s");
        // Half a cycle on: the next advert is still 50 ms away, so whether the wake-up was on
        // time or late on a loaded machine, no advert can have come.
        let half = adverts
            .wait_until(from, first + EVERY / 2, Duration::from_millis(20))
            .expect("wait");
        assert!(!matches!(half, Wait::Advert(_)), "{half:?}");
        // Past the next advert (or two, if the sender ran late): reported with its own arrival.
        let next = adverts
            .next_from(from, Duration::from_secs(2))
            .expect("receive")
            .expect("an advert");
        match adverts
            .wait_until(from, next + EVERY * 5 / 2, Duration::from_millis(20))
            .expect("wait")
        {
            Wait::Advert(at) => {
                let gap = at.duration_since(next);
                assert!(
                    gap >= Duration::from_millis(95) && gap < EVERY * 5 / 2,
                    "{gap:?}"
                );
            }
            other => panic!("the advert a cycle later went unnoticed: {other:?}"),
        }
        // Another host's adverts do not count.
        assert_eq!(
            adverts
                .next_from(Ipv4Addr::new(10, 0, 0, 250), EVERY * 3)
                .expect("receive"),
            None
        );
        sender.join().expect("sender");
    }

    #[test]
    fn arrivals_are_placed_on_the_monotonic_clock_by_the_kernel_stamp() {
        let now = Instant::now();
        let wall = UNIX_EPOCH + Duration::new(1_000, 500_000_000);
        // Received 30 ms before the harness read it.
        let stamp = TimeSpec::new(1_000, 470_000_000);
        assert_eq!(
            Some(arrival(Some(stamp), now, wall)),
            now.checked_sub(Duration::from_millis(30))
        );
        // No stamp, or one from the future (the wall clock stepped back): the read time.
        assert_eq!(arrival(None, now, wall), now);
        assert_eq!(arrival(Some(TimeSpec::new(1_001, 0)), now, wall), now);
        assert_eq!(arrival(Some(TimeSpec::new(-1, 0)), now, wall), now);
    }

    #[test]
    fn only_adverts_of_live_routers_count() {
        let lb1 = Some(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(advert_source(&packet(112, 0x31, 150)), lb1);
        assert_eq!(advert_source(&packet(112, 0x21, 100)), lb1);
        // Priority 0: the master is stepping down, not ticking.
        assert_eq!(advert_source(&packet(112, 0x31, 0)), None);
        // Not VRRP, not an advertisement, an unknown version.
        assert_eq!(advert_source(&packet(17, 0x31, 150)), None);
        assert_eq!(advert_source(&packet(112, 0x32, 150)), None);
        assert_eq!(advert_source(&packet(112, 0x41, 150)), None);
        // Truncated anywhere: never a panic.
        let full = packet(112, 0x31, 150);
        for len in 0..22 {
            assert_eq!(advert_source(&full[..len]), None, "{len} bytes");
        }
        // IP options move the VRRP header.
        let mut with_options = packet(112, 0x31, 150);
        with_options[0] = 0x46;
        with_options.splice(20..20, [1, 1, 1, 0]);
        assert_eq!(advert_source(&with_options), lb1);
    }
}

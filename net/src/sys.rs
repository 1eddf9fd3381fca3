//! The one place this crate needs `unsafe`: building a `sockaddr_ll` for `AF_PACKET`,
//! registering a socket with tokio, real-time scheduling for the VRRP threads and its
//! `RLIMIT_RTTIME` safeguard (no safe wrapper of `sched_setscheduler` exists in nix, and its
//! `resource` feature is off), and glibc's `mallopt` for the daemon's
//! allocator settings ([`tune_malloc`]; the workspace's only `unsafe` lives here).
//!
//! Neither socket2 nor nix can construct a link-layer socket address safely (nix's `LinkAddr`
//! has no public constructor), and sending a raw Ethernet frame needs one to name the outgoing
//! interface. socket2 sets `IP_MULTICAST_IF` only by address, which fails when the configured
//! source is not (yet) an address of the interface; the `ip_mreqn` form names the interface by
//! index. Tokio's `AsyncFd::register` is `unsafe` since tokio 1.54 (the safe constructor is
//! deprecated as unsound). Everything else in the crate goes through safe socket2/nix wrappers.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use socket2::{SockAddr, SockAddrStorage, Socket};
use tokio::io::unix::AsyncFd;

/// Registers `socket` with the current tokio runtime's reactor; the caller has checked that
/// there is one ([`crate::netlink::require_runtime`]), as registering would panic otherwise.
pub(crate) fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: a `socket2::Socket` owns its descriptor: it stays open, and `as_raw_fd` returns
    // the same descriptor, until the `Socket` is dropped, and after this call only the
    // `AsyncFd` can drop it (or hand it back with `into_inner`).
    unsafe { AsyncFd::register(socket) }.map_err(io::Error::from)
}

/// The `AF_PACKET` address of interface `ifindex` for frames of EtherType `protocol`, addressed to
/// `dest` (used by the kernel only for `SOCK_DGRAM`; a `SOCK_RAW` frame carries its own header).
pub(crate) fn packet_addr(ifindex: u32, protocol: u16, dest: [u8; 6]) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `SockAddrStorage` is a `sockaddr_storage`, which is larger than and at least as
    // aligned as `sockaddr_ll` (both plain C structs of integers, valid when zeroed), so viewing
    // it as one is sound; the view ends before `storage` is moved below.
    let ll = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    ll.sll_family = libc::AF_PACKET as libc::sa_family_t;
    ll.sll_protocol = protocol.to_be();
    ll.sll_ifindex = ifindex as libc::c_int;
    ll.sll_halen = 6;
    ll.sll_addr[..6].copy_from_slice(&dest);
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the storage holds an initialised `sockaddr_ll` of family AF_PACKET and `len` is its
    // exact size, which is what `SockAddr::new` requires.
    unsafe { SockAddr::new(storage, len) }
}

/// `IP_MULTICAST_IF` with an `ip_mreqn` naming interface `ifindex`.
pub(crate) fn set_multicast_if_index_v4(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let request = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: ifindex as libc::c_int,
    };
    // SAFETY: the pointer and length describe `request`, a live, initialised `ip_mreqn`, which
    // is a form of the option value Linux accepts for IP_MULTICAST_IF (ip(7)); the kernel only
    // reads it during the call, and the descriptor is open for as long as `socket` is borrowed.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            std::ptr::from_ref(&request).cast(),
            std::mem::size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Puts the calling thread under `SCHED_RR` at `priority` (1..=99), with
/// `SCHED_RESET_ON_FORK` so that the processes it starts (notify and track scripts) run with
/// normal scheduling. Needs `CAP_SYS_NICE` (or an `RLIMIT_RTPRIO` that allows it).
pub fn set_thread_realtime(priority: u8) -> io::Result<()> {
    if !(1..=99).contains(&priority) {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let param = libc::sched_param {
        sched_priority: libc::c_int::from(priority),
    };
    // SAFETY: `param` is a live, initialised `sched_param` the kernel only reads during the
    // call; pid 0 names the calling thread (sched_setscheduler(2) acts per thread on Linux).
    let rc = unsafe {
        libc::sched_setscheduler(
            0,
            libc::SCHED_RR | libc::SCHED_RESET_ON_FORK,
            &raw const param,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling process's `RLIMIT_RTTIME` (soft, hard) in microseconds; `None` is unlimited.
pub fn rttime_limit() -> io::Result<(Option<u64>, Option<u64>)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a live `rlimit` the kernel writes during the call only.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_RTTIME, &raw mut limit) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let finite = |v: libc::rlim_t| (v != libc::RLIM_INFINITY).then_some(v);
    Ok((finite(limit.rlim_cur), finite(limit.rlim_max)))
}

/// Sets the process's `RLIMIT_RTTIME`, soft and hard, to `micros`: a real-time thread that runs
/// that long without blocking gets the process killed (`SIGKILL`, as the hard limit is reached
/// before any `SIGXCPU` could be handled). Lowering needs no privilege; raising the hard limit
/// needs `CAP_SYS_RESOURCE`, and a seccomp filter without `setrlimit` (systemd's `@resources`)
/// refuses either with `EPERM`.
pub fn set_rttime_limit(micros: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: micros,
        rlim_max: micros,
    };
    // SAFETY: `limit` is a live, initialised `rlimit` the kernel only reads during the call.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_RTTIME, &raw const limit) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// glibc `malloc` settings for a long-running daemon: at what size a request is served by its
/// own `mmap` (and given back to the kernel the moment it is freed), and how much free memory at
/// the top of a heap is kept rather than returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MallocTuning {
    /// `M_MMAP_THRESHOLD`, in bytes (at most 32 MiB on 64-bit glibc).
    pub mmap_threshold: usize,
    /// `M_TRIM_THRESHOLD`, in bytes.
    pub trim_threshold: usize,
    /// `M_ARENA_MAX`: most allocator arenas (glibc's default is eight per core); `None` keeps
    /// the default.
    pub arena_max: Option<usize>,
}

/// Applies `tuning` to glibc's allocator; call it before the process starts threads.
///
/// Setting either threshold explicitly also turns off glibc's dynamic thresholds, which is
/// the point: without it, freeing one large block (the config parser's buffer) raises both
/// thresholds to that block's size for the rest of the process, after which freed memory stays
/// resident in the arenas. Fails with `Unsupported` on other C libraries, and with
/// `InvalidInput` for a value beyond a C `int` or one glibc refuses; settings before the
/// refused one are in effect.
pub fn tune_malloc(tuning: MallocTuning) -> io::Result<()> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let settings = [
            (libc::M_MMAP_THRESHOLD, Some(tuning.mmap_threshold)),
            (libc::M_TRIM_THRESHOLD, Some(tuning.trim_threshold)),
            (libc::M_ARENA_MAX, tuning.arena_max),
        ];
        for (param, value) in settings {
            let Some(value) = value else { continue };
            let value = libc::c_int::try_from(value)
                .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
            // SAFETY: mallopt only updates glibc's allocator parameters, under the allocator's
            // own lock; any parameter/value pair is memory-safe (bad ones make it return 0).
            if unsafe { libc::mallopt(param, value) } != 1 {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            }
        }
        Ok(())
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        let _ = tuning;
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malloc_tuning_takes_effect_and_values_beyond_c_int_are_refused() {
        let tuning = MallocTuning {
            mmap_threshold: 128 * 1024,
            trim_threshold: 128 * 1024,
            arena_max: None,
        };
        tune_malloc(tuning).expect("glibc accepts the daemon's settings");
        // Refused before glibc is asked (which range it accepts depends on its version).
        let overflow = MallocTuning {
            trim_threshold: usize::MAX,
            ..tuning
        };
        assert_eq!(
            tune_malloc(overflow).unwrap_err().kind(),
            io::ErrorKind::InvalidInput
        );
        // With glibc's dynamic threshold, freeing this mmap-served block would raise the
        // threshold to its size, and the next large block would come from a heap arena.
        drop(vec![1u8; 20 << 20]);
        let block = vec![1u8; (8 << 20) + 1];
        // SAFETY: `block`'s buffer is a live allocation of the system allocator (glibc
        // malloc: its alignment is 1), which malloc_usable_size only reads the header of.
        let usable = unsafe { libc::malloc_usable_size(block.as_ptr().cast_mut().cast()) };
        // An mmap-served chunk is rounded up to whole pages; a heap chunk to 16 bytes.
        assert!(
            usable - block.len() >= 1024,
            "an 8 MiB block after a freed 20 MiB one came from a heap: {usable} usable bytes"
        );
    }

    #[test]
    fn the_rttime_limit_reads_back_as_set() {
        // Process-wide: 5 s cannot disturb the other tests of this binary (the real-time one
        // blocks within milliseconds). Lowering needs no privilege.
        set_rttime_limit(5_000_000).unwrap();
        assert_eq!(rttime_limit().unwrap(), (Some(5_000_000), Some(5_000_000)));
    }

    #[test]
    fn realtime_priorities_outside_1_to_99_are_refused_before_the_kernel() {
        for bad in [0, 100] {
            let e = set_thread_realtime(bad).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn a_thread_can_be_made_realtime_and_its_children_are_not() {
        // Root (CAP_SYS_NICE) is needed; without it the kernel refuses with EPERM.
        let outcome = std::thread::spawn(|| {
            set_thread_realtime(10)?;
            // SAFETY: sched_getscheduler only reads the calling thread's policy.
            let policy = unsafe { libc::sched_getscheduler(0) };
            let child = std::process::Command::new("cat")
                .arg("/proc/self/sched")
                .output()?;
            Ok::<_, io::Error>((policy, String::from_utf8_lossy(&child.stdout).into_owned()))
        })
        .join()
        .unwrap();
        match outcome {
            Ok((policy, child)) => {
                assert_eq!(policy & !libc::SCHED_RESET_ON_FORK, libc::SCHED_RR);
                let child_policy = child
                    .lines()
                    .find(|l| l.starts_with("policy"))
                    .and_then(|l| l.split(':').nth(1))
                    .map(str::trim)
                    .unwrap_or_default()
                    .to_owned();
                assert_eq!(
                    child_policy, "0",
                    "a script must not inherit SCHED_RR:\n{child}"
                );
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EPERM), "{e}"),
        }
    }

    #[test]
    fn multicast_interface_by_index_is_accepted_and_a_bad_index_refused() {
        let socket = Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        set_multicast_if_index_v4(&socket, lo).unwrap();
        assert!(set_multicast_if_index_v4(&socket, 0x7fff_fff0).is_err());
    }

    #[test]
    fn packet_addr_is_af_packet_of_sockaddr_ll_size() {
        let addr = packet_addr(7, 0x0806, [0xff; 6]);
        assert_eq!(i32::from(addr.family()), libc::AF_PACKET);
        assert_eq!(
            addr.len() as usize,
            std::mem::size_of::<libc::sockaddr_ll>()
        );
    }
}

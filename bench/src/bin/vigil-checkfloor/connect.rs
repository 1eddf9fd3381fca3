//! Full-connection checks in plain Rust, no async runtime: `connect` (vigild's TCP check) and
//! `http` (a GET that judges the status line). Both close with a reset, as vigild's TCP check
//! does.
//!
//! Per `connect` check the system calls are the least a full connect needs: `socket` (with
//! `SOCK_NONBLOCK | SOCK_CLOEXEC`), `setsockopt(SO_LINGER)`, `connect`, `epoll_ctl(ADD)` (mio
//! registers edge-triggered; `close` removes the descriptor from the epoll set), a share of one
//! `epoll_wait` per millisecond, `getsockopt(SO_ERROR)` and `close`. `http` adds one `send` and
//! one `recv`.

use std::collections::VecDeque;
use std::io::{self, Read as _};
use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Interest, Poll, Token};
use nix::errno::Errno;
use socket2::{Domain, SockAddr, Socket, Type};

use crate::drive::{Prober, Tally};

/// Enough for `HTTP/1.x NNN` and the rest of a short status line.
const STATUS_BUF: usize = 128;

/// Checks by TCP connect or HTTP GET; see the module docs.
pub(crate) struct Connector {
    targets: Vec<SockAddr>,
    /// One prepared request per target (`http`), or none (`connect`).
    requests: Option<Vec<Vec<u8>>>,
    timeout: Duration,
    /// Checks in flight, indexed by their epoll token.
    slots: Vec<Option<Conn>>,
    free: Vec<usize>,
    /// (deadline, slot, check id) in start order, which with one timeout is deadline order.
    deadlines: VecDeque<(Instant, usize, u64)>,
    next_id: u64,
}

struct Conn {
    /// Closed (with a reset: linger 0) when the check ends and its slot is cleared.
    socket: Socket,
    /// Index of the server in the fleet.
    target: usize,
    id: u64,
    stage: Stage,
}

enum Stage {
    Connecting,
    /// `http`: the request is sent; the status line is read into `buf`.
    Reading {
        buf: [u8; STATUS_BUF],
        len: usize,
    },
}

impl Connector {
    /// TCP connect checks of `targets`.
    pub(crate) fn tcp(targets: &[SocketAddr], timeout: Duration) -> Self {
        Self::new(targets, None, timeout)
    }

    /// HTTP/1.0 `GET path` checks of `targets`; a `200` is up.
    pub(crate) fn http(targets: &[SocketAddr], path: &str, timeout: Duration) -> Self {
        // Prepared once: the floor is the kernel's cost, not formatting.
        let requests = targets
            .iter()
            .map(|t| format!("GET {path} HTTP/1.0\r\nHost: {t}\r\n\r\n").into_bytes())
            .collect();
        Self::new(targets, Some(requests), timeout)
    }

    fn new(targets: &[SocketAddr], requests: Option<Vec<Vec<u8>>>, timeout: Duration) -> Self {
        Self {
            targets: targets.iter().map(|&t| SockAddr::from(t)).collect(),
            requests,
            timeout,
            slots: Vec::new(),
            free: Vec::new(),
            deadlines: VecDeque::new(),
            next_id: 0,
        }
    }

    fn end(&mut self, slot: usize, up: bool, tally: &mut Tally) {
        self.slots[slot] = None;
        self.free.push(slot);
        if up {
            tally.up += 1;
        } else {
            tally.down += 1;
        }
    }
}

impl Prober for Connector {
    fn start(
        &mut self,
        poll: &Poll,
        target: usize,
        now: Instant,
        tally: &mut Tally,
    ) -> anyhow::Result<()> {
        let addr = &self.targets[target];
        let domain = Domain::for_address(addr.as_socket().context("an IP target")?);
        let socket = Socket::new(domain, Type::STREAM.nonblocking(), None).context("socket")?;
        socket
            .set_linger(Some(Duration::ZERO))
            .context("SO_LINGER")?;
        match socket.connect(addr) {
            // Over loopback the handshake is usually complete when `connect` returns, but a
            // non-blocking connect still says EINPROGRESS; epoll reports it writable at once.
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(Errno::EINPROGRESS as i32) => {}
            Err(_) => {
                tally.down += 1;
                return Ok(());
            }
        }
        let interest = if self.requests.is_some() {
            Interest::WRITABLE | Interest::READABLE
        } else {
            Interest::WRITABLE
        };
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        poll.registry()
            .register(&mut SourceFd(&socket.as_raw_fd()), Token(slot), interest)
            .context("epoll_ctl")?;
        let id = self.next_id;
        self.next_id += 1;
        self.slots[slot] = Some(Conn {
            socket,
            target,
            id,
            stage: Stage::Connecting,
        });
        self.deadlines.push_back((now + self.timeout, slot, id));
        Ok(())
    }

    fn ready(&mut self, event: &Event, tally: &mut Tally) -> anyhow::Result<()> {
        let slot = event.token().0;
        let Some(conn) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
            return Ok(());
        };
        let verdict = match conn.stage {
            Stage::Connecting => match conn.socket.take_error() {
                Ok(None) if event.is_writable() => match &self.requests {
                    None => Some(true),
                    Some(requests) => {
                        let request = &requests[conn.target];
                        send_request(conn, request)
                    }
                },
                // Not connected yet (a spurious wake-up): wait for the next edge.
                Ok(None) => None,
                Ok(Some(_)) | Err(_) => Some(false),
            },
            Stage::Reading {
                ref mut buf,
                ref mut len,
            } => read_status(&conn.socket, buf, len),
        };
        if let Some(up) = verdict {
            self.end(slot, up, tally);
        }
        Ok(())
    }

    fn expire(&mut self, now: Instant, tally: &mut Tally) {
        while let Some(&(deadline, slot, id)) = self.deadlines.front() {
            if deadline > now {
                break;
            }
            self.deadlines.pop_front();
            if self.slots[slot].as_ref().is_some_and(|c| c.id == id) {
                self.slots[slot] = None;
                self.free.push(slot);
                tally.timed_out += 1;
            }
        }
    }
}

/// Sends `request` on `conn`, just connected; `None` while the answer is awaited.
fn send_request(conn: &mut Conn, request: &[u8]) -> Option<bool> {
    // Over a fresh connection a short request fits the send buffer whole.
    match conn.socket.send(request) {
        Ok(n) if n == request.len() => {
            conn.stage = Stage::Reading {
                buf: [0; STATUS_BUF],
                len: 0,
            };
            None
        }
        _ => Some(false),
    }
}

/// Reads what has arrived of the response; `Some` once the status line can be judged.
fn read_status(socket: &Socket, buf: &mut [u8; STATUS_BUF], len: &mut usize) -> Option<bool> {
    // Edge-triggered: read until the verdict or until nothing more is there.
    loop {
        match (&*socket).read(&mut buf[*len..]) {
            Ok(0) => return Some(false),
            Ok(n) => {
                *len += n;
                match status(&buf[..*len]) {
                    Status::Code(code) => return Some(code == 200),
                    Status::Invalid => return Some(false),
                    Status::Incomplete if *len == buf.len() => return Some(false),
                    Status::Incomplete => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return None,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Some(false),
        }
    }
}

/// What the start of a response says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Too little has arrived to tell.
    Incomplete,
    /// `HTTP/1.x NNN`.
    Code(u16),
    /// Not an HTTP/1.x status line.
    Invalid,
}

/// Judges the start of a response: `HTTP/1.x NNN` is all a status check needs.
fn status(head: &[u8]) -> Status {
    const PREFIX: &[u8] = b"HTTP/1.";
    let n = head.len().min(PREFIX.len());
    if head[..n] != PREFIX[..n] {
        return Status::Invalid;
    }
    let Some(line) = head.get(..12) else {
        return Status::Incomplete;
    };
    let code = &line[9..12];
    if line[8] != b' ' || !code.iter().all(u8::is_ascii_digit) {
        return Status::Invalid;
    }
    Status::Code(code.iter().fold(0, |n, d| n * 10 + u16::from(d - b'0')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_line_is_judged_as_soon_as_its_code_is_in() {
        assert_eq!(status(b""), Status::Incomplete);
        assert_eq!(status(b"HTTP/1.1 20"), Status::Incomplete);
        assert_eq!(status(b"HTTP/1.1 200"), Status::Code(200));
        assert_eq!(
            status(b"HTTP/1.0 503 Service Unavailable\r\n"),
            Status::Code(503)
        );
        assert_eq!(status(b"HTTX"), Status::Invalid);
        assert_eq!(status(b"HTTP/2 200 OK\r\n"), Status::Invalid);
        assert_eq!(status(b"HTTP/1.1 2x0 OK\r\n"), Status::Invalid);
        assert_eq!(status(b"HTTP/1.1  200 OK"), Status::Invalid);
        // Every prefix of a good line is incomplete, never invalid.
        let line = b"HTTP/1.1 200 OK\r\n";
        for n in 0..12 {
            assert_eq!(status(&line[..n]), Status::Incomplete, "{n}");
        }
    }
}

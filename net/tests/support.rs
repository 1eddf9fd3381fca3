//! Helpers shared by the lab tests.

use std::future::Future;
use std::net::Ipv6Addr;
use std::time::Duration;

use tokio::runtime::Runtime;
use vigil_integration::{Host, wait_for_value};

/// Generous for anything the kernel does at once, even on a loaded 2-core machine.
pub(crate) const PROMPT: Duration = Duration::from_secs(3);
/// How long to listen before concluding that a packet does not come.
pub(crate) const SILENCE: Duration = Duration::from_millis(400);

/// A current-thread runtime with I/O and time.
pub(crate) fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Runs the future `make()` returns to completion on a runtime whose thread is inside `host`,
/// so that every socket and netlink connection it opens belongs to `host`.
pub(crate) fn block_on_in<F, Fut, T>(host: &Host, make: F) -> T
where
    F: FnOnce() -> Fut + Send,
    Fut: Future<Output = T>,
    T: Send,
{
    host.enter(move || runtime().block_on(make()))
        .expect("enter host namespace")
}

/// Runs `open` inside `host` with `rt` as the current runtime: the socket belongs to `host` and
/// is registered with `rt`, which may then drive it from any thread.
pub(crate) fn open_in<T: Send>(host: &Host, rt: &Runtime, open: impl FnOnce() -> T + Send) -> T {
    let handle = rt.handle().clone();
    host.enter(move || {
        let _guard = handle.enter();
        open()
    })
    .expect("enter host namespace")
}

/// The host's IPv6 link-local address once duplicate address detection has finished.
pub(crate) fn link_local(host: &Host) -> Ipv6Addr {
    wait_for_value(
        "a usable link-local address",
        Duration::from_secs(10),
        || {
            let out = host
                .ip(&[
                    "-6",
                    "-o",
                    "addr",
                    "show",
                    "dev",
                    host.iface(),
                    "scope",
                    "link",
                ])
                .ok()?;
            let line = out.lines().find(|l| !l.contains("tentative"))?;
            let cidr = line
                .split_whitespace()
                .skip_while(|w| *w != "inet6")
                .nth(1)?;
            cidr.split('/').next()?.parse().ok()
        },
    )
    .expect("a usable link-local address")
}

/// Whether `host`'s neighbour table maps `addr` to `mac` (lower-case `aa:bb:…`).
pub(crate) fn neighbour_is(host: &Host, addr: &str, mac: &str) -> bool {
    host.ip(&["neigh", "show", addr, "dev", host.iface()])
        .is_ok_and(|out| out.contains(&format!("lladdr {mac}")))
}

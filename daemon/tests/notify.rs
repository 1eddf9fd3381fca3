//! systemd readiness protocol, observed through a real `NOTIFY_SOCKET`.
//!
//! NEEDS the real vigil-conf loader (the API port comes from the config).

use std::net::TcpStream;
use std::os::unix::net::UnixDatagram;

use nix::sys::signal::Signal;

use crate::harness::{PATIENCE, TempDir, Vigild, config_text, free_port};

fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0; 4096];
    let n = socket.recv(&mut buf).expect("no sd_notify message in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_reloading_and_stopping_are_announced() {
    let dir = TempDir::new("notify");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("node-a", port, ""));
    let mut daemon = Vigild::spawn_with(&config, port, |command| {
        command.env("NOTIFY_SOCKET", &socket_path);
    });

    let ready = next_message(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    // READY=1 promises the API is already bound.
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_ok(),
        "API not bound at READY=1"
    );

    daemon.signal(Signal::SIGHUP);
    let reloading = next_message(&socket);
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    let ready = next_message(&socket);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");

    daemon.signal(Signal::SIGTERM);
    let stopping = next_message(&socket);
    assert!(stopping.lines().any(|l| l == "STOPPING=1"), "{stopping:?}");
    assert_eq!(daemon.wait_exit(PATIENCE).and_then(|s| s.code()), Some(0));
}

//! The half-open (SYN) check against real listeners on loopback: alone and in the scheduler.
//! Needs CAP_NET_RAW (root in CI); without it each test says loudly that it skipped.

#![allow(clippy::unwrap_used)] // Test helpers: a failed setup should panic loudly.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use vigil_checks::{
    CheckEvent, CheckId, CheckKind, CheckSpec, Prepared, Scheduler, SchedulerConfig, Source,
    Timing, Transition, probe,
};

/// Whether raw sockets can be opened here; prints the skip line when not.
fn raw_sockets(test: &str) -> bool {
    match Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)) {
        Ok(_) => true,
        Err(e) => {
            eprintln!("SKIPPED (needs CAP_NET_RAW, i.e. root): {test}: {e}");
            false
        }
    }
}

fn spec(target: SocketAddr, timeout_ms: u64) -> CheckSpec {
    CheckSpec {
        target,
        kind: CheckKind::TcpHalfOpen,
        timing: Timing {
            timeout: Duration::from_millis(timeout_ms),
            ..Timing::default()
        },
        source: Source::default(),
        start_down: false,
    }
}

async fn run(spec: &CheckSpec) -> vigil_checks::ProbeOutcome {
    probe(spec, &Prepared::new(spec).unwrap(), 1).await
}

/// Up while something listens, refused once nothing does, and the listener never sees a
/// connection: the kernel resets the SYN-ACK. IPv4 and IPv6, and from a configured source.
#[tokio::test]
async fn a_listener_answers_a_syn_and_accepts_nothing() {
    if !raw_sockets("a_listener_answers_a_syn_and_accepts_nothing") {
        return;
    }
    for (listen, bind) in [
        ("127.0.0.1:0", None),
        ("127.0.0.1:0", Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)))),
        ("[::1]:0", None),
    ] {
        let listener = TcpListener::bind(listen).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut s = spec(addr, 1000);
        s.source.bind_addr = bind;
        for _ in 0..3 {
            let out = run(&s).await;
            assert!(out.ok, "{addr} from {bind:?}: {out:?}");
            assert_eq!(out.detail, "SYN-ACK");
        }
        let accepted = tokio::time::timeout(Duration::from_millis(200), listener.accept()).await;
        assert!(
            accepted.is_err(),
            "{addr}: a half-open probe left a connection to accept: {accepted:?}"
        );
        drop(listener);
        let out = run(&s).await;
        assert!(!out.ok, "{addr}: nothing listens, yet {out:?}");
        assert!(out.detail.contains("refused"), "{addr}: {}", out.detail);
    }
}

/// A listener whose accept queue is full drops SYNs without an answer: the probe runs into its
/// timeout (what an overloaded or vanished server looks like), where a reset would be refused.
#[tokio::test]
async fn a_silent_server_times_out() {
    if !raw_sockets("a_silent_server_times_out") {
        return;
    }
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    // Fill the queue with connections nobody accepts: with a backlog of 0 one fits, and the
    // kernel drops SYNs from then on (tcp_abort_on_overflow is off by default).
    let mut held = Vec::new();
    for _ in 0..2 {
        let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        s.set_nonblocking(true).unwrap();
        let _ = s.connect(&addr.into());
        held.push(s);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let out = run(&spec(addr, 300)).await;
    assert!(!out.ok, "{out:?}");
    assert!(out.detail.contains("timed out"), "{}", out.detail);
    assert!(out.latency >= Duration::from_millis(300), "{out:?}");
}

/// Many half-open checks in one scheduler: all up and quiet; the checks of a server whose
/// listener closes go down, and no other; back up after `rise` once it listens again.
#[tokio::test]
async fn the_scheduler_drives_half_open_checks_down_and_up() {
    if !raw_sockets("the_scheduler_drives_half_open_checks_down_and_up") {
        return;
    }
    let mut listeners = Vec::new();
    for _ in 0..20 {
        listeners.push(Some(TcpListener::bind("127.0.0.1:0").await.unwrap()));
    }
    let addrs: Vec<SocketAddr> = listeners
        .iter()
        .map(|l| l.as_ref().unwrap().local_addr().unwrap())
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel::<CheckEvent>();
    let sched = Scheduler::spawn(
        SchedulerConfig {
            max_in_flight: 64,
            seed: 3,
        },
        tx,
    );
    let timing = Timing {
        interval: Duration::from_millis(50),
        timeout: Duration::from_millis(300),
        retries: 0,
        retry_delay: Duration::ZERO,
        rise: 2,
        fall: 2,
        warmup: Duration::from_millis(50),
    };
    // Ten checks per server; check i probes server i % 20.
    for i in 0..200u64 {
        let mut s = spec(addrs[(i % 20) as usize], 300);
        s.timing = timing;
        sched.upsert(CheckId(i), s).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(rx.try_recv().is_err(), "healthy servers produced events");
    let status = sched.status().await.unwrap();
    assert!(
        status
            .iter()
            .all(|s| s.up && s.kind == "tcp-half-open" && s.last.as_ref().is_some_and(|o| o.ok)),
        "{status:?}"
    );

    // Servers 0..5 stop listening: exactly their 50 checks go down.
    for l in &mut listeners[..5] {
        *l = None;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut down = BTreeSet::new();
    while down.len() < 50 {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("down events")
            .unwrap();
        assert_eq!(ev.transition, Transition::Down, "{ev:?}");
        assert!(
            ev.id.0 % 20 < 5,
            "a check of a listening server went down: {ev:?}"
        );
        assert!(ev.outcome.detail.contains("refused"), "{ev:?}");
        down.insert(ev.id);
    }
    // Back on the same ports: up again.
    for (l, addr) in listeners[..5].iter_mut().zip(&addrs) {
        *l = Some(TcpListener::bind(addr).await.unwrap());
    }
    let mut up = BTreeSet::new();
    while up.len() < 50 {
        let ev = tokio::time::timeout_at(deadline + Duration::from_secs(5), rx.recv())
            .await
            .expect("up events")
            .unwrap();
        assert_eq!(ev.transition, Transition::Up, "{ev:?}");
        up.insert(ev.id);
    }
    assert_eq!(up, down);
    // None of the probes became a connection.
    for l in listeners.iter().flatten() {
        let accepted = tokio::time::timeout(Duration::from_millis(20), l.accept()).await;
        assert!(accepted.is_err(), "{accepted:?}");
    }
}

/// A SYN the kernel refuses to send (to the broadcast address, without `SO_BROADCAST`) fails
/// its own check with the kernel's error and no other check of its batch.
#[tokio::test]
async fn a_syn_that_cannot_leave_fails_only_its_own_check() {
    if !raw_sockets("a_syn_that_cannot_leave_fails_only_its_own_check") {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let good = listener.local_addr().unwrap();
    let broadcast = SocketAddr::from((Ipv4Addr::BROADCAST, 80));
    let (tx, mut rx) = mpsc::unbounded_channel::<CheckEvent>();
    let sched = Scheduler::spawn(SchedulerConfig::default(), tx);
    let timing = Timing {
        interval: Duration::from_millis(100),
        timeout: Duration::from_millis(300),
        warmup: Duration::ZERO,
        ..Timing::default()
    };
    // Started together, so that their SYNs share one batch.
    for (i, target) in [good, broadcast, good, good].into_iter().enumerate() {
        let mut s = spec(target, 300);
        s.timing = timing;
        sched.upsert(CheckId(i as u64), s).unwrap();
    }
    let ev = tokio::time::timeout(Duration::from_secs(3), rx.recv())
        .await
        .expect("an event")
        .unwrap();
    assert_eq!(
        (ev.id, ev.transition),
        (CheckId(1), Transition::Down),
        "{ev:?}"
    );
    assert!(
        ev.outcome.detail.contains("ermission denied"),
        "{}",
        ev.outcome.detail
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.try_recv().is_err(),
        "a check of the listener changed state"
    );
    let status = sched.status().await.unwrap();
    assert!(
        status.iter().all(|s| s.up == (s.id != CheckId(1))),
        "{status:?}"
    );
}

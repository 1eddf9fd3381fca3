//! Checkers against real servers on loopback, and the scheduler driving many of them.

#![allow(clippy::unwrap_used)] // Test helpers: a failed setup should panic loudly.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use vigil_checks::spec::{DnsCheck, ScriptCheck, SmtpCheck, TlsCheck, UdpCheck};
use vigil_checks::{
    CheckEvent, CheckId, CheckKind, CheckSpec, Digest, HttpCheck, Prepared, Scheduler,
    SchedulerConfig, Source, Timing, Transition, probe,
};

fn spec(target: SocketAddr, kind: CheckKind) -> CheckSpec {
    CheckSpec {
        target,
        kind,
        timing: Timing {
            timeout: Duration::from_millis(500),
            ..Timing::default()
        },
        source: Source::default(),
        start_down: false,
    }
}

async fn run(spec: &CheckSpec) -> vigil_checks::ProbeOutcome {
    let prepared = Prepared::new(spec).expect("prepare");
    probe(spec, &prepared, 7).await
}

/// An HTTP server answering every request with `response`; counts requests and keeps the last
/// request head so tests can look at the Host header.
async fn http_server(response: &'static [u8]) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s.write_all(response).await;
            });
        }
    });
    (addr, hits)
}

#[tokio::test]
async fn tcp_connect_succeeds_then_fails_when_the_listener_goes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let s = spec(addr, CheckKind::Tcp);
    let out = run(&s).await;
    assert!(out.ok, "{out:?}");
    drop(listener);
    let out = run(&s).await;
    assert!(!out.ok);
    assert!(out.detail.contains("refused"), "{}", out.detail);
}

#[tokio::test]
async fn http_status_ranges_regex_and_digest() {
    let (addr, hits) =
        http_server(b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\nhello world").await;
    let mut http = HttpCheck::get("/health");
    assert!(run(&spec(addr, CheckKind::Http(http.clone()))).await.ok);

    http.expect_status = vec![300..=399];
    let out = run(&spec(addr, CheckKind::Http(http.clone()))).await;
    assert!(
        !out.ok && out.detail.contains("unexpected status 200"),
        "{out:?}"
    );

    http.expect_status = vec![200..=200];
    http.body_regex = Some(regex::Regex::new("wor.d$").unwrap());
    assert!(run(&spec(addr, CheckKind::Http(http.clone()))).await.ok);
    http.body_regex = Some(regex::Regex::new("^nope").unwrap());
    assert!(!run(&spec(addr, CheckKind::Http(http.clone()))).await.ok);

    http.body_regex = None;
    // md5("hello world")
    let md5 = hex("5eb63bbbe01eeed093cb22bb8f5acdc3");
    http.digest = Some(Digest::Md5(md5.try_into().unwrap()));
    assert!(run(&spec(addr, CheckKind::Http(http.clone()))).await.ok);
    // sha256 of something else
    http.digest = Some(Digest::Sha256([7u8; 32]));
    let out = run(&spec(addr, CheckKind::Http(http.clone()))).await;
    assert!(!out.ok && out.detail.contains("digest"), "{out:?}");

    http.digest = None;
    http.max_body = 5;
    http.body_regex = Some(regex::Regex::new(".").unwrap());
    let out = run(&spec(addr, CheckKind::Http(http))).await;
    assert!(!out.ok && out.detail.contains("larger"), "{out:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 7, "one connection per attempt");
}

#[tokio::test]
async fn http_chunked_and_close_delimited_bodies() {
    let (addr, _) = http_server(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    )
    .await;
    let mut http = HttpCheck::get("/");
    http.body_regex = Some(regex::Regex::new("^hello world$").unwrap());
    assert!(run(&spec(addr, CheckKind::Http(http.clone()))).await.ok);

    let (addr, _) = http_server(b"HTTP/1.0 503 Busy\r\n\r\nretry later").await;
    let out = run(&spec(addr, CheckKind::Http(HttpCheck::get("/")))).await;
    assert!(!out.ok && out.detail.contains("503"), "{out:?}");
    http.expect_status = vec![503..=503];
    http.body_regex = Some(regex::Regex::new("later$").unwrap());
    assert!(run(&spec(addr, CheckKind::Http(http))).await.ok);
}

#[tokio::test]
async fn http_garbage_and_silence_fail_cleanly() {
    let (addr, _) = http_server(b"SSH-2.0-OpenSSH_9.2\r\n").await;
    let out = run(&spec(addr, CheckKind::Http(HttpCheck::get("/")))).await;
    assert!(!out.ok && out.detail.contains("status line"), "{out:?}");

    // A server that accepts and never answers: the timeout decides.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut s = spec(addr, CheckKind::Http(HttpCheck::get("/")));
    s.timing.timeout = Duration::from_millis(150);
    let out = run(&s).await;
    assert!(!out.ok && out.detail.contains("timed out"), "{out:?}");
    assert!(out.latency >= Duration::from_millis(150));
    drop(listener);
}

#[tokio::test]
async fn https_with_and_without_verification() {
    let cert = rcgen::generate_simple_self_signed(vec!["rs.test".to_string()]).unwrap();
    let dir = tempdir();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                let mut buf = [0u8; 2048];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.1 204 No Content\r\n\r\n").await;
                let _ = tls.shutdown().await;
            });
        }
    });

    let mut http = HttpCheck::get("/");
    http.tls = Some(TlsCheck {
        sni: None,
        verify: false,
        ca_file: None,
    });
    let out = run(&spec(addr, CheckKind::Http(http.clone()))).await;
    assert!(out.ok, "{out:?}");

    http.tls = Some(TlsCheck {
        sni: Some("rs.test".into()),
        verify: true,
        ca_file: Some(ca.clone()),
    });
    let out = run(&spec(addr, CheckKind::Http(http.clone()))).await;
    assert!(out.ok, "{out:?}");

    http.tls = Some(TlsCheck {
        sni: Some("other.test".into()),
        verify: true,
        ca_file: Some(ca),
    });
    let out = run(&spec(addr, CheckKind::Http(http))).await;
    assert!(!out.ok && out.detail.starts_with("tls:"), "{out:?}");
}

#[tokio::test]
async fn scripts_judge_by_exit_code_and_die_with_their_timeout() {
    let target: SocketAddr = "127.0.0.1:8080".parse().unwrap();
    let script = |cmd: &str, dynamic| {
        CheckKind::Script(ScriptCheck {
            argv: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
            dynamic_weight: dynamic,
            uid: None,
            gid: None,
        })
    };
    assert!(
        run(&spec(
            target,
            script("test \"$VIGIL_RS_PORT\" = 8080", false)
        ))
        .await
        .ok
    );
    assert!(!run(&spec(target, script("exit 1", false))).await.ok);
    let out = run(&spec(target, script("exit 7", true))).await;
    assert!(out.ok && out.weight == Some(5), "{out:?}");

    // A script that outlives its timeout is killed together with its children.
    let dir = tempdir();
    let pidfile = dir.join("pid");
    let cmd = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
    let mut s = spec(target, script(&cmd, false));
    s.timing.timeout = Duration::from_millis(300);
    let out = run(&s).await;
    assert!(!out.ok && out.detail.contains("timed out"), "{out:?}");
    let pid: i32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let gone = (0..50).any(|_| {
        std::thread::sleep(Duration::from_millis(20));
        !std::path::Path::new(&format!("/proc/{pid}")).exists()
            || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|s| s.contains(") Z "))
    });
    assert!(
        gone,
        "background child {pid} of a timed-out script survived"
    );
}

#[tokio::test]
async fn dns_needs_an_answer() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let mut n_query = 0;
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            n_query += 1;
            let mut reply = buf[..n].to_vec();
            reply[2] |= 0x80;
            // First query answered (ANCOUNT 1), the second gets NXDOMAIN.
            if n_query == 1 {
                reply[7] = 1;
            } else {
                reply[3] = 0x83;
            }
            let _ = sock.send_to(&reply, from).await;
        }
    });
    let s = spec(
        addr,
        CheckKind::Dns(DnsCheck {
            name: "rs1.example.".into(),
            qtype: 1,
        }),
    );
    let out = run(&s).await;
    assert!(out.ok, "{out:?}");
    let out = run(&s).await;
    assert!(!out.ok && out.detail.contains("rcode 3"), "{out:?}");
}

#[tokio::test]
async fn udp_reply_prefix_and_port_unreachable() {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            let mut reply = b"PONG ".to_vec();
            reply.extend_from_slice(&buf[..n]);
            let _ = sock.send_to(&reply, from).await;
        }
    });
    let udp = |expect: Option<&[u8]>| {
        CheckKind::Udp(UdpCheck {
            payload: Arc::from(&b"PING"[..]),
            expect_prefix: expect.map(Arc::from),
        })
    };
    assert!(run(&spec(addr, udp(Some(b"PONG")))).await.ok);
    assert!(!run(&spec(addr, udp(Some(b"NOPE")))).await.ok);

    let closed = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let dead = closed.local_addr().unwrap();
    drop(closed);
    let out = run(&spec(dead, udp(None))).await;
    assert!(!out.ok && out.detail.contains("unreachable"), "{out:?}");
    let mut s = spec(addr, udp(None));
    s.timing.timeout = Duration::from_millis(100);
    assert!(run(&s).await.ok);
}

#[tokio::test]
async fn smtp_greeting_and_helo() {
    async fn server(greeting: &'static [u8]) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let _ = s.write_all(greeting).await;
                let mut buf = [0u8; 256];
                if s.read(&mut buf).await.unwrap_or(0) > 0 {
                    let _ = s.write_all(b"250-mx.test hello\r\n250 SIZE 1000\r\n").await;
                }
                let _ = s.read(&mut buf).await;
            }
        });
        addr
    }
    let helo = CheckKind::Smtp(SmtpCheck {
        helo: "lb1.test".into(),
    });
    assert!(
        run(&spec(server(b"220 mx.test ESMTP\r\n").await, helo.clone()))
            .await
            .ok
    );
    let out = run(&spec(server(b"554 go away\r\n").await, helo)).await;
    assert!(!out.ok && out.detail.contains("expected 220"), "{out:?}");
}

#[tokio::test]
async fn scheduler_detects_down_and_up_with_rise_and_fall() {
    let listener_a = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = listener_a.local_addr().unwrap();
    let listener_b = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let b = listener_b.local_addr().unwrap();
    // Keep accepting so the backlog never fills.
    let accept = |l: TcpListener| tokio::spawn(async move { while l.accept().await.is_ok() {} });
    let task_a = accept(listener_a);
    let _task_b = accept(listener_b);

    let (tx, mut rx) = mpsc::unbounded_channel::<CheckEvent>();
    let sched = Scheduler::spawn(
        SchedulerConfig {
            max_in_flight: 16,
            seed: 1,
        },
        tx,
    );
    let timing = Timing {
        interval: Duration::from_millis(40),
        timeout: Duration::from_millis(200),
        retries: 1,
        retry_delay: Duration::from_millis(10),
        rise: 2,
        fall: 2,
        warmup: Duration::from_millis(40),
    };
    for i in 0..100u64 {
        let target = if i % 2 == 0 { a } else { b };
        let mut s = spec(target, CheckKind::Tcp);
        s.timing = timing;
        sched.upsert(CheckId(i), s).unwrap();
    }
    // All healthy: no transitions after several rounds.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        rx.try_recv().is_err(),
        "healthy servers must not produce events"
    );

    // Kill A's listener: exactly its 50 checks go down.
    task_a.abort();
    let _ = task_a.await;
    let mut down = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while down.len() < 50 {
        let ev = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("down events")
            .unwrap();
        assert_eq!(ev.transition, Transition::Down);
        assert_eq!(
            ev.id.0 % 2,
            0,
            "a check of the healthy server went down: {ev:?}"
        );
        down.insert(ev.id);
    }
    let status = sched.status().await.unwrap();
    assert_eq!(status.iter().filter(|s| !s.up).count(), 50);

    // Bring A back on the same port: after `rise` rounds they come up again.
    let listener_a = TcpListener::bind(a).await.unwrap();
    let _task_a = accept(listener_a);
    let mut up = 0;
    while up < 50 {
        let ev = tokio::time::timeout_at(deadline + Duration::from_secs(5), rx.recv())
            .await
            .expect("up events")
            .unwrap();
        assert_eq!(ev.transition, Transition::Up, "{ev:?}");
        up += 1;
    }
    // Removing a check stops its events; status reflects the removal.
    sched.remove(CheckId(0)).unwrap();
    let status = sched.status().await.unwrap();
    assert_eq!(status.len(), 99);
    assert!(status.iter().all(|s| s.up && s.last.is_some()));
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn tempdir() -> std::path::PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "vigil-checks-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The progress hook follows the loop itself: called while the scheduler is idle, silent while
/// the task is stuck (here an observer that blocks it), called again once it is free.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_progress_hook_beats_while_idle_and_stops_while_the_loop_is_blocked() {
    use std::sync::Mutex;
    use vigil_checks::{Hooks, PROGRESS_EVERY};

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let _accept = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let beats = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&beats);
    // The observer blocks the scheduler task until released (bounded, so a failing test ends).
    let (entered_tx, entered_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let gate = Mutex::new((entered_tx, release_rx));
    let (tx, _rx) = mpsc::unbounded_channel::<CheckEvent>();
    let sched = Scheduler::spawn_with(
        SchedulerConfig::default(),
        tx,
        Hooks {
            observer: Some(Arc::new(
                move |_: &'static str, _: &vigil_checks::ProbeOutcome| {
                    let gate = gate.lock().unwrap();
                    let _ = gate.0.send(());
                    let _ = gate.1.recv_timeout(Duration::from_secs(10));
                },
            )),
            progress: Some(Arc::new(move || {
                counter.fetch_add(1, Ordering::Relaxed);
            })),
        },
    );
    // Idle (no checks yet): the loop still comes round every PROGRESS_EVERY.
    tokio::time::sleep(PROGRESS_EVERY * 3).await;
    let idle = beats.load(Ordering::Relaxed);
    assert!(idle >= 2, "only {idle} beats while idle");

    let mut s = spec(target, CheckKind::Tcp);
    s.timing.warmup = Duration::ZERO;
    sched.upsert(CheckId(1), s).unwrap();
    tokio::task::spawn_blocking(move || entered_rx.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the first attempt finished");
    let blocked = beats.load(Ordering::Relaxed);
    tokio::time::sleep(PROGRESS_EVERY * 3).await;
    assert_eq!(
        beats.load(Ordering::Relaxed),
        blocked,
        "beats while the loop was blocked"
    );
    release_tx.send(()).unwrap();
    // Later attempts block again until released; keep releasing.
    drop(release_tx);
    tokio::time::sleep(PROGRESS_EVERY * 2).await;
    assert!(
        beats.load(Ordering::Relaxed) > blocked,
        "no beats after the loop was released"
    );
}

/// Threads of this process named `name` (as `/proc/self/task/*/comm` shows them).
fn threads_named(name: &str) -> usize {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|comm| comm.trim_end() == name)
        .count()
}

/// A scheduler on a thread of its own checks like one on the caller's runtime (its probes'
/// sockets live on its own runtime), and its thread ends with the last handle.
#[tokio::test]
async fn a_scheduler_on_its_own_thread_checks_and_ends_with_its_last_handle() {
    use vigil_checks::Hooks;

    const NAME: &str = "checks-own-thr";
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = listener.local_addr().unwrap();
    let accept = tokio::spawn(async move { while listener.accept().await.is_ok() {} });
    let (tx, mut rx) = mpsc::unbounded_channel::<CheckEvent>();
    let sched =
        Scheduler::spawn_on_thread(NAME, SchedulerConfig::default(), tx, Hooks::default()).unwrap();
    // The new thread names itself once it runs.
    wait_for_threads(NAME, 1).await;
    let mut s = spec(target, CheckKind::Tcp);
    s.timing.interval = Duration::from_millis(20);
    s.timing.warmup = Duration::ZERO;
    sched.upsert(CheckId(7), s).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let status = loop {
        let status = sched.status().await.unwrap();
        if status[0].last.is_some() || tokio::time::Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert!(
        status[0].up && status[0].last.as_ref().is_some_and(|o| o.ok),
        "{status:?}"
    );

    accept.abort();
    let _ = accept.await;
    let ev = tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a down event")
        .unwrap();
    assert_eq!((ev.id, ev.transition), (CheckId(7), Transition::Down));

    drop(sched);
    wait_for_threads(NAME, 0).await;
    assert!(rx.recv().await.is_none(), "the events channel closes too");
}

/// Waits (up to 5 s) until exactly `n` threads are named `name`.
async fn wait_for_threads(name: &str, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let found = threads_named(name);
        if found == n {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{found} threads named {name}, expected {n}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

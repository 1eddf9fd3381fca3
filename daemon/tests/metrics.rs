//! Observability through the real binary: `GET /metrics` scraped from a running vigild with a
//! health-checked virtual server, and the liveness-driven watchdog pings and `STATUS=` lines
//! seen on a real `NOTIFY_SOCKET`.
//!
//! NEEDS the real vigil-conf loader.

use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{PATIENCE, TempDir, VIGILD, Vigild, config_text, free_port, http};

/// vigild converges the IPVS table of its namespace, the host's here: only without IPVS.
fn kernel_has_ipvs(test: &str) -> bool {
    if vigil_lvs::NetlinkIpvs::open().is_ok() {
        let line =
            format!("SKIPPED (kernel has IPVS): {test}: vigild would edit the host's IPVS table\n");
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return true;
    }
    false
}

/// A virtual server with one TCP-checked real server at `real` (a bound listener is enough:
/// the kernel completes the handshake).
fn virtual_server(real: std::net::SocketAddr) -> String {
    format!(
        "\n[[virtual_server]]\naddress = \"192.0.2.10:80\"\n\
         [[virtual_server.real_server]]\naddress = \"{}\"\nport = {}\n\
         [[virtual_server.real_server.check]]\ntype = \"tcp\"\ninterval = \"100ms\"\n\
         timeout = \"500ms\"\nrise = 1\nwarmup = \"10ms\"\n",
        real.ip(),
        real.port()
    )
}

/// The value of the sample line starting with `series` (name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_are_scraped_from_a_running_daemon() {
    if kernel_has_ipvs("metrics_are_scraped_from_a_running_daemon") {
        return;
    }
    let dir = TempDir::new("metrics");
    let port = free_port();
    let backend = TcpListener::bind("127.0.0.1:0").unwrap();
    let real = backend.local_addr().unwrap();
    let config = dir.write(
        "vigil.toml",
        &(config_text("lb1", port, "") + &virtual_server(real)),
    );
    let daemon = Vigild::start(&config, port);
    let series = format!(
        "vigil_real_server_up{{virtual_server=\"192.0.2.10:80/tcp\",real_server=\"{real}\"}}"
    );

    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let (code, body) = http(port, "GET", "/metrics", None);
        assert_eq!(code, 200, "{body}");
        // A real server starts up (no `alpha`), so the gauge alone can be 1 before any check
        // ran: wait for a counted attempt too.
        let attempted = value(
            &body,
            "vigil_check_attempts_total{kind=\"tcp\",result=\"ok\"}",
        )
        .is_some_and(|n| n >= 1.0);
        if value(&body, &series) == Some(1.0) && attempted {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "{series} never 1 after a successful check; last scrape:\n{body}\nlog:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    };

    for family in [
        "# TYPE vigil_build_info gauge",
        "# TYPE vigil_config_generation gauge",
        "# TYPE vigil_vrrp_state gauge",
        "# TYPE vigil_vrrp_transitions_total counter",
        "# TYPE vigil_vrrp_adverts_sent_total counter",
        "# TYPE vigil_vrrp_adverts_received_total counter",
        "# TYPE vigil_vrrp_adverts_discarded_total counter",
        "# TYPE vigil_check_attempts_total counter",
        "# TYPE vigil_check_latency_seconds histogram",
        "# TYPE vigil_ipvs_operations_total counter",
        "# TYPE vigil_ipvs_reconciles_total counter",
        "# TYPE vigil_real_server_up gauge",
        "# TYPE vigil_liveness_silent_seconds gauge",
    ] {
        assert!(text.contains(family), "{family:?} missing:\n{text}");
    }
    assert_eq!(value(&text, "vigil_config_generation"), Some(1.0));
    let ok = value(
        &text,
        "vigil_check_attempts_total{kind=\"tcp\",result=\"ok\"}",
    );
    assert!(ok.is_some_and(|n| n >= 1.0), "{text}");
    let timed = value(&text, "vigil_check_latency_seconds_count{kind=\"tcp\"}");
    assert_eq!(timed, ok, "every attempt is timed:\n{text}");
    let inf = value(
        &text,
        "vigil_check_latency_seconds_bucket{kind=\"tcp\",le=\"+Inf\"}",
    );
    assert_eq!(inf, timed, "{text}");
    // No IPVS here: nothing converged, and the gauge says so.
    assert_eq!(value(&text, "vigil_ipvs_available"), Some(0.0), "{text}");
    // Every loop the watchdog judges, the load balancer's three included.
    for component in [
        "supervisor",
        "load balancer",
        "check scheduler",
        "ipvs reconciler",
    ] {
        let silent = value(
            &text,
            &format!("vigil_liveness_silent_seconds{{component=\"{component}\"}}"),
        );
        assert!(silent.is_some_and(|s| s < 5.0), "{component}:\n{text}");
    }
}

#[test]
fn metrics_answer_with_the_prometheus_content_type() {
    let dir = TempDir::new("metrics-type");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("lb1", port, ""));
    let _daemon = Vigild::start(&config, port);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    write!(
        stream,
        "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    std::io::Read::read_to_string(&mut stream, &mut response).unwrap();
    let head = response
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
}

/// vigild started through `sh`, so that `WATCHDOG_PID` can name its own pid (`exec` keeps it).
struct Watched(Child);

impl Drop for Watched {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn watchdog_pings_and_status_lines_follow_the_runtime() {
    if kernel_has_ipvs("watchdog_pings_and_status_lines_follow_the_runtime") {
        return;
    }
    let dir = TempDir::new("watchdog");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let port = free_port();
    // Nothing listens there: the real server, assumed up at start, goes down.
    let dead = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.write(
        "vigil.toml",
        &(config_text("lb1", port, "") + &virtual_server(dead)),
    );
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("export WATCHDOG_PID=$$; exec \"$0\" --config \"$1\" --log-format plain")
        .arg(VIGILD)
        .arg(&config)
        .env("NOTIFY_SOCKET", &socket_path)
        // 1 s: pings every 500 ms while the components beat.
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("RUST_LOG")
        .env_remove("VIGIL_LOG_FORMAT")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let _daemon = Watched(command.spawn().unwrap());

    let mut pings = 0;
    let mut statuses = Vec::new();
    let mut ready = false;
    let deadline = Instant::now() + PATIENCE;
    let mut buf = [0; 4096];
    while Instant::now() < deadline
        && !(pings >= 3
            && statuses
                .iter()
                .any(|s: &String| s.starts_with("0/1 real servers up")))
    {
        let n = socket.recv(&mut buf).expect("no sd_notify message in time");
        let message = String::from_utf8_lossy(&buf[..n]).into_owned();
        for line in message.lines() {
            match line {
                "WATCHDOG=1" => {
                    assert!(ready, "WATCHDOG=1 before READY=1");
                    pings += 1;
                }
                "READY=1" => ready = true,
                _ => {
                    if let Some(status) = line.strip_prefix("STATUS=") {
                        statuses.push(status.to_owned());
                    }
                }
            }
        }
    }
    assert!(
        pings >= 3,
        "only {pings} watchdog pings; statuses: {statuses:?}"
    );
    // READY=1 carried the first summary (real servers start up); the failed check followed.
    // No IPVS here, so the lines go on with ", ipvs unavailable" or the like.
    assert!(
        statuses
            .first()
            .is_some_and(|s| s.starts_with("1/1 real servers up")),
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .any(|s| s.starts_with("0/1 real servers up")),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.len(),
        statuses
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        "a line is sent only when it changed: {statuses:?}"
    );
}

#[test]
fn vigilctl_metrics_prints_the_exposition() {
    let dir = TempDir::new("ctl-metrics");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("lb1", port, ""));
    let daemon = Vigild::start(&config, port);
    let output = crate::harness::vigilctl(&["--api", &daemon.api(), "metrics"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let text = crate::harness::stdout(&output);
    assert!(text.contains("# TYPE vigil_build_info gauge\n"), "{text}");
    assert_eq!(value(&text, "vigil_config_generation"), Some(1.0), "{text}");
}

#[test]
fn status_watch_prints_one_json_document_per_change() {
    use std::io::BufRead as _;

    let dir = TempDir::new("watch");
    let port = free_port();
    let config = dir.write("vigil.toml", &config_text("lb1", port, ""));
    let daemon = Vigild::start(&config, port);
    let child = Command::new(crate::harness::VIGILCTL)
        .args(["--api", &daemon.api(), "status", "--watch", "--json"])
        .args(["--interval", "0.1", "--count", "2"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut watcher = Watched(child);
    let mut lines = std::io::BufReader::new(watcher.0.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(first["config_generation"], 1);
    // Uptime moves while nothing else does: no document for that. A reload is a change.
    std::thread::sleep(Duration::from_millis(1_200));
    daemon.signal(nix::sys::signal::Signal::SIGHUP);
    let second: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(second["config_generation"], 2, "{second}");
    assert!(
        lines.next().is_none(),
        "--count 2 stops after two documents"
    );
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = watcher.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "vigilctl --watch did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

#[test]
fn a_single_node_cluster_exports_raft_and_coordination_metrics() {
    let dir = TempDir::new("metrics-coord");
    let port = free_port();
    let client_port = free_port();
    let cluster = format!(
        "\n[cluster]\nnode_id = 1\nraft_listen = \"127.0.0.1:{}\"\nclient_listen = \"127.0.0.1:{client_port}\"\n\
         data_dir = \"{}\"\n",
        free_port(),
        dir.path().join("coord").display()
    );
    let config = dir.write("vigil.toml", &(config_text("w1", port, "") + &cluster));
    let daemon = Vigild::start(&config, port);
    let leader = "vigil_raft_role{node_id=\"1\",role=\"leader\"}";
    let deadline = Instant::now() + PATIENCE;
    let text = loop {
        let (code, body) = http(port, "GET", "/metrics", None);
        assert_eq!(code, 200, "{body}");
        if value(&body, leader) == Some(1.0) {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "never leader; last scrape:\n{body}\nlog:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    for family in [
        "# TYPE vigil_raft_term gauge",
        "# TYPE vigil_raft_role gauge",
        "# TYPE vigil_raft_commit_index gauge",
        "# TYPE vigil_raft_applied_index gauge",
        "# TYPE vigil_raft_log_fsync_seconds histogram",
        "# TYPE vigil_coord_sessions gauge",
        "# TYPE vigil_coord_watches gauge",
        "# TYPE vigil_coord_znodes gauge",
    ] {
        assert!(text.contains(family), "{family:?} missing:\n{text}");
    }
    // A watch stream on the client API counts while it is open, and no longer once closed.
    let watches_series = "vigil_coord_watches{node_id=\"1\"}";
    let watches = || value(&http(port, "GET", "/metrics", None).1, watches_series);
    let before = watches().expect("vigil_coord_watches");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", client_port)).unwrap();
    stream
        .write_all(
            b"GET /v1/watch?path=/&kind=persistent_recursive HTTP/1.1\r\nHost: vigil\r\n\r\n",
        )
        .unwrap();
    let wait_watches = |want: f64| {
        let deadline = Instant::now() + PATIENCE;
        while watches() != Some(want) {
            assert!(
                Instant::now() < deadline,
                "vigil_coord_watches stayed {:?}, expected {want}",
                watches()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_watches(before + 1.0);
    drop(stream);
    wait_watches(before);
    assert!(value(&text, "vigil_raft_term{node_id=\"1\"}").is_some_and(|t| t >= 1.0));
    assert_eq!(
        value(&text, "vigil_raft_leader_id{node_id=\"1\"}"),
        Some(1.0)
    );
    // Becoming leader appended (and fsynced) at least the membership and a blank entry.
    let fsyncs = value(&text, "vigil_raft_log_fsync_seconds_count{node_id=\"1\"}");
    assert!(fsyncs.is_some_and(|n| n >= 1.0), "{text}");
    let commit = value(&text, "vigil_raft_commit_index{node_id=\"1\"}");
    assert!(commit.is_some_and(|c| c >= 1.0), "{text}");
    // The watchdog judges the node by round trips through its Raft core.
    let silent = value(
        &text,
        "vigil_liveness_silent_seconds{component=\"coordination node\"}",
    );
    assert!(silent.is_some_and(|s| s < 5.0), "{text}");
}

#[test]
fn a_real_server_going_down_is_one_log_line_with_its_reason() {
    if kernel_has_ipvs("a_real_server_going_down_is_one_log_line_with_its_reason") {
        return;
    }
    let dir = TempDir::new("rs-log");
    let port = free_port();
    let dead = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let config = dir.write(
        "vigil.toml",
        &(config_text("lb1", port, "") + &virtual_server(dead)),
    );
    let daemon = Vigild::start(&config, port);
    daemon.wait_for_log("real server down");
    let log = daemon.log();
    let line = log
        .lines()
        .find(|l| l.contains("real server down"))
        .unwrap();
    assert!(line.contains(&format!("real_server={dead}")), "{line}");
    assert!(line.contains("reason=\"tcp check down: "), "{line}");
}

#[test]
fn status_watch_without_a_daemon_fails_at_once() {
    let api = format!("127.0.0.1:{}", free_port());
    let output = crate::harness::vigilctl(&["--api", &api, "status", "--watch"]);
    crate::harness::assert_exit(&output, 69, "cannot reach vigild");
}

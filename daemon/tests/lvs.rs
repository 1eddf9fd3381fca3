//! Health checks through the real binaries: `vigild` checking loopback HTTP servers, seen with
//! `vigilctl lvs` and `/v1/status`, across a reload.
//!
//! vigild converges the IPVS table of the network namespace it runs in. Here that is the host's,
//! so the test only runs where the kernel has no IPVS (the desired table is still computed and
//! shown); elsewhere the namespace lab test in `integration/` covers the same ground.

use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::{PATIENCE, TempDir, Vigild, config_text, free_port, stderr, stdout, vigilctl};

/// A loopback HTTP server answering `200 ok`, on a thread; stopping closes its socket.
struct Backend {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    fn start(addr: &str) -> Self {
        let listener = TcpListener::bind(addr).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            use std::io::{Read, Write};
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        let _ = conn.set_nonblocking(false);
                        let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
                        let mut buf = [0u8; 1024];
                        let _ = conn.read(&mut buf);
                        let _ = conn.write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        );
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }

    /// Closes the listening socket (connects are refused from then on).
    fn stop(mut self) -> SocketAddr {
        self.halt();
        self.addr
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.halt();
    }
}

fn kernel_has_ipvs(test: &str) -> bool {
    if vigil_lvs::NetlinkIpvs::open().is_ok() {
        // Straight to the stderr handle: the harness hides `eprintln!` of passing tests.
        let line = format!(
            "SKIPPED (kernel has IPVS): {test}: vigild would edit the host's IPVS table; \
             covered by the integration lab test\n"
        );
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
        return true;
    }
    false
}

fn virtual_server(vs_port: u16, real: SocketAddr) -> String {
    format!(
        "\n[[virtual_server]]\naddress = \"192.0.2.10:{vs_port}\"\ngroup = \"web{vs_port}\"\n\
         [[virtual_server.real_server]]\naddress = \"{}\"\nport = {}\n\
         [[virtual_server.real_server.check]]\ntype = \"http\"\ninterval = \"200ms\"\n\
         timeout = \"500ms\"\nrise = 2\nwarmup = \"100ms\"\n",
        real.ip(),
        real.port()
    )
}

fn lvs_json(daemon: &Vigild) -> Value {
    let output = vigilctl(&["--api", &daemon.api(), "lvs", "--json"]);
    assert_eq!(output.status.code(), Some(0), "stderr: {}", stderr(&output));
    serde_json::from_slice(&output.stdout).unwrap()
}

fn wait_lvs(daemon: &Vigild, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let status = lvs_json(daemon);
        if pred(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not reached; last status: {status:#}\nlog:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vigilctl_lvs_follows_a_failing_real_server_across_a_reload() {
    if kernel_has_ipvs("vigilctl_lvs_follows_a_failing_real_server_across_a_reload") {
        return;
    }
    let dir = TempDir::new("lvs");
    let port = free_port();
    let (dead, live) = (Backend::start("127.0.0.1:0"), Backend::start("127.0.0.1:0"));
    let base = config_text("lb1", port, "");
    let config = dir.write(
        "vigil.toml",
        &(base.clone() + &virtual_server(80, dead.addr)),
    );
    let daemon = Vigild::start(&config, port);

    let status = wait_lvs(&daemon, "real server checked", |s| {
        s["virtual_servers"][0]["real_servers"][0]["checks"][0]["last_ok"] == true
    });
    assert!(
        status["ipvs"]
            .as_str()
            .unwrap()
            .starts_with("unavailable: "),
        "{status:#}"
    );
    assert_eq!(status["virtual_servers"][0]["key"], "192.0.2.10:80/tcp");
    let real = dead.addr.to_string();
    assert_eq!(
        status["virtual_servers"][0]["desired"][0]["addr"],
        real.as_str()
    );

    let dead = dead.stop();
    let status = wait_lvs(&daemon, "real server down", |s| {
        s["virtual_servers"][0]["real_servers"][0]["up"] == false
    });
    let vs = &status["virtual_servers"][0];
    assert_eq!(vs["desired"].as_array().unwrap().len(), 0, "{status:#}");
    assert_eq!(vs["quorum_up"], false);
    assert_eq!(vs["real_servers"][0]["checks"][0]["last_ok"], false);
    let line = format!("real_server={real} check=http state=down reason=");
    assert!(
        daemon.log().contains(&line),
        "no {line:?} in:\n{}",
        daemon.log()
    );

    // Human table and the /v1/status summary.
    let output = vigilctl(&["--api", &daemon.api(), "lvs"]);
    assert_eq!(output.status.code(), Some(0));
    let table = stdout(&output);
    assert!(
        table.contains(&real) && table.contains("DOWN") && table.contains("quorum DOWN"),
        "{table}"
    );
    let summary = &crate::harness::status_json(&daemon)["lvs"];
    assert_eq!(summary["virtual_servers"], 1);
    assert_eq!(summary["real_servers_up"], 0);
    let output = vigilctl(&["--api", &daemon.api(), "status"]);
    assert!(
        stdout(&output).contains("0/1 virtual servers up, 0/1 real servers up"),
        "{}",
        stdout(&output)
    );

    // A reload adding a second virtual server keeps the first one's down state.
    std::fs::write(
        &config,
        base.clone() + &virtual_server(80, dead) + &virtual_server(81, live.addr),
    )
    .unwrap();
    let output = vigilctl(&["--api", &daemon.api(), "reload"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let status = lvs_json(&daemon);
    assert_eq!(status["virtual_servers"].as_array().unwrap().len(), 2);
    assert_eq!(status["virtual_servers"][0]["real_servers"][0]["up"], false);
    assert_eq!(
        status["virtual_servers"][0]["real_servers"][0]["checks"][0]["last_ok"],
        false
    );

    // A config the checks cannot use is refused as a whole; the old one keeps running.
    let bad = base.replace("[api]", "script_user = \"vigil-no-such-user-xyz\"\n\n[api]")
        + &virtual_server(80, dead)
        + "[[virtual_server.real_server.check]]\ntype = \"script\"\ncommand = [\"/bin/true\"]\n";
    std::fs::write(&config, bad).unwrap();
    let output = vigilctl(&["--api", &daemon.api(), "reload"]);
    assert_eq!(output.status.code(), Some(78), "{}", stdout(&output));
    assert!(
        stderr(&output).contains("vigil-no-such-user-xyz"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        lvs_json(&daemon)["virtual_servers"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn vigild_refuses_to_start_when_checks_cannot_run() {
    let dir = TempDir::new("lvs-bad");
    let port = free_port();
    // Valid for the config checker, but the user scripts must run as does not exist here.
    let text = config_text("lb1", port, "")
        .replace("[api]", "script_user = \"vigil-no-such-user-xyz\"\n\n[api]")
        + &virtual_server(80, "127.0.0.1:9".parse().unwrap())
        + "[[virtual_server.real_server.check]]\ntype = \"script\"\ncommand = [\"/bin/true\"]\n";
    let config = dir.write("vigil.toml", &text);
    let mut daemon = Vigild::spawn(&config, port);
    let status = daemon.wait_exit(PATIENCE).expect("vigild exits");
    assert_eq!(status.code(), Some(78), "log:\n{}", daemon.log());
    assert!(
        daemon.log().contains("vigil-no-such-user-xyz"),
        "{}",
        daemon.log()
    );
}

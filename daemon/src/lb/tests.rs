//! [`LbRuntime`] end to end in one process: real checks against loopback TCP/HTTP servers on
//! ephemeral ports, a [`FakeIpvs`] kernel table shared with the test.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use vigil_checks::SchedulerConfig;
use vigil_conf as conf;
use vigil_lvs::{self as lvs, FakeIpvs, Ipvs, LvsError};

use super::*;

/// A [`FakeIpvs`] the test can inspect while the runtime owns a clone of the handle.
#[derive(Clone, Default)]
struct SharedFake(Arc<Mutex<FakeIpvs>>);

impl SharedFake {
    fn with<T>(&self, f: impl FnOnce(&mut FakeIpvs) -> T) -> T {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// Destinations of the service on `port`, as (`addr:port`, weight).
    fn dests(&self, vs_port: u16) -> Option<Vec<(String, u32)>> {
        self.with(|f| {
            let key = lvs::ServiceKey::Tcp("192.0.2.10".parse().unwrap(), vs_port);
            f.table.services.get(&key).map(|s| {
                s.dests
                    .values()
                    .map(|d| {
                        (
                            SocketAddr::new(d.dest.key.addr, d.dest.key.port).to_string(),
                            d.dest.weight,
                        )
                    })
                    .collect()
            })
        })
    }
}

impl Ipvs for SharedFake {
    fn table(&mut self) -> Result<lvs::Table, LvsError> {
        self.with(Ipvs::table)
    }
    fn add_service(&mut self, svc: &lvs::Service) -> Result<(), LvsError> {
        self.with(|f| f.add_service(svc))
    }
    fn edit_service(&mut self, svc: &lvs::Service) -> Result<(), LvsError> {
        self.with(|f| f.edit_service(svc))
    }
    fn del_service(&mut self, key: &lvs::ServiceKey) -> Result<(), LvsError> {
        self.with(|f| f.del_service(key))
    }
    fn add_dest(&mut self, svc: &lvs::ServiceKey, dest: &lvs::Destination) -> Result<(), LvsError> {
        self.with(|f| f.add_dest(svc, dest))
    }
    fn edit_dest(
        &mut self,
        svc: &lvs::ServiceKey,
        dest: &lvs::Destination,
    ) -> Result<(), LvsError> {
        self.with(|f| f.edit_dest(svc, dest))
    }
    fn del_dest(&mut self, svc: &lvs::ServiceKey, dest: &lvs::DestKey) -> Result<(), LvsError> {
        self.with(|f| f.del_dest(svc, dest))
    }
}

/// A minimal HTTP/1.1 server answering `200 ok` to anything, until dropped.
struct HttpServer {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    async fn bind(addr: SocketAddr) -> Self {
        let listener = TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 1024];
                    let mut seen = Vec::new();
                    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => seen.extend_from_slice(&buf[..n]),
                        }
                    }
                    let reply =
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
                    let _ = conn.write_all(reply).await;
                });
            }
        });
        Self { addr, task }
    }

    async fn start() -> Self {
        Self::bind("127.0.0.1:0".parse().unwrap()).await
    }

    /// Stops accepting: the listening socket closes, so connects are refused.
    async fn stop(self) -> SocketAddr {
        self.task.abort();
        // Wait until the task (and with it the listener) is really gone.
        let _ = self.task.await;
        self.addr
    }
}

const INTERVAL_MS: u64 = 100;
const TIMEOUT_MS: u64 = 300;
const RETRIES: u64 = 1;

fn config(kind: &str, reals: &[SocketAddr], vs_extra: &str, extra: &str) -> conf::Config {
    let mut src = format!("[[virtual_server]]\naddress = \"192.0.2.10:80\"\n{vs_extra}\n");
    for rs in reals {
        let _ = write!(
            src,
            "[[virtual_server.real_server]]\naddress = \"{}\"\nport = {}\n\
             [[virtual_server.real_server.check]]\ntype = \"{kind}\"\n\
             interval = \"{INTERVAL_MS}ms\"\ntimeout = \"{TIMEOUT_MS}ms\"\nretries = {RETRIES}\n\
             retry_delay = \"50ms\"\nrise = 2\nfall = 1\nwarmup = \"50ms\"\n",
            rs.ip(),
            rs.port()
        );
    }
    src.push_str(extra);
    match conf::load_str(&src, "test.toml") {
        Ok(c) => c,
        Err(e) => panic!("test config invalid:\n{e}\n{src}"),
    }
}

fn start(config: &conf::Config, kernel: &SharedFake) -> LbRuntime {
    let mut options = LbOptions::with_backend(
        IpvsBackend::Given(Box::new(kernel.clone())),
        SchedulerConfig::default(),
    );
    options.resync = Duration::from_millis(200);
    LbRuntime::start(&Arc::new(config.clone()), options).unwrap()
}

/// Polls the status until `pred` holds; panics with the last status after `limit`.
async fn wait_status(
    lb: &LbRuntime,
    limit: Duration,
    pred: impl Fn(&LbStatus) -> bool,
) -> Duration {
    let start = tokio::time::Instant::now();
    loop {
        let status = lb.status().await.unwrap();
        if pred(&status) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}; status: {status:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn real(status: &LbStatus, vs: usize, addr: SocketAddr) -> &RsStatus {
    let key = addr.to_string();
    status.virtual_servers[vs]
        .real_servers
        .iter()
        .find(|r| r.addr == key)
        .unwrap()
}

/// Detection bound from the check settings (interval + timeout·(retries+1) + retry delays), with
/// generous slack for a loaded 2-core CI machine.
fn detection_limit() -> Duration {
    let bound = INTERVAL_MS + TIMEOUT_MS * (RETRIES + 1) + 50 * RETRIES;
    Duration::from_millis(bound * 5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_real_server_goes_down_and_comes_back() {
    let (a, b) = (HttpServer::start().await, HttpServer::start().await);
    let (addr_a, addr_b) = (a.addr, b.addr);
    let kernel = SharedFake::default();
    let lb = start(&config("http", &[addr_a, addr_b], "", ""), &kernel);
    let both = |s: &LbStatus| s.virtual_servers[0].desired.len() == 2;
    wait_status(&lb, Duration::from_secs(3), both).await;
    wait_status(&lb, Duration::from_secs(3), |s| {
        real(s, 0, addr_a).checks[0].last_ok == Some(true)
    })
    .await;
    assert_eq!(kernel.dests(80).map(|d| d.len()), Some(2));

    let addr_a = a.stop().await;
    wait_status(&lb, detection_limit(), |s| !real(s, 0, addr_a).up).await;
    let status = lb.status().await.unwrap();
    let down = real(&status, 0, addr_a);
    assert_eq!(down.desired_weight, None, "dropped from the desired table");
    assert_eq!(down.checks[0].last_ok, Some(false));
    assert!(down.checks[0].last_detail.is_some());
    assert_eq!(status.virtual_servers[0].desired.len(), 1);
    assert_eq!(
        status.virtual_servers[0].desired[0].addr,
        addr_b.to_string()
    );
    assert_eq!(status.ipvs, "ok");
    // The kernel follows within the debounce.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while kernel.dests(80) != Some(vec![(addr_b.to_string(), 1)]) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            kernel.dests(80)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Back on the same port: up again after `rise` (2) successful rounds, not before one.
    let _a = HttpServer::bind(addr_a).await;
    let took = wait_status(&lb, Duration::from_secs(3), |s| real(s, 0, addr_a).up).await;
    assert!(
        took >= Duration::from_millis(INTERVAL_MS),
        "rise 2 needs a second round, yet up after {took:?}"
    );
    let status = lb.status().await.unwrap();
    assert_eq!(real(&status, 0, addr_a).desired_weight, Some(1));
    assert_eq!(real(&status, 0, addr_a).checks[0].last_ok, Some(true));
    assert!(real(&status, 0, addr_a).checks[0].latency_ms.is_some());
    lb.shutdown().await;
    assert!(matches!(lb.status().await, Err(LbError::Stopped)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_loss_brings_in_the_sorry_server_and_inhibit_keeps_weight_zero() {
    let (a, b) = (HttpServer::start().await, HttpServer::start().await);
    let (addr_a, addr_b) = (a.addr, b.addr);
    let kernel = SharedFake::default();
    let vs =
        "group = \"web\"\nquorum = 2\nsorry_server = \"192.0.2.250:80\"\ninhibit_on_failure = true";
    let lb = start(&config("tcp", &[addr_a, addr_b], vs, ""), &kernel);
    let mut groups = lb.watch_groups();
    assert_eq!(lb.group_health("web"), Some(true));
    assert_eq!(lb.group_health("nope"), None);
    wait_status(&lb, Duration::from_secs(3), |s| {
        s.virtual_servers[0].desired.len() == 2 && s.ipvs == "ok"
    })
    .await;

    b.stop().await;
    let status_of = |s: &LbStatus| s.virtual_servers[0].sorry_active;
    wait_status(&lb, detection_limit(), status_of).await;
    let status = lb.status().await.unwrap();
    let vs = &status.virtual_servers[0];
    assert!(!vs.quorum_up);
    assert_eq!(vs.alive_weight, 1);
    // Sorry server in; both real servers kept at weight 0 (inhibit_on_failure).
    let mut desired: Vec<_> = vs
        .desired
        .iter()
        .map(|d| (d.addr.clone(), d.weight))
        .collect();
    desired.sort();
    let mut want = vec![
        (addr_a.to_string(), 0),
        (addr_b.to_string(), 0),
        ("192.0.2.250:80".to_owned(), 1),
    ];
    want.sort();
    assert_eq!(desired, want);
    assert_eq!(real(&status, 0, addr_b).desired_weight, Some(0));
    assert_eq!(lb.group_health("web"), Some(false));
    assert!(groups.has_changed().unwrap());
    assert_eq!(groups.borrow_and_update().get("web"), Some(&false));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while kernel.dests(80).map(|d| d.len()) != Some(3) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{:?}",
            kernel.dests(80)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(a);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_keeps_checker_state_and_releases_removed_servers() {
    let a = HttpServer::start().await;
    let addr_a = a.addr;
    let addr_dead = a.stop().await;
    let live = HttpServer::start().await;
    let kernel = SharedFake::default();
    let initial = config("http", &[addr_dead, live.addr], "", "");
    let lb = start(&initial, &kernel);
    wait_status(&lb, detection_limit(), |s| !real(s, 0, addr_dead).up).await;
    let since_before =
        lb.status().await.unwrap().virtual_servers[0].real_servers[0].checks[0].clone();

    // Adding another virtual server leaves the first one's checks alone: still down, and the
    // check was not restarted (a restarted check would start "up" again, as alpha is off).
    let second = "\n[[virtual_server]]\naddress = \"192.0.2.10:81\"\n\
                  [[virtual_server.real_server]]\naddress = \"127.0.0.1\"\n";
    let reloaded = config("http", &[addr_dead, live.addr], "", second);
    let summary = lb.apply(&Arc::new(reloaded)).await.unwrap();
    assert_eq!((summary.added, summary.unchanged), (1, 1));
    let status = lb.status().await.unwrap();
    assert_eq!(status.virtual_servers.len(), 2);
    assert!(!real(&status, 0, addr_a).up, "down across the reload");
    assert_eq!(real(&status, 0, addr_a).desired_weight, None);
    assert_eq!(
        status.virtual_servers[0].real_servers[0].checks[0].last_ok,
        since_before.last_ok
    );
    wait_status(&lb, Duration::from_secs(2), |_| kernel.dests(81).is_some()).await;
    // Stays down over several more rounds (the reload did not reset it to "up").
    tokio::time::sleep(Duration::from_millis(3 * INTERVAL_MS)).await;
    let status = lb.status().await.unwrap();
    assert!(!real(&status, 0, addr_a).up);
    // The cheap summary counts what the full view shows: 2 virtual servers, 3 real servers of
    // which the dead one is down.
    let summary = lb.summary().await.unwrap();
    assert_eq!(summary, status.summary());
    assert_eq!((summary.real_servers, summary.real_servers_up), (3, 2));

    // Removing the first virtual server releases it from the kernel.
    let only_second = conf::load_str(second, "second.toml").unwrap();
    let summary = lb.apply(&Arc::new(only_second.clone())).await.unwrap();
    assert_eq!((summary.removed, summary.unchanged), (1, 1));
    let status = lb.status().await.unwrap();
    assert_eq!(status.virtual_servers.len(), 1);
    assert_eq!(status.virtual_servers[0].key, "192.0.2.10:81/tcp");
    wait_status(&lb, Duration::from_secs(2), |_| kernel.dests(80).is_none()).await;
    assert!(kernel.dests(81).is_some());

    // An invalid mapping (unknown script user) changes nothing.
    let mut bad = only_second.clone();
    bad.global.script_user = "vigil-no-such-user-xyz".into();
    bad.virtual_servers[0].real_servers[0]
        .checks
        .push(conf::Check {
            kind: conf::CheckKind::Script {
                command: vec!["/bin/true".into()],
                dynamic_weight: false,
            },
            ..initial.virtual_servers[0].real_servers[0].checks[0].clone()
        });
    assert!(matches!(
        lb.apply(&Arc::new(bad)).await,
        Err(LbError::Map(_))
    ));
    assert!(
        lb.status().await.unwrap().virtual_servers[0].real_servers[0]
            .checks
            .is_empty()
    );
    drop(live);
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_honours_omega() {
    let a = HttpServer::start().await;
    for (omega, kept) in [(false, true), (true, false)] {
        let kernel = SharedFake::default();
        let vs = format!("omega = {omega}");
        let lb = start(&config("tcp", &[a.addr], &vs, ""), &kernel);
        wait_status(&lb, Duration::from_secs(2), |s| s.ipvs == "ok").await;
        assert!(kernel.dests(80).is_some());
        lb.shutdown().await;
        assert_eq!(kernel.dests(80).is_some(), kept, "omega = {omega}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_ipvs_the_desired_table_is_still_computed() {
    let a = HttpServer::start().await;
    let options = LbOptions::with_backend(
        IpvsBackend::Disabled("kernel has no IPVS".into()),
        SchedulerConfig::default(),
    );
    let lb = LbRuntime::start(&Arc::new(config("tcp", &[a.addr], "", "")), options).unwrap();
    let addr = a.stop().await;
    wait_status(&lb, detection_limit(), |s| !real(s, 0, addr).up).await;
    let status = lb.status().await.unwrap();
    assert_eq!(status.ipvs, "unavailable: kernel has no IPVS");
    assert_eq!(status.last_sync_secs_ago, None);
    assert!(status.virtual_servers[0].desired.is_empty());
    let summary = status.summary();
    assert_eq!(
        (
            summary.virtual_servers,
            summary.virtual_servers_up,
            summary.real_servers_up
        ),
        (1, 0, 0)
    );
    lb.shutdown().await;
}

#[tokio::test]
async fn ipvs_is_not_opened_without_virtual_servers() {
    let kernel = SharedFake::default();
    let empty = conf::load_str("", "empty.toml").unwrap();
    let lb = start(&empty, &kernel);
    // Give the kernel task its chance to (wrongly) open and converge.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let status = lb.status().await.unwrap();
    assert!(status.ipvs.starts_with("unused: "), "{}", status.ipvs);
    assert!(status.virtual_servers.is_empty());
    // The first virtual server opens it.
    let a = HttpServer::start().await;
    lb.apply(&Arc::new(config("tcp", &[a.addr], "", "")))
        .await
        .unwrap();
    wait_status(&lb, Duration::from_secs(2), |s| s.ipvs == "ok").await;
    assert!(kernel.dests(80).is_some());
    lb.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resync_repairs_external_changes() {
    let a = HttpServer::start().await;
    let kernel = SharedFake::default();
    let lb = start(&config("tcp", &[a.addr], "", ""), &kernel);
    wait_status(&lb, Duration::from_secs(2), |_| kernel.dests(80).is_some()).await;
    // Someone runs `ipvsadm -D`; no health changes follow, only the periodic resync (200 ms
    // here) can notice.
    let key = lvs::ServiceKey::Tcp("192.0.2.10".parse().unwrap(), 80);
    kernel.with(|f| f.table.services.remove(&key));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while kernel.dests(80) != Some(vec![(a.addr.to_string(), 1)]) {
        assert!(tokio::time::Instant::now() < deadline, "not repaired");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lb.shutdown().await;
}

/// The three loops beat from their own progress, judged with the watchdog's decision logic at
/// injected instants: all live while they run; when the kernel table blocks (the fake's lock
/// held, as a hung netlink call would), the IPVS reconciler alone is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lb_loop_beats_and_a_blocked_ipvs_reconciler_is_named() {
    use std::time::Instant;

    use crate::watchdog::{BEAT_EVERY, Policy, Stall, Verdict, assess};

    let a = HttpServer::start().await;
    let kernel = SharedFake::default();
    let lb = start(&config("tcp", &[a.addr], "", ""), &kernel);
    wait_status(&lb, Duration::from_secs(2), |s| s.ipvs == "ok").await;
    let components = lb.liveness().components();
    let names: Vec<&str> = components.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["load balancer", "check scheduler", "ipvs reconciler"]
    );
    let policy = Policy::for_interval(Duration::from_secs(1));
    // Longer than a beat: a beacon that only beat at its creation would now be this old.
    let t0 = Instant::now();
    tokio::time::sleep(BEAT_EVERY * 3).await;
    let now = Instant::now();
    assert_eq!(assess(now, policy, &components), Verdict::Live);
    for (name, beacon) in &components {
        let silent = beacon.silent_for(now).expect("not retired");
        assert!(
            silent < now - t0,
            "{name} did not beat since the start ({silent:?})"
        );
    }

    // Block the kernel table (a thread holds its lock until released); the next resync
    // (200 ms) sticks in it, as in a netlink call that never returns.
    let (locked_tx, locked) = std::sync::mpsc::channel::<()>();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let fake = kernel.clone();
    let holder = std::thread::spawn(move || {
        fake.with(|_| {
            let _ = locked_tx.send(());
            let _ = released.recv_timeout(Duration::from_secs(30));
        });
    });
    locked
        .recv_timeout(Duration::from_secs(5))
        .expect("the kernel table locked");
    let blocked_at = Instant::now();
    tokio::time::sleep(policy.limit + BEAT_EVERY * 2).await;
    let now = Instant::now();
    match assess(now, policy, &components) {
        Verdict::Stalled(stalls) => {
            let named: Vec<&str> = stalls.iter().map(|s| s.component.as_str()).collect();
            assert_eq!(named, ["ipvs reconciler"], "{stalls:?}");
            let Stall { silent_for, .. } = &stalls[0];
            assert!(*silent_for > policy.limit && *silent_for <= now - blocked_at + BEAT_EVERY);
        }
        Verdict::Live => panic!("a blocked IPVS reconciler was judged live"),
    }
    release.send(()).unwrap();
    holder.join().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while assess(Instant::now(), policy, &components) != Verdict::Live {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no beats after the unblock"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lb.shutdown().await;
    // Stopped on purpose: no longer judged.
    assert_eq!(
        assess(Instant::now() + Duration::from_mins(1), policy, &components),
        Verdict::Live
    );
}

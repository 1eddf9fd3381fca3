//! The fencing task against a real in-process coordination node (one voter on loopback), with
//! two fencing runtimes standing for two load balancers. The instances have no VIPs, so the
//! kernel is not touched: these tests cover the coordination glue (sessions, keep-alives,
//! owner znodes, tokens, hand-over); the kernel side is covered by the lab tests.

use std::time::Duration;

use tokio::sync::watch;
use vigil_conf as conf;
use vigil_coord::node::CoordNode;

use super::{FenceHandle, FenceRuntime, FenceSettings, FenceStatus, owner_path};
use crate::testing::{Dir, single_node};

const WAIT: Duration = Duration::from_secs(15);

fn instance() -> conf::VrrpInstance {
    let toml = r#"
[[vrrp_instance]]
name = "vi_1"
interface = "vnet0"
vrid = 51
vips = ["10.0.0.100/24"]
fencing = "off"
"#;
    let config = conf::load_str(toml, "test.toml").expect("test config");
    let mut instance = config.vrrp_instances[0].clone();
    // No VIPs: nothing reaches the host's kernel.
    instance.vips.clear();
    instance
}

fn fencer(node: &CoordNode, name: &str) -> FenceRuntime {
    FenceRuntime::start(
        node.clone(),
        FenceSettings::new(name, Duration::from_secs(4)),
    )
    .expect("fencing runtime")
}

async fn wait_for(
    status: &mut watch::Receiver<FenceStatus>,
    what: &str,
    pred: impl Fn(&FenceStatus) -> bool,
) -> FenceStatus {
    let result = tokio::time::timeout(WAIT, status.wait_for(|s| pred(s)))
        .await
        .map(|r| r.map(|s| s.clone()));
    match result {
        Ok(Ok(s)) => s,
        _ => panic!(
            "timed out waiting for {what}; status {:?}",
            *status.borrow()
        ),
    }
}

fn register(handle: &FenceHandle) -> (super::FenceMember, watch::Receiver<FenceStatus>) {
    let member = handle.register(&instance());
    let status = member.status();
    (member, status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_wait_hand_over_and_tokens_increase() {
    let dir = Dir::new("fence");
    let node = single_node(&dir).await;
    let lb1 = fencer(&node, "lb1");
    let lb2 = fencer(&node, "lb2");
    let (m1, mut s1) = register(&lb1.handle());
    let (m2, mut s2) = register(&lb2.handle());
    wait_for(&mut s1, "lb1 lease", |s| s.quorum).await;
    wait_for(&mut s2, "lb2 lease", |s| s.quorum).await;

    m1.want(true);
    let first = wait_for(&mut s1, "lb1 holding", |s| s.holding).await;
    assert_eq!(first.owner.as_deref(), Some("lb1"));
    let t1 = first.token.expect("token");

    // lb2 becomes VRRP master too (split VRRP): it must wait, seeing lb1 as the owner.
    m2.want(true);
    let waiting = wait_for(&mut s2, "lb2 sees lb1", |s| s.owner.is_some()).await;
    assert_eq!(
        (waiting.owner.as_deref(), waiting.token, waiting.holding),
        (Some("lb1"), Some(t1), false)
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!s2.borrow().holding, "two holders");

    // Graceful hand-over: lb1 lets go, lb2 claims at once with a larger token.
    m1.want(false);
    let second = wait_for(&mut s2, "lb2 holding", |s| s.holding).await;
    let t2 = second.token.expect("token");
    assert!(t2 > t1, "{t2} <= {t1}");
    assert!(!s1.borrow().holding);
    let (data, owner_session) = node
        .read_linearizable(|sm| {
            let (data, stat) = sm.tree().get(&owner_path("vi_1")).expect("owner znode");
            (data.to_vec(), stat.ephemeral_owner)
        })
        .await
        .expect("read");
    assert!(data.starts_with(b"lb2\n"), "{data:?}");
    assert_ne!(owner_session, 0, "the owner znode is ephemeral");

    // A clean stop of lb2 closes its session: lb1, wanting again, claims with a larger token.
    m1.want(true);
    drop(m2);
    lb2.shutdown().await;
    let third = wait_for(&mut s1, "lb1 holding again", |s| s.holding).await;
    assert!(third.token.expect("token") > t2);

    lb1.shutdown().await;
    node.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ended_behind_our_back_drops_the_claim_and_a_new_one_gets_a_larger_token() {
    let dir = Dir::new("fence");
    let node = single_node(&dir).await;
    let lb1 = fencer(&node, "lb1");
    let (m1, mut s1) = register(&lb1.handle());
    m1.want(true);
    let first = wait_for(&mut s1, "lb1 holding", |s| s.holding).await;
    let t1 = first.token.expect("token");
    let session = node
        .read_linearizable(|sm| {
            sm.tree()
                .get(&owner_path("vi_1"))
                .map(|(_, stat)| stat.ephemeral_owner)
        })
        .await
        .expect("read")
        .expect("owner znode");
    // The quorum ends the session (as an expiry would): the next keep-alive learns it, the
    // VIPs go, and only a new session's new claim may hold them again.
    node.close_session(vigil_coord::SessionId(session))
        .await
        .expect("close");
    wait_for(&mut s1, "lb1 dropping the claim", |s| !s.holding).await;
    let again = wait_for(&mut s1, "lb1 holding under a new session", |s| {
        s.holding && s.token.is_some_and(|t| t > t1)
    })
    .await;
    assert!(again.quorum);
    lb1.shutdown().await;
    node.shutdown().await.expect("shutdown");
}

/// The fencing task's loop beats for the watchdog while it holds a lease (its timers are seconds
/// apart, so the beats come from the loop's own heartbeat as well as its work), and retires its
/// beacon when stopped on purpose.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fencing_loop_beats_for_the_watchdog_and_retires_on_shutdown() {
    use std::time::Instant;

    use crate::watchdog::{BEAT_EVERY, Policy, Verdict, assess};

    let dir = Dir::new("fence");
    let node = single_node(&dir).await;
    let lb1 = fencer(&node, "lb1");
    let (m1, mut s1) = register(&lb1.handle());
    m1.want(true);
    wait_for(&mut s1, "lb1 holding", |s| s.holding).await;
    let beacon = lb1.liveness();
    let watched = [("fencing".to_owned(), beacon.clone())];
    let policy = Policy::for_interval(Duration::from_secs(1));
    for _ in 0..4 {
        let before = Instant::now();
        tokio::time::sleep(BEAT_EVERY * 2).await;
        let now = Instant::now();
        assert_eq!(assess(now, policy, &watched), Verdict::Live);
        let silent = beacon.silent_for(now).expect("not retired");
        assert!(
            silent < now - before,
            "no beat within {:?} ({silent:?} silent)",
            now - before
        );
    }
    lb1.shutdown().await;
    assert_eq!(
        beacon.silent_for(Instant::now()),
        None,
        "still judged after shutdown"
    );
    node.shutdown().await.expect("shutdown");
}

/// `[cluster.fencing]` reaches the lease and the claims: the session timeout, the keep-alive
/// interval, the budget arithmetic and the kernel lifetimes use the configured values, not the
/// defaults, and `[cluster] session_timeout` (the clients' default) does not leak in.
#[test]
fn fencing_parameters_come_from_the_cluster_section() {
    let toml = "[cluster]\nnode_id = 1\nsession_timeout = \"20s\"\n[cluster.fencing]\n\
                session_timeout = \"6s\"\nkeepalive_interval = \"400ms\"\n\
                max_clock_drift_ppm = 1000\nmargin = \"300ms\"\nkernel_slack = \"2s\"\n";
    let config = conf::load_str(toml, "test.toml").expect("test config");
    let cluster = config.cluster.expect("cluster");
    let settings = FenceSettings::from_cluster("lb1", &cluster);
    assert_eq!(settings.node_name, "lb1");
    assert_eq!(settings.session_timeout, Duration::from_secs(6));
    assert_eq!(settings.lease.max_drift_ppm, 1000);
    assert_eq!(settings.lease.margin, Duration::from_millis(300));
    assert_eq!(
        settings.lease.keepalive_interval,
        Duration::from_millis(400)
    );
    assert_eq!(settings.claim.kernel_slack, Duration::from_secs(2));
    assert_eq!(
        settings.claim.retry,
        vigil_fence::ClaimConfig::default().retry
    );
    // The lease built from them has the budget and keep-alive interval conf computes.
    let timeout = cluster.fencing.session_timeout;
    let lease = vigil_fence::Lease::new(
        settings.lease,
        vigil_fence::SessionId(1),
        timeout,
        std::time::Instant::now(),
    )
    .expect("valid parameters");
    assert_eq!(Some(lease.budget()), cluster.fencing.lease_budget(timeout));
    assert_eq!(
        lease.keepalive_interval(),
        cluster.fencing.keepalive_for(timeout)
    );
}

//! Jepsen-style check: concurrent clients get, set and compare-and-set (set with a version) a
//! few keys on a 3-node cluster while a seeded nemesis restarts nodes and partitions the
//! network; the recorded history must be linearizable (see `checker`).
//!
//! The fault schedule comes from the seed; the interleaving of requests with faults does not
//! (real threads, real sockets), which is the point: every run explores a different one.

mod checker;
mod proxy;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use vigil_coord::error::Error;
use vigil_coord::node::{CoordNode, Role};
use vigil_coord::request::{Command, Op, OpResult, Request, Response};
use vigil_coord::session::SessionId;

use self::checker::{Call, Operation, Outcome, Register};
use self::proxy::{Network, source_ip};
use super::harness::{Cluster, bounded, put, session};

const KEYS: [&str; 3] = ["/lin-a", "/lin-b", "/lin-c"];
const CLIENTS: usize = 6;
/// Bounds each client's loop besides the workload's duration.
const MAX_OPS_PER_CLIENT: usize = 1000;
const WORKLOAD: Duration = Duration::from_secs(7);
/// Shorter than the node's own request timeout (3 s): a client that gives up leaves its
/// request in flight, so it may still take effect later, the hardest case for the system.
const OP_TIMEOUT: Duration = Duration::from_secs(1);

/// splitmix64: a seeded, dependency-free generator for the fault schedule and the workload.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.below(hi - lo))
    }
}

/// The history under construction, with its logical clock.
#[derive(Default)]
struct Recorder {
    clock: AtomicU64,
    ops: Mutex<Vec<Operation>>,
}

impl Recorder {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn record(&self, op: Operation) {
        self.ops
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(op);
    }
}

/// The nodes clients may use right now (the nemesis removes a node before stopping it).
#[derive(Clone, Default)]
struct Live(Arc<Mutex<BTreeMap<u64, CoordNode>>>);

impl Live {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, CoordNode>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The node `id`, or the next live one after it.
    fn at_or_after(&self, id: u64) -> Option<CoordNode> {
        let live = self.lock();
        live.range(id..)
            .chain(live.range(..id))
            .next()
            .map(|(_, n)| n.clone())
    }
}

fn next_id(id: u64) -> u64 {
    id % 3 + 1
}

/// Runs `call` on `node`; `None` for a failed read, which had no effect and is left out.
async fn execute(
    node: &CoordNode,
    session: SessionId,
    request_id: u64,
    key: &str,
    call: Call,
) -> Option<Outcome> {
    let set = |value: u64, version| Command::Write {
        session,
        request_id,
        request: Request::Single(Op::SetData {
            path: key.into(),
            data: value.to_be_bytes().to_vec(),
            version,
        }),
    };
    let cmd = match call {
        Call::Read => {
            let read = node.read_linearizable(|sm| {
                sm.tree().get(key).ok().map(|(data, stat)| Register {
                    value: data.try_into().map_or(u64::MAX, u64::from_be_bytes),
                    version: stat.version,
                })
            });
            return match tokio::time::timeout(OP_TIMEOUT, read).await {
                // A missing key reads as a state no history reaches: the checker rejects it.
                Ok(Ok(seen)) => Some(Outcome::Read(seen.unwrap_or(Register {
                    value: u64::MAX,
                    version: -1,
                }))),
                _ => None,
            };
        }
        Call::Write(value) => set(value, None),
        Call::Cas { expected, value } => set(value, Some(expected)),
    };
    Some(
        match tokio::time::timeout(OP_TIMEOUT, node.write(cmd)).await {
            Ok(Ok(Response::Op(OpResult::DataSet { stat }))) => Outcome::Written {
                version: stat.version,
            },
            Ok(Ok(r)) if r.error() == Some(Error::BadVersion) => Outcome::CasFailed,
            // Timeouts, lost connections, a stopping node: it may or may not have been applied.
            _ => Outcome::Unknown,
        },
    )
}

/// One client: a session, then random reads, writes and CASes until `deadline`.
async fn client(me: usize, seed: u64, live: Live, recorder: Arc<Recorder>, deadline: Instant) {
    let mut rng = Rng(seed ^ (me as u64 + 1).wrapping_mul(0x1234_5678_9abc_def1));
    let mut at = me as u64 % 3 + 1;
    let session = loop {
        assert!(
            Instant::now() < deadline,
            "client {me} found no node to open a session"
        );
        if let Some(node) = live.at_or_after(at)
            && let Ok(Ok((s, _))) =
                tokio::time::timeout(OP_TIMEOUT, node.create_session(30_000)).await
        {
            break s;
        }
        at = next_id(at);
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut versions = [0i32; KEYS.len()];
    let mut written = 0u64;
    for request_id in 1..=MAX_OPS_PER_CLIENT as u64 {
        if Instant::now() >= deadline {
            break;
        }
        // Think time spreads each client's operations over the whole run, and so over faults.
        tokio::time::sleep(rng.millis(1, 8)).await;
        let Some(node) = live.at_or_after(at) else {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        };
        at = node.id();
        let k = rng.below(KEYS.len() as u64) as usize;
        written += 1;
        let value = ((me as u64 + 1) << 32) | written;
        let call = match rng.below(10) {
            0..=3 => Call::Read,
            4..=6 => Call::Write(value),
            // Mostly the version last seen (may win), sometimes an older one (must lose).
            r => Call::Cas {
                expected: versions[k] - i32::from(r == 9),
                value,
            },
        };
        let invoked = recorder.tick();
        let outcome = execute(&node, session, request_id, KEYS[k], call).await;
        let completed = recorder.tick();
        match outcome {
            Some(Outcome::Read(seen)) => versions[k] = seen.version,
            Some(Outcome::Written { version }) => versions[k] = version,
            // Try another node after a failure.
            Some(Outcome::Unknown) | None => at = next_id(at),
            Some(Outcome::CasFailed) => {}
        }
        if let Some(outcome) = outcome {
            recorder.record(Operation {
                client: me,
                key: KEYS[k].into(),
                call,
                outcome,
                invoked,
                completed: (outcome != Outcome::Unknown).then_some(completed),
            });
        }
    }
}

#[derive(Debug, Default)]
struct Faults {
    restarts: usize,
    isolations: usize,
    cut_links: usize,
}

fn leader_of(live: &Live) -> Option<u64> {
    live.lock()
        .values()
        .map(CoordNode::status)
        .find(|s| s.role == Role::Leader)
        .map(|s| s.id)
}

/// Injects one fault at a time until `deadline`: restart a node (the leader half the time),
/// isolate a node (the leader half the time), or cut a single link; each lasts 0.3–1.5 s.
async fn nemesis(
    cluster: &mut Cluster,
    net: &Network,
    live: &Live,
    rng: &mut Rng,
    deadline: Instant,
) -> Faults {
    let mut faults = Faults::default();
    while Instant::now() + Duration::from_secs(1) < deadline {
        tokio::time::sleep(rng.millis(200, 600)).await;
        let random = rng.below(3) + 1;
        let victim = if rng.below(2) == 0 {
            leader_of(live).unwrap_or(random)
        } else {
            random
        };
        let lasts = rng.millis(300, 1500);
        match rng.below(3) {
            0 => {
                live.lock().remove(&victim);
                cluster.stop(victim).await;
                tokio::time::sleep(lasts).await;
                cluster.restart(victim).await;
                live.lock().insert(victim, cluster.node(victim).clone());
                faults.restarts += 1;
            }
            1 => {
                net.isolate(&[victim]);
                tokio::time::sleep(lasts).await;
                net.heal();
                faults.isolations += 1;
            }
            _ => {
                net.cut(victim, next_id(victim));
                tokio::time::sleep(lasts).await;
                net.heal();
                faults.cut_links += 1;
            }
        }
    }
    faults
}

async fn run(seed: u64) {
    let mut cluster = Cluster::bind("lin", 3).await;
    let net = Network::start(&cluster.addrs).await;
    let members: BTreeMap<u64, String> = net
        .addrs
        .iter()
        .map(|(id, a)| (*id, a.to_string()))
        .collect();
    cluster.retune(move |id, c| {
        c.initial_members = members.clone();
        c.peer_source = Some(source_ip(id));
    });
    cluster.launch().await;
    let leader = cluster.leader(Duration::from_secs(10)).await;
    let s = session(cluster.node(leader), 30_000).await;
    for (i, key) in KEYS.iter().enumerate() {
        put(
            cluster.node(leader),
            s,
            i as u64 + 1,
            key,
            &0u64.to_be_bytes(),
        )
        .await;
    }

    let live = Live::default();
    live.lock()
        .extend(cluster.live().map(|n| (n.id(), n.clone())));
    let recorder = Arc::new(Recorder::default());
    let deadline = Instant::now() + WORKLOAD;
    let clients: Vec<_> = (0..CLIENTS)
        .map(|me| {
            tokio::spawn(client(
                me,
                seed,
                live.clone(),
                Arc::clone(&recorder),
                deadline,
            ))
        })
        .collect();
    let mut rng = Rng(seed);
    let faults = nemesis(&mut cluster, &net, &live, &mut rng, deadline).await;
    for c in clients {
        c.await.expect("client task");
    }

    // Healed: every node must now read the final state of every key.
    net.heal();
    cluster.leader(Duration::from_secs(10)).await;
    for node in cluster.live() {
        for key in KEYS {
            let invoked = recorder.tick();
            let outcome = execute(node, s, 0, key, Call::Read).await;
            let completed = recorder.tick();
            let outcome = outcome.unwrap_or_else(|| panic!("final read of {key} failed"));
            recorder.record(Operation {
                client: usize::MAX,
                key: key.into(),
                call: Call::Read,
                outcome,
                invoked,
                completed: Some(completed),
            });
        }
    }
    cluster.shutdown().await;

    let history = std::mem::take(&mut *recorder.ops.lock().unwrap_or_else(PoisonError::into_inner));
    let count = |f: &dyn Fn(&Operation) -> bool| history.iter().filter(|o| f(o)).count();
    let reads = count(&|o| o.call == Call::Read);
    let writes = count(&|o| matches!(o.call, Call::Write(_)) && o.completed.is_some());
    let cas_won = count(&|o| {
        matches!(o.call, Call::Cas { .. }) && matches!(o.outcome, Outcome::Written { .. })
    });
    let cas_lost = count(&|o| o.outcome == Outcome::CasFailed);
    let unknown = count(&|o| o.outcome == Outcome::Unknown);
    eprintln!(
        "linearizability seed {seed:#x}: {} ops ({reads} reads, {writes} writes, {cas_won} CAS won, \
         {cas_lost} CAS lost, {unknown} unknown), faults {faults:?}, proxies {:?}",
        history.len(),
        net.stats()
    );
    let report = checker::check(&history, Register::default())
        .unwrap_or_else(|f| panic!("seed {seed:#x}: {f}"));
    eprintln!("linearizability seed {seed:#x}: {report}");
    assert!(report.operations >= 200, "too few operations to mean much");
    assert!(cas_won > 0 && cas_lost > 0, "both CAS outcomes must occur");
    assert!(
        faults.restarts + faults.isolations + faults.cut_links >= 3,
        "{faults:?}"
    );
    if faults.isolations + faults.cut_links > 0 {
        let stats = net.stats();
        assert!(
            stats.severed.load(Ordering::Relaxed) + stats.blackholed.load(Ordering::Relaxed) > 0,
            "partitions that cut no connection: {stats:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_and_cas_histories_are_linearizable_under_restarts_and_partitions() {
    for seed in [0x5eed_0001, 0x5eed_0002, 0x5eed_0003] {
        bounded("linearizability run", Duration::from_secs(40), run(seed)).await;
    }
}

//! Network partitions between in-process nodes: a TCP proxy in front of every node's peer
//! port, and a table of cut links.
//!
//! The cluster's membership lists the proxies' addresses, so every peer connection (Raft RPCs
//! and forwarded client requests alike) goes through the proxy of its destination. Node `i`
//! connects from its own loopback address [`source_ip`]`(i)` (`CoordConfig::peer_source`), so
//! the proxy knows both ends of each connection. Cutting a link closes its open connections
//! and blackholes new ones: they are accepted and everything sent on them is swallowed until
//! the link heals, as with a silent network failure, so the sender sees timeouts rather than
//! refusals.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The loopback address node `id` connects to its peers from.
pub(crate) fn source_ip(id: u64) -> IpAddr {
    let last = u8::try_from(10 + id).expect("small node id");
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

fn node_of(ip: IpAddr) -> Option<u64> {
    match ip {
        IpAddr::V4(v4) if v4.octets()[..3] == [127, 0, 0] => {
            u64::from(v4.octets()[3]).checked_sub(10)
        }
        _ => None,
    }
}

/// Cut links, as unordered pairs `(low, high)`.
type Cuts = BTreeSet<(u64, u64)>;

fn pair(a: u64, b: u64) -> (u64, u64) {
    (a.min(b), a.max(b))
}

/// The proxies of a cluster.
pub(crate) struct Network {
    /// Proxy address of each node: what the membership lists.
    pub(crate) addrs: BTreeMap<u64, SocketAddr>,
    cuts: watch::Sender<Cuts>,
    stats: Arc<Stats>,
    tasks: Vec<JoinHandle<()>>,
}

/// What the proxies did, so a test can tell that its partitions bit.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Connections closed because their link was cut.
    pub(crate) severed: AtomicUsize,
    /// Connections accepted on a cut link and swallowed.
    pub(crate) blackholed: AtomicUsize,
}

impl Network {
    /// Starts one proxy per entry of `upstreams` (node id → its peer listener).
    pub(crate) async fn start(upstreams: &BTreeMap<u64, SocketAddr>) -> Network {
        let (cuts, _) = watch::channel(Cuts::new());
        let mut addrs = BTreeMap::new();
        let mut tasks = Vec::new();
        let stats = Arc::new(Stats::default());
        for (&id, &upstream) in upstreams {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
            addrs.insert(id, listener.local_addr().expect("proxy addr"));
            let link = Link {
                to: id,
                upstream,
                cuts: cuts.subscribe(),
                stats: Arc::clone(&stats),
            };
            tasks.push(tokio::spawn(accept(listener, link)));
        }
        Network {
            addrs,
            cuts,
            stats,
            tasks,
        }
    }

    /// What the proxies did so far.
    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Cuts the links between every node of `side` and every node not in it.
    pub(crate) fn isolate(&self, side: &[u64]) {
        let all: Vec<u64> = self.addrs.keys().copied().collect();
        self.cuts.send_modify(|cuts| {
            for &a in side {
                for &b in all.iter().filter(|b| !side.contains(b)) {
                    cuts.insert(pair(a, b));
                }
            }
        });
    }

    /// Cuts the link between `a` and `b` only.
    pub(crate) fn cut(&self, a: u64, b: u64) {
        self.cuts.send_modify(|cuts| {
            cuts.insert(pair(a, b));
        });
    }

    /// Restores every link.
    pub(crate) fn heal(&self) {
        self.cuts.send_modify(BTreeSet::clear);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// What a proxy needs to relay to its node.
#[derive(Clone)]
struct Link {
    to: u64,
    upstream: SocketAddr,
    cuts: watch::Receiver<Cuts>,
    stats: Arc<Stats>,
}

/// The accept loop of a node's proxy. Connection tasks are tracked so that they end with the
/// proxy.
async fn accept(listener: TcpListener, link: Link) {
    let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let _guard = AbortOnDrop(Arc::clone(&conns));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        // A connection from an unknown address (none in these tests) is never cut.
        let from = node_of(peer.ip()).unwrap_or(0);
        let task = tokio::spawn(relay(stream, pair(from, link.to), link.clone()));
        let mut conns = conns.lock().unwrap_or_else(PoisonError::into_inner);
        conns.retain(|t| !t.is_finished());
        conns.push(task);
    }
}

struct AbortOnDrop(Arc<Mutex<Vec<JoinHandle<()>>>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in self.0.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            t.abort();
        }
    }
}

/// Carries one connection while its link is up; swallows it while the link is cut.
async fn relay(mut inbound: TcpStream, ends: (u64, u64), link: Link) {
    let Link {
        upstream,
        mut cuts,
        stats,
        ..
    } = link;
    let is_cut = |c: &Cuts| c.contains(&ends);
    if is_cut(&cuts.borrow_and_update()) {
        stats.blackholed.fetch_add(1, Ordering::Relaxed);
        // Blackhole until healed, then close so the sender reconnects through a live link.
        let mut sink = [0u8; 4096];
        loop {
            tokio::select! {
                read = inbound.read(&mut sink) => {
                    if matches!(read, Ok(0) | Err(_)) {
                        return;
                    }
                }
                changed = cuts.changed() => {
                    if changed.is_err() || !is_cut(&cuts.borrow_and_update()) {
                        return;
                    }
                }
            }
        }
    }
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return; // The node is down: the sender sees the connection close.
    };
    let _ = outbound.set_nodelay(true);
    let _ = inbound.set_nodelay(true);
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
        _ = cuts.wait_for(is_cut) => {
            stats.severed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

//! The load shapes, identical for every target.
//!
//! Closed loop: each simulated client owns one connection and issues its next operation as
//! soon as the previous one completes, for a fixed duration. Keys are spread over
//! [`KEYS`] nodes, values are [`VALUE_LEN`] bytes.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinSet, time::Instant};

use crate::{
    error::{BenchError, Result},
    hist::Histogram,
    target::{Client, MANY_PREFIX, Target},
};

/// Number of distinct keys the write and read phases touch.
pub const KEYS: usize = 1000;
/// Value size of the write phases.
pub const VALUE_LEN: usize = 100;
/// Distinct keys the watchers watch (each key has `watchers / WATCH_KEYS` watchers).
pub const WATCH_KEYS: usize = 10;

/// The key of index `i` in the write/read key space.
pub fn key(i: usize) -> String {
    format!("/vb/k/{:04}", i % KEYS)
}

fn value(seed: usize) -> [u8; VALUE_LEN] {
    [b'a' + (seed % 26) as u8; VALUE_LEN]
}

/// Outcome of a closed-loop phase.
#[derive(Debug, Clone)]
pub struct Throughput {
    /// Completed operations.
    pub ops: usize,
    /// Failed operations.
    pub errors: usize,
    /// Completed operations per second of phase time.
    pub per_sec: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

/// Which operation a closed-loop phase issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// 100-byte overwrite of an existing key.
    Write,
    /// Linearizable read.
    Read,
}

/// Creates the [`KEYS`] keys the write and read phases use.
pub async fn prepare_keys(target: &dyn Target) -> Result<()> {
    let c = target.client(0).await?;
    for i in 0..KEYS {
        c.ensure(&key(i), &value(i)).await?;
    }
    c.close().await
}

/// Runs `clients` closed-loop clients issuing `op` for `duration`; clients are spread over
/// the members round-robin.
pub async fn closed_loop(
    target: &dyn Target,
    clients: usize,
    duration: Duration,
    op: Op,
) -> Result<Throughput> {
    let mut conns = Vec::with_capacity(clients);
    for i in 0..clients {
        conns.push(target.client(i).await?);
    }
    let start = Instant::now();
    let deadline = start + duration;
    let mut set = JoinSet::new();
    for (id, c) in conns.into_iter().enumerate() {
        set.spawn(client_loop(c, id, deadline, op));
    }
    let mut hist = Histogram::new();
    let mut errors = 0;
    while let Some(res) = set.join_next().await {
        let (h, e) = res.map_err(|e| BenchError::Cluster(format!("client task: {e}")))?;
        hist.merge(&h);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let ops = hist.len();
    Ok(Throughput {
        ops,
        errors,
        per_sec: ops as f64 / elapsed,
        p50: hist.percentile(50.0).unwrap_or_default(),
        p99: hist.percentile(99.0).unwrap_or_default(),
    })
}

async fn client_loop(
    c: Box<dyn Client>,
    id: usize,
    deadline: Instant,
    op: Op,
) -> (Histogram, usize) {
    let mut hist = Histogram::new();
    let mut errors = 0;
    let mut consecutive = 0;
    // A stride coprime to KEYS walks every key while clients start at different offsets.
    let mut k = id * 131;
    while Instant::now() < deadline && consecutive < 20 {
        k = (k + 7) % KEYS;
        let t0 = Instant::now();
        let res = match op {
            Op::Write => c.write(&key(k), &value(k + id)).await,
            Op::Read => c.read_linearizable(&key(k)).await.map(drop),
        };
        if res.is_ok() {
            hist.record(t0.elapsed());
            consecutive = 0;
        } else {
            errors += 1;
            consecutive += 1;
        }
    }
    // A failed goodbye only leaves a session to expire; the figures are already taken.
    let _ = c.close().await;
    (hist, errors)
}

/// Outcome of the watch phase.
#[derive(Debug, Clone)]
pub struct WatchLatency {
    /// Notifications received.
    pub notifications: usize,
    /// Notifications that did not arrive within 10 s of their write.
    pub missed: usize,
    /// Median set→notification latency.
    pub p50: Duration,
    /// 99th percentile set→notification latency.
    pub p99: Duration,
    /// Where the time goes, per set (p99 of each): the writer's set → its acknowledgement
    /// (commit through the leader), set → the first of the key's watchers notified, and the
    /// first → the last of them notified (fan-out on member 0 and in this process).
    pub ack_p99: Duration,
    /// See `ack_p99`.
    pub first_p99: Duration,
    /// See `ack_p99`.
    pub spread_p99: Duration,
    /// Medians of the same three.
    pub ack_p50: Duration,
    /// See `ack_p50`.
    pub first_p50: Duration,
    /// See `ack_p50`.
    pub spread_p50: Duration,
}

/// `watchers` clients, all on member 0, watch [`WATCH_KEYS`] keys; a writer on member 1
/// sets one key at a time and waits for all its watchers before the next set.
pub async fn watch_latency(
    target: &dyn Target,
    watchers: usize,
    duration: Duration,
) -> Result<WatchLatency> {
    let wkey = |j: usize| format!("/vb/w/{j}");
    let writer = target.client(1).await?;
    for j in 0..WATCH_KEYS {
        writer.ensure(&wkey(j), b"0").await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut held = Vec::with_capacity(watchers);
    let mut per_key = [0usize; WATCH_KEYS];
    for i in 0..watchers {
        let c = target.client(0).await?;
        c.watch(&wkey(i % WATCH_KEYS), tx.clone()).await?;
        per_key[i % WATCH_KEYS] += 1;
        held.push(c);
    }
    let mut hist = Histogram::new();
    let (mut acks, mut firsts, mut spreads) =
        (Histogram::new(), Histogram::new(), Histogram::new());
    let mut missed = 0;
    let deadline = Instant::now() + duration;
    let mut round = 0usize;
    while Instant::now() < deadline {
        let j = round % WATCH_KEYS;
        let key = wkey(j);
        let t0 = Instant::now();
        writer.write(&key, round.to_string().as_bytes()).await?;
        acks.record(t0.elapsed());
        let mut got = 0;
        let mut first = None;
        while got < per_key[j] {
            match tokio::time::timeout_at(t0 + Duration::from_secs(10), rx.recv()).await {
                Ok(Some(n)) if n.key == key => {
                    let at = n.at.saturating_duration_since(t0);
                    hist.record(at);
                    let first = *first.get_or_insert(at);
                    got += 1;
                    if got == per_key[j] {
                        firsts.record(first);
                        spreads.record(at.saturating_sub(first));
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) => return Err(BenchError::Closed("watch channel")),
                Err(_) => {
                    missed += per_key[j] - got;
                    break;
                }
            }
        }
        round += 1;
    }
    for c in held.iter().chain([&writer]) {
        let _ = c.close().await;
    }
    Ok(WatchLatency {
        notifications: hist.len(),
        missed,
        p50: hist.percentile(50.0).unwrap_or_default(),
        p99: hist.percentile(99.0).unwrap_or_default(),
        ack_p99: acks.percentile(99.0).unwrap_or_default(),
        first_p99: firsts.percentile(99.0).unwrap_or_default(),
        spread_p99: spreads.percentile(99.0).unwrap_or_default(),
        ack_p50: acks.percentile(50.0).unwrap_or_default(),
        first_p50: firsts.percentile(50.0).unwrap_or_default(),
        spread_p50: spreads.percentile(50.0).unwrap_or_default(),
    })
}

/// Creates `n` nodes `MANY_PREFIX/<i>` with 10-byte values, `inflight` requests at once over
/// up to 32 connections (a connection is shared by several tasks, which pipelines where the
/// protocol allows it). Returns the elapsed time.
pub async fn create_many<T: Target + ?Sized>(
    target: &T,
    n: usize,
    inflight: usize,
) -> Result<Duration> {
    let conns = inflight.clamp(1, 32);
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        clients.push(Arc::<dyn Client>::from(target.client(i).await?));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut set = JoinSet::new();
    for t in 0..inflight.max(1) {
        let c = Arc::clone(&clients[t % conns]);
        let next = Arc::clone(&next);
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<(), BenchError>(());
                }
                c.ensure(&format!("{MANY_PREFIX}/{i:07}"), b"0123456789")
                    .await?;
                if i > 0 && i.is_multiple_of(100_000) {
                    eprintln!(
                        "  created {i} nodes in {:.1} s",
                        start.elapsed().as_secs_f64()
                    );
                }
            }
        });
    }
    while let Some(res) = set.join_next().await {
        res.map_err(|e| BenchError::Cluster(format!("create task: {e}")))??;
    }
    let elapsed = start.elapsed();
    for c in &clients {
        let _ = c.close().await;
    }
    Ok(elapsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_stay_in_key_space() {
        assert_eq!(key(0), "/vb/k/0000");
        assert_eq!(key(KEYS + 5), "/vb/k/0005");
        assert_eq!(value(27).len(), VALUE_LEN);
    }

    #[test]
    fn stride_visits_every_key() {
        let mut seen = vec![false; KEYS];
        let mut k = 3 * 131;
        for _ in 0..KEYS {
            k = (k + 7) % KEYS;
            seen[k] = true;
        }
        assert!(
            seen.iter().all(|&s| s),
            "7 is coprime to 1000, so one lap covers all keys"
        );
    }
}

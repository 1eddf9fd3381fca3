//! Read-index batching: concurrent linearizable reads on the leader share one quorum round.
//!
//! A read may only use a round that *started after the read was invoked*: a round already in
//! flight may have confirmed leadership (and fixed its read index) before a write the reader
//! saw completing. So a read arriving while a round runs joins the next one, which starts as
//! soon as the current one ends and serves every read that queued meanwhile. A read arriving
//! while none runs starts one at once. The cost is at most one extra round of latency; the gain
//! is one quorum round per batch instead of per read.
//!
//! Rounds run on a spawned task, not in a caller's future, so a caller that gives up (timeout,
//! dropped connection) never strands the reads batched with it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use openraft::Raft;
use openraft::error::{CheckIsLeaderError, RaftError};
use tokio::sync::oneshot;

use super::CoordError;
use crate::raft::types::TypeConfig;

type Waiter = oneshot::Sender<Result<u64, CoordError>>;

/// Batches [`Raft::ensure_linearizable`] calls; one per node.
#[derive(Debug, Default)]
pub(crate) struct ReadBatcher {
    state: Arc<Mutex<Batch>>,
}

#[derive(Debug, Default)]
struct Batch {
    /// A round task is running (it keeps starting rounds while `next` is not empty).
    running: bool,
    /// Reads waiting for a round that has not started yet.
    next: Vec<Waiter>,
}

fn lock(state: &Mutex<Batch>) -> MutexGuard<'_, Batch> {
    // The critical sections only push and swap vectors: a panic cannot leave them half done.
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ReadBatcher {
    /// The read index of a quorum round that starts after this call, waiting at most
    /// `timeout`; each round itself is bounded by `round_timeout`.
    pub(crate) async fn read_index(
        &self,
        raft: &Raft<TypeConfig>,
        round_timeout: Duration,
        timeout: Duration,
    ) -> Result<u64, CoordError> {
        let raft = raft.clone();
        self.join(move || round(raft.clone(), round_timeout), timeout)
            .await
    }

    /// Waits for the result of a `round()` that starts after this call; starts one unless
    /// one is already running, in which case this read waits for the next.
    async fn join<F, Fut>(&self, round: F, timeout: Duration) -> Result<u64, CoordError>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64, CoordError>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut batch = lock(&self.state);
            batch.next.push(tx);
            !std::mem::replace(&mut batch.running, true)
        };
        if start {
            tokio::spawn(drive(Arc::clone(&self.state), round));
        }
        match tokio::time::timeout(timeout, rx).await {
            Err(_) => Err(CoordError::Timeout(timeout)),
            Ok(Err(_)) => Err(CoordError::Stopped("read-index round abandoned".to_owned())),
            Ok(Ok(result)) => result,
        }
    }
}

/// Runs rounds while reads are waiting for one.
async fn drive<F, Fut>(state: Arc<Mutex<Batch>>, round: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, CoordError>>,
{
    loop {
        let waiters = {
            let mut batch = lock(&state);
            if batch.next.is_empty() {
                batch.running = false;
                return;
            }
            std::mem::take(&mut batch.next)
        };
        let result = round().await;
        for waiter in waiters {
            let _ = waiter.send(
                result
                    .as_ref()
                    .copied()
                    .map_err(CoordError::for_each_waiter),
            );
        }
    }
}

/// One quorum round: the leader's read index, confirmed by a quorum.
async fn round(raft: Raft<TypeConfig>, timeout: Duration) -> Result<u64, CoordError> {
    match tokio::time::timeout(timeout, raft.ensure_linearizable()).await {
        Err(_) => Err(CoordError::Timeout(timeout)),
        Ok(Ok(log_id)) => Ok(log_id.map_or(0, |l| l.index)),
        Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
            Err(CoordError::NotLeader {
                leader: f.leader_id,
            })
        }
        Ok(Err(RaftError::APIError(e))) => Err(CoordError::Unavailable(e.to_string())),
        Ok(Err(RaftError::Fatal(e))) => Err(CoordError::Stopped(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::sync::Semaphore;

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    /// A fake quorum round that returns its own sequence number (1, 2, ...) once the test
    /// grants it a permit, so the test controls when each round ends.
    type FakeRound = std::pin::Pin<Box<dyn Future<Output = Result<u64, CoordError>> + Send>>;

    fn gated_rounds() -> (
        Arc<Semaphore>,
        Arc<AtomicU64>,
        impl Fn() -> FakeRound + Send + 'static,
    ) {
        let gate = Arc::new(Semaphore::new(0));
        let started = Arc::new(AtomicU64::new(0));
        let (g, s) = (Arc::clone(&gate), Arc::clone(&started));
        let round = move || {
            let (gate, started) = (Arc::clone(&g), Arc::clone(&s));
            Box::pin(async move {
                let seq = started.fetch_add(1, Ordering::SeqCst) + 1;
                gate.acquire().await.expect("gate").forget();
                Ok(seq)
            }) as FakeRound
        };
        (gate, started, round)
    }

    async fn until(what: &str, f: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !f() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Reads arriving while a round is in flight are not answered by it (it may predate them)
    /// but all share the single next round.
    #[tokio::test]
    async fn reads_during_a_round_share_the_next_one() {
        let batcher = Arc::new(ReadBatcher::default());
        let (gate, started, round) = gated_rounds();
        let round = Arc::new(round);

        let first = {
            let (b, r) = (Arc::clone(&batcher), Arc::clone(&round));
            tokio::spawn(async move { b.join(move || r(), WAIT).await })
        };
        until("the first round", || started.load(Ordering::SeqCst) == 1).await;

        let later: Vec<_> = (0..50)
            .map(|_| {
                let (b, r) = (Arc::clone(&batcher), Arc::clone(&round));
                tokio::spawn(async move { b.join(move || r(), WAIT).await })
            })
            .collect();
        until("the later reads to queue", || {
            lock(&batcher.state).next.len() == later.len()
        })
        .await;

        gate.add_permits(1);
        assert_eq!(first.await.expect("task").expect("read"), 1);
        gate.add_permits(1);
        for read in later {
            assert_eq!(read.await.expect("task").expect("read"), 2);
        }
        assert_eq!(started.load(Ordering::SeqCst), 2, "one round per batch");
        until("the round task to stop", || !lock(&batcher.state).running).await;

        // Idle again: the next read starts a fresh round of its own.
        let (b, r) = (Arc::clone(&batcher), Arc::clone(&round));
        let again = tokio::spawn(async move { b.join(move || r(), WAIT).await });
        gate.add_permits(1);
        assert_eq!(again.await.expect("task").expect("read"), 3);
    }

    /// A failed round fails every read batched on it, with the error's kind intact, and
    /// leaves the batcher usable.
    #[tokio::test]
    async fn a_failed_round_fails_its_batch_only() {
        let batcher = ReadBatcher::default();
        let failing = || async { Err(CoordError::NotLeader { leader: Some(3) }) };
        let err = batcher.join(failing, WAIT).await.expect_err("no leader");
        assert!(
            matches!(err, CoordError::NotLeader { leader: Some(3) }),
            "{err:?}"
        );
        let ok = batcher.join(|| async { Ok(7) }, WAIT).await.expect("read");
        assert_eq!(ok, 7);
    }
}

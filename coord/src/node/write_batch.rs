//! Write batching: client commands that arrive while the leader's Raft writes are in flight
//! are proposed together as one log entry, and a follower forwards the writes its clients send
//! meanwhile to the leader together, in one peer message.
//!
//! openraft 0.9.25's core handles one `client_write` at a time: it appends the entry and awaits
//! the log store's flush callback before it reads the next message (`RaftCore::append_to_log`),
//! and no config or API appends several client entries per `append`. One command per entry is
//! therefore one leader fsync per client write, and the log store's group commit has nothing
//! to group. Here, a command arriving while [`MAX_IN_FLIGHT`] proposals are pending waits in a
//! queue; when one completes, everything queued (up to [`MAX_COMMANDS`] commands and about
//! [`MAX_BYTES`] of payload) goes out as one [`VersionedCommand::V2`] entry, so the fsync rate
//! follows the commit rate rather than the client write rate. A lone command is proposed at
//! once, so an idle leader adds no latency.
//!
//! Each command keeps its own ZooKeeper semantics: its own zxid (see [`crate::zxid`]), dedupe
//! record and response, and a failing command does not affect the others. Commands keep their
//! arrival order, in the queue and across entries, so a session's pipelined requests stay in
//! request-id order.
//!
//! The same queue, as a [`ForwardBatcher`], carries a follower's writes to the leader: one
//! `ClientWrites` message per batch instead of a message, a response and their task wake-ups
//! per write. It does not hold commands back for a commit: up to [`MAX_FORWARDS_IN_FLIGHT`]
//! messages go out at once, and before taking a batch the driver yields once, so the client
//! connections woken in the same round (a commit answers many at once) queue their writes
//! first and share the message.
//!
//! Proposals run on a spawned task, not in a caller's future, so a caller that gives up
//! (timeout, dropped connection) never strands the commands batched with it.
//!
//! [`VersionedCommand::V2`]: crate::VersionedCommand::V2

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use openraft::Raft;
use openraft::error::{ClientWriteError, RaftError};
use tokio::sync::{Notify, oneshot};

use super::{CoordError, now_ms};
use crate::raft::network::ForwardError;
use crate::raft::types::{Proposal, TypeConfig};
use crate::request::{Command, Op, Request, Response};

/// Most commands in one entry; far below [`crate::zxid::MAX_BATCH`].
pub(crate) const MAX_COMMANDS: usize = 1024;

/// Payload bytes (znode data and paths) after which a batch is closed. A single larger
/// command still goes, alone.
pub(crate) const MAX_BYTES: usize = 1 << 20;

/// Proposals pending at once. Two let the leader append (and fsync) the next batch while the
/// previous one replicates, instead of leaving its disk idle for a follower round trip.
pub(crate) const MAX_IN_FLIGHT: usize = 2;

/// Forwarded batches pending at once on a follower. A bound on the messages (and memory) in
/// flight, not a pacing device: batching comes from the yield before each batch, so a write
/// is not held back behind a commit while the leader could already queue it.
pub(crate) const MAX_FORWARDS_IN_FLIGHT: usize = 16;

type Waiter<T> = oneshot::Sender<Result<T, CoordError>>;

/// Batches commands into `propose(batch)` calls, each answering every command of its batch
/// with a `T`.
#[derive(Debug)]
pub(crate) struct Batcher<T> {
    shared: Arc<Shared<T>>,
    /// Batches pending at once.
    max_in_flight: usize,
    /// Yield before taking a batch (see the module docs).
    gather: bool,
}

/// The leader's proposals: one log entry per batch.
pub(crate) type WriteBatcher = Batcher<Response>;

/// A follower's forwarded writes: one `ClientWrites` message per batch, each command answered
/// by the leader on its own.
pub(crate) type ForwardBatcher = Batcher<Result<Response, ForwardError>>;

impl Default for WriteBatcher {
    fn default() -> Self {
        Batcher::new(MAX_IN_FLIGHT, false)
    }
}

impl Default for ForwardBatcher {
    fn default() -> Self {
        Batcher::new(MAX_FORWARDS_IN_FLIGHT, true)
    }
}

#[derive(Debug)]
struct Shared<T> {
    queue: Mutex<Queue<T>>,
    /// Wakes the driver when a command is queued while it waits for a proposal.
    arrived: Notify,
}

#[derive(Debug)]
struct Queue<T> {
    /// A driver task is running; it exits once the queue is empty and nothing is in flight.
    running: bool,
    pending: VecDeque<(Command, Waiter<T>)>,
}

fn lock<T>(queue: &Mutex<Queue<T>>) -> MutexGuard<'_, Queue<T>> {
    // The critical sections only push to and drain the queue: a panic cannot leave it half done.
    queue.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<T: Send + 'static> Batcher<T> {
    fn new(max_in_flight: usize, gather: bool) -> Self {
        Batcher {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue {
                    running: false,
                    pending: VecDeque::new(),
                }),
                arrived: Notify::new(),
            }),
            max_in_flight,
            gather,
        }
    }

    /// Queues `cmd` for the next `propose(batch)`, starting the driver if none runs, and
    /// returns its own answer, waiting at most `timeout`.
    pub(crate) async fn submit<F, Fut>(
        &self,
        cmd: Command,
        propose: F,
        timeout: Duration,
    ) -> Result<T, CoordError>
    where
        F: Fn(Vec<Command>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<T>, CoordError>> + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut one = None;
        self.enqueue([cmd], propose, |rx| one = Some(rx));
        match one {
            Some(rx) => receive(rx, deadline, timeout).await,
            None => Err(CoordError::Stopped("write batch abandoned".to_owned())),
        }
    }

    /// [`Batcher::submit`] for several commands at once, queued together in order; one
    /// answer per command, in the same order.
    pub(crate) async fn submit_many<F, Fut>(
        &self,
        cmds: Vec<Command>,
        propose: F,
        timeout: Duration,
    ) -> Vec<Result<T, CoordError>>
    where
        F: Fn(Vec<Command>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<T>, CoordError>> + Send + 'static,
    {
        if cmds.is_empty() {
            return Vec::new();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut receivers = Vec::with_capacity(cmds.len());
        self.enqueue(cmds, propose, |rx| receivers.push(rx));
        let mut answers = Vec::with_capacity(receivers.len());
        for rx in receivers {
            answers.push(receive(rx, deadline, timeout).await);
        }
        answers
    }

    /// Queues `cmds` in order under one lock, hands each one's receiver to `keep`, and wakes
    /// (or starts) the driver once.
    fn enqueue<F, Fut>(
        &self,
        cmds: impl IntoIterator<Item = Command>,
        propose: F,
        mut keep: impl FnMut(oneshot::Receiver<Result<T, CoordError>>),
    ) where
        F: Fn(Vec<Command>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<T>, CoordError>> + Send + 'static,
    {
        let start = {
            let mut queue = lock(&self.shared.queue);
            for cmd in cmds {
                let (tx, rx) = oneshot::channel();
                queue.pending.push_back((cmd, tx));
                keep(rx);
            }
            !std::mem::replace(&mut queue.running, true)
        };
        if start {
            tokio::spawn(drive(
                Arc::clone(&self.shared),
                propose,
                self.max_in_flight,
                self.gather,
            ));
        } else {
            self.shared.arrived.notify_one();
        }
    }
}

async fn receive<T>(
    rx: oneshot::Receiver<Result<T, CoordError>>,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<T, CoordError> {
    match tokio::time::timeout_at(deadline, rx).await {
        Err(_) => Err(CoordError::Timeout(timeout)),
        Ok(Err(_)) => Err(CoordError::Stopped("write batch abandoned".to_owned())),
        Ok(Ok(result)) => result,
    }
}

impl WriteBatcher {
    /// Proposes `cmd` on `raft` (this node must be the leader) in the next batch and returns
    /// its own response, waiting at most `timeout`. Each proposal is bounded by
    /// `round_timeout`.
    pub(crate) async fn write(
        &self,
        raft: &Raft<TypeConfig>,
        cmd: Command,
        round_timeout: Duration,
        timeout: Duration,
    ) -> Result<Response, CoordError> {
        let raft = raft.clone();
        self.submit(
            cmd,
            move |commands| propose(raft.clone(), commands, round_timeout),
            timeout,
        )
        .await
    }

    /// [`WriteBatcher::write`] for several commands (a follower's forwarded batch), queued
    /// together in order.
    pub(crate) async fn write_many(
        &self,
        raft: &Raft<TypeConfig>,
        cmds: Vec<Command>,
        round_timeout: Duration,
        timeout: Duration,
    ) -> Vec<Result<Response, CoordError>> {
        let raft = raft.clone();
        self.submit_many(
            cmds,
            move |commands| propose(raft.clone(), commands, round_timeout),
            timeout,
        )
        .await
    }
}

/// Proposes batches while commands are queued, at most `max_in_flight` at a time.
async fn drive<T, F, Fut>(shared: Arc<Shared<T>>, propose: F, max_in_flight: usize, gather: bool)
where
    F: Fn(Vec<Command>) -> Fut,
    Fut: Future<Output = Result<Vec<T>, CoordError>>,
{
    let mut in_flight = FuturesUnordered::new();
    loop {
        if in_flight.len() < max_in_flight {
            if gather && !lock(&shared.queue).pending.is_empty() {
                // The tasks woken with the one that queued this command queue theirs first.
                tokio::task::yield_now().await;
            }
            let batch = {
                let mut queue = lock(&shared.queue);
                if queue.pending.is_empty() && in_flight.is_empty() {
                    queue.running = false;
                    return;
                }
                take_batch(&mut queue.pending)
            };
            if !batch.is_empty() {
                let (commands, waiters): (Vec<Command>, Vec<Waiter<T>>) = batch.into_iter().unzip();
                let result = propose(commands);
                let mut proposal = Box::pin(async move { (result.await, waiters) });
                // The first poll hands the batch on (the entry to openraft's core, an unbounded
                // channel send; a forwarded batch to the leader's connection). Doing it now,
                // before the next batch is taken, keeps batches in the order their commands
                // arrived, which a session's pipelined requests rely on; `FuturesUnordered`
                // promises no polling order.
                match futures::poll!(proposal.as_mut()) {
                    std::task::Poll::Ready((result, waiters)) => answer(result, waiters),
                    std::task::Poll::Pending => in_flight.push(proposal),
                }
                continue;
            }
        }
        tokio::select! {
            Some((result, waiters)) = in_flight.next() => answer(result, waiters),
            () = shared.arrived.notified(), if in_flight.len() < max_in_flight => {}
        }
    }
}

/// The next batch: queued commands in order, up to [`MAX_COMMANDS`] and [`MAX_BYTES`].
fn take_batch<T>(pending: &mut VecDeque<(Command, Waiter<T>)>) -> Vec<(Command, Waiter<T>)> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    while batch.len() < MAX_COMMANDS {
        let Some((cmd, _)) = pending.front() else {
            break;
        };
        let size = payload_bytes(cmd);
        if !batch.is_empty() && bytes + size > MAX_BYTES {
            break;
        }
        bytes += size;
        batch.extend(pending.pop_front());
    }
    batch
}

/// Roughly what `cmd` adds to an entry: its data and paths.
fn payload_bytes(cmd: &Command) -> usize {
    fn op(op: &Op) -> usize {
        match op {
            Op::Create { path, data, .. } | Op::SetData { path, data, .. } => {
                path.len() + data.len()
            }
            Op::Delete { path, .. } | Op::Check { path, .. } => path.len(),
        }
    }
    let body = match cmd {
        Command::Write { request, .. } => match request {
            Request::Single(o) => op(o),
            Request::Multi(ops) => ops.iter().map(op).sum(),
            Request::Sync => 0,
        },
        Command::Reap { paths } => paths.iter().map(String::len).sum(),
        Command::CreateSession { .. }
        | Command::CreateSessionWith { .. }
        | Command::CloseSession { .. }
        | Command::ExpireSession { .. } => 0,
    };
    body + 16
}

/// Hands each command of a batch its own response, or the batch's error.
fn answer<T>(result: Result<Vec<T>, CoordError>, waiters: Vec<Waiter<T>>) {
    match result {
        Ok(responses) if responses.len() == waiters.len() => {
            for (waiter, response) in waiters.into_iter().zip(responses) {
                let _ = waiter.send(Ok(response));
            }
        }
        Ok(responses) => {
            let why = format!(
                "a batch of {} commands got {} responses",
                waiters.len(),
                responses.len()
            );
            tracing::error!("{why}");
            for waiter in waiters {
                let _ = waiter.send(Err(CoordError::Unavailable(why.clone())));
            }
        }
        Err(e) => {
            for waiter in waiters {
                let _ = waiter.send(Err(e.for_each_waiter()));
            }
        }
    }
}

/// Proposes `commands` as one entry and returns the response of each.
async fn propose(
    raft: Raft<TypeConfig>,
    commands: Vec<Command>,
    timeout: Duration,
) -> Result<Vec<Response>, CoordError> {
    let proposal = Proposal::batch(now_ms(), commands);
    match tokio::time::timeout(timeout, raft.client_write(proposal)).await {
        Err(_) => Err(CoordError::Timeout(timeout)),
        Ok(Ok(written)) => match written.data {
            Response::Batch(responses) => Ok(responses),
            other => Err(CoordError::Unavailable(format!(
                "a batch entry was answered with {other:?}"
            ))),
        },
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::sync::Semaphore;

    use super::*;
    use crate::session::SessionId;

    const WAIT: Duration = Duration::from_secs(10);

    type FakeProposal =
        std::pin::Pin<Box<dyn Future<Output = Result<Vec<Response>, CoordError>> + Send>>;

    /// A fake Raft: records each proposed batch, answers every command with `Synced` once the
    /// test grants a permit, so the test controls when each proposal commits.
    struct Fake {
        gate: Arc<Semaphore>,
        batches: Arc<Mutex<Vec<Vec<Command>>>>,
    }

    impl Fake {
        fn new() -> Fake {
            Fake {
                gate: Arc::new(Semaphore::new(0)),
                batches: Arc::default(),
            }
        }

        fn propose(&self) -> impl Fn(Vec<Command>) -> FakeProposal + Send + Sync + 'static {
            let (gate, batches) = (Arc::clone(&self.gate), Arc::clone(&self.batches));
            move |commands: Vec<Command>| {
                let (gate, batches) = (Arc::clone(&gate), Arc::clone(&batches));
                Box::pin(async move {
                    let n = commands.len();
                    batches.lock().expect("lock").push(commands);
                    gate.acquire().await.expect("gate").forget();
                    Ok(vec![Response::Synced; n])
                }) as FakeProposal
            }
        }

        fn batch_sizes(&self) -> Vec<usize> {
            self.batches
                .lock()
                .expect("lock")
                .iter()
                .map(Vec::len)
                .collect()
        }
    }

    fn sync_cmd(request_id: u64) -> Command {
        Command::Write {
            session: SessionId(1),
            request_id,
            request: Request::Sync,
        }
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

    /// With both proposal slots taken, later commands queue and go out together, in arrival
    /// order, as soon as a slot frees; each caller gets its own answer.
    #[tokio::test]
    async fn commands_arriving_during_proposals_share_the_next_entry() {
        let batcher = Arc::new(WriteBatcher::default());
        let fake = Fake::new();
        let propose = Arc::new(fake.propose());
        let spawn = |id: u64| {
            let (b, p) = (Arc::clone(&batcher), Arc::clone(&propose));
            tokio::spawn(async move { b.submit(sync_cmd(id), move |c| p(c), WAIT).await })
        };
        let mut callers = Vec::new();
        for id in 1..=MAX_IN_FLIGHT as u64 {
            callers.push(spawn(id));
            until("a proposal per free slot", || {
                fake.batch_sizes().len() == id as usize
            })
            .await;
        }
        for id in 100..130 {
            callers.push(spawn(id));
        }
        until("the later commands to queue", || {
            lock(&batcher.shared.queue).pending.len() == 30
        })
        .await;
        assert_eq!(fake.batch_sizes(), vec![1; MAX_IN_FLIGHT]);

        fake.gate.add_permits(1);
        until("the queued batch", || {
            fake.batch_sizes().len() == MAX_IN_FLIGHT + 1
        })
        .await;
        assert_eq!(
            fake.batch_sizes()[MAX_IN_FLIGHT],
            30,
            "one entry for the whole queue"
        );
        let ids: Vec<u64> = fake.batches.lock().expect("lock")[MAX_IN_FLIGHT]
            .iter()
            .map(|c| match c {
                Command::Write { request_id, .. } => *request_id,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(ids, (100..130).collect::<Vec<_>>(), "arrival order kept");

        fake.gate.add_permits(MAX_IN_FLIGHT);
        for caller in callers {
            assert_eq!(
                caller.await.expect("task").expect("write"),
                Response::Synced
            );
        }
        until("the driver to stop", || {
            !lock(&batcher.shared.queue).running
        })
        .await;
    }

    /// A full queue is split at [`MAX_COMMANDS`].
    #[test]
    fn batches_are_capped_by_count_and_bytes() {
        let mut pending: VecDeque<(Command, Waiter<Response>)> = (0..MAX_COMMANDS as u64 + 5)
            .map(|id| (sync_cmd(id), oneshot::channel().0))
            .collect();
        assert_eq!(take_batch(&mut pending).len(), MAX_COMMANDS);
        assert_eq!(take_batch(&mut pending).len(), 5);

        let big = |id| Command::Write {
            session: SessionId(1),
            request_id: id,
            request: Request::Single(Op::SetData {
                path: "/a".into(),
                data: vec![0; MAX_BYTES / 2],
                version: None,
            }),
        };
        let mut pending: VecDeque<(Command, Waiter<Response>)> =
            (0..3).map(|id| (big(id), oneshot::channel().0)).collect();
        assert_eq!(
            take_batch(&mut pending).len(),
            1,
            "two halves plus overhead exceed the cap"
        );
        assert_eq!(take_batch(&mut pending).len(), 1);
        assert_eq!(take_batch(&mut pending).len(), 1);
        assert!(take_batch(&mut pending).is_empty());
    }

    /// A failed proposal fails each of its commands with the error's kind, and the batcher
    /// keeps working.
    #[tokio::test]
    async fn a_failed_proposal_fails_its_batch_only() {
        let batcher = WriteBatcher::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let propose = move |commands: Vec<Command>| {
            let n = commands.len();
            let first = c.fetch_add(1, Ordering::SeqCst) == 0;
            async move {
                if first {
                    Err(CoordError::NotLeader { leader: Some(3) })
                } else {
                    Ok(vec![Response::Synced; n])
                }
            }
        };
        let propose = Arc::new(propose);
        let p = Arc::clone(&propose);
        let err = batcher
            .submit(sync_cmd(1), move |c| p(c), WAIT)
            .await
            .expect_err("no leader");
        assert!(
            matches!(err, CoordError::NotLeader { leader: Some(3) }),
            "{err:?}"
        );
        let p = Arc::clone(&propose);
        let ok = batcher
            .submit(sync_cmd(2), move |c| p(c), WAIT)
            .await
            .expect("write");
        assert_eq!(ok, Response::Synced);
    }

    /// Commands queued together go out in one batch, in order, and each caller gets the
    /// answer of its own command.
    #[tokio::test]
    async fn commands_queued_together_share_a_batch_and_get_their_own_answers() {
        let batcher: Batcher<u64> = Batcher::new(MAX_FORWARDS_IN_FLIGHT, true);
        let sizes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&sizes);
        let echo = move |commands: Vec<Command>| {
            seen.lock().expect("lock").push(commands.len());
            let ids: Vec<u64> = commands
                .iter()
                .map(|c| match c {
                    Command::Write { request_id, .. } => *request_id,
                    _ => 0,
                })
                .collect();
            async move { Ok(ids) }
        };
        let answers = batcher
            .submit_many((1..=40).map(sync_cmd).collect(), echo, WAIT)
            .await;
        let answers: Vec<u64> = answers.into_iter().map(|a| a.expect("answer")).collect();
        assert_eq!(answers, (1..=40).collect::<Vec<_>>());
        assert_eq!(*sizes.lock().expect("lock"), vec![40], "one batch");
        assert!(
            batcher
                .submit_many(Vec::new(), |_| async { Ok(Vec::new()) }, WAIT)
                .await
                .is_empty()
        );
    }

    /// A batch answered with the wrong number of responses fails its commands rather than
    /// handing anyone another command's answer.
    #[tokio::test]
    async fn a_short_answer_fails_the_batch() {
        let batcher = WriteBatcher::default();
        let err = batcher
            .submit(sync_cmd(1), |_| async { Ok(Vec::new()) }, WAIT)
            .await
            .expect_err("mismatch");
        assert!(matches!(err, CoordError::Unavailable(_)), "{err:?}");
    }
}

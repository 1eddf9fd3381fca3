//! Group commit: the thread that makes appended batches durable.
//!
//! [`LogStore::append`](super::LogStore) writes a batch to the OS and publishes it to readers,
//! then queues a [`Job::Flush`] here and returns. This thread takes everything queued, issues
//! one fdatasync per segment file touched (normally one in all), and only then fires the
//! batches' flush callbacks, in order. Under load, every append that arrives while an fsync
//! runs shares the next one, so the fsync rate no longer follows the write rate.
//!
//! It is a plain thread rather than a blocking-pool task: it lives as long as the store, and
//! a stuck disk then parks one thread of its own instead of one of the runtime's.
//!
//! [`Job::Hint`]s (the committed log id) are coalesced: only the latest one queued is run, at
//! most once per [`HINT_INTERVAL`], so a busy log does not create, write and rename a file
//! (which ext4 turns into a block write of its own) on this thread between every two fsyncs.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::error::{LogError, io_err};
use super::log_store::FSYNC_LATENCY;
use super::meta::sync_dir;

/// Tells openraft a batch is durable (or not). Boxed so the thread needs no type config.
pub(crate) type Done = Box<dyn FnOnce(io::Result<()>) + Send>;

/// Work for the flusher, done in queue order relative to the flushes queued before it.
pub(crate) enum Job {
    /// Make a batch already written to `file` durable, then call `done`. Without a file (a
    /// batch with nothing to write), `done` still waits for the flushes queued before it.
    Flush {
        file: Option<Arc<File>>,
        path: PathBuf,
        /// The batch started a segment, so the directory entry must be made durable too.
        new_segment: bool,
        done: Done,
    },
    /// Run `f` once every flush queued before it is durable (and its callback fired).
    After(Box<dyn FnOnce() + Send>),
    /// Like `After`, for a value whose latest version is all that matters: a later `Hint`
    /// replaces one not yet run, and the latest runs at most [`HINT_INTERVAL`] after it was
    /// queued. It still runs before any `After` queued behind it, and before the thread exits.
    Hint(Box<dyn FnOnce() + Send>),
}

/// Longest a [`Job::Hint`] waits for later ones to replace it.
pub(crate) const HINT_INTERVAL: Duration = Duration::from_millis(100);

/// State shared by the store and its flusher thread.
#[derive(Debug, Default)]
pub(crate) struct FlushState {
    /// Set by the first failed write or fsync. After a failed fsync the kernel may have
    /// dropped the dirty pages and marked them clean, so a later fsync could "succeed"
    /// without the data ever reaching the disk: the log refuses all further work instead.
    pub(crate) failed: AtomicBool,
    /// Data fsyncs issued on segment files, for tests and metrics.
    pub(crate) fsyncs: AtomicU64,
}

/// The sending side. Dropping it (with the store) lets the thread finish the queue and waits
/// for it, so a store reopened on the same directory never races a late write of the old one.
#[derive(Debug)]
pub(crate) struct Flusher {
    /// `None` only while dropping.
    tx: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pub(crate) state: Arc<FlushState>,
}

impl Drop for Flusher {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("log flusher thread panicked");
        }
    }
}

impl Flusher {
    /// Starts the flusher thread for the log in `dir`.
    pub(crate) fn start(dir: &Path) -> Result<Self, LogError> {
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(FlushState::default());
        let weak = Arc::downgrade(&state);
        let dir = dir.to_owned();
        let thread = std::thread::Builder::new()
            .name("raft-log-flush".to_owned())
            .spawn(move || run(&dir, &rx, &weak))
            .map_err(io_err(PathBuf::new(), "spawn log flusher thread"))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            state,
        })
    }

    /// Queues `job`; fails only if the thread is gone, which it never is while `self` lives
    /// unless it panicked. A flush that cannot be queued has its callback told so.
    pub(crate) fn send(&self, job: Job) -> Result<(), LogError> {
        const GONE: &str = "log flusher thread is gone";
        let Some(tx) = &self.tx else {
            return Err(LogError::Worker(GONE.to_owned()));
        };
        tx.send(job).map_err(|mpsc::SendError(job)| {
            self.state.failed.store(true, Ordering::SeqCst);
            if let Job::Flush { done, .. } = job {
                done(Err(io::Error::other(GONE)));
            }
            LogError::Worker(GONE.to_owned())
        })
    }

    /// Waits until every flush queued so far is durable and its callback has fired.
    pub(crate) async fn drain(&self) -> Result<(), LogError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.send(Job::After(Box::new(move || {
            let _ = tx.send(());
        })))?;
        rx.await
            .map_err(|_| LogError::Worker("log flusher thread is gone".to_owned()))
    }
}

/// The latest hint not yet run, and when the oldest hint it replaced was queued.
type PendingHint = Option<(Box<dyn FnOnce() + Send>, Instant)>;

fn run(dir: &Path, rx: &Receiver<Job>, state: &Weak<FlushState>) {
    let mut hint: PendingHint = None;
    loop {
        let first = match &hint {
            None => rx.recv().ok(),
            Some((_, since)) => {
                let wait = HINT_INTERVAL.saturating_sub(since.elapsed());
                match rx.recv_timeout(wait) {
                    Ok(job) => Some(job),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        run_hint(&mut hint);
                        continue;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            }
        };
        let Some(first) = first else { break };
        let mut jobs = vec![first];
        jobs.extend(rx.try_iter());
        let Some(state) = state.upgrade() else { return };
        let mut flushes = Vec::new();
        let mut after = Vec::new();
        let mut hint_then_after = false;
        for job in jobs {
            match job {
                Job::Flush {
                    file,
                    path,
                    new_segment,
                    done,
                } => flushes.push((file, path, new_segment, done)),
                Job::After(f) => {
                    // An `After` behind a pending hint must see the hint written first.
                    hint_then_after |= hint.is_some();
                    after.push(f);
                }
                Job::Hint(f) => {
                    let since = hint.take().map_or_else(Instant::now, |(_, since)| since);
                    hint = Some((f, since));
                }
            }
        }
        // Every `After` job follows some flushes of this round, or none: running them all once
        // the whole round is durable keeps each behind the flushes queued before it.
        let result = flush_all(dir, &state, &flushes);
        if let Err(e) = &result {
            tracing::error!(error = %e, "Raft log fsync failed; the log refuses further writes");
            state.failed.store(true, Ordering::SeqCst);
        }
        for (_, _, _, done) in flushes {
            done(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::other(e.to_string())),
            });
        }
        if hint_then_after
            || hint
                .as_ref()
                .is_some_and(|(_, s)| s.elapsed() >= HINT_INTERVAL)
        {
            run_hint(&mut hint);
        }
        for f in after {
            f();
        }
    }
    // The channel is closed (the store is gone) and every flush before the hint is durable.
    run_hint(&mut hint);
}

fn run_hint(hint: &mut PendingHint) {
    if let Some((f, _)) = hint.take() {
        f();
    }
}

/// One fdatasync per distinct segment file (oldest first, so a segment is never durable
/// before the one it follows), then the directory if a segment was created.
fn flush_all(
    dir: &Path,
    state: &FlushState,
    flushes: &[(Option<Arc<File>>, PathBuf, bool, Done)],
) -> Result<(), LogError> {
    if flushes.is_empty() {
        return Ok(());
    }
    if state.failed.load(Ordering::SeqCst) {
        return Err(LogError::Failed);
    }
    let mut synced: Vec<&Arc<File>> = Vec::new();
    for (file, path, _, _) in flushes {
        let Some(file) = file else { continue };
        if synced.iter().any(|f| Arc::ptr_eq(f, file)) {
            continue;
        }
        let started = Instant::now();
        file.sync_data().map_err(io_err(path, "fsync"))?;
        FSYNC_LATENCY.observe(started.elapsed());
        state.fsyncs.fetch_add(1, Ordering::Relaxed);
        synced.push(file);
    }
    if flushes.iter().any(|(_, _, new_segment, _)| *new_segment) {
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// Hints queued while the thread is busy collapse into the latest one, which runs before
    /// an `After` queued behind it; a hint on its own runs within [`HINT_INTERVAL`].
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hints_coalesce_to_the_latest_and_run_before_later_waiters() {
        let dir = std::env::temp_dir().join(format!("vigil-hints-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let flusher = Flusher::start(&dir).expect("start");
        let ran = Arc::new(Mutex::new(Vec::new()));
        let (release, held) = mpsc::channel::<()>();
        flusher
            .send(Job::After(Box::new(move || {
                let _ = held.recv();
            })))
            .expect("hold the thread");
        for i in 0..100 {
            let ran = Arc::clone(&ran);
            flusher
                .send(Job::Hint(Box::new(move || {
                    ran.lock().expect("lock").push(i);
                })))
                .expect("hint");
        }
        release.send(()).expect("release");
        flusher.drain().await.expect("drain");
        assert_eq!(*ran.lock().expect("lock"), vec![99]);

        let ran2 = Arc::clone(&ran);
        let queued = Instant::now();
        flusher
            .send(Job::Hint(Box::new(move || {
                ran2.lock().expect("lock").push(100);
            })))
            .expect("hint");
        while ran.lock().expect("lock").len() < 2 {
            assert!(
                queued.elapsed() < HINT_INTERVAL * 20,
                "a lone hint never ran"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(*ran.lock().expect("lock"), vec![99, 100]);
        drop(flusher);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Dropping the flusher runs a hint that was still waiting.
    #[test]
    fn a_pending_hint_runs_before_the_thread_exits() {
        let dir = std::env::temp_dir().join(format!("vigil-hint-exit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let flusher = Flusher::start(&dir).expect("start");
        let ran = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&ran);
        flusher
            .send(Job::Hint(Box::new(move || {
                flag.store(true, Ordering::SeqCst);
            })))
            .expect("hint");
        drop(flusher);
        assert!(ran.load(Ordering::SeqCst));
        let _ = std::fs::remove_dir_all(&dir);
    }
}

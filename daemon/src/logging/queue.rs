//! Log lines from the real-time VRRP threads, written by a thread of their own.
//!
//! Writing to stderr can block: journald or the pipe may be slow, and the stderr lock is shared
//! with every other thread that logs. A VRRP unit thread that waited there would miss its
//! adverts. So on threads marked with [`enter_nonblocking`] (the unit threads) a formatted line
//! goes into a bounded queue instead, and a writer thread copies the queue to the real output.
//! When the queue is full the line is dropped and counted, and the writer reports the count in
//! a line of its own once it catches up: losing a log line is better than losing a VIP.
//!
//! Nothing on the unit's side can wait: the queue is `std`'s bounded channel, whose `try_send`
//! takes no lock while no receiver sleeps in `recv` — the writer only ever polls with
//! `try_recv` and parks, and each line wakes it with [`std::thread::Thread::unpark`], a plain
//! futex wake. Every other thread keeps writing straight to the output (lossless, in order).

use std::cell::Cell;
use std::io::{self, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

/// Lines the queue holds before new ones are dropped: seconds of a busy unit's logging.
pub const QUEUE_LINES: usize = 4096;
/// The writer looks at the queue at least this often even when nobody woke it.
const IDLE_POLL: Duration = Duration::from_millis(200);

thread_local! {
    /// Whether this thread's log lines go through the queue.
    static NONBLOCKING: Cell<bool> = const { Cell::new(false) };
}

/// From now on this thread's log lines go through the queue of the installed
/// [`QueuedWriter`] (if any) and never wait for the output.
pub fn enter_nonblocking() {
    NONBLOCKING.with(|n| n.set(true));
}

/// Where lines end up: stderr in the daemon, a buffer in tests.
pub type Output = Arc<Mutex<dyn Write + Send>>;

/// A [`MakeWriter`] for the tracing subscriber: writes straight to the output, except on
/// threads that called [`enter_nonblocking`], whose lines are queued.
#[derive(Clone)]
pub struct QueuedWriter {
    shared: Arc<Shared>,
}

struct Shared {
    tx: SyncSender<Vec<u8>>,
    output: Output,
    /// Lines queued and not yet written.
    in_flight: AtomicUsize,
    /// Lines dropped because the queue was full, not yet reported.
    dropped: AtomicU64,
    /// Lines dropped since the start.
    dropped_total: AtomicU64,
    /// The writer thread, to wake it.
    writer: OnceLock<Thread>,
    /// The drop report is a JSON object when the log is JSON lines.
    json: bool,
}

impl std::fmt::Debug for QueuedWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedWriter")
            .field("dropped_total", &self.dropped_total())
            .finish_non_exhaustive()
    }
}

impl QueuedWriter {
    /// A writer to `output` with a queue of `capacity` lines and the thread that drains it.
    /// `json`: the drop report is written as a JSON line.
    pub fn start(output: Output, capacity: usize, json: bool) -> io::Result<Self> {
        let (tx, rx) = sync_channel(capacity);
        let shared = Arc::new(Shared {
            tx,
            output,
            in_flight: AtomicUsize::new(0),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            writer: OnceLock::new(),
            json,
        });
        // The thread holds only a weak reference, so it ends (its receiver disconnects) when
        // the last writer is gone.
        let worker = Arc::downgrade(&shared);
        let thread = std::thread::Builder::new()
            .name("vigild-log".into())
            .spawn(move || drain(&worker, &rx))?;
        let _ = shared.writer.set(thread.thread().clone());
        Ok(Self { shared })
    }

    /// Lines dropped since the start because the queue was full.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }

    /// Waits up to `limit` for the queued lines to be written (at exit); `true` when they were.
    pub fn flush(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        self.shared.wake();
        loop {
            if self.shared.in_flight.load(Ordering::Acquire) == 0 {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl<'a> MakeWriter<'a> for QueuedWriter {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        Line {
            shared: &self.shared,
            queued: NONBLOCKING.with(Cell::get),
            buf: Vec::new(),
        }
    }
}

/// One log event's writer. A queued event is sent whole when the writer is dropped, however
/// many `write` calls formatting it took.
pub struct Line<'a> {
    shared: &'a Shared,
    queued: bool,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.queued {
            self.buf.extend_from_slice(buf);
        } else {
            self.shared.write(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.shared.enqueue(std::mem::take(&mut self.buf));
        }
    }
}

impl Shared {
    /// Never waits: a full queue drops the line and counts it.
    fn enqueue(&self, line: Vec<u8>) {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        match self.tx.try_send(line) {
            Ok(()) => self.wake(),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                self.dropped_total.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    fn report_dropped(&self) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped == 0 {
            return;
        }
        let message = "log lines of the VRRP threads dropped: the log output fell behind";
        let line = if self.json {
            format!(
                "{{\"level\":\"WARN\",\"target\":\"vigild::logging\",\"message\":\"{message}\",\"dropped\":{dropped}}}\n"
            )
        } else {
            format!(" WARN vigild::logging: {message} dropped={dropped}\n")
        };
        self.write(line.as_bytes());
    }

    fn write(&self, bytes: &[u8]) {
        let mut output = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        // Nothing useful to do when the output itself is gone.
        let _ = output.write_all(bytes);
        let _ = output.flush();
    }
}

/// The writer thread: polls the queue (never sleeping inside `recv`, see the module doc), writes
/// each line, reports drops once it has caught up with them.
fn drain(shared: &std::sync::Weak<Shared>, rx: &Receiver<Vec<u8>>) {
    loop {
        let Some(shared) = shared.upgrade() else {
            return;
        };
        match rx.try_recv() {
            Ok(line) => {
                shared.write(&line);
                shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
            Err(TryRecvError::Empty) => {
                shared.report_dropped();
                drop(shared);
                std::thread::park_timeout(IDLE_POLL);
            }
            Err(TryRecvError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Condvar;
    use std::sync::mpsc::channel;

    use super::*;

    /// An output that blocks every write until opened, like a stalled journald pipe.
    #[derive(Clone, Default)]
    struct Gate {
        open: Arc<(Mutex<bool>, Condvar)>,
        written: Arc<Mutex<Vec<u8>>>,
    }

    impl Gate {
        fn open(&self) {
            let (lock, cvar) = &*self.open;
            *lock.lock().expect("gate") = true;
            cvar.notify_all();
        }

        fn text(&self) -> String {
            String::from_utf8(self.written.lock().expect("written").clone()).expect("utf-8")
        }
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let (lock, cvar) = &*self.open;
            let mut open = lock.lock().expect("gate");
            while !*open {
                open = cvar.wait(open).expect("gate");
            }
            self.written.lock().expect("written").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn writer(gate: &Gate, capacity: usize) -> QueuedWriter {
        QueuedWriter::start(Arc::new(Mutex::new(gate.clone())), capacity, false).expect("thread")
    }

    #[test]
    fn a_queued_thread_never_waits_for_a_stalled_output_and_counts_what_it_drops() {
        const LINES: u64 = 50;
        let gate = Gate::default();
        let writer = writer(&gate, 8);
        let (done_tx, done_rx) = channel();
        let logging = writer.clone();
        std::thread::spawn(move || {
            enter_nonblocking();
            let started = Instant::now();
            for i in 0..LINES {
                let _ = writeln!(logging.make_writer(), "line {i}");
            }
            let _ = done_tx.send(started.elapsed());
        });
        // With the output stalled, a waiting logger would never get here.
        let took = done_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the logging thread returned while the output was stalled");
        assert!(took < Duration::from_secs(1), "{took:?}");
        // 8 queued, at most one taken off the queue by the stalled writer.
        let dropped = writer.dropped_total();
        assert!((LINES - 9..=LINES - 8).contains(&dropped), "{dropped}");
        gate.open();
        assert!(writer.flush(Duration::from_secs(10)), "queue written out");
        // The drop report follows once the writer has caught up.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !gate.text().contains("dropped=") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        let text = gate.text();
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("line ")).collect();
        assert_eq!(lines.len() as u64, LINES - dropped, "{text}");
        assert_eq!(lines[0], "line 0", "oldest first: {text}");
        assert!(
            text.contains(&format!("dropped={dropped}")),
            "the drop is reported with its count: {text}"
        );
    }

    #[test]
    fn other_threads_write_straight_through_and_events_are_whole_lines() {
        let gate = Gate::default();
        gate.open();
        let writer = writer(&gate, 8);
        // This (test) thread is not marked: written before the call returns, nothing queued.
        let _ = writeln!(writer.make_writer(), "direct");
        assert_eq!(gate.text(), "direct\n");
        // A marked thread's tracing events arrive whole, through the queue.
        let subscriber = tracing_subscriber::fmt()
            .with_writer(writer.clone())
            .with_ansi(false)
            .finish();
        std::thread::spawn(move || {
            enter_nonblocking();
            tracing::subscriber::with_default(subscriber, || {
                tracing::info!(instance = "vi_1", "became master");
            });
        })
        .join()
        .expect("logging thread");
        assert!(writer.flush(Duration::from_secs(10)));
        let text = gate.text();
        let event = text.lines().nth(1).expect("the event's line");
        assert!(
            event.contains("became master") && event.contains("instance=\"vi_1\""),
            "{text}"
        );
        assert_eq!(writer.dropped_total(), 0);
    }
}

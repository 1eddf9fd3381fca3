//! A fixed amount of TCP check work for counting the scheduler's instructions per attempt:
//! the real [`Scheduler`] on a single-threaded runtime (as `spawn_on_thread` runs it) against
//! loopback listeners, stopping after a given number of finished attempts.
//!
//! ```text
//! tcp_attempts [CHECKS] [ATTEMPTS] [up|refused]
//! ```
//!
//! `up` (the default) listens on every target, so each attempt connects and resets; `refused`
//! binds ports without listening, so each attempt is refused. Run it twice under
//! `valgrind --tool=callgrind` with different `ATTEMPTS` and divide the difference of the two
//! instruction totals by the difference of attempts: that cancels start-up and shutdown.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::sync::{Notify, mpsc};
use vigil_checks::{
    CheckId, CheckKind, CheckSpec, Hooks, ProbeOutcome, Scheduler, SchedulerConfig, Source, Timing,
};

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let checks: usize = parse(args.next(), 200, "CHECKS");
    let attempts: usize = parse(args.next(), 4000, "ATTEMPTS");
    let listen = match args.next().as_deref() {
        None | Some("up") => true,
        Some("refused") => false,
        Some(other) => {
            eprintln!("mode must be `up` or `refused`, not {other:?}");
            std::process::exit(2);
        }
    };

    // Bound sockets stay open until the end, so no other process takes their ports. A listener
    // is never accepted from: each reset connection waits in its backlog, which is deep
    // enough for every attempt of a run.
    let mut sockets = Vec::with_capacity(checks);
    for _ in 0..checks {
        let sock = Socket::new(Domain::IPV4, Type::STREAM, None)?;
        sock.bind(&SocketAddr::from((Ipv4Addr::LOCALHOST, 0)).into())?;
        if listen {
            sock.listen(4096)?;
        }
        sockets.push(sock);
    }
    let targets: Vec<SocketAddr> = sockets
        .iter()
        .map(|s| {
            s.local_addr()
                .map(|a| a.as_socket().expect("an inet socket"))
        })
        .collect::<Result<_, _>>()?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let finished = runtime.block_on(run(&targets, attempts));
    println!(
        "{finished} attempts of {} checks ({})",
        targets.len(),
        if listen { "up" } else { "refused" }
    );
    drop(sockets);
    Ok(())
}

fn parse(arg: Option<String>, default: usize, what: &str) -> usize {
    arg.map_or(default, |a| {
        a.parse().unwrap_or_else(|_| {
            eprintln!("{what} must be a number, not {a:?}");
            std::process::exit(2);
        })
    })
}

async fn run(targets: &[SocketAddr], attempts: usize) -> usize {
    let count = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(Notify::new());
    let observer = {
        let count = Arc::clone(&count);
        let done = Arc::clone(&done);
        Arc::new(move |_: &'static str, _: &ProbeOutcome| {
            if count.fetch_add(1, Ordering::Relaxed) + 1 == attempts {
                done.notify_one();
            }
        })
    };
    // Events are kept unread: with every target steady there are none, and reading them
    // would only add work that is not the scheduler's.
    let (events, _unread) = mpsc::unbounded_channel();
    let scheduler = Scheduler::spawn_with(
        SchedulerConfig::default(),
        events,
        Hooks {
            observer: Some(observer),
            progress: None,
        },
    );
    let timing = Timing {
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(5),
        warmup: Duration::from_millis(50),
        ..Timing::default()
    };
    for (i, target) in targets.iter().enumerate() {
        let spec = CheckSpec {
            target: *target,
            kind: CheckKind::Tcp,
            timing,
            source: Source::default(),
            start_down: false,
        };
        scheduler
            .upsert(CheckId(i as u64), spec)
            .expect("a TCP check has nothing to prepare");
    }
    done.notified().await;
    count.load(Ordering::Relaxed)
}

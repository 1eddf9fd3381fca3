//! `vigilctl lock NAME -- CMD…` and `vigilctl elect NAME`: the lock and election recipes with a
//! process attached.
//!
//! The rule that makes `lock` safe to build on: CMD runs only while this process can vouch for
//! the session. The session is lost when the servers say it expired, or when no heartbeat has
//! succeeded for five sixths of its timeout (counted from when the last good one was sent) — at
//! that point the servers may still think it alive, but this side can no longer prove it before
//! they expire it, so CMD is killed first.
//! The fencing token handed to CMD lets whatever CMD writes to refuse a stale holder anyway.

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::watch;
use vigil_coord::Error;
use vigil_coord::SessionId;
use vigil_coord::client::{Client, ClientError, SessionState, WatchNotice};
use vigil_coord::recipes::{Election, Lock, observe_leader};
use vigil_coord::watch::{EventKind, WatchKind};

use crate::exit;

/// Exit code when the lock or leadership was lost (EX_TEMPFAIL: trying again may work).
pub const LOST: u8 = 75;

/// How long CMD may take to exit after SIGTERM is passed on before it is SIGKILLed.
const TERM_GRACE: Duration = Duration::from_secs(10);

/// SIGINT and SIGTERM, listened for from creation on.
///
/// Create it before the command's first await: once tokio's handler is installed a signal no
/// longer has its default effect, so one that arrived while nothing listened (between two
/// `select!`s, or before the first) would be lost and the command would never stop.
pub struct Interrupts {
    /// `None` if the handlers cannot be installed: then no signal ever resolves `next`.
    listeners: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

impl Interrupts {
    /// Starts listening.
    pub fn listen() -> Interrupts {
        use tokio::signal::unix::{SignalKind, signal};
        let listeners = match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(int), Ok(term)) => Some((int, term)),
            _ => None,
        };
        Interrupts { listeners }
    }

    /// The next SIGINT or SIGTERM, including one received since the last call.
    pub async fn next(&mut self) -> Signal {
        let Some((int, term)) = self.listeners.as_mut() else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => Signal::SIGINT,
            _ = term.recv() => Signal::SIGTERM,
        }
    }
}

/// Resolves once the servers say the session expired.
pub async fn expired(state: &mut watch::Receiver<SessionState>) {
    if state
        .wait_for(|s| *s == SessionState::Expired)
        .await
        .is_err()
    {
        std::future::pending::<()>().await;
    }
}

/// Resolves when this side can no longer vouch for the session (see the module docs), with why.
///
/// Heartbeats of its own, every sixth of the timeout: a heartbeat *sent* at `t` that succeeds
/// proves the servers' deadline is at least `t + timeout` (a new leader only extends it). CMD
/// must be gone before that, so the session counts as lost at `t + timeout · 5/6`, leaving a
/// sixth for the kill and for clock-rate differences.
async fn session_lost(
    client: Client,
    session: SessionId,
    mut state: watch::Receiver<SessionState>,
    timeout: Duration,
) -> String {
    let every = timeout / 6;
    let limit = timeout * 5 / 6;
    // The keeper heartbeats every third of the timeout: assume its last success is that old.
    let mut confirmed = Instant::now()
        .checked_sub(timeout / 3)
        .unwrap_or_else(Instant::now);
    loop {
        if *state.borrow_and_update() == SessionState::Expired {
            return "the session expired".to_owned();
        }
        let sent = Instant::now();
        match tokio::time::timeout(every, client.heartbeat(session)).await {
            Ok(Ok(())) => confirmed = sent,
            Ok(Err(e)) if e.is(Error::SessionExpired) => {
                return "the session expired".to_owned();
            }
            Ok(Err(_)) | Err(_) => {}
        }
        let deadline = confirmed + limit;
        if Instant::now() >= deadline {
            return format!(
                "no server confirmed the session for {} ms",
                limit.as_millis()
            );
        }
        tokio::time::sleep_until((sent + every).min(deadline).into()).await;
    }
}

/// Resolves when the lock node is deleted (an operator's `vigilctl rm`, or expiry seen first by
/// the watch).
async fn node_deleted(client: Client, path: String) -> String {
    loop {
        let Ok(mut watcher) = client.watch(&path, WatchKind::Persistent).await else {
            // No server for the watch: the session state says what that means.
            tokio::time::sleep(Duration::from_millis(500)).await;
            continue;
        };
        if matches!(client.stat(&path).await, Ok(None)) {
            return format!("{path} was deleted");
        }
        loop {
            match watcher.next().await {
                Ok(Some(WatchNotice::Event(e))) if e.kind == EventKind::NodeDeleted => {
                    return format!("{path} was deleted");
                }
                Ok(Some(WatchNotice::ResyncNeeded)) => {
                    if matches!(client.stat(&path).await, Ok(None)) {
                        return format!("{path} was deleted");
                    }
                }
                Ok(Some(WatchNotice::Event(_))) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }
}

/// `vigilctl lock`.
pub async fn lock(
    client: &Client,
    name: &str,
    session_ms: u32,
    command: &[String],
) -> Result<u8, ClientError> {
    let Some((program, args)) = command.split_first() else {
        eprintln!("vigilctl: lock needs a command after --");
        return Ok(exit::USAGE);
    };
    let mut interrupts = Interrupts::listen();
    let session = client.session(session_ms).await?;
    let timeout = Duration::from_millis(u64::from(session.timeout_ms()));
    let lock = Lock::new(session.clone(), name)?;
    let guard = tokio::select! {
        guard = lock.acquire() => guard?,
        _ = interrupts.next() => {
            let _ = session.close().await;
            return Ok(130);
        }
    };
    let token = guard.token();
    eprintln!(
        "vigilctl: holding lock {name} ({}), fencing token {token}",
        guard.path()
    );
    let mut child = match tokio::process::Command::new(program)
        .args(args)
        .env("VIGIL_FENCING_TOKEN", token.to_string())
        .env("VIGIL_LOCK_PATH", guard.path())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("vigilctl: cannot run {program}: {e}");
            let _ = guard.release().await;
            let _ = session.close().await;
            return Ok(if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            });
        }
    };
    let pgid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(Pid::from_raw);
    let lost = session_lost(client.clone(), session.id(), session.state(), timeout);
    let deleted = node_deleted(client.clone(), guard.path().to_owned());
    let code = tokio::select! {
        status = child.wait() => match status {
            Ok(status) => status_code(status),
            Err(e) => {
                eprintln!("vigilctl: waiting for {program} failed: {e}");
                exit::OSERR
            }
        },
        reason = lost => {
            kill_group(pgid, Signal::SIGKILL);
            let _ = child.wait().await;
            eprintln!("vigilctl: lost lock {name}: {reason}; killed {program}");
            let _ = session.close().await;
            return Ok(LOST);
        }
        reason = deleted => {
            kill_group(pgid, Signal::SIGKILL);
            let _ = child.wait().await;
            eprintln!("vigilctl: lost lock {name}: {reason}; killed {program}");
            let _ = session.close().await;
            return Ok(LOST);
        }
        signal = interrupts.next() => {
            kill_group(pgid, signal);
            if tokio::time::timeout(TERM_GRACE, child.wait()).await.is_err() {
                kill_group(pgid, Signal::SIGKILL);
                let _ = child.wait().await;
            }
            u8::try_from(128 + signal as i32).unwrap_or(1)
        }
    };
    // CMD is done: release before anything else can fail.
    if let Err(e) = guard.release().await {
        eprintln!("vigilctl: releasing lock {name} failed ({e}); it goes with the session");
    }
    let _ = session.close().await;
    Ok(code)
}

/// `vigilctl elect`.
pub async fn elect(
    client: &Client,
    name: &str,
    id: &str,
    session_ms: u32,
) -> Result<u8, ClientError> {
    let mut interrupts = Interrupts::listen();
    let session = client.session(session_ms).await?;
    let election = Election::new(session.clone(), name)?;
    let mut leaders = observe_leader(client.clone(), name)?;
    let campaign = election.campaign(id.as_bytes());
    tokio::pin!(campaign);
    let mut guard = None;
    let mut state = session.state();
    let mut last_line = String::new();
    loop {
        tokio::select! {
            won = &mut campaign, if guard.is_none() => {
                let won = won?;
                eprintln!("vigilctl: elected as {id} (token {})", won.token());
                guard = Some(won);
            }
            changed = leaders.changed() => {
                if changed.is_err() {
                    break;
                }
                let line = match &*leaders.borrow_and_update() {
                    Some(leader) => format!(
                        "leader {} token {}\n",
                        String::from_utf8_lossy(&leader.data),
                        leader.token
                    ),
                    None => "leader none\n".to_owned(),
                };
                if line != last_line {
                    let code = super::print_stdout(&line);
                    if code != exit::OK {
                        return Ok(code);
                    }
                    last_line = line;
                }
            }
            () = expired(&mut state) => {
                eprintln!("vigilctl: session expired; {id} is no longer a candidate");
                return Ok(LOST);
            }
            _ = interrupts.next() => break,
        }
    }
    if let Some(guard) = guard {
        let _ = guard.release().await;
    }
    let _ = session.close().await;
    Ok(exit::OK)
}

fn kill_group(pgid: Option<Pid>, signal: Signal) {
    if let Some(pgid) = pgid {
        // ESRCH: the group is gone already.
        let _ = killpg(pgid, signal);
    }
}

/// A shell-style exit code: the status, or 128 + the signal that ended the process.
fn status_code(status: std::process::ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

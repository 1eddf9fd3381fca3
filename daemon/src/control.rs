//! The one control channel: OS signals and API requests both become [`Control`] messages
//! (vector's `signal.rs` model), so a SIGHUP and a `POST /v1/reload` take the same path.
//!
//! SIGHUP → [`Control::Reload`]; SIGTERM/SIGINT → [`Control::Shutdown`]. A *second*
//! SIGTERM/SIGINT exits the process at once, for an operator whose graceful stop hangs.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot};

use crate::reload::ReloadReport;

/// How many control messages may wait; senders wait beyond that (reloads are rare).
const CAPACITY: usize = 16;

/// A request to the supervisor.
#[derive(Debug)]
pub enum Control {
    /// Re-read and validate the config file; swap it in when valid.
    Reload {
        /// Where to send the outcome; `None` for signals, which only log it.
        reply: Option<oneshot::Sender<ReloadReport>>,
    },
    /// The shared config fragments in the coordination tree changed (or were read at start):
    /// merge them into the base config and apply the result like a reload.
    Fragments {
        /// Every current fragment, sorted by name.
        fragments: Vec<crate::shared_config::Fragment>,
    },
    /// Stop gracefully.
    Shutdown,
}

/// The sending side, cloned into every signal and API task.
pub type ControlSender = mpsc::Sender<Control>;
/// The receiving side, owned by the supervisor.
pub type ControlReceiver = mpsc::Receiver<Control>;

/// Creates the control channel.
pub fn channel() -> (ControlSender, ControlReceiver) {
    mpsc::channel(CAPACITY)
}

/// Installs SIGHUP, SIGTERM and SIGINT handlers and forwards them to `control`.
///
/// Installation happens before this returns, so no signal is lost between start-up and the
/// first poll; the forwarding runs as a spawned task for the life of the runtime.
pub fn spawn_signal_listener(control: ControlSender) -> std::io::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        let mut stopping = false;
        loop {
            let (name, exit_code) = tokio::select! {
                Some(()) = hup.recv() => {
                    tracing::info!(signal = "SIGHUP", "config reload requested");
                    if control.send(Control::Reload { reply: None }).await.is_err() {
                        return;
                    }
                    continue;
                }
                Some(()) = term.recv() => ("SIGTERM", 128 + 15),
                Some(()) = int.recv() => ("SIGINT", 128 + 2),
                else => return,
            };
            if stopping {
                tracing::warn!(signal = name, "second stop signal: exiting now");
                std::process::exit(exit_code);
            }
            stopping = true;
            tracing::info!(signal = name, "shutdown requested");
            if control.send(Control::Shutdown).await.is_err() {
                return;
            }
        }
    });
    Ok(())
}

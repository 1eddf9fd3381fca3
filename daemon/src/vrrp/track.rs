//! Tracking sources: the tasks that turn link state, track scripts and tracked files into
//! [`Input`]s for one instance.
//!
//! - The instance's own interface: not usable (down or no carrier) → `Input::Fault`.
//! - `track_interfaces`: usable → up, else down (weight 0 = fault, as configured).
//! - `track_scripts`: run every `interval` as the script user, killed after `timeout`; exit 0
//!   is a success, anything else (a non-zero status, a signal, a timeout, a failure to start) a
//!   failure. `rise` successes in a row bring it up, `fall` failures in a row take it down;
//!   it starts up, as in keepalived.
//! - `track_files`: re-read every [`FILE_POLL`]; the integer n moves the priority by n × weight
//!   (weight 0: n ≠ 0 is a fault). An unreadable or non-numeric file counts as 0.
//! - `track_groups`: fed by the LVS runtime through [`super::VrrpRuntime::set_group`].
//!
//! Each instance runs its own sources, so a script tracked by two instances runs twice; that
//! keeps every source's lifetime that of its instance across reloads.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use vigil_conf as conf;
use vigil_net::{LinkEvent, LinkMonitor, LinkState};
use vigil_vrrp::instance::Input;

use super::config::{
    file_inputs, file_key, file_status, interface_key, parse_file_value, script_key,
};
use super::script::{self, ScriptIdentity};
use super::task::UnitEvent;

/// How often tracked files are re-read.
pub const FILE_POLL: Duration = Duration::from_millis(500);

/// The running sources of one instance; dropping it stops them.
#[derive(Debug, Default)]
pub(crate) struct TrackSources {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for TrackSources {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Where a source sends its inputs.
#[derive(Debug, Clone)]
struct Sink {
    member: usize,
    tx: mpsc::Sender<UnitEvent>,
}

impl Sink {
    /// Sends; `false` once the instance task is gone and the source should end.
    async fn send(&self, input: Input) -> bool {
        let event = UnitEvent::Input {
            member: self.member,
            input,
        };
        self.tx.send(event).await.is_ok()
    }
}

impl TrackSources {
    /// Starts every source of `instance` (member `member` of its unit).
    pub(crate) fn spawn(
        instance: &conf::VrrpInstance,
        config: &conf::Config,
        identity: ScriptIdentity,
        member: usize,
        tx: mpsc::Sender<UnitEvent>,
    ) -> Self {
        let sink = Sink { member, tx };
        let mut tasks = Vec::new();
        let tracked: Vec<String> = instance
            .track
            .interfaces
            .iter()
            .map(|t| t.name.clone())
            .collect();
        tasks.push(tokio::spawn(watch_links(
            instance.interface.clone(),
            tracked,
            sink.clone(),
        )));
        for tracked in &instance.track.scripts {
            if let Some(defined) = config.track_script(&tracked.name) {
                tasks.push(tokio::spawn(run_script(
                    defined.clone(),
                    identity,
                    sink.clone(),
                )));
            }
        }
        for file in &instance.track.files {
            tasks.push(tokio::spawn(poll_file(
                file.path.clone(),
                file.weight,
                sink.clone(),
            )));
        }
        Self { tasks }
    }
}

/// Link state of the instance's interface (fault) and of its tracked interfaces.
async fn watch_links(interface: String, tracked: Vec<String>, sink: Sink) {
    let mut monitor = match LinkMonitor::subscribe().await {
        Ok(monitor) => monitor,
        Err(e) => {
            tracing::error!(interface = %interface, error = %e, "cannot watch link state; interface faults will go unnoticed");
            return;
        }
    };
    let mut last: HashMap<String, bool> = HashMap::new();
    let mut names = vec![interface.clone()];
    names.extend(tracked.iter().cloned());
    for name in names {
        let up = monitor.state_of(&name).is_some_and(LinkState::is_usable);
        if !report(&interface, &tracked, &sink, &mut last, &name, up).await {
            return;
        }
    }
    while let Some(event) = monitor.next().await {
        let (name, up) = match event {
            LinkEvent::Changed(state) => (state.name.clone(), state.is_usable()),
            LinkEvent::Removed { name, .. } => (name, false),
        };
        if !report(&interface, &tracked, &sink, &mut last, &name, up).await {
            return;
        }
    }
    tracing::error!(interface = %interface, "link monitor ended; interface faults will go unnoticed");
}

/// Forwards a link change when it concerns us and differs from the last report.
async fn report(
    interface: &str,
    tracked: &[String],
    sink: &Sink,
    last: &mut HashMap<String, bool>,
    name: &str,
    up: bool,
) -> bool {
    let is_own = name == interface;
    let is_tracked = tracked.iter().any(|t| t == name);
    if !(is_own || is_tracked) || last.get(name) == Some(&up) {
        return true;
    }
    last.insert(name.to_owned(), up);
    tracing::info!(interface = name, usable = up, "link state changed");
    if is_own && !sink.send(Input::Fault { active: !up }).await {
        return false;
    }
    if is_tracked {
        let input = Input::Track {
            name: interface_key(name),
            up,
        };
        return sink.send(input).await;
    }
    true
}

/// rise/fall hysteresis over script results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hysteresis {
    up: bool,
    rise: u32,
    fall: u32,
    streak: u32,
}

impl Hysteresis {
    /// Starts up, needing `rise` successes / `fall` failures in a row to change (0 acts as 1).
    pub fn new(rise: u32, fall: u32) -> Self {
        Self {
            up: true,
            rise: rise.max(1),
            fall: fall.max(1),
            streak: 0,
        }
    }

    /// Records one result; returns the new status when it changed.
    pub fn record(&mut self, success: bool) -> Option<bool> {
        if success == self.up {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if success { self.rise } else { self.fall };
        if self.streak >= needed {
            self.up = success;
            self.streak = 0;
            Some(success)
        } else {
            None
        }
    }

    /// The current status.
    pub fn is_up(&self) -> bool {
        self.up
    }
}

async fn run_script(script: conf::TrackScript, identity: ScriptIdentity, sink: Sink) {
    let key = script_key(&script.name);
    let mut status = Hysteresis::new(script.rise, script.fall);
    let mut ticker = tokio::time::interval(script.interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let outcome = script::run(&script.command, &[], identity, script.timeout).await;
        if let Some(up) = status.record(outcome.success()) {
            tracing::info!(script = %script.name, up, last = %outcome, "track script changed");
            if !sink
                .send(Input::Track {
                    name: key.clone(),
                    up,
                })
                .await
            {
                return;
            }
        }
    }
}

async fn poll_file(path: PathBuf, weight: i32, sink: Sink) {
    let key = file_key(&path);
    let mut last = None;
    let mut ticker = tokio::time::interval(FILE_POLL);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let n = tokio::fs::read_to_string(&path)
            .await
            .ok()
            .and_then(|text| parse_file_value(&text))
            .unwrap_or(0);
        let status = file_status(weight, n);
        if last == Some(status) {
            continue;
        }
        if last.is_some() {
            tracing::info!(file = %path.display(), value = n, "tracked file changed");
        }
        last = Some(status);
        for input in file_inputs(&key, status) {
            if !sink.send(input).await {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Hysteresis;

    #[test]
    fn hysteresis_needs_fall_failures_then_rise_successes_in_a_row() {
        let mut h = Hysteresis::new(2, 3);
        assert!(h.is_up());
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        // A success breaks the streak.
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(false), Some(false));
        assert!(!h.is_up());
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
    }

    #[test]
    fn hysteresis_of_one_follows_every_result() {
        let mut h = Hysteresis::new(1, 1);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(false), Some(false));
        assert_eq!(h.record(true), Some(true));
    }
}

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
//! keeps every source's lifetime that of its instance across reloads. A reload that changes
//! what an instance tracks moves its sources in place ([`TrackSources::update`]).

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

/// The running sources of one instance, each under the key of what it watches; dropping it
/// stops them.
///
/// A reload that changes the instance's tracking ([`update`](Self::update)) keeps every source
/// whose key is unchanged running (a script keeps its rise/fall history), stops the ones no
/// longer wanted and starts the new ones, instead of restarting the instance.
#[derive(Debug)]
pub(crate) struct TrackSources {
    sink: Sink,
    running: Vec<(SourceKey, JoinHandle<()>)>,
}

/// What one source watches; a source whose key a reload keeps keeps running.
#[derive(Debug, Clone, PartialEq)]
enum SourceKey {
    /// The instance's own interface (faults) and its tracked interfaces, on one link monitor.
    Links {
        interface: String,
        tracked: Vec<String>,
    },
    /// A track script, by its whole definition and who it runs as: a changed command,
    /// interval, rise, fall or script user is a new runner.
    Script(conf::TrackScript, ScriptIdentity),
    /// A tracked file and its configured weight.
    File { path: PathBuf, weight: i32 },
}

/// What [`TrackSources::update`] did, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceChanges {
    pub(crate) kept: usize,
    pub(crate) started: usize,
    pub(crate) stopped: usize,
    /// Track keys whose source started over and reports afresh (tracked files): the state
    /// machine takes their status from the new set rather than keeping the old one.
    pub(crate) reset: Vec<String>,
}

impl Drop for TrackSources {
    fn drop(&mut self) {
        for (_, task) in &self.running {
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

/// The sources `instance` needs, in start order.
fn wanted(
    instance: &conf::VrrpInstance,
    config: &conf::Config,
    identity: ScriptIdentity,
) -> Vec<SourceKey> {
    let mut keys = vec![SourceKey::Links {
        interface: instance.interface.clone(),
        tracked: instance
            .track
            .interfaces
            .iter()
            .map(|t| t.name.clone())
            .collect(),
    }];
    for tracked in &instance.track.scripts {
        if let Some(defined) = config.track_script(&tracked.name) {
            keys.push(SourceKey::Script(defined.clone(), identity));
        }
    }
    for file in &instance.track.files {
        keys.push(SourceKey::File {
            path: file.path.clone(),
            weight: file.weight,
        });
    }
    keys
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
        let mut sources = Self {
            sink: Sink { member, tx },
            running: Vec::new(),
        };
        for key in wanted(instance, config, identity) {
            let task = sources.start(&key, true);
            sources.running.push((key, task));
        }
        sources
    }

    /// Moves the sources to what `instance` (as reloaded, with `config`'s script definitions,
    /// scripts running as `identity`) tracks: unchanged sources keep running, the others stop or start. `is_up` is the state
    /// machine's current status of a track key: a script whose definition changed starts from
    /// it (no status change without `rise` or `fall` results of the new runner), a new one
    /// starts up like at start. Tracked files always start over, so that the file read for the
    /// new set and what the poller reports next agree; their keys are returned as `reset`.
    pub(crate) fn update(
        &mut self,
        instance: &conf::VrrpInstance,
        config: &conf::Config,
        identity: ScriptIdentity,
        is_up: impl Fn(&str) -> Option<bool>,
    ) -> SourceChanges {
        let mut changes = SourceChanges::default();
        let mut old = std::mem::take(&mut self.running);
        for key in wanted(instance, config, identity) {
            let kept = old
                .iter()
                .position(|(k, _)| *k == key)
                .filter(|_| !matches!(key, SourceKey::File { .. }));
            let task = if let Some(i) = kept {
                changes.kept += 1;
                old.swap_remove(i).1
            } else {
                changes.started += 1;
                let up = match &key {
                    SourceKey::Script(script, _) => {
                        is_up(&script_key(&script.name)).unwrap_or(true)
                    }
                    SourceKey::File { path, .. } => {
                        changes.reset.push(file_key(path));
                        true
                    }
                    SourceKey::Links { .. } => true,
                };
                self.start(&key, up)
            };
            self.running.push((key, task));
        }
        for (_, task) in old {
            changes.stopped += 1;
            task.abort();
        }
        changes
    }

    /// Starts the source of `key`; a script starts with status `up`.
    fn start(&self, key: &SourceKey, up: bool) -> JoinHandle<()> {
        let sink = self.sink.clone();
        match key {
            SourceKey::Links { interface, tracked } => {
                tokio::spawn(watch_links(interface.clone(), tracked.clone(), sink))
            }
            SourceKey::Script(script, identity) => {
                tokio::spawn(run_script(script.clone(), *identity, sink, up))
            }
            SourceKey::File { path, weight } => {
                tokio::spawn(poll_file(path.clone(), *weight, sink))
            }
        }
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
        Self::starting(true, rise, fall)
    }

    /// Starts at `up` (a reloaded script carries on from the status it had).
    pub fn starting(up: bool, rise: u32, fall: u32) -> Self {
        Self {
            up,
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

async fn run_script(script: conf::TrackScript, identity: ScriptIdentity, sink: Sink, up: bool) {
    let key = script_key(&script.name);
    let mut status = Hysteresis::starting(up, script.rise, script.fall);
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
    use super::*;

    const CONFIG: &str = r#"
[[vrrp_instance]]
name = "vi"
interface = "lo"
vrid = 1
vips = ["10.0.0.1"]
fencing = "off"
track_scripts = ["chk"]
track_files = [{ path = "/nonexistent/maint", weight = -5 }]

[[track_script]]
name = "chk"
command = ["/bin/true"]
interval = "1h"

[[track_script]]
name = "chk2"
command = ["/bin/true"]
interval = "1h"
"#;

    fn load(src: &str) -> conf::Config {
        conf::load_str(src, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn a_reload_keeps_unchanged_sources_and_moves_the_rest() {
        let config = load(CONFIG);
        let (tx, _rx) = mpsc::channel(16);
        let id = ScriptIdentity::current();
        let mut sources = TrackSources::spawn(&config.vrrp_instances[0], &config, id, 0, tx);
        assert_eq!(sources.running.len(), 3, "links, chk, the file");
        // Unchanged: only the file poller starts over (reported as a reset).
        let same = sources.update(&config.vrrp_instances[0], &config, id, |_| None);
        assert_eq!(
            same,
            SourceChanges {
                kept: 2,
                started: 1,
                stopped: 1,
                reset: vec!["file:/nonexistent/maint".into()],
            }
        );
        // `chk` gets a new command, `chk2` and a tracked interface are added, the file goes.
        let next = load(
            &CONFIG
                .replace("command = [\"/bin/true\"]\ninterval = \"1h\"\n\n[[track_script]]\nname = \"chk2\"",
                    "command = [\"/bin/false\"]\ninterval = \"1h\"\n\n[[track_script]]\nname = \"chk2\"")
                .replace(
                    "track_scripts = [\"chk\"]\ntrack_files = [{ path = \"/nonexistent/maint\", weight = -5 }]",
                    "track_scripts = [\"chk\", \"chk2\"]\ntrack_interfaces = [\"lo\"]",
                ),
        );
        let asked = std::sync::Mutex::new(Vec::new());
        let moved = sources.update(&next.vrrp_instances[0], &next, id, |key| {
            asked.lock().expect("asked").push(key.to_owned());
            Some(false)
        });
        assert_eq!(
            moved,
            SourceChanges {
                kept: 0,
                started: 3,
                stopped: 3,
                reset: vec![],
            }
        );
        // The restarted and the new runner start from the state machine's status.
        assert_eq!(*asked.lock().expect("asked"), ["script:chk", "script:chk2"]);
        assert_eq!(sources.running.len(), 3);
    }

    #[test]
    fn hysteresis_can_start_down() {
        let mut h = Hysteresis::starting(false, 2, 1);
        assert!(!h.is_up());
        assert_eq!(h.record(false), None);
        assert_eq!(h.record(true), None);
        assert_eq!(h.record(true), Some(true));
    }

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

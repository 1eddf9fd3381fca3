//! [`VrrpRuntime`]: starts, reloads, reports on and stops the VRRP units.

use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use vigil_conf as conf;

use super::config::group_key;
use super::script::{IdentityError, ScriptIdentity};
use super::status::{InstanceStatus, StatusCell};
use super::task::{self, Retrack, UnitEvent, UnitHandle, UnitSpec};
use crate::fence::FenceHandle;
use crate::watchdog::Beacon;

/// Default limit for one unit's clean stop (priority-0 adverts, VIP removal, stop scripts).
pub const DEFAULT_STOP_LIMIT: Duration = Duration::from_secs(5);

/// Why the VRRP runtime refused a config.
#[derive(Debug, thiserror::Error)]
pub enum VrrpError {
    /// `[global] script_user` / `script_group` cannot be used although scripts are configured.
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

/// What a reload did, by unit (a sync group, or a lone instance by its name).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplySummary {
    /// New units, started.
    pub started: Vec<String>,
    /// Units no longer configured, stopped cleanly.
    pub stopped: Vec<String>,
    /// Changed units, stopped and started again (their VIPs move if they were master).
    pub restarted: Vec<String>,
    /// Units whose only changes were priorities, advert intervals, VIP lists, preemption,
    /// accept mode, GARP settings or tracking (tracked objects added or removed, weights,
    /// track-script definitions), updated in place without a restart (see
    /// [`VrrpRuntime::apply`]).
    pub updated: Vec<String>,
    /// Untouched units.
    pub unchanged: Vec<String>,
}

/// Every VRRP instance of the config, one task per sync group or lone instance.
#[derive(Debug)]
pub struct VrrpRuntime {
    units: BTreeMap<String, UnitHandle>,
    stop_limit: Duration,
    view: VrrpView,
    /// The fencing task, when a coordination node runs.
    fence: Option<FenceHandle>,
}

/// A cheap, cloneable reader of every instance's status (for the API), valid across reloads.
#[derive(Debug, Clone, Default)]
pub struct VrrpView {
    statuses: Arc<RwLock<Vec<StatusCell>>>,
    /// Each unit's liveness beacon, by unit name (for the systemd watchdog).
    beacons: Arc<RwLock<Vec<(String, Beacon)>>>,
}

impl VrrpView {
    /// The status of every instance, sorted by name.
    pub fn instances(&self) -> Vec<InstanceStatus> {
        let statuses = self.statuses.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<InstanceStatus> = statuses.iter().map(StatusCell::get).collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// Every running unit's liveness beacon, by unit name.
    pub fn beacons(&self) -> Vec<(String, Beacon)> {
        self.beacons
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn publish(&self, units: &BTreeMap<String, UnitHandle>) {
        *self.beacons.write().unwrap_or_else(PoisonError::into_inner) = units
            .iter()
            .map(|(name, u)| (name.clone(), u.beacon.clone()))
            .collect();
        let fresh = units
            .values()
            .flat_map(|u| u.statuses.iter().cloned())
            .collect();
        *self
            .statuses
            .write()
            .unwrap_or_else(PoisonError::into_inner) = fresh;
    }
}

impl VrrpRuntime {
    /// Starts every configured instance. Each first removes VIPs left over from a crashed run,
    /// then starts as backup (or master, as the address owner).
    pub fn start(config: &conf::Config) -> Result<Self, VrrpError> {
        VrrpRuntime::start_fenced(config, None)
    }

    /// [`start`](Self::start), with `fence` holding the VIPs of `fencing = "quorum"` instances.
    pub fn start_fenced(
        config: &conf::Config,
        fence: Option<FenceHandle>,
    ) -> Result<Self, VrrpError> {
        let specs = unit_specs(config)?;
        let units = specs
            .into_iter()
            .map(|spec| (spec.name.clone(), task::spawn(spec, config, fence.clone())))
            .collect();
        let view = VrrpView::default();
        view.publish(&units);
        Ok(Self {
            units,
            stop_limit: DEFAULT_STOP_LIMIT,
            view,
            fence,
        })
    }

    /// Applies a reloaded config: unchanged units keep running untouched (no flap), removed
    /// ones stop cleanly, new ones start, units whose only changes are priorities, advert
    /// intervals, VIP lists, preemption, GARP, tracking or notify scripts are updated in place
    /// (no transition,
    /// kept VIPs stay up),
    /// and any other change restarts the unit.
    ///
    /// Tracking in place: the unit keeps every track source whose object and definition are
    /// unchanged running, stops the removed ones and starts the new ones; its state machine gets
    /// the new set ([`vigil_vrrp::instance::Input::SetTracks`]), where kept objects keep their
    /// reported status and new ones start as they would at start (scripts, interfaces and
    /// check groups up until they report otherwise, files as read now), so adding a track to a
    /// master never faults it or moves its VIPs before the new object has actually failed.
    ///
    /// Why the rest restarts: `vrid`, `interface`, `family`, `version`, `transport`/peers,
    /// `use_vmac` and authentication are the virtual router's identity on the wire or its
    /// sockets (RFC 9568 §5 and §7: a router with a new VRID or link is another router), so
    /// the old one must leave (priority 0) and the new one start; being the address owner
    /// (priority 255) changes who owns the addresses; and the VIPs of `fencing = "quorum"`
    /// instances are claimed through the quorum as registered at start. `vmac_name` and
    /// sync-group membership also restart it: rare changes whose in-place handling would add
    /// code paths that are hard to test, for a short planned move. Preemption, accept mode,
    /// GARP settings, notify scripts and the script user apply in place (notify changes go
    /// through the instance's script queue, so scripts already queued run as they were).
    pub async fn apply(&mut self, config: &conf::Config) -> Result<ApplySummary, VrrpError> {
        let specs = unit_specs(config)?;
        let mut summary = ApplySummary::default();
        let mut next = BTreeMap::new();
        for spec in specs {
            let name = spec.name.clone();
            match self.units.remove(&name) {
                Some(handle) if handle.spec == spec => {
                    summary.unchanged.push(name.clone());
                    next.insert(name, handle);
                }
                Some(mut handle) if updatable_in_place(&handle.spec, &spec) => {
                    for (member, (old, new)) in handle
                        .spec
                        .instances
                        .iter()
                        .zip(&spec.instances)
                        .enumerate()
                    {
                        let new_user = handle.spec.identity != spec.identity && has_notify(new);
                        if old == new && !new_user {
                            continue;
                        }
                        let retrack = tracking_changed(old, new, &handle.spec, &spec);
                        let update = UnitEvent::Update {
                            member,
                            instance: Box::new(new.clone()),
                            inputs: in_place_inputs(old, new),
                            retrack: retrack.then(|| Retrack {
                                scripts: spec.scripts.clone(),
                                identity: spec.identity,
                            }),
                            identity: spec.identity,
                        };
                        let _ = handle.tx.send(update).await;
                    }
                    handle.spec = spec;
                    summary.updated.push(name.clone());
                    next.insert(name, handle);
                }
                Some(handle) => {
                    stop_unit(handle, self.stop_limit).await;
                    summary.restarted.push(name.clone());
                    next.insert(name, task::spawn(spec, config, self.fence.clone()));
                }
                None => {
                    summary.started.push(name.clone());
                    next.insert(name, task::spawn(spec, config, self.fence.clone()));
                }
            }
        }
        for (name, handle) in std::mem::take(&mut self.units) {
            stop_unit(handle, self.stop_limit).await;
            summary.stopped.push(name);
        }
        self.units = next;
        self.view.publish(&self.units);
        Ok(summary)
    }

    /// The status of every instance, sorted by name.
    pub fn status(&self) -> Vec<InstanceStatus> {
        self.view.instances()
    }

    /// A status reader for the API that follows reloads.
    pub fn view(&self) -> VrrpView {
        self.view.clone()
    }

    /// Reports a health-check group (`track_groups`) up or down to every instance tracking it;
    /// the LVS runtime calls this when a group's health changes.
    pub async fn set_group(&self, name: &str, up: bool) {
        for unit in self.units.values() {
            for (member, instance) in unit.spec.instances.iter().enumerate() {
                if instance.track.groups.iter().any(|g| g.name == name) {
                    let input = vigil_vrrp::instance::Input::Track {
                        name: group_key(name),
                        up,
                    };
                    let _ = unit.tx.send(UnitEvent::Input { member, input }).await;
                }
            }
        }
    }

    /// [`set_group`](Self::set_group) for every group in `states` (the LVS runtime's
    /// `watch_groups` map), e.g. after a reload restarted units with their groups assumed up.
    pub async fn set_groups(&self, states: &BTreeMap<String, bool>) {
        for (name, up) in states {
            self.set_group(name, *up).await;
        }
    }

    /// Stops every unit cleanly (priority-0 adverts, VIPs removed, stop scripts), all at once,
    /// within `limit`; whatever is left then is aborted.
    pub async fn shutdown(self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        for unit in self.units.values() {
            let _ = unit.tx.send(UnitEvent::Shutdown).await;
        }
        for (name, unit) in self.units {
            let abort = unit.task.abort_handle();
            if tokio::time::timeout_at(deadline, unit.task).await.is_err() {
                tracing::warn!(unit = %name, "VRRP unit did not stop in time; aborted");
                abort.abort();
            }
        }
    }
}

/// Asks a unit to stop and waits up to `limit`, then aborts it.
async fn stop_unit(handle: UnitHandle, limit: Duration) {
    let UnitHandle { spec, tx, task, .. } = handle;
    let _ = tx.send(UnitEvent::Shutdown).await;
    let abort = task.abort_handle();
    if tokio::time::timeout(limit, task).await.is_err() {
        tracing::warn!(unit = %spec.name, "VRRP unit did not stop in time; aborted");
        abort.abort();
    }
}

/// Whether `a` and `b` differ at most in their members' priorities, advert intervals, VIP lists
/// (unfenced instances), tracking (tracked interfaces, scripts, files and check groups, their
/// weights, the track scripts' definitions) and notify scripts and their user: what
/// [`in_place_inputs`] and the unit's in-place tracking and notify updates apply to a running instance (a shared-config push or a SIGHUP must not
/// restart a master and move its VIPs).
fn updatable_in_place(a: &UnitSpec, b: &UnitSpec) -> bool {
    let strip = |spec: &UnitSpec| {
        let mut spec = spec.clone();
        spec.scripts.clear();
        // Track scripts take a new script user in place (see `tracking_changed`), notify
        // scripts their new commands and user through their queue (`NotifyQueue::reconfigure`).
        spec.identity = ScriptIdentity::current();
        for instance in &mut spec.instances {
            instance.notify = conf::Notify::default();
            instance.priority = 1;
            instance.advert_interval = Duration::ZERO;
            instance.preempt = false;
            instance.preempt_delay = Duration::ZERO;
            instance.accept_mode = false;
            instance.garp = conf::Garp::default();
            if !super::config::is_fenced(instance) {
                instance.vips.clear();
            }
            instance.track = conf::Track::default();
        }
        spec
    };
    // The address owner's priority (255) is tied to owning the addresses: restart for it.
    let owner_change = a
        .instances
        .iter()
        .zip(&b.instances)
        .any(|(x, y)| (x.priority == 255) != (y.priority == 255));
    // A VIP kept under the same address keeps its prefix, device and label: otherwise the
    // kernel's address itself changes, which only a remove and add (a restart) does cleanly.
    let vips_kept_as_they_were = a.instances.iter().zip(&b.instances).all(|(x, y)| {
        x.vips.iter().all(|v| {
            y.vips
                .iter()
                .find(|w| w.addr == v.addr)
                .is_none_or(|w| w == v)
        })
    });
    !owner_change && vips_kept_as_they_were && strip(a) == strip(b)
}

/// Whether member `old` of unit `a` tracks differently as `new` of unit `b`: other objects or
/// weights, or a changed definition of a script it tracks. The unit then rebuilds the member's
/// tracking in place.
fn tracking_changed(
    old: &conf::VrrpInstance,
    new: &conf::VrrpInstance,
    a: &UnitSpec,
    b: &UnitSpec,
) -> bool {
    let definition =
        |spec: &UnitSpec, name: &str| spec.scripts.iter().find(|s| s.name == name).cloned();
    let scripts = &new.track.scripts;
    old.track != new.track
        || scripts
            .iter()
            .any(|t| definition(a, &t.name) != definition(b, &t.name))
        || (!scripts.is_empty() && a.identity != b.identity)
}

/// Whether `instance` runs notify scripts (as the unit's script user).
fn has_notify(instance: &conf::VrrpInstance) -> bool {
    let n = &instance.notify;
    n.master.is_some()
        || n.backup.is_some()
        || n.fault.is_some()
        || n.stop.is_some()
        || n.any.is_some()
}

/// The inputs that turn a running `old` into `new`, which differ at most as
/// [`updatable_in_place`] allows: the configured priority, the advert interval, the VIP list,
/// the preemption, accept-mode and GARP settings.
/// Tracking is the unit's to rebuild (see [`tracking_changed`]): it owns the sources whose
/// status the new set keeps.
fn in_place_inputs(
    old: &conf::VrrpInstance,
    new: &conf::VrrpInstance,
) -> Vec<vigil_vrrp::instance::Input> {
    use vigil_vrrp::instance::Input;
    let mut inputs = Vec::new();
    if old.priority != new.priority {
        inputs.push(Input::SetPriority(new.priority));
    }
    if old.advert_interval != new.advert_interval {
        // Not whole centiseconds (or too long): 0, which the state machine refuses (and the
        // unit logs), rather than a rounded interval the operator did not ask for.
        let ms = new.advert_interval.as_millis();
        let cs = if ms.is_multiple_of(10) {
            u16::try_from(ms / 10).unwrap_or(0)
        } else {
            0
        };
        inputs.push(Input::SetAdvertInterval(cs));
    }
    if old.vips != new.vips {
        inputs.push(Input::SetAddresses(
            new.vips.iter().map(|v| v.addr).collect(),
        ));
    }
    if (old.preempt, old.preempt_delay, old.accept_mode, &old.garp)
        != (new.preempt, new.preempt_delay, new.accept_mode, &new.garp)
    {
        inputs.push(Input::SetOptions {
            preempt: new.preempt,
            preempt_delay: new.preempt_delay,
            accept_mode: new.accept_mode,
            garp: super::config::garp_config(&new.garp),
        });
    }
    inputs
}

/// Splits the config into units: each sync group, then each instance in no group.
fn unit_specs(config: &conf::Config) -> Result<Vec<UnitSpec>, VrrpError> {
    let identity = script_identity(config)?;
    let mut specs = Vec::new();
    let mut grouped = Vec::new();
    for group in &config.sync_groups {
        let instances: Vec<conf::VrrpInstance> = group
            .instances
            .iter()
            .filter_map(|name| config.vrrp_instance(name).cloned())
            .collect();
        grouped.extend(group.instances.iter().cloned());
        specs.push(spec(config, group.name.clone(), instances, identity));
    }
    for instance in &config.vrrp_instances {
        if !grouped.contains(&instance.name) {
            specs.push(spec(
                config,
                instance.name.clone(),
                vec![instance.clone()],
                identity,
            ));
        }
    }
    Ok(specs)
}

fn spec(
    config: &conf::Config,
    name: String,
    instances: Vec<conf::VrrpInstance>,
    identity: ScriptIdentity,
) -> UnitSpec {
    let mut scripts: Vec<conf::TrackScript> = config
        .track_scripts
        .iter()
        .filter(|s| {
            instances
                .iter()
                .any(|i| i.track.scripts.iter().any(|t| t.name == s.name))
        })
        .cloned()
        .collect();
    scripts.sort_by(|a, b| a.name.cmp(&b.name));
    UnitSpec {
        name,
        instances,
        scripts,
        identity,
    }
}

/// The script identity, resolved only when some instance has scripts to run.
fn script_identity(config: &conf::Config) -> Result<ScriptIdentity, VrrpError> {
    let has_scripts = config
        .vrrp_instances
        .iter()
        .any(|i| !i.track.scripts.is_empty() || has_notify(i));
    if !has_scripts {
        return Ok(ScriptIdentity::current());
    }
    Ok(ScriptIdentity::resolve(
        &config.global.script_user,
        config.global.script_group.as_deref(),
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[global]
script_user = "root"

[[vrrp_instance]]
name = "a"
interface = "eth0"
vrid = 1
vips = ["10.0.0.1"]
fencing = "off"

[[vrrp_instance]]
name = "b"
interface = "eth1"
vrid = 2
vips = ["10.0.1.1"]
fencing = "off"
track_scripts = ["chk"]

[[vrrp_instance]]
name = "c"
interface = "eth0"
vrid = 3
vips = ["10.0.0.3"]
fencing = "off"

[[vrrp_sync_group]]
name = "g"
instances = ["b", "a"]

[[track_script]]
name = "chk"
command = ["/bin/true"]
"#;

    fn load(src: &str) -> conf::Config {
        conf::load_str(src, "t.toml").unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn sync_groups_form_one_unit_and_lone_instances_their_own() {
        let specs = unit_specs(&load(CONFIG)).expect("specs");
        let units: Vec<(&str, Vec<&str>, Vec<&str>)> = specs
            .iter()
            .map(|s| {
                (
                    s.name.as_str(),
                    s.instances.iter().map(|i| i.name.as_str()).collect(),
                    s.scripts.iter().map(|t| t.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            units,
            [("g", vec!["b", "a"], vec!["chk"]), ("c", vec!["c"], vec![])]
        );
    }

    #[test]
    fn priority_interval_and_vip_changes_are_updates_identity_changes_restart() {
        use vigil_vrrp::instance::Input;
        let old_config = load(CONFIG);
        let old = unit_specs(&old_config).expect("specs");
        let changed = |from: &str, to: &str| {
            let config = load(&CONFIG.replace(from, to));
            let specs = unit_specs(&config).expect("specs");
            (config, specs)
        };
        let (_, prio) = changed("vrid = 3\n", "vrid = 3\npriority = 50\n");
        assert_eq!(old[0], prio[0], "other units are untouched");
        assert!(updatable_in_place(&old[1], &prio[1]));
        assert_ne!(old[1], prio[1]);
        // A new advert interval and a new VIP list, together: one update, both inputs.
        let (_, both) = changed(
            "vips = [\"10.0.0.3\"]",
            "advert_interval = \"200ms\"\nvips = [\"10.0.0.3\", \"10.0.0.4/24\"]",
        );
        assert!(updatable_in_place(&old[1], &both[1]));
        assert_eq!(
            in_place_inputs(&old[1].instances[0], &both[1].instances[0]),
            [
                Input::SetAdvertInterval(20),
                Input::SetAddresses(vec![
                    "10.0.0.3".parse().expect("address"),
                    "10.0.0.4".parse().expect("address")
                ]),
            ]
        );
        // A kept address with a new prefix changes the kernel's address: restart.
        let (_, prefix) = changed("\"10.0.0.3\"", "\"10.0.0.3/16\"");
        assert!(!updatable_in_place(&old[1], &prefix[1]));
        // Another VRID is another virtual router: restart.
        let (_, vrid) = changed("vrid = 3\n", "vrid = 4\n");
        assert!(!updatable_in_place(&old[1], &vrid[1]));
        // Fenced VIPs are claimed as registered: restart.
        let fenced = |spec: &UnitSpec| {
            let mut spec = spec.clone();
            spec.instances[0].fencing = conf::Fencing::Quorum;
            spec
        };
        let (_, vip) = changed("\"10.0.0.3\"", "\"10.0.0.4\"");
        assert!(updatable_in_place(&old[1], &vip[1]));
        assert!(!updatable_in_place(&fenced(&old[1]), &fenced(&vip[1])));
        // Preemption and announcements: in place, from the next advert on.
        let (_, preempt) = changed(
            "vrid = 3\n",
            "vrid = 3\npreempt = false\ngarp_refresh = \"30s\"\n",
        );
        assert!(updatable_in_place(&old[1], &preempt[1]));
        let garp = vigil_vrrp::config::GarpConfig {
            refresh: Some(Duration::from_secs(30)),
            ..super::super::config::garp_config(&old[1].instances[0].garp)
        };
        assert_eq!(
            in_place_inputs(&old[1].instances[0], &preempt[1].instances[0]),
            [Input::SetOptions {
                preempt: false,
                preempt_delay: Duration::ZERO,
                accept_mode: false,
                garp,
            }]
        );
        // An interface change is another router: restart.
        let (_, interface) = changed(
            "interface = \"eth0\"\nvrid = 3",
            "interface = \"eth2\"\nvrid = 3",
        );
        assert!(!updatable_in_place(&old[1], &interface[1]));
    }

    #[test]
    fn tracking_changes_are_applied_in_place_to_the_members_that_track() {
        let old = unit_specs(&load(CONFIG)).expect("specs");
        let in_place = |src: &str| {
            let new = unit_specs(&load(src)).expect("specs");
            assert_ne!(old[0], new[0]);
            assert!(
                updatable_in_place(&old[0], &new[0]),
                "no restart, no VIP flap: {:?} vs {:?}",
                old[0].identity,
                new[0].identity
            );
            let (a, b) = (&old[0], &new[0]);
            let retracked: Vec<bool> = a
                .instances
                .iter()
                .zip(&b.instances)
                .map(|(o, n)| {
                    assert!(in_place_inputs(o, n).is_empty(), "tracking is the unit's");
                    tracking_changed(o, n, a, b)
                })
                .collect();
            retracked
        };
        // Members: "b" tracks `chk`, "a" nothing.
        let weight = CONFIG.replace(
            "track_scripts = [\"chk\"]",
            "track_scripts = [{ name = \"chk\", weight = -40 }]",
        );
        assert_eq!(in_place(&weight), [true, false]);
        // A new tracked interface, file and script on a member; a new script definition.
        let added = CONFIG
            .replace(
                "vips = [\"10.0.0.1\"]\n",
                "vips = [\"10.0.0.1\"]\ntrack_interfaces = [\"eth1\"]\n\
                 track_files = [{ path = \"/run/m\", weight = -5 }]\n\
                 track_scripts = [\"chk2\"]\n",
            )
            .replace(
                "[[track_script]]",
                "[[track_script]]\nname = \"chk2\"\ncommand = [\"/bin/true\"]\n\n[[track_script]]",
            );
        assert_eq!(in_place(&added), [false, true], "{added}");
        // Tracking removed altogether.
        assert_eq!(
            in_place(&CONFIG.replace("track_scripts = [\"chk\"]\n", "")),
            [true, false]
        );
        // A changed track-script definition: only its runner changes.
        assert_eq!(
            in_place(&CONFIG.replace("/bin/true", "/bin/false")),
            [true, false]
        );
        // A new script user: the track scripts' runners take it in place …
        let user = CONFIG.replace(
            "script_user = \"root\"",
            "script_user = \"root\"\nscript_group = \"daemon\"",
        );
        assert_eq!(in_place(&user), [true, false]);
        // … and so do notify scripts, a new user or new commands (through their queue).
        let notify = |src: &str, script: &str| {
            let src = src.replace(
                "track_scripts = [\"chk\"]",
                &format!("track_scripts = [\"chk\"]\nnotify_master = \"{script}\""),
            );
            unit_specs(&load(&src)).expect("specs")
        };
        let before = &notify(CONFIG, "/bin/true")[0];
        assert!(updatable_in_place(before, &notify(&user, "/bin/true")[0]));
        assert!(updatable_in_place(before, &notify(CONFIG, "/bin/echo")[0]));
        // The identity is the Update's (the unit compares it with the queue's).
        assert_ne!(before.identity, notify(&user, "/bin/true")[0].identity);
    }
}

//! Notify scripts: what runs on each transition, in order, one at a time per instance.
//!
//! Per transition, the state's own script (`notify_master`, `notify_backup`, `notify_fault`,
//! `notify_stop` for leaving service) runs first, then the generic `notify`. Every script gets:
//!
//! | variable              | value                                                  |
//! |-----------------------|--------------------------------------------------------|
//! | `VIGIL_INSTANCE`      | instance name                                          |
//! | `VIGIL_STATE`         | new state: `master`, `backup`, `fault`, `stop`         |
//! | `VIGIL_OLD_STATE`     | previous state (`initialize` before the first one)     |
//! | `VIGIL_PRIORITY`      | effective priority at the transition                   |
//! | `VIGIL_VRID`          | virtual router id                                      |
//! | `VIGIL_REASON`        | why (`startup`, `master_down`, `preempted`, …)         |
//! | `VIGIL_FENCING_TOKEN` | the owner znode's token; empty until quorum fencing    |
//!
//! The generic `notify` script also gets keepalived's positional arguments after its own argv:
//! `INSTANCE <name> <MASTER|BACKUP|FAULT|STOP> <priority>`, so existing keepalived notify
//! scripts work unchanged.
//!
//! Scripts of one instance never overlap: a queue feeds one worker task, so a quick
//! master→backup→master sequence runs three scripts in that order. A script past
//! `notify_timeout` is killed with its process group and the next one starts. A reload that
//! changes the scripts (or who they run as) goes through the same queue
//! ([`NotifyQueue::reconfigure`]): transitions queued before it run the old scripts, later ones
//! the new, and the instance itself keeps running (no VIP flap for a script change).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vigil_conf as conf;
use vigil_vrrp::instance::State;

use super::script::{self, ScriptIdentity};

/// One transition, as the scripts see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// Instance name.
    pub instance: String,
    /// Virtual router id.
    pub vrid: u8,
    /// Previous state.
    pub from: State,
    /// New state.
    pub to: State,
    /// Effective priority at the transition.
    pub priority: u8,
    /// Why (a [`vigil_vrrp::instance::Reason`] name).
    pub reason: &'static str,
    /// The fencing token, once quorum fencing exists.
    pub fencing_token: Option<u64>,
}

impl Transition {
    /// `VIGIL_STATE`: the new state, with Initialize (leaving service) called `stop`.
    pub fn state_label(&self) -> &'static str {
        match self.to {
            State::Initialize => "stop",
            other => other.as_str(),
        }
    }

    /// The environment every script of this transition gets.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("VIGIL_INSTANCE", self.instance.clone()),
            ("VIGIL_STATE", self.state_label().to_owned()),
            ("VIGIL_OLD_STATE", self.from.as_str().to_owned()),
            ("VIGIL_PRIORITY", self.priority.to_string()),
            ("VIGIL_VRID", self.vrid.to_string()),
            ("VIGIL_REASON", self.reason.to_owned()),
            (
                "VIGIL_FENCING_TOKEN",
                self.fencing_token
                    .map(|t| t.to_string())
                    .unwrap_or_default(),
            ),
        ]
    }
}

/// The argv lists to run for `transition`, in order.
pub fn commands(notify: &conf::Notify, transition: &Transition) -> Vec<Vec<String>> {
    let specific = match transition.to {
        State::Master => &notify.master,
        State::Backup => &notify.backup,
        State::Fault => &notify.fault,
        State::Initialize => &notify.stop,
    };
    let mut out: Vec<Vec<String>> = specific.iter().cloned().collect();
    if let Some(any) = &notify.any {
        let mut argv = any.clone();
        argv.extend([
            "INSTANCE".to_owned(),
            transition.instance.clone(),
            transition.state_label().to_ascii_uppercase(),
            transition.priority.to_string(),
        ]);
        out.push(argv);
    }
    out
}

/// What the worker is asked to do, in queue order.
#[derive(Debug)]
enum Job {
    /// Run the scripts of a transition.
    Run(Transition),
    /// Use these scripts and this user from the next transition on.
    Reconfigure(conf::Notify, ScriptIdentity),
}

/// The per-instance script queue and its worker.
#[derive(Debug)]
pub struct NotifyQueue {
    tx: mpsc::UnboundedSender<Job>,
    worker: JoinHandle<()>,
}

impl NotifyQueue {
    /// Starts the worker for `notify`'s scripts.
    pub fn spawn(notify: conf::Notify, identity: ScriptIdentity) -> Self {
        let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
        let worker = tokio::spawn(async move {
            let (mut notify, mut identity) = (notify, identity);
            while let Some(job) = rx.recv().await {
                let transition = match job {
                    Job::Run(transition) => transition,
                    Job::Reconfigure(n, i) => {
                        (notify, identity) = (n, i);
                        continue;
                    }
                };
                let env = transition.env();
                for argv in commands(&notify, &transition) {
                    let outcome = script::run(&argv, &env, identity, notify.timeout).await;
                    if outcome.success() {
                        tracing::debug!(instance = %transition.instance, command = ?argv, "notify script done");
                    } else {
                        tracing::warn!(
                            instance = %transition.instance,
                            state = transition.state_label(),
                            command = ?argv,
                            outcome = %outcome,
                            "notify script failed"
                        );
                    }
                }
            }
        });
        Self { tx, worker }
    }

    /// Queues the scripts of `transition`.
    pub fn push(&self, transition: Transition) {
        // The worker lives as long as the queue; a send can only fail once it is gone.
        let _ = self.tx.send(Job::Run(transition));
    }

    /// Switches to `notify`'s scripts, run as `identity`, for every transition queued after
    /// this call; those already queued still run the scripts they were queued under.
    pub fn reconfigure(&self, notify: conf::Notify, identity: ScriptIdentity) {
        let _ = self.tx.send(Job::Reconfigure(notify, identity));
    }

    /// Lets queued scripts finish for at most `limit`, then abandons (and so kills) the rest.
    pub async fn close(self, limit: Duration) {
        drop(self.tx);
        let mut worker = self.worker;
        if tokio::time::timeout(limit, &mut worker).await.is_err() {
            tracing::warn!("notify scripts still running at shutdown; killing them");
            worker.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transition(to: State) -> Transition {
        Transition {
            instance: "vi_web".into(),
            vrid: 51,
            from: State::Backup,
            to,
            priority: 150,
            reason: "master_down",
            fencing_token: None,
        }
    }

    fn argv(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_state_script_runs_before_the_generic_one_with_keepalived_arguments() {
        let notify = conf::Notify {
            master: Some(argv(&["/m.sh", "x"])),
            backup: Some(argv(&["/b.sh"])),
            any: Some(argv(&["/any.sh"])),
            ..conf::Notify::default()
        };
        let cmds = commands(&notify, &transition(State::Master));
        assert_eq!(
            cmds,
            vec![
                argv(&["/m.sh", "x"]),
                argv(&["/any.sh", "INSTANCE", "vi_web", "MASTER", "150"]),
            ]
        );
        let stop = commands(&notify, &transition(State::Initialize));
        assert_eq!(
            stop,
            vec![argv(&["/any.sh", "INSTANCE", "vi_web", "STOP", "150"])]
        );
    }

    #[test]
    fn environment_names_the_transition() {
        let env = transition(State::Master).env();
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("VIGIL_INSTANCE"), Some("vi_web"));
        assert_eq!(get("VIGIL_STATE"), Some("master"));
        assert_eq!(get("VIGIL_OLD_STATE"), Some("backup"));
        assert_eq!(get("VIGIL_PRIORITY"), Some("150"));
        assert_eq!(get("VIGIL_VRID"), Some("51"));
        assert_eq!(get("VIGIL_REASON"), Some("master_down"));
        assert_eq!(get("VIGIL_FENCING_TOKEN"), Some(""));
    }

    #[tokio::test]
    async fn scripts_of_one_instance_run_in_order_never_concurrently() {
        let dir = std::env::temp_dir().join(format!("vigil-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("log");
        // Each run appends "start", sleeps, appends "end": overlap would interleave them.
        let script = format!(
            "echo start $VIGIL_STATE >> {0}; sleep 0.1; echo end $VIGIL_STATE >> {0}",
            log.display()
        );
        let sh = Some(argv(&["/bin/sh", "-c", &script]));
        let notify = conf::Notify {
            any: sh,
            ..conf::Notify::default()
        };
        let queue = NotifyQueue::spawn(notify, ScriptIdentity::current());
        for to in [State::Master, State::Backup, State::Master] {
            queue.push(transition(to));
        }
        queue.close(Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&log).expect("log written");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "start master",
                "end master",
                "start backup",
                "end backup",
                "start master",
                "end master"
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[tokio::test]
    async fn a_reconfigured_queue_runs_the_new_scripts_only_for_later_transitions() {
        let dir = std::env::temp_dir().join(format!("vigil-notify-re-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let log = dir.join("log");
        let script = |tag: &str| conf::Notify {
            // The first script is slow: the reconfiguration is queued while it still runs.
            any: Some(argv(&[
                "/bin/sh",
                "-c",
                &format!("sleep 0.1; echo {tag} $VIGIL_STATE >> {}", log.display()),
            ])),
            ..conf::Notify::default()
        };
        let queue = NotifyQueue::spawn(script("old"), ScriptIdentity::current());
        queue.push(transition(State::Master));
        queue.push(transition(State::Backup));
        queue.reconfigure(script("new"), ScriptIdentity::current());
        queue.push(transition(State::Master));
        queue.close(Duration::from_secs(10)).await;
        let text = std::fs::read_to_string(&log).expect("log written");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines, ["old master", "old backup", "new master"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

//! Reading and writing fragments and their history in the coordination tree (layout in the
//! [module docs](super)).
//!
//! Every change is one `Multi`: bump the data version of `/vigil/config` (expected version:
//! the one the validation saw), set/create/delete `/vigil/config/<name>` (expected version
//! likewise) and create the sequential history node. So the set of fragments a push was
//! validated against is exactly the set it commits into, history and current never disagree,
//! and of two concurrent changes the second fails whole with [`TreeError::Conflict`].

use serde::{Deserialize, Serialize};
use vigil_coord::Error as ZkError;
use vigil_coord::node::{CoordError, CoordNode};
use vigil_coord::request::{Command, CreateMode, Op, OpResult, Request, Response};
use vigil_coord::session::SessionId;
use vigil_coord::state_machine::StateMachine;
use vigil_coord::tree::MAX_DATA_LEN;

/// Parent of the current fragments.
pub const CONFIG_ROOT: &str = "/vigil/config";
/// Parent of each fragment's history directory.
pub const HISTORY_ROOT: &str = "/vigil/config-history";
/// Prefix of a history node's name; the tree appends the 10-digit sequence.
const HISTORY_PREFIX: &str = "v-";
/// Longest fragment name.
const MAX_NAME_LEN: usize = 64;
/// Session timeout of the short session a change writes under (closed right after).
const SESSION_TIMEOUT_MS: u32 = 10_000;

/// A fragment as currently stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fragment {
    /// Its name (`/vigil/config/<name>`).
    pub name: String,
    /// The history sequence of the push that wrote the current text (what operators see).
    pub version: u64,
    /// The TOML text.
    pub text: String,
    /// `[global] node_name` of the node that took the push.
    pub pushed_by: String,
    /// When the push committed (the leader's clock, ms since the Unix epoch).
    pub pushed_at_unix_ms: u64,
}

impl Fragment {
    /// The name diagnostics use: the fragment's path in the tree.
    pub fn path(&self) -> String {
        current_path(&self.name)
    }
}

/// What a history entry recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Change {
    /// `vigilctl config push`.
    Push,
    /// `vigilctl config rollback`: the text of version `from`, pushed again.
    Rollback {
        /// The version whose text was restored.
        from: u64,
    },
    /// `vigilctl config rm`.
    Remove,
}

/// The data of a history node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    change: Change,
    node: String,
    text: String,
}

/// One version of a fragment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The version (history sequence).
    pub version: u64,
    /// What happened.
    #[serde(flatten)]
    pub change: Change,
    /// `[global] node_name` of the node that took the change.
    pub node: String,
    /// When it committed (the leader's clock, ms since the Unix epoch).
    pub at_unix_ms: u64,
    /// The text after the change (empty for a removal).
    pub text: String,
}

/// Why a read or change failed. Nothing was written unless the variant says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    /// Names are 1–64 of `A-Z a-z 0-9 _ . -`, not starting with `.`.
    #[error(
        "invalid fragment name {0:?}: use 1-64 letters, digits, '_', '-' or '.', not starting with '.'"
    )]
    BadName(String),
    /// The validator refused the resulting set; one `path:line:col: message` per error.
    #[error("fragment refused:\n{}", .0.join("\n"))]
    Invalid(Vec<String>),
    /// Another change committed between this one's read and its write.
    #[error(
        "the shared config changed concurrently (another push or removal committed first); nothing was written, check `vigilctl config show` and retry"
    )]
    Conflict,
    /// No such fragment.
    #[error("no fragment named {0:?}")]
    NoFragment(String),
    /// No such version of the fragment.
    #[error("fragment {name:?} has no version {version}")]
    NoVersion {
        /// The fragment.
        name: String,
        /// The version asked for.
        version: u64,
    },
    /// The version asked for is a removal: there is no text to restore.
    #[error("version {version} of fragment {name:?} is a removal; roll back to a pushed version")]
    RemovedVersion {
        /// The fragment.
        name: String,
        /// The version asked for.
        version: u64,
    },
    /// The text does not fit in a znode.
    #[error("fragment of {0} bytes is too large (at most {MAX_DATA_LEN})")]
    TooLarge(usize),
    /// A node under the config paths does not hold what vigil writes there.
    #[error("unreadable shared config node {path}: {detail}")]
    Corrupt {
        /// The node.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The coordination node failed the request (no quorum, timeout, …). After a timeout the
    /// change may still commit: `vigilctl config history` tells.
    #[error("coordination: {0}")]
    Coord(#[from] CoordError),
    /// The tree refused an operation for a reason vigil does not expect.
    #[error("coordination tree refused the change: {0:?}")]
    Refused(ZkError),
}

/// Where a fragment's current text lives.
pub fn current_path(name: &str) -> String {
    format!("{CONFIG_ROOT}/{name}")
}

fn history_dir(name: &str) -> String {
    format!("{HISTORY_ROOT}/{name}")
}

/// Checks a fragment name (it becomes a path component).
pub fn check_name(name: &str) -> Result<(), TreeError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(TreeError::BadName(name.to_owned()))
    }
}

/// The current fragments as one consistent read, with the versions a change must expect.
#[derive(Debug, Clone, Default)]
struct Current {
    /// Data version of [`CONFIG_ROOT`].
    root_version: i32,
    /// Each fragment with the data version of its node, sorted by name.
    fragments: Vec<(Fragment, i32)>,
}

impl Current {
    fn get(&self, name: &str) -> Option<&(Fragment, i32)> {
        self.fragments.iter().find(|(f, _)| f.name == name)
    }
}

/// The current fragments, sorted by name (a linearizable read).
pub async fn current(node: &CoordNode) -> Result<Vec<Fragment>, TreeError> {
    let current = node.read_linearizable(read_current).await??;
    Ok(current.fragments.into_iter().map(|(f, _)| f).collect())
}

/// Every version of fragment `name`, oldest first (a linearizable read).
pub async fn history(node: &CoordNode, name: &str) -> Result<Vec<HistoryEntry>, TreeError> {
    check_name(name)?;
    let entries = node
        .read_linearizable(|sm| read_history(sm, name))
        .await??;
    if entries.is_empty() {
        return Err(TreeError::NoFragment(name.to_owned()));
    }
    Ok(entries)
}

/// Pushes `text` as the new version of fragment `name`, if `validate` accepts the whole
/// resulting set (`(path, text)` pairs, sorted by name). Returns the new version.
pub async fn push(
    node: &CoordNode,
    name: &str,
    text: &str,
    by: &str,
    validate: impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>>,
) -> Result<u64, TreeError> {
    write_text(node, name, text, Change::Push, by, validate).await
}

/// Pushes the text of version `version` of fragment `name` again, as a new version.
pub async fn rollback(
    node: &CoordNode,
    name: &str,
    version: u64,
    by: &str,
    validate: impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>>,
) -> Result<u64, TreeError> {
    let entries = history(node, name).await?;
    let entry = entries
        .into_iter()
        .find(|e| e.version == version)
        .ok_or_else(|| TreeError::NoVersion {
            name: name.to_owned(),
            version,
        })?;
    if entry.change == Change::Remove {
        return Err(TreeError::RemovedVersion {
            name: name.to_owned(),
            version,
        });
    }
    let change = Change::Rollback { from: version };
    write_text(node, name, &entry.text, change, by, validate).await
}

/// Removes fragment `name` if `validate` accepts the remaining set; its history stays (a
/// removal is a version too). Returns that version.
pub async fn remove(
    node: &CoordNode,
    name: &str,
    by: &str,
    validate: impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>>,
) -> Result<u64, TreeError> {
    check_name(name)?;
    let current = node.read_linearizable(read_current).await??;
    let (_, version) = current
        .get(name)
        .ok_or_else(|| TreeError::NoFragment(name.to_owned()))?;
    let rest: Vec<(String, &str)> = current
        .fragments
        .iter()
        .filter(|(f, _)| f.name != name)
        .map(|(f, _)| (f.path(), f.text.as_str()))
        .collect();
    validate(&pairs(&rest)).map_err(TreeError::Invalid)?;
    let delete = Op::Delete {
        path: current_path(name),
        version: Some(*version),
    };
    commit(
        node,
        name,
        current.root_version,
        delete,
        Change::Remove,
        "",
        by,
    )
    .await
}

async fn write_text(
    node: &CoordNode,
    name: &str,
    text: &str,
    change: Change,
    by: &str,
    validate: impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>>,
) -> Result<u64, TreeError> {
    check_name(name)?;
    // The history record carries the text plus a little JSON around it.
    if text.len() + 1024 > MAX_DATA_LEN {
        return Err(TreeError::TooLarge(text.len()));
    }
    ensure_parents(node, name).await?;
    let current = node.read_linearizable(read_current).await??;
    let path = current_path(name);
    let mut set: Vec<(String, &str)> = current
        .fragments
        .iter()
        .filter(|(f, _)| f.name != name)
        .map(|(f, _)| (f.path(), f.text.as_str()))
        .collect();
    set.push((path.clone(), text));
    set.sort();
    validate(&pairs(&set)).map_err(TreeError::Invalid)?;
    let op = match current.get(name) {
        Some((_, version)) => Op::SetData {
            path,
            data: text.as_bytes().to_vec(),
            version: Some(*version),
        },
        // Fails with NodeExists if another push created it meanwhile: a conflict.
        None => Op::Create {
            path,
            data: text.as_bytes().to_vec(),
            mode: CreateMode::Persistent,
            sequential: false,
        },
    };
    commit(node, name, current.root_version, op, change, text, by).await
}

fn pairs<'a>(set: &'a [(String, &'a str)]) -> Vec<(&'a str, &'a str)> {
    set.iter().map(|(p, t)| (p.as_str(), *t)).collect()
}

/// Writes `op` on the fragment, the root bump and the history record as one `Multi`.
async fn commit(
    node: &CoordNode,
    name: &str,
    root_version: i32,
    op: Op,
    change: Change,
    text: &str,
    by: &str,
) -> Result<u64, TreeError> {
    let record = Record {
        change,
        node: by.to_owned(),
        text: text.to_owned(),
    };
    let record = serde_json::to_vec(&record).map_err(|e| TreeError::Corrupt {
        path: history_dir(name),
        detail: e.to_string(),
    })?;
    let ops = vec![
        Op::SetData {
            path: CONFIG_ROOT.to_owned(),
            data: Vec::new(),
            version: Some(root_version),
        },
        op,
        Op::Create {
            path: format!("{}/{HISTORY_PREFIX}", history_dir(name)),
            data: record,
            mode: CreateMode::Persistent,
            sequential: true,
        },
    ];
    let mut session = Session::open(node).await?;
    let response = session.write(Request::Multi(ops)).await;
    session.close().await;
    let response = response?;
    match response.error() {
        None => {}
        Some(ZkError::BadVersion | ZkError::NodeExists | ZkError::NoNode) => {
            return Err(TreeError::Conflict);
        }
        Some(other) => return Err(TreeError::Refused(other)),
    }
    let created = match &response {
        // The history node is the last operation (the fragment's own may be a create too).
        Response::Multi(results) => results.iter().rev().find_map(|r| match r {
            OpResult::Created { path, .. } => Some(path.clone()),
            _ => None,
        }),
        _ => None,
    };
    created
        .as_deref()
        .and_then(|p| p.rsplit('/').next())
        .and_then(sequence)
        .ok_or_else(|| TreeError::Corrupt {
            path: history_dir(name),
            detail: format!("unexpected answer to the write: {response:?}"),
        })
}

/// Creates `/vigil`, the two roots and the fragment's history directory where missing.
async fn ensure_parents(node: &CoordNode, name: &str) -> Result<(), TreeError> {
    let wanted = [
        "/vigil".to_owned(),
        CONFIG_ROOT.to_owned(),
        HISTORY_ROOT.to_owned(),
        history_dir(name),
    ];
    // Persistent nodes vigil never deletes: if even a lagging replica has one, it exists.
    let missing: Vec<String> = node.read_stale(|sm| {
        wanted
            .iter()
            .filter(|p| !matches!(sm.tree().exists(p), Ok(Some(_))))
            .cloned()
            .collect()
    });
    if missing.is_empty() {
        return Ok(());
    }
    let mut session = Session::open(node).await?;
    let mut result = Ok(());
    for path in missing {
        let op = Op::Create {
            path,
            data: Vec::new(),
            mode: CreateMode::Persistent,
            sequential: false,
        };
        match session.write(Request::Single(op)).await {
            Ok(response) => match response.error() {
                None | Some(ZkError::NodeExists) => {}
                Some(other) => {
                    result = Err(TreeError::Refused(other));
                    break;
                }
            },
            Err(error) => {
                result = Err(error.into());
                break;
            }
        }
    }
    session.close().await;
    result
}

/// A short-lived session for one change (writes are deduplicated per session).
struct Session<'a> {
    node: &'a CoordNode,
    id: SessionId,
    next_request: u64,
}

impl<'a> Session<'a> {
    async fn open(node: &'a CoordNode) -> Result<Session<'a>, CoordError> {
        let (id, _) = node.create_session(SESSION_TIMEOUT_MS).await?;
        Ok(Session {
            node,
            id,
            next_request: 0,
        })
    }

    async fn write(&mut self, request: Request) -> Result<Response, CoordError> {
        self.next_request += 1;
        self.node
            .write(Command::Write {
                session: self.id,
                request_id: self.next_request,
                request,
            })
            .await
    }

    /// Closes the session; if that fails it times out by itself (it owns no ephemerals).
    async fn close(self) {
        if let Err(error) = self.node.close_session(self.id).await {
            tracing::debug!(%error, "closing the shared-config session failed; it will expire");
        }
    }
}

/// The 10-digit sequence of a history node's name.
fn sequence(child: &str) -> Option<u64> {
    child.strip_prefix(HISTORY_PREFIX)?.parse().ok()
}

fn read_record(sm: &StateMachine, path: &str) -> Result<(Record, u64), TreeError> {
    let (data, stat) = sm.tree().get(path).map_err(|e| TreeError::Corrupt {
        path: path.to_owned(),
        detail: format!("{e:?}"),
    })?;
    let record = serde_json::from_slice(data).map_err(|e| TreeError::Corrupt {
        path: path.to_owned(),
        detail: e.to_string(),
    })?;
    Ok((record, stat.ctime))
}

fn read_history(sm: &StateMachine, name: &str) -> Result<Vec<HistoryEntry>, TreeError> {
    read_versions(sm, name, |_| true)
}

/// The newest history entry of `name`: the change that wrote its current text (same Multi).
fn read_last(sm: &StateMachine, name: &str) -> Result<Option<HistoryEntry>, TreeError> {
    let newest = history_versions(sm, name).into_iter().max();
    Ok(read_versions(sm, name, |v| Some(v) == newest)?.pop())
}

fn history_versions(sm: &StateMachine, name: &str) -> Vec<u64> {
    sm.tree()
        .children(&history_dir(name))
        .map(|(children, _)| children.iter().filter_map(|c| sequence(c)).collect())
        .unwrap_or_default()
}

fn read_versions(
    sm: &StateMachine,
    name: &str,
    wanted: impl Fn(u64) -> bool,
) -> Result<Vec<HistoryEntry>, TreeError> {
    let dir = history_dir(name);
    let mut entries = Vec::new();
    for version in history_versions(sm, name) {
        if !wanted(version) {
            continue;
        }
        let (record, at) = read_record(sm, &format!("{dir}/{HISTORY_PREFIX}{version:010}"))?;
        entries.push(HistoryEntry {
            version,
            change: record.change,
            node: record.node,
            at_unix_ms: at,
            text: record.text,
        });
    }
    entries.sort_by_key(|e| e.version);
    Ok(entries)
}

fn read_current(sm: &StateMachine) -> Result<Current, TreeError> {
    let tree = sm.tree();
    let Ok((children, _)) = tree.children(CONFIG_ROOT) else {
        return Ok(Current::default());
    };
    let root_version = tree
        .exists(CONFIG_ROOT)
        .ok()
        .flatten()
        .map_or(0, |s| s.version);
    let mut fragments = Vec::new();
    for name in children {
        let path = current_path(&name);
        let (data, stat) = tree.get(&path).map_err(|e| TreeError::Corrupt {
            path: path.clone(),
            detail: format!("{e:?}"),
        })?;
        let text = String::from_utf8(data.to_vec()).map_err(|e| TreeError::Corrupt {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        let last = read_last(sm, &name)?;
        let (version, pushed_by, at) = last.map_or((0, String::new(), stat.mtime), |e| {
            (e.version, e.node, e.at_unix_ms)
        });
        fragments.push((
            Fragment {
                name,
                version,
                text,
                pushed_by,
                pushed_at_unix_ms: at,
            },
            stat.version,
        ));
    }
    fragments.sort_by(|a, b| a.0.name.cmp(&b.0.name));
    Ok(Current {
        root_version,
        fragments,
    })
}

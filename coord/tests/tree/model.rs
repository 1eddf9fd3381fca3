//! Property test: random histories against an obviously-correct reference model.
//!
//! The model is a `BTreeMap` of full paths with plain fields, child counts computed by scanning,
//! and multi implemented by cloning the whole map. Every response (results, errors, stats) and
//! the final tree must match the real state machine exactly.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vigil_coord::{
    Command, CreateMode, Error, Op, OpResult, Request, Response, SessionId, Stat, StateMachine,
};

#[derive(Debug, Clone, PartialEq)]
struct MNode {
    data: Vec<u8>,
    version: i32,
    cversion: i32,
    czxid: u64,
    mzxid: u64,
    pzxid: u64,
    ctime: u64,
    mtime: u64,
    owner: u64,
    /// `Container`, `Ttl(ms)` or the others (ephemerals are told by `owner`).
    mode: CreateMode,
}

#[derive(Debug, Clone)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    sessions: BTreeSet<u64>,
    /// Every write response by (session, request id): retries get these back.
    answered: BTreeMap<(u64, u64), Response>,
}

fn parent_of(path: &str) -> String {
    match path.rfind('/') {
        Some(0) | None => "/".into(),
        Some(i) => path[..i].into(),
    }
}

impl Model {
    fn new() -> Model {
        let root = MNode {
            data: vec![],
            version: 0,
            cversion: 0,
            czxid: 0,
            mzxid: 0,
            pzxid: 0,
            ctime: 0,
            mtime: 0,
            owner: 0,
            mode: CreateMode::Persistent,
        };
        Model {
            nodes: BTreeMap::from([("/".to_owned(), root)]),
            sessions: BTreeSet::new(),
            answered: BTreeMap::new(),
        }
    }

    fn num_children(&self, path: &str) -> usize {
        self.nodes
            .keys()
            .filter(|k| k.as_str() != "/" && parent_of(k) == path)
            .count()
    }

    fn stat(&self, path: &str) -> Stat {
        let n = &self.nodes[path];
        Stat {
            czxid: n.czxid,
            mzxid: n.mzxid,
            pzxid: n.pzxid,
            ctime: n.ctime,
            mtime: n.mtime,
            version: n.version,
            cversion: n.cversion,
            aversion: 0,
            ephemeral_owner: n.owner,
            data_length: n.data.len() as u32,
            num_children: self.num_children(path) as u32,
        }
    }

    fn reap_due(&self, path: &str, now: u64) -> bool {
        let Some(n) = self.nodes.get(path) else {
            return false;
        };
        self.num_children(path) == 0
            && match n.mode {
                CreateMode::Container => n.cversion > 0,
                CreateMode::Ttl(ttl) => now - n.mtime > ttl,
                _ => false,
            }
    }

    fn reapable(&self, now: u64) -> Vec<String> {
        self.nodes
            .keys()
            .filter(|p| self.reap_due(p, now))
            .cloned()
            .collect()
    }

    fn child_changed(&mut self, parent: &str, zxid: u64) {
        let p = self.nodes.get_mut(parent).expect("parent exists");
        p.cversion += 1;
        p.pzxid = zxid;
    }

    fn op(&mut self, zxid: u64, time: u64, session: u64, op: Op) -> Result<OpResult, Error> {
        match op {
            Op::Create {
                path,
                data,
                mode,
                sequential,
            } => {
                if mode == CreateMode::Container && sequential {
                    return Err(Error::BadArguments);
                }
                let parent = parent_of(&path);
                let Some(p) = self.nodes.get(&parent) else {
                    return Err(Error::NoNode);
                };
                let full = if sequential {
                    format!("{path}{:010}", p.cversion)
                } else {
                    path
                };
                if self.nodes.contains_key(&full) {
                    return Err(Error::NodeExists);
                }
                if p.owner != 0 {
                    return Err(Error::NoChildrenForEphemerals);
                }
                let owner = if mode == CreateMode::Ephemeral {
                    session
                } else {
                    0
                };
                let node = MNode {
                    data,
                    version: 0,
                    cversion: 0,
                    czxid: zxid,
                    mzxid: zxid,
                    pzxid: zxid,
                    ctime: time,
                    mtime: time,
                    owner,
                    mode,
                };
                self.nodes.insert(full.clone(), node);
                self.child_changed(&parent, zxid);
                Ok(OpResult::Created {
                    stat: self.stat(&full),
                    path: full,
                })
            }
            Op::Delete { path, version } => {
                let n = self.nodes.get(&path).ok_or(Error::NoNode)?;
                if version.is_some_and(|v| v != n.version) {
                    return Err(Error::BadVersion);
                }
                if self.num_children(&path) > 0 {
                    return Err(Error::NotEmpty);
                }
                self.nodes.remove(&path);
                self.child_changed(&parent_of(&path), zxid);
                Ok(OpResult::Deleted)
            }
            Op::SetData {
                path,
                data,
                version,
            } => {
                let n = self.nodes.get_mut(&path).ok_or(Error::NoNode)?;
                if version.is_some_and(|v| v != n.version) {
                    return Err(Error::BadVersion);
                }
                n.data = data;
                n.version += 1;
                n.mzxid = zxid;
                n.mtime = time;
                Ok(OpResult::DataSet {
                    stat: self.stat(&path),
                })
            }
            Op::Check { path, version } => {
                let n = self.nodes.get(&path).ok_or(Error::NoNode)?;
                if version.is_some_and(|v| v != n.version) {
                    return Err(Error::BadVersion);
                }
                Ok(OpResult::Checked)
            }
        }
    }

    fn apply(&mut self, zxid: u64, time: u64, cmd: Command) -> Response {
        match cmd {
            Command::CreateSession { timeout_ms }
            | Command::CreateSessionWith { timeout_ms, .. } => {
                self.sessions.insert(zxid);
                Response::SessionCreated {
                    session: SessionId(zxid),
                    timeout_ms,
                }
            }
            Command::CloseSession { session } | Command::ExpireSession { session } => {
                if !self.sessions.remove(&session.0) {
                    return Response::Error(Error::SessionExpired);
                }
                let mine: Vec<String> = self
                    .nodes
                    .iter()
                    .filter(|(_, n)| n.owner == session.0)
                    .map(|(p, _)| p.clone())
                    .collect();
                for p in mine {
                    self.nodes.remove(&p);
                    self.child_changed(&parent_of(&p), zxid);
                }
                Response::SessionClosed
            }
            Command::Write {
                session,
                request_id,
                request,
            } => {
                if !self.sessions.contains(&session.0) {
                    return Response::Error(Error::SessionExpired);
                }
                if let Some(r) = self.answered.get(&(session.0, request_id)) {
                    return r.clone();
                }
                let response = match request {
                    Request::Sync => Response::Synced,
                    Request::Single(op) => match self.op(zxid, time, session.0, op) {
                        Ok(r) => Response::Op(r),
                        Err(e) => Response::Error(e),
                    },
                    Request::Multi(ops) => 'multi: {
                        let saved = self.clone();
                        let n = ops.len();
                        let mut results = Vec::new();
                        for op in ops {
                            match self.op(zxid, time, session.0, op) {
                                Ok(r) => results.push(r),
                                Err(e) => {
                                    *self = saved;
                                    let mut out = vec![OpResult::RolledBack; results.len()];
                                    out.push(OpResult::Error(e));
                                    while out.len() < n {
                                        out.push(OpResult::Error(Error::RuntimeInconsistency));
                                    }
                                    break 'multi Response::Multi(out);
                                }
                            }
                        }
                        Response::Multi(results)
                    }
                };
                self.answered
                    .insert((session.0, request_id), response.clone());
                response
            }
            Command::Reap { paths } => {
                let mut deleted = Vec::new();
                for p in paths {
                    if self.reap_due(&p, time) {
                        self.nodes.remove(&p);
                        self.child_changed(&parent_of(&p), zxid);
                        deleted.push(p);
                    }
                }
                Response::Reaped { paths: deleted }
            }
        }
    }
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(vec!["a", "b"]), 1..=3)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn version() -> impl Strategy<Value = Option<i32>> {
    prop::option::of(0..3i32)
}

fn op() -> impl Strategy<Value = Op> {
    let mode = prop::sample::select(vec![
        CreateMode::Persistent,
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::Container,
        CreateMode::Ttl(20),
    ]);
    let data = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        4 => (path(), data.clone(), mode, any::<bool>()).prop_map(|(path, data, mode, sequential)| {
            Op::Create { path, data, mode, sequential }
        }),
        2 => (path(), version()).prop_map(|(path, version)| Op::Delete { path, version }),
        2 => (path(), data, version())
            .prop_map(|(path, data, version)| Op::SetData { path, data, version }),
        1 => (path(), version()).prop_map(|(path, version)| Op::Check { path, version }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    Single(usize, Op),
    Multi(usize, Vec<Op>),
    Close(usize),
    Expire(usize),
    NewSession,
    /// The leader's cleanup: propose what it finds reapable.
    Reap,
    /// Send one of the last few writes again, same request id.
    Retry(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => (0..4usize, op()).prop_map(|(s, o)| Step::Single(s, o)),
        3 => (0..4usize, prop::collection::vec(op(), 0..5)).prop_map(|(s, o)| Step::Multi(s, o)),
        1 => (0..4usize).prop_map(Step::Close),
        1 => (0..4usize).prop_map(Step::Expire),
        1 => Just(Step::Reap),
        1 => Just(Step::NewSession),
        2 => (0..8usize).prop_map(Step::Retry),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn state_machine_matches_reference_model(
        steps in prop::collection::vec(step(), 1..80),
    ) {
        let mut sm = StateMachine::new();
        let mut model = Model::new();
        let mut created: Vec<SessionId> = Vec::new();
        let mut index = 0u64;
        let mut writes: Vec<Command> = Vec::new();
        let first = [Step::NewSession, Step::NewSession];
        for step in first.into_iter().chain(steps) {
            index += 1;
            let pick = |i: usize| created[i % created.len()];
            let cmd = match step {
                Step::NewSession => Command::CreateSession { timeout_ms: 1000 },
                Step::Close(s) => Command::CloseSession { session: pick(s) },
                Step::Expire(s) => Command::ExpireSession { session: pick(s) },
                Step::Reap => {
                    // Checked with a clock ahead of the entry's, so that apply's re-check at the
                    // entry time has something to refuse.
                    let ahead = 1_000 + index * 7 + 30;
                    let candidates = sm.tree().reapable(ahead);
                    prop_assert_eq!(&candidates, &model.reapable(ahead));
                    Command::Reap { paths: candidates }
                }
                // Within the dedupe window: at most 8 newer writes in any session.
                Step::Retry(k) if !writes.is_empty() => {
                    writes[writes.len() - 1 - k % writes.len().min(8)].clone()
                }
                Step::Retry(_) => Command::Write {
                    session: pick(0),
                    request_id: index,
                    request: Request::Sync,
                },
                Step::Single(s, op) => Command::Write {
                    session: pick(s),
                    request_id: index,
                    request: Request::Single(op),
                },
                Step::Multi(s, ops) => Command::Write {
                    session: pick(s),
                    request_id: index,
                    request: Request::Multi(ops),
                },
            };
            if matches!(cmd, Command::Write { .. }) {
                writes.push(cmd.clone());
            }
            let time = 1_000 + index * 7;
            let want = model.apply(index, time, cmd.clone());
            let got = sm.apply(index, time, cmd);
            prop_assert_eq!(&got, &want, "entry {}", index);
            if let Response::SessionCreated { session, .. } = got {
                created.push(session);
            }
        }
        let tree = sm.tree();
        prop_assert_eq!(tree.len(), model.nodes.len());
        for (path, node) in &model.nodes {
            let (data, stat) = tree.get(path).expect("node in model exists in tree");
            prop_assert_eq!(data, &node.data[..]);
            prop_assert_eq!(stat, model.stat(path));
            let mut want: Vec<String> = model
                .nodes
                .keys()
                .filter(|k| k.as_str() != "/" && parent_of(k) == *path)
                .map(|k| k[k.rfind('/').map_or(0, |i| i + 1)..].to_owned())
                .collect();
            want.sort();
            prop_assert_eq!(tree.children(path).expect("children").0, want);
        }
        // And the snapshot of any reachable state restores exactly.
        let restored = StateMachine::restore(&sm.snapshot().expect("encode")).expect("decode");
        prop_assert_eq!(restored, sm);
    }
}

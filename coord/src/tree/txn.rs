//! One write transaction on the tree: the operations, their ZooKeeper checks, the watch events
//! they produce, and an undo log so that a failed multi is rolled back completely (nodes, data,
//! parents' `cversion`/`pzxid`/child counts, hence sequential counters too).

use super::{Data, DataTree, MAX_DATA_LEN, MAX_NODES, MAX_TTL_MS, Node, NodeKind, Stat, path};
use crate::error::Error;
use crate::request::{CreateMode, Op, OpResult};
use crate::session::SessionId;
use crate::watch::{EventKind, WatchEvent};

/// How to revert one change. Old values are moved in here, never cloned, so that a multi on a
/// node holding a megabyte costs no copy.
enum Undo {
    Created(String),
    Deleted(String, Node),
    DataSet {
        path: String,
        data: Data,
        version: i32,
        mzxid: u64,
        mtime: u64,
    },
    ParentChanged {
        path: String,
        cversion: i32,
        pzxid: u64,
        num_children: u32,
    },
}

/// A write in progress at one zxid. Call [`Txn::commit`] or [`Txn::rollback`].
pub(crate) struct Txn<'a> {
    tree: &'a mut DataTree,
    zxid: u64,
    time: u64,
    /// Owner of the ephemerals this transaction creates.
    session: SessionId,
    undo: Vec<Undo>,
    events: Vec<WatchEvent>,
}

impl<'a> Txn<'a> {
    pub(crate) fn begin(tree: &'a mut DataTree, zxid: u64, time: u64, session: SessionId) -> Self {
        Txn {
            tree,
            zxid,
            time,
            session,
            undo: Vec::new(),
            events: Vec::new(),
        }
    }

    pub(crate) fn tree(&self) -> &DataTree {
        self.tree
    }

    /// Keeps the changes; returns their watch events in order.
    pub(crate) fn commit(self) -> Vec<WatchEvent> {
        self.events
    }

    /// Reverts every change, newest first.
    pub(crate) fn rollback(self) {
        for undo in self.undo.into_iter().rev() {
            match undo {
                Undo::Created(p) => {
                    self.tree.take(&p);
                }
                Undo::Deleted(p, node) => self.tree.put(&p, node),
                Undo::DataSet {
                    path,
                    data,
                    version,
                    mzxid,
                    mtime,
                } => {
                    if let Some(n) = self.tree.node_mut(&path) {
                        n.data = data;
                        n.version = version;
                        n.mzxid = mzxid;
                        n.mtime = mtime;
                    }
                }
                Undo::ParentChanged {
                    path,
                    cversion,
                    pzxid,
                    num_children,
                } => {
                    if let Some(n) = self.tree.node_mut(&path) {
                        n.cversion = cversion;
                        n.pzxid = pzxid;
                        n.num_children = num_children;
                    }
                }
            }
        }
    }

    pub(crate) fn apply(&mut self, op: Op) -> Result<OpResult, Error> {
        match op {
            Op::Create {
                path,
                data,
                mode,
                sequential,
            } => {
                let (path, stat) = self.create(&path, data, mode, sequential)?;
                Ok(OpResult::Created { path, stat })
            }
            Op::Delete { path, version } => {
                self.delete(&path, version)?;
                Ok(OpResult::Deleted)
            }
            Op::SetData {
                path,
                data,
                version,
            } => Ok(OpResult::DataSet {
                stat: self.set_data(&path, data, version)?,
            }),
            Op::Check { path, version } => {
                path::validate(&path, false)?;
                let node = self.tree.node(&path).ok_or(Error::NoNode)?;
                check_version(node, version)?;
                Ok(OpResult::Checked)
            }
        }
    }

    /// ZooKeeper's create, checks in `PrepRequestProcessor` order.
    fn create(
        &mut self,
        path: &str,
        data: Vec<u8>,
        mode: CreateMode,
        sequential: bool,
    ) -> Result<(String, Stat), Error> {
        if data.len() > MAX_DATA_LEN {
            return Err(Error::BadArguments);
        }
        path::validate(path, sequential)?;
        let kind = match mode {
            CreateMode::Persistent => NodeKind::Persistent,
            CreateMode::Ephemeral => NodeKind::Ephemeral(self.session),
            CreateMode::Container if !sequential => NodeKind::Container,
            CreateMode::Ttl(ttl) if (1..=MAX_TTL_MS).contains(&ttl) => NodeKind::Ttl(ttl),
            CreateMode::Container | CreateMode::Ttl(_) => return Err(Error::BadArguments),
        };
        if path == "/" && !sequential {
            return Err(Error::NodeExists);
        }
        let parent_path = if path.ends_with('/') && path.len() > 1 {
            &path[..path.len() - 1]
        } else {
            path::parent(path)
        };
        let parent = self.tree.node(parent_path).ok_or(Error::NoNode)?;
        let full = if sequential {
            // Java's "%010d": zero-padded to ten characters, sign included.
            format!("{path}{:010}", parent.cversion)
        } else {
            path.to_owned()
        };
        if sequential {
            // The suffix may push the path past the length limit.
            path::validate(&full, false)?;
        }
        if self.tree.node(&full).is_some() {
            return Err(Error::NodeExists);
        }
        if self.tree.len() >= MAX_NODES {
            // Slots are u32; unreachable in practice (hundreds of gigabytes of nodes).
            return Err(Error::BadArguments);
        }
        if matches!(parent.kind, NodeKind::Ephemeral(_)) {
            return Err(Error::NoChildrenForEphemerals);
        }
        let parent_path = parent_path.to_owned();
        self.touch_parent(&parent_path, 1);
        let node = Node::new(Data::from(data), kind, self.zxid, self.time);
        let stat = node.stat();
        self.tree.put(&full, node);
        self.undo.push(Undo::Created(full.clone()));
        self.event(&full, EventKind::NodeCreated);
        self.event(&parent_path, EventKind::NodeChildrenChanged);
        Ok((full, stat))
    }

    fn delete(&mut self, path: &str, version: Option<i32>) -> Result<(), Error> {
        path::validate(path, false)?;
        if path == "/" {
            return Err(Error::BadArguments);
        }
        let node = self.tree.node(path).ok_or(Error::NoNode)?;
        check_version(node, version)?;
        if node.num_children > 0 {
            return Err(Error::NotEmpty);
        }
        self.remove(path);
        Ok(())
    }

    /// Deletes a childless node without version check (session end, cleanup). Returns whether
    /// it existed.
    pub(crate) fn remove(&mut self, path: &str) -> bool {
        let Some(node) = self.tree.take(path) else {
            return false;
        };
        let parent = path::parent(path).to_owned();
        self.touch_parent(&parent, -1);
        self.undo.push(Undo::Deleted(path.to_owned(), node));
        self.event(path, EventKind::NodeDeleted);
        self.event(&parent, EventKind::NodeChildrenChanged);
        true
    }

    fn set_data(&mut self, path: &str, data: Vec<u8>, version: Option<i32>) -> Result<Stat, Error> {
        if data.len() > MAX_DATA_LEN {
            return Err(Error::BadArguments);
        }
        path::validate(path, false)?;
        let (zxid, time) = (self.zxid, self.time);
        let node = self.tree.node_mut(path).ok_or(Error::NoNode)?;
        check_version(node, version)?;
        let undo = Undo::DataSet {
            path: path.to_owned(),
            data: std::mem::replace(&mut node.data, Data::from(data)),
            version: node.version,
            mzxid: node.mzxid,
            mtime: node.mtime,
        };
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime = time;
        let stat = node.stat();
        self.undo.push(undo);
        self.event(path, EventKind::NodeDataChanged);
        Ok(stat)
    }

    /// A child of `parent` was added (`delta` 1) or removed (-1).
    fn touch_parent(&mut self, parent: &str, delta: i32) {
        let zxid = self.zxid;
        if let Some(p) = self.tree.node_mut(parent) {
            self.undo.push(Undo::ParentChanged {
                path: parent.to_owned(),
                cversion: p.cversion,
                pzxid: p.pzxid,
                num_children: p.num_children,
            });
            p.cversion = p.cversion.wrapping_add(1);
            p.pzxid = zxid;
            p.num_children = p.num_children.saturating_add_signed(delta);
        }
    }

    fn event(&mut self, path: &str, kind: EventKind) {
        self.events.push(WatchEvent {
            zxid: self.zxid,
            path: path.to_owned(),
            kind,
        });
    }
}

fn check_version(node: &Node, expected: Option<i32>) -> Result<(), Error> {
    match expected {
        Some(v) if v != node.version => Err(Error::BadVersion),
        _ => Ok(()),
    }
}

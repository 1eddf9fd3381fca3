//! The coordination requests of fencing, each one future whose [`Outcome`] goes back to the
//! fencing task: the session, its keep-alives, and the owner znode's create, read and delete.

use std::ops::Range;
use std::time::Instant;

use vigil_coord::node::{CoordError, CoordNode};
use vigil_coord::{Command, CreateMode, Error, Liveness, Op, OpResult, Request, Response};
use vigil_fence::{HeartbeatId, SessionId, Token};

/// A finished request.
#[derive(Debug)]
pub(super) enum Outcome {
    /// `CreateSession`, sent at `sent`.
    Session {
        sent: Instant,
        result: Result<(SessionId, u32), CoordError>,
    },
    /// A keep-alive of `session`.
    Heartbeat {
        session: SessionId,
        id: HeartbeatId,
        result: KeepAlive,
    },
    /// The create of an instance's owner znode.
    Create {
        instance: String,
        session: SessionId,
        result: CreateResult,
    },
    /// A read of an instance's owner znode.
    Seen {
        instance: String,
        result: Result<Option<OwnerNode>, CoordError>,
    },
    /// The delete of an instance's owner znode.
    Delete { instance: String, result: Released },
    /// An abandoned session was closed (or the close failed; nothing depends on it).
    Closed,
}

/// What a keep-alive established.
#[derive(Debug)]
pub(super) enum KeepAlive {
    /// Committed: the lease moves.
    Acked,
    /// The session is gone.
    Expired,
    /// No answer, or an answer that proves nothing.
    Failed(String),
}

/// What a create of the owner znode found.
#[derive(Debug)]
pub(super) enum CreateResult {
    /// Ours, with this czxid.
    Created(Token),
    /// Someone's already.
    Exists(OwnerNode),
    /// Our session is gone.
    SessionGone,
    /// No definite answer.
    Failed(String),
}

/// What a delete established.
#[derive(Debug)]
pub(super) enum Released {
    /// Deleted, or already gone.
    Done,
    /// Our session is gone (and the znode with it).
    SessionGone,
    /// No definite answer.
    Failed(String),
}

/// The owner znode as read.
#[derive(Debug, Clone)]
pub(super) struct OwnerNode {
    pub(super) session: SessionId,
    pub(super) token: Token,
    /// The owner's node name, from the znode's data.
    pub(super) node: String,
}

/// `/vigil/vrrp/<instance>/owner`.
pub fn owner_path(instance: &str) -> String {
    format!("/vigil/vrrp/{instance}/owner")
}

/// The parents of the owner znode, outermost first.
fn parents(instance: &str) -> [String; 3] {
    [
        "/vigil".to_owned(),
        "/vigil/vrrp".to_owned(),
        format!("/vigil/vrrp/{instance}"),
    ]
}

fn coord_session(session: SessionId) -> vigil_coord::SessionId {
    vigil_coord::SessionId(session.0)
}

/// A session-bound write: it commits only in the leader's term after the leader touched the
/// session, which is what makes its success a lease-extending acknowledgement (crate docs of
/// `vigil-fence`).
async fn write(
    node: &CoordNode,
    session: SessionId,
    request_id: u64,
    request: Request,
) -> Result<Response, CoordError> {
    node.write(Command::Write {
        session: coord_session(session),
        request_id,
        request,
    })
    .await
}

/// Opens the fencing session as a committed-writes one: our keep-alives are committed writes
/// anyway, and then a new coordination leader continues from when it applied our last one
/// instead of granting a full timeout from its take-over (crate docs of `vigil-fence`, point 2).
pub(super) async fn create_session(node: CoordNode, timeout_ms: u32) -> Outcome {
    let sent = Instant::now();
    let result = node
        .create_session_with(timeout_ms, Liveness::CommittedWrites)
        .await
        .map(|(session, timeout)| (SessionId(session.0), timeout));
    Outcome::Session { sent, result }
}

/// A keep-alive: ZooKeeper's `sync` bound to the session. `CoordNode::heartbeat` is not used:
/// the leader answers it from memory, and a leader that was deposed without noticing would
/// still say yes.
pub(super) async fn keep_alive(
    node: CoordNode,
    session: SessionId,
    id: HeartbeatId,
    request_id: u64,
) -> Outcome {
    let result = match write(&node, session, request_id, Request::Sync).await {
        Ok(Response::Synced) => KeepAlive::Acked,
        Ok(Response::Error(Error::SessionExpired)) | Err(CoordError::SessionExpired) => {
            KeepAlive::Expired
        }
        Ok(other) => KeepAlive::Failed(format!("unexpected answer {other:?}")),
        Err(e) => KeepAlive::Failed(e.to_string()),
    };
    Outcome::Heartbeat {
        session,
        id,
        result,
    }
}

/// How many request ids one [`create_owner`] may use: owner creates (a first one, one after
/// creating missing parents, and retries when the owner vanishes while we read it) and the
/// three parents.
pub(super) const CREATE_OWNER_IDS: u64 = 8;

/// Creates the owner znode (its parents too, when missing); on `NodeExists` reads whose it is.
/// `request_ids` are [`CREATE_OWNER_IDS`] fresh ids of the session.
pub(super) async fn create_owner(
    node: CoordNode,
    instance: String,
    session: SessionId,
    node_name: String,
    request_ids: Range<u64>,
) -> Outcome {
    let result = create_owner_inner(&node, &instance, session, &node_name, request_ids).await;
    Outcome::Create {
        instance,
        session,
        result,
    }
}

/// The owner create comes first: its parents exist after the first claim ever, and each
/// parent create is a commit of its own. Missing parents (`NoNode`) are created once, then
/// the owner again. An owner that vanishes between our create's `NodeExists` and the read of
/// whose it is (a crashed owner's session expiring just then) is raced again at once. Every
/// write has its own request id, so the session's duplicate table never answers a new attempt
/// with an old one's result.
async fn create_owner_inner(
    node: &CoordNode,
    instance: &str,
    session: SessionId,
    node_name: &str,
    mut request_ids: Range<u64>,
) -> CreateResult {
    let owner = Op::Create {
        path: owner_path(instance),
        data: owner_data(node_name, instance),
        mode: CreateMode::Ephemeral,
        sequential: false,
    };
    let mut parents_created = false;
    while let Some(id) = request_ids.next() {
        match write(node, session, id, Request::Single(owner.clone())).await {
            Ok(Response::Op(OpResult::Created { stat, .. })) => {
                return CreateResult::Created(Token(stat.czxid));
            }
            Ok(Response::Error(Error::NodeExists)) => match read_owner(node, instance).await {
                Ok(Some(owner)) => return CreateResult::Exists(owner),
                Ok(None) => {}
                Err(e) => return CreateResult::Failed(e.to_string()),
            },
            Ok(Response::Error(Error::NoNode)) if !parents_created => {
                parents_created = true;
                if let Err(failed) = create_parents(node, instance, session, &mut request_ids).await
                {
                    return failed;
                }
            }
            Ok(Response::Error(Error::SessionExpired)) | Err(CoordError::SessionExpired) => {
                return CreateResult::SessionGone;
            }
            Ok(other) => return CreateResult::Failed(format!("unexpected answer {other:?}")),
            Err(e) => return CreateResult::Failed(e.to_string()),
        }
    }
    CreateResult::Failed("the owner znode kept vanishing while reading it".to_owned())
}

/// Creates the owner znode's persistent parents; one that exists already is fine.
async fn create_parents(
    node: &CoordNode,
    instance: &str,
    session: SessionId,
    request_ids: &mut Range<u64>,
) -> Result<(), CreateResult> {
    for path in parents(instance) {
        let Some(id) = request_ids.next() else {
            return Err(CreateResult::Failed("out of request ids".to_owned()));
        };
        let op = Op::Create {
            path,
            data: Vec::new(),
            mode: CreateMode::Persistent,
            sequential: false,
        };
        match write(node, session, id, Request::Single(op)).await {
            Ok(Response::Op(_) | Response::Error(Error::NodeExists)) => {}
            Ok(Response::Error(Error::SessionExpired)) | Err(CoordError::SessionExpired) => {
                return Err(CreateResult::SessionGone);
            }
            Ok(other) => {
                return Err(CreateResult::Failed(format!("creating parents: {other:?}")));
            }
            Err(e) => return Err(CreateResult::Failed(e.to_string())),
        }
    }
    Ok(())
}

/// What the owner znode holds: `<node name>\n<instance>`, for operators reading the tree.
fn owner_data(node_name: &str, instance: &str) -> Vec<u8> {
    format!("{node_name}\n{instance}").into_bytes()
}

async fn read_owner(node: &CoordNode, instance: &str) -> Result<Option<OwnerNode>, CoordError> {
    let path = owner_path(instance);
    node.read_linearizable(|sm| {
        sm.tree().get(&path).ok().map(|(data, stat)| OwnerNode {
            session: SessionId(stat.ephemeral_owner),
            token: Token(stat.czxid),
            node: String::from_utf8_lossy(data)
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
    })
    .await
}

pub(super) async fn see_owner(node: CoordNode, instance: String) -> Outcome {
    let result = read_owner(&node, &instance).await;
    Outcome::Seen { instance, result }
}

/// Deletes our owner znode. A retry after an unanswered attempt reuses its `request_id`, so
/// that an attempt that did commit is answered from the session's duplicate table instead of
/// deleting a successor's znode.
pub(super) async fn delete_owner(
    node: CoordNode,
    instance: String,
    session: SessionId,
    request_id: u64,
) -> Outcome {
    let op = Op::Delete {
        path: owner_path(&instance),
        version: None,
    };
    let result = match write(&node, session, request_id, Request::Single(op)).await {
        Ok(Response::Op(OpResult::Deleted) | Response::Error(Error::NoNode)) => Released::Done,
        Ok(Response::Error(Error::SessionExpired)) | Err(CoordError::SessionExpired) => {
            Released::SessionGone
        }
        Ok(other) => Released::Failed(format!("unexpected answer {other:?}")),
        Err(e) => Released::Failed(e.to_string()),
    };
    Outcome::Delete { instance, result }
}

/// Closes a session given up on; its ephemerals (a stale owner znode) go with it. Best effort:
/// if it fails, the quorum expires the session anyway.
pub(super) async fn close_session(node: CoordNode, session: SessionId) {
    if let Err(e) = node.close_session(coord_session(session)).await {
        tracing::debug!(%session, error = %e, "closing an abandoned fencing session failed");
    }
}

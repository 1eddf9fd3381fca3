//! The JSON shapes of `/v1`, shared by the server ([`super::router`]) and [`crate::client`].
//!
//! Node data is bytes; JSON carries it as standard base64 in `data`. For convenience a request
//! may give `text` (UTF-8) instead, and a response adds `text` when the data is valid UTF-8.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::request::{CreateMode, Op, OpResult};
use crate::session::Liveness;
use crate::tree::Stat;
use crate::watch::{EventKind, WatchKind};

/// Header carrying the session a write belongs to (decimal id).
pub const SESSION_HEADER: &str = "x-vigil-session";
/// Header carrying the client's request id; a retry reuses it and gets the original result.
pub const REQUEST_ID_HEADER: &str = "x-vigil-request-id";

/// Encodes bytes for a `data` field.
pub fn encode_data(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Node data in a request: `data` (base64) or `text`, not both; neither is empty data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataJson {
    /// Base64 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    /// UTF-8 text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl DataJson {
    /// Request data from raw bytes.
    pub fn bytes(data: &[u8]) -> DataJson {
        DataJson {
            data: Some(encode_data(data)),
            text: None,
        }
    }

    /// The bytes described.
    pub fn decode(&self) -> Result<Vec<u8>, ApiError> {
        match (&self.data, &self.text) {
            (Some(_), Some(_)) => Err(ApiError::BadRequest(
                "give either `data` (base64) or `text`, not both".into(),
            )),
            (Some(b64), None) => STANDARD
                .decode(b64)
                .map_err(|e| ApiError::BadRequest(format!("`data` is not base64: {e}"))),
            (None, Some(text)) => Ok(text.clone().into_bytes()),
            (None, None) => Ok(Vec::new()),
        }
    }
}

/// `POST /v1/sessions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionJson {
    /// Requested timeout; the server clamps it to its bounds.
    pub timeout_ms: u32,
    /// What keeps the session alive: `"heartbeat"` (the default: `POST .../heartbeat`) or
    /// `"committed_writes"` (only the session's writes, `sync` included; heartbeats are refused
    /// with 400, and a new leader does not grant a full timeout). See [`Liveness`].
    #[serde(default)]
    pub liveness: Liveness,
}

/// A session as the server granted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionJson {
    /// Session id.
    pub session: u64,
    /// Negotiated timeout.
    pub timeout_ms: u32,
    /// What keeps it alive, as requested (absent from older servers: heartbeat).
    #[serde(default)]
    pub liveness: Liveness,
}

/// Node creation flags and data (`PUT /v1/nodes/...`, and `create` in a multi).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateJson {
    /// Initial data.
    #[serde(flatten)]
    pub data: DataJson,
    /// Deleted when the session ends.
    #[serde(default)]
    pub ephemeral: bool,
    /// Append a 10-digit sequence number.
    #[serde(default)]
    pub sequential: bool,
    /// Removed once its last child is gone.
    #[serde(default)]
    pub container: bool,
    /// Removed when childless and unmodified for this many ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

impl CreateJson {
    /// The tree operation for a node at `path`.
    pub fn to_op(&self, path: &str) -> Result<Op, ApiError> {
        let mode = match (self.ephemeral, self.container, self.ttl_ms) {
            (false, false, None) => CreateMode::Persistent,
            (true, false, None) => CreateMode::Ephemeral,
            (false, true, None) => CreateMode::Container,
            (false, false, Some(ttl)) => CreateMode::Ttl(ttl),
            _ => {
                return Err(ApiError::BadRequest(
                    "`ephemeral`, `container` and `ttl_ms` are exclusive".into(),
                ));
            }
        };
        Ok(Op::Create {
            path: path.to_owned(),
            data: self.data.decode()?,
            mode,
            sequential: self.sequential,
        })
    }
}

/// `POST /v1/nodes/...`: replace the data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetJson {
    /// New data.
    #[serde(flatten)]
    pub data: DataJson,
    /// Expected version; absent for any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
}

/// One operation of `POST /v1/multi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OpJson {
    /// Create a node.
    Create {
        /// Its path (prefix if sequential).
        path: String,
        /// Flags and data.
        #[serde(flatten)]
        create: CreateJson,
    },
    /// Delete a childless node.
    Delete {
        /// Its path.
        path: String,
        /// Expected version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<i32>,
    },
    /// Replace data.
    Set {
        /// Its path.
        path: String,
        /// Data and expected version.
        #[serde(flatten)]
        set: SetJson,
    },
    /// Require the node to exist (with this version).
    Check {
        /// Its path.
        path: String,
        /// Expected version.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<i32>,
    },
}

impl OpJson {
    /// The tree operation.
    pub fn to_op(&self) -> Result<Op, ApiError> {
        Ok(match self {
            OpJson::Create { path, create } => create.to_op(path)?,
            OpJson::Delete { path, version } => Op::Delete {
                path: path.clone(),
                version: *version,
            },
            OpJson::Set { path, set } => Op::SetData {
                path: path.clone(),
                data: set.data.decode()?,
                version: set.version,
            },
            OpJson::Check { path, version } => Op::Check {
                path: path.clone(),
                version: *version,
            },
        })
    }

    /// The path the operation is about.
    pub fn path(&self) -> &str {
        match self {
            OpJson::Create { path, .. }
            | OpJson::Delete { path, .. }
            | OpJson::Set { path, .. }
            | OpJson::Check { path, .. } => path,
        }
    }
}

/// `POST /v1/multi`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiJson {
    /// Applied atomically, in order.
    pub ops: Vec<OpJson>,
}

/// The result of one operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum OpResultJson {
    /// Created at `path` (with the sequence suffix).
    Created {
        /// Actual path.
        path: String,
        /// Its stat.
        stat: Stat,
    },
    /// Deleted.
    Deleted,
    /// Data replaced.
    Set {
        /// Stat afterwards.
        stat: Stat,
    },
    /// Check passed.
    Checked,
    /// Succeeded, then undone because another operation failed.
    RolledBack,
    /// Failed (or not tried: `RuntimeInconsistency`).
    Error {
        /// ZooKeeper code.
        code: i32,
        /// Error name.
        error: String,
    },
}

impl From<&OpResult> for OpResultJson {
    fn from(r: &OpResult) -> Self {
        match r {
            OpResult::Created { path, stat } => OpResultJson::Created {
                path: path.clone(),
                stat: *stat,
            },
            OpResult::Deleted => OpResultJson::Deleted,
            OpResult::DataSet { stat } => OpResultJson::Set { stat: *stat },
            OpResult::Checked => OpResultJson::Checked,
            OpResult::RolledBack => OpResultJson::RolledBack,
            OpResult::Error(e) => OpResultJson::Error {
                code: e.code(),
                error: super::error::tree_error_name(*e).to_owned(),
            },
        }
    }
}

/// `POST /v1/multi` success.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultiResultJson {
    /// One per operation.
    pub results: Vec<OpResultJson>,
}

/// A node read (`GET /v1/nodes/...`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeJson {
    /// Its path.
    pub path: String,
    /// Base64 data.
    pub data: String,
    /// The data as text, when it is valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Its stat.
    pub stat: Stat,
}

impl NodeJson {
    /// A read of `path`.
    pub fn new(path: &str, data: &[u8], stat: Stat) -> NodeJson {
        NodeJson {
            path: path.to_owned(),
            data: encode_data(data),
            text: std::str::from_utf8(data).ok().map(str::to_owned),
            stat,
        }
    }

    /// The data bytes.
    pub fn bytes(&self) -> Result<Vec<u8>, ApiError> {
        DataJson {
            data: Some(self.data.clone()),
            text: None,
        }
        .decode()
    }
}

/// `GET /v1/children/...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildrenJson {
    /// The parent.
    pub path: String,
    /// Sorted child names.
    pub children: Vec<String>,
    /// The parent's stat.
    pub stat: Stat,
}

/// `GET /v1/stat/...`: `stat` is null when the node does not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatJson {
    /// The path asked about.
    pub path: String,
    /// Its stat, if it exists.
    pub stat: Option<Stat>,
}

/// Writes that return only a stat or nothing (`set`, `delete`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteJson {
    /// The path written (the actual one for a sequential create).
    pub path: String,
    /// Stat after the write (absent for deletes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stat: Option<Stat>,
}

/// The wire name of a watch kind (`kind=` query parameter).
pub fn watch_kind_name(kind: WatchKind) -> &'static str {
    match kind {
        WatchKind::Data => "data",
        WatchKind::Children => "children",
        WatchKind::Persistent => "persistent",
        WatchKind::PersistentRecursive => "persistent_recursive",
    }
}

/// Parses a `kind=` query parameter.
pub fn parse_watch_kind(s: &str) -> Result<WatchKind, ApiError> {
    match s {
        "data" => Ok(WatchKind::Data),
        "children" => Ok(WatchKind::Children),
        "persistent" => Ok(WatchKind::Persistent),
        "persistent_recursive" => Ok(WatchKind::PersistentRecursive),
        other => Err(ApiError::BadRequest(format!(
            "unknown watch kind {other:?}"
        ))),
    }
}

/// An event kind on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKindJson {
    /// Created.
    NodeCreated,
    /// Deleted.
    NodeDeleted,
    /// Data set.
    NodeDataChanged,
    /// Child added or removed.
    NodeChildrenChanged,
}

impl From<EventKind> for EventKindJson {
    fn from(k: EventKind) -> Self {
        match k {
            EventKind::NodeCreated => EventKindJson::NodeCreated,
            EventKind::NodeDeleted => EventKindJson::NodeDeleted,
            EventKind::NodeDataChanged => EventKindJson::NodeDataChanged,
            EventKind::NodeChildrenChanged => EventKindJson::NodeChildrenChanged,
        }
    }
}

impl From<EventKindJson> for EventKind {
    fn from(k: EventKindJson) -> Self {
        match k {
            EventKindJson::NodeCreated => EventKind::NodeCreated,
            EventKindJson::NodeDeleted => EventKind::NodeDeleted,
            EventKindJson::NodeDataChanged => EventKind::NodeDataChanged,
            EventKindJson::NodeChildrenChanged => EventKind::NodeChildrenChanged,
        }
    }
}

/// One line of a `GET /v1/watch` NDJSON stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WatchLine {
    /// First line: the registration is in place as of `zxid`; `replayed` missed events follow
    /// (on resume), then live ones.
    Registered {
        /// The node's applied zxid at registration.
        zxid: u64,
        /// How many replayed events follow.
        replayed: usize,
    },
    /// A change.
    Event {
        /// Zxid of the write.
        zxid: u64,
        /// The node concerned.
        path: String,
        /// What happened.
        event: EventKindJson,
    },
    /// Events may have been missed: re-read the watched nodes.
    ResyncNeeded,
    /// Keep-alive; carries nothing.
    Heartbeat,
}

/// Query of `GET /v1/watch`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchQuery {
    /// The watched path.
    pub path: String,
    /// `data`, `children`, `persistent` or `persistent_recursive`.
    pub kind: String,
    /// Resume after this zxid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_zxid: Option<u64>,
}

//! [`ApiError`]: every failure the API reports, and its JSON/HTTP form ([`ErrorBody`]).
//!
//! Tree errors keep ZooKeeper's numeric code; the others borrow the nearest ZooKeeper code
//! (`ConnectionLoss` for "try another node", `NoAuth`, `Unimplemented`, …) so that one integer
//! is enough for a client to decide what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// ZooKeeper `ConnectionLoss`: the request may be retried on another node.
pub const CODE_CONNECTION_LOSS: i32 = -4;
/// ZooKeeper `OperationTimeout`.
pub const CODE_TIMEOUT: i32 = -7;
/// ZooKeeper `NoAuth`.
pub const CODE_NO_AUTH: i32 = -102;

/// A failed API call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// A tree operation failed, possibly about a specific path.
    #[error("{error}{}", path.as_ref().map(|p| format!(" ({p})")).unwrap_or_default())]
    Tree {
        /// The ZooKeeper-style error.
        error: Error,
        /// The path concerned, when known.
        path: Option<String>,
    },
    /// The request itself is malformed (bad JSON, bad header, bad flags).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The body exceeds the configured limit.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Missing or wrong bearer token.
    #[error("unauthorized")]
    Unauthorized,
    /// This node cannot serve writes; `leader` is the leader's address if known.
    #[error("not the leader")]
    NotLeader {
        /// Address of the leader, if known.
        leader: Option<String>,
    },
    /// The backend cannot serve the request now (no quorum, shutting down, …).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The backend does not support this operation.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The operation did not complete in time; it may still be applied.
    #[error("timed out")]
    Timeout,
    /// No such route.
    #[error("no such endpoint")]
    NoRoute,
}

impl From<Error> for ApiError {
    fn from(error: Error) -> Self {
        ApiError::Tree { error, path: None }
    }
}

impl ApiError {
    /// A tree error about `path`.
    pub fn at(error: Error, path: &str) -> ApiError {
        ApiError::Tree {
            error,
            path: Some(path.to_owned()),
        }
    }

    /// The HTTP status this error is sent with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Tree { error, .. } => match error {
                Error::NoNode | Error::NoWatcher => StatusCode::NOT_FOUND,
                Error::NodeExists
                | Error::BadVersion
                | Error::NotEmpty
                | Error::StaleRequest
                | Error::RuntimeInconsistency => StatusCode::CONFLICT,
                Error::BadArguments | Error::NoChildrenForEphemerals => StatusCode::BAD_REQUEST,
                Error::SessionExpired => StatusCode::GONE,
                Error::Unimplemented => StatusCode::NOT_IMPLEMENTED,
            },
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotLeader { .. } | ApiError::Unavailable(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Unsupported(_) => StatusCode::NOT_IMPLEMENTED,
            ApiError::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ApiError::NoRoute => StatusCode::NOT_FOUND,
        }
    }

    /// The JSON body this error is sent as.
    pub fn body(&self) -> ErrorBody {
        let (code, name) = match self {
            ApiError::Tree { error, .. } => (error.code(), tree_error_name(*error)),
            ApiError::BadRequest(_) => (Error::BadArguments.code(), "BadArguments"),
            ApiError::PayloadTooLarge => (Error::BadArguments.code(), "TooLarge"),
            ApiError::Unauthorized => (CODE_NO_AUTH, "NoAuth"),
            ApiError::NotLeader { .. } => (CODE_CONNECTION_LOSS, "NotLeader"),
            ApiError::Unavailable(_) => (CODE_CONNECTION_LOSS, "Unavailable"),
            ApiError::Unsupported(_) => (Error::Unimplemented.code(), "Unimplemented"),
            ApiError::Timeout => (CODE_TIMEOUT, "OperationTimeout"),
            ApiError::NoRoute => (Error::Unimplemented.code(), "NoRoute"),
        };
        ErrorBody {
            code,
            error: name.to_owned(),
            message: self.to_string(),
            path: match self {
                ApiError::Tree { path, .. } => path.clone(),
                _ => None,
            },
            leader: match self {
                ApiError::NotLeader { leader } => leader.clone(),
                _ => None,
            },
            results: None,
        }
    }
}

/// The stable name of a tree error (ZooKeeper's `Code` names).
pub fn tree_error_name(error: Error) -> &'static str {
    match error {
        Error::RuntimeInconsistency => "RuntimeInconsistency",
        Error::Unimplemented => "Unimplemented",
        Error::BadArguments => "BadArguments",
        Error::NoNode => "NoNode",
        Error::BadVersion => "BadVersion",
        Error::NoChildrenForEphemerals => "NoChildrenForEphemerals",
        Error::NodeExists => "NodeExists",
        Error::NotEmpty => "NotEmpty",
        Error::SessionExpired => "SessionExpired",
        Error::NoWatcher => "NoWatcher",
        Error::StaleRequest => "StaleRequest",
    }
}

/// The JSON form of an error: `{"code": -101, "error": "NoNode", "message": ..., "path": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// ZooKeeper-style numeric code.
    pub code: i32,
    /// Stable error name.
    pub error: String,
    /// Human-readable description.
    pub message: String,
    /// The path concerned, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The leader's address, for `NotLeader`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leader: Option<String>,
    /// Per-operation results of a failed multi.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub results: Option<Vec<super::wire::OpResultJson>>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), axum::Json(self.body())).into_response()
    }
}

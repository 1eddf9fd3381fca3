//! `/v1/config`: shared-config fragments in the coordination tree (see [`crate::shared_config`]).
//!
//! | Method | Path                          | Does                                            |
//! |--------|-------------------------------|-------------------------------------------------|
//! | GET    | `/v1/config`                  | every fragment, and this node's outcome          |
//! | GET    | `/v1/config/{name}`           | one fragment                                     |
//! | PUT    | `/v1/config/{name}`           | push `{"text": …}`; 422 with positioned errors   |
//! | DELETE | `/v1/config/{name}`           | remove it (its history stays)                    |
//! | GET    | `/v1/config/{name}/history`   | every version, oldest first                      |
//! | POST   | `/v1/config/{name}/rollback`  | push `{"version": N}`'s text again               |
//!
//! A change is validated on this node, against its own config file plus every other current
//! fragment, before anything is written; refused → 422 and the errors, one `path:line:col:
//! message` each. Two changes racing → the later gets 409 and writes nothing. Same bearer token
//! as the rest of the API (the router's middleware).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::shared_config::tree::{self, HistoryEntry};
use crate::shared_config::{self, Fragment, SharedConfig, SharedConfigStatus, TreeError};

/// `GET /v1/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigList {
    /// Every current fragment, sorted by name.
    pub fragments: Vec<Fragment>,
    /// What this node runs.
    pub node: SharedConfigStatus,
}

/// `PUT /v1/config/{name}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The fragment's TOML.
    pub text: String,
}

/// `POST /v1/config/{name}/rollback`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollbackRequest {
    /// The version whose text to push again.
    pub version: u64,
}

/// The answer to a push, rollback or removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeResponse {
    /// The fragment.
    pub name: String,
    /// The version the change created.
    pub version: u64,
}

/// `GET /v1/config/{name}/history`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// The fragment.
    pub name: String,
    /// Every version, oldest first.
    pub entries: Vec<HistoryEntry>,
}

/// Error body of these endpoints: [`super::types::ErrorBody`] plus the validator's lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigErrorBody {
    /// A stable machine-readable code, e.g. `invalid_fragment`.
    pub error: String,
    /// A sentence for humans.
    pub message: String,
    /// For `invalid_fragment`: one `path:line:col: message` per problem.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// The `/v1/config` routes (merged into [`super::router`]).
pub fn routes() -> Router<ApiState> {
    Router::new()
        .route("/v1/config", get(list))
        .route("/v1/config/{name}", get(show).put(push).delete(remove))
        .route("/v1/config/{name}/history", get(history))
        .route("/v1/config/{name}/rollback", post(rollback))
}

/// Why a `/v1/config` request failed.
#[derive(Debug)]
enum ConfigApiError {
    /// No coordination node (`[cluster]` not configured).
    NoCluster,
    Tree(TreeError),
}

impl From<TreeError> for ConfigApiError {
    fn from(error: TreeError) -> Self {
        Self::Tree(error)
    }
}

impl IntoResponse for ConfigApiError {
    fn into_response(self) -> Response {
        let (code, error, errors) = match &self {
            Self::NoCluster => (StatusCode::SERVICE_UNAVAILABLE, "no_cluster", Vec::new()),
            Self::Tree(e) => match e {
                TreeError::BadName(_) => (StatusCode::BAD_REQUEST, "bad_name", Vec::new()),
                TreeError::Invalid(lines) => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_fragment",
                    lines.clone(),
                ),
                TreeError::Conflict => (StatusCode::CONFLICT, "conflict", Vec::new()),
                TreeError::NoFragment(_) | TreeError::NoVersion { .. } => {
                    (StatusCode::NOT_FOUND, "no_such_fragment", Vec::new())
                }
                TreeError::RemovedVersion { .. } => (
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "removed_version",
                    Vec::new(),
                ),
                TreeError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large", Vec::new()),
                TreeError::Coord(_) => {
                    (StatusCode::SERVICE_UNAVAILABLE, "coordination", Vec::new())
                }
                TreeError::Corrupt { .. } | TreeError::Refused(_) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, "tree", Vec::new())
                }
            },
        };
        let message = match &self {
            Self::NoCluster => {
                "shared config needs the coordination node ([cluster] is not configured)".to_owned()
            }
            Self::Tree(TreeError::Invalid(lines)) => {
                format!(
                    "fragment refused: {} error(s), nothing written",
                    lines.len()
                )
            }
            Self::Tree(e) => e.to_string(),
        };
        let body = ConfigErrorBody {
            error: error.to_owned(),
            message,
            errors,
        };
        (code, Json(body)).into_response()
    }
}

/// The coordination node and the shared config, or 503.
fn parts(
    state: &ApiState,
) -> Result<(&vigil_coord::node::CoordNode, &SharedConfig), ConfigApiError> {
    match (&state.coord_runtime, &state.shared_config) {
        (Some(coord), Some(shared)) => Ok((coord.node(), shared)),
        _ => Err(ConfigApiError::NoCluster),
    }
}

/// Who takes a change: this node's `[global] node_name`.
fn node_name(state: &ApiState) -> String {
    state.snapshot.borrow().config.global.node_name.clone()
}

/// The validator of a change taken on this node: the resulting set merged into the base.
fn validator(shared: &SharedConfig) -> impl FnOnce(&[(&str, &str)]) -> Result<(), Vec<String>> {
    let base = shared.base();
    move |set| shared_config::validate(&base, set).map(|_| ())
}

async fn list(State(state): State<ApiState>) -> Result<Json<ConfigList>, ConfigApiError> {
    let (node, shared) = parts(&state)?;
    let fragments = tree::current(node).await?;
    Ok(Json(ConfigList {
        fragments,
        node: shared.status(),
    }))
}

async fn show(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<Fragment>, ConfigApiError> {
    let (node, _) = parts(&state)?;
    tree::check_name(&name)?;
    let fragment = tree::current(node)
        .await?
        .into_iter()
        .find(|f| f.name == name)
        .ok_or(TreeError::NoFragment(name))?;
    Ok(Json(fragment))
}

async fn push(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(request): Json<PushRequest>,
) -> Result<Json<ChangeResponse>, ConfigApiError> {
    let (node, shared) = parts(&state)?;
    let by = node_name(&state);
    let version = tree::push(node, &name, &request.text, &by, validator(shared)).await?;
    tracing::info!(fragment = %name, version, "shared config fragment pushed");
    Ok(Json(ChangeResponse { name, version }))
}

async fn remove(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<ChangeResponse>, ConfigApiError> {
    let (node, shared) = parts(&state)?;
    let by = node_name(&state);
    let version = tree::remove(node, &name, &by, validator(shared)).await?;
    tracing::info!(fragment = %name, version, "shared config fragment removed");
    Ok(Json(ChangeResponse { name, version }))
}

async fn history(
    State(state): State<ApiState>,
    Path(name): Path<String>,
) -> Result<Json<HistoryResponse>, ConfigApiError> {
    let (node, _) = parts(&state)?;
    let entries = tree::history(node, &name).await?;
    Ok(Json(HistoryResponse { name, entries }))
}

async fn rollback(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    Json(request): Json<RollbackRequest>,
) -> Result<Json<ChangeResponse>, ConfigApiError> {
    let (node, shared) = parts(&state)?;
    let by = node_name(&state);
    let version = tree::rollback(node, &name, request.version, &by, validator(shared)).await?;
    tracing::info!(fragment = %name, version, from = request.version, "shared config fragment rolled back");
    Ok(Json(ChangeResponse { name, version }))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(error: ConfigApiError) -> (StatusCode, ConfigErrorBody) {
        let response = error.into_response();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("body");
        (
            status,
            serde_json::from_slice(&bytes).expect("JSON error body"),
        )
    }

    #[tokio::test]
    async fn a_refused_fragment_answers_422_with_every_positioned_error() {
        let errors = vec![
            "/vigil/config/web:6:11: invalid IP address \"10.0.0.999\"".to_owned(),
            "/vigil/config/web:9:12: unknown VRRP instance \"VI_9\"".to_owned(),
        ];
        let (status, answer) = body(ConfigApiError::Tree(TreeError::Invalid(errors.clone()))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(answer.error, "invalid_fragment");
        assert_eq!(answer.errors, errors);
        assert!(
            answer.message.contains("nothing written"),
            "{}",
            answer.message
        );
    }

    #[tokio::test]
    async fn a_lost_race_is_409_and_no_cluster_is_503() {
        let (status, answer) = body(ConfigApiError::Tree(TreeError::Conflict)).await;
        assert_eq!(
            (status, answer.error.as_str()),
            (StatusCode::CONFLICT, "conflict")
        );
        assert!(
            answer.message.contains("concurrently"),
            "{}",
            answer.message
        );
        assert!(answer.errors.is_empty());
        let (status, answer) = body(ConfigApiError::NoCluster).await;
        assert_eq!(
            (status, answer.error.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "no_cluster")
        );
    }
}

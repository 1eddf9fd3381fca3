//! The local control API: HTTP/1.1 + JSON on `[api] listen` (loopback by default).
//!
//! | Method | Path         | Does                                                      |
//! |--------|--------------|-----------------------------------------------------------|
//! | GET    | `/v1/status` | node, version, pid, uptime, config generation, last reload; |
//! |        |              | with `[cluster]`, every node of the cluster (up or down)   |
//! | POST   | `/v1/reload` | re-reads the config; 200 applied, 422 rejected             |
//! | GET    | `/v1/lvs`    | virtual servers, real servers, checks, desired IPVS table  |
//! | GET    | `/metrics`   | Prometheus text format 0.0.4 (see [`crate::metrics`])      |
//! | *      | `/v1/config…`| shared-config fragments: push, show, history, rollback, rm (see [`config`]) |
//!
//! With `[api] token_file` set, every request needs `Authorization: Bearer <token>`; others get
//! 401. Errors are JSON [`types::ErrorBody`]s. Handlers never touch daemon state directly: they
//! read the published [`Snapshot`] or send a [`Control`] message, like a signal would.

pub mod auth;
pub mod config;
pub mod types;

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use crate::control::{Control, ControlSender};
use crate::coord::CoordRuntime;
use crate::lb::{LbRuntime, LbStatus};
use crate::metrics::{CONTENT_TYPE, CoordMetrics, Scrape};
use crate::reload::{ReloadReport, unix_now};
use crate::supervisor::Snapshot;
use crate::vrrp::VrrpView;
use crate::watchdog::Watched;
use types::{ClusterView, ErrorBody, StatusResponse, VrrpResponse};

/// Request bodies beyond this are refused with 413; no endpoint needs more today.
const BODY_LIMIT: usize = 64 * 1024;

/// What every handler can see.
#[derive(Debug, Clone)]
pub struct ApiState {
    control: ControlSender,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    config_path: String,
    started: Instant,
    started_at_unix_secs: u64,
    lb: Option<LbRuntime>,
    vrrp: Option<VrrpView>,
    coord_runtime: Option<CoordRuntime>,
    coord: Option<Arc<dyn CoordMetrics>>,
    watched: Option<Watched>,
    shared_config: Option<crate::shared_config::SharedConfig>,
    members: Option<MembersReader>,
}

/// Reads the cluster's membership records for `GET /v1/status`.
#[derive(Clone)]
struct MembersReader(vigil_coord::client::Client);

impl std::fmt::Debug for MembersReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MembersReader")
    }
}

/// The longest `GET /v1/status` waits for the coordination tree: without a quorum reads never
/// succeed, and the local part of the status must still come back promptly.
pub const CLUSTER_READ_LIMIT: std::time::Duration = std::time::Duration::from_secs(2);

impl ApiState {
    /// State for a daemon that started now and reloads from `config_path`.
    pub fn new(
        control: ControlSender,
        snapshot: watch::Receiver<Arc<Snapshot>>,
        config_path: String,
    ) -> Self {
        Self {
            control,
            snapshot,
            config_path,
            started: Instant::now(),
            started_at_unix_secs: unix_now(),
            lb: None,
            vrrp: None,
            coord_runtime: None,
            coord: None,
            watched: None,
            shared_config: None,
            members: None,
        }
    }

    /// Shows every node of the cluster in `GET /v1/status`, read through `client` (this node's
    /// own coordination client API, see [`crate::members::read`]).
    #[must_use]
    pub fn with_members(mut self, client: vigil_coord::client::Client) -> Self {
        self.members = Some(MembersReader(client));
        self
    }

    /// Serves `/v1/config` (shared-config fragments; needs the coordination node) and this
    /// node's shared-config outcome in `/v1/status`.
    #[must_use]
    pub fn with_shared_config(mut self, shared: crate::shared_config::SharedConfig) -> Self {
        self.shared_config = Some(shared);
        self
    }

    /// Adds the coordination node's `vigil_raft_*`/`vigil_coord_*` families to `/metrics`.
    #[must_use]
    pub fn with_coord(mut self, coord: Arc<dyn CoordMetrics>) -> Self {
        self.coord = Some(coord);
        self
    }

    /// Exports how long each component the watchdog judges has been silent.
    #[must_use]
    pub fn with_liveness(mut self, watched: Watched) -> Self {
        self.watched = Some(watched);
        self
    }

    /// Shows the coordination node in `GET /v1/status`.
    #[must_use]
    pub fn with_coord_runtime(mut self, coord: CoordRuntime) -> Self {
        self.coord_runtime = Some(coord);
        self
    }

    /// Serves `GET /v1/lvs` (and the LVS summary in `/v1/status`) from `lb`.
    #[must_use]
    pub fn with_lb(mut self, lb: LbRuntime) -> Self {
        self.lb = Some(lb);
        self
    }

    /// Serves `GET /v1/vrrp` (and the VRRP list in `/v1/status`) from `vrrp`.
    #[must_use]
    pub fn with_vrrp(mut self, vrrp: VrrpView) -> Self {
        self.vrrp = Some(vrrp);
        self
    }
}

/// The API's routes, with authentication and the body limit applied to all of them.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/reload", post(reload))
        .route("/v1/lvs", get(lvs))
        .route("/v1/vrrp", get(vrrp))
        .route("/metrics", get(metrics))
        .merge(config::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves the API on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    state: ApiState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    // Clone out of the watch borrow: it must not be held across the await below.
    let token = state.snapshot.borrow().token.clone();
    match token {
        Some(token) if !token.authorizes(request.headers()) => {
            ApiError::Unauthorized.into_response()
        }
        _ => next.run(request).await,
    }
}

async fn status(State(state): State<ApiState>) -> Json<StatusResponse> {
    let snapshot = state.snapshot.borrow().clone();
    let lvs = match &state.lb {
        Some(lb) => lb.summary().await.ok(),
        None => None,
    };
    let cluster = match &state.members {
        Some(reader) => Some(cluster_view(&reader.0).await),
        None => None,
    };
    Json(StatusResponse {
        node_name: snapshot.config.global.node_name.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        pid: std::process::id(),
        uptime_secs: state.started.elapsed().as_secs(),
        started_at_unix_secs: state.started_at_unix_secs,
        config_path: state.config_path.clone(),
        config_generation: snapshot.generation,
        last_reload: snapshot.last_reload.clone(),
        lvs,
        vrrp: state
            .vrrp
            .as_ref()
            .map(VrrpView::instances)
            .unwrap_or_default(),
        coord: state.coord_runtime.as_ref().map(CoordRuntime::status),
        shared_config: state
            .shared_config
            .as_ref()
            .map(crate::shared_config::SharedConfig::status),
        cluster,
    })
}

/// The membership records, or why they cannot be read within [`CLUSTER_READ_LIMIT`].
async fn cluster_view(client: &vigil_coord::client::Client) -> ClusterView {
    let error = match tokio::time::timeout(CLUSTER_READ_LIMIT, crate::members::read(client)).await {
        Ok(Ok(members)) => {
            return ClusterView {
                members,
                error: None,
            };
        }
        Ok(Err(error)) => format!("cannot read the cluster's records: {error}"),
        Err(_) => format!(
            "no answer from the coordination tree within {}s (no quorum?)",
            CLUSTER_READ_LIMIT.as_secs()
        ),
    };
    ClusterView {
        members: Vec::new(),
        error: Some(error),
    }
}

async fn vrrp(State(state): State<ApiState>) -> Json<VrrpResponse> {
    let instances = state
        .vrrp
        .as_ref()
        .map(VrrpView::instances)
        .unwrap_or_default();
    Json(VrrpResponse { instances })
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let generation = state.snapshot.borrow().generation;
    let vrrp = state
        .vrrp
        .as_ref()
        .map(VrrpView::instances)
        .unwrap_or_default();
    let lb_status = match &state.lb {
        Some(lb) => lb.status().await.ok(),
        None => None,
    };
    let coord = state.coord.as_ref().map(|c| c.coord_snapshot());
    let beacons = state.watched.as_ref().map(Watched::beacons);
    let text = crate::metrics::render(&Scrape {
        generation,
        log_lines_dropped: crate::logging::dropped_lines(),
        uptime: state.started.elapsed(),
        vrrp: &vrrp,
        lb: state
            .lb
            .as_ref()
            .map(|lb| (lb.counters(), lb_status.as_ref())),
        coord: coord.as_ref(),
        liveness: beacons.as_deref().map(|b| (Instant::now(), b)),
    });
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        text,
    )
        .into_response()
}

async fn lvs(State(state): State<ApiState>) -> Result<Json<LbStatus>, ApiError> {
    let lb = state.lb.as_ref().ok_or(ApiError::LvsUnavailable)?;
    lb.status()
        .await
        .map(Json)
        .map_err(|_| ApiError::ShuttingDown)
}

async fn reload(
    State(state): State<ApiState>,
) -> Result<(StatusCode, Json<ReloadReport>), ApiError> {
    let (reply, outcome) = oneshot::channel();
    state
        .control
        .send(Control::Reload { reply: Some(reply) })
        .await
        .map_err(|_| ApiError::ShuttingDown)?;
    let report = outcome.await.map_err(|_| ApiError::ShuttingDown)?;
    let code = if report.outcome.is_rejected() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    Ok((code, Json(report)))
}

async fn not_found() -> ApiError {
    ApiError::NotFound
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

/// Every way a request can fail, each with its status code and stable error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong bearer token.
    #[error("missing or wrong API token")]
    Unauthorized,
    /// No such endpoint.
    #[error("no such endpoint")]
    NotFound,
    /// The endpoint exists but not with this method.
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    /// The daemon is stopping and no longer takes requests.
    #[error("vigild is shutting down")]
    ShuttingDown,
    /// The health-check/LVS runtime is not running in this daemon.
    #[error("health checks and LVS are not running")]
    LvsUnavailable,
}

impl ApiError {
    fn parts(self) -> (StatusCode, &'static str) {
        match self {
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::ShuttingDown => (StatusCode::SERVICE_UNAVAILABLE, "shutting_down"),
            Self::LvsUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "lvs_unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, error) = self.parts();
        let body = ErrorBody {
            error: error.to_owned(),
            message: self.to_string(),
        };
        let mut response = (code, Json(body)).into_response();
        if self == Self::Unauthorized {
            // RFC 6750 §3: a 401 names the scheme the client should use.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"vigil\""),
            );
        }
        response
    }
}

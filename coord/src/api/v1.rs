//! The `/v1` HTTP/JSON API: router, configuration, authentication and request extraction.
//!
//! | Method and path                         | Operation                                  |
//! |-----------------------------------------|--------------------------------------------|
//! | `POST /v1/sessions`                     | open a session `{timeout_ms, liveness?}`   |
//! | `POST /v1/sessions/{id}/heartbeat`      | keep a heartbeat session alive             |
//! | `DELETE /v1/sessions/{id}`              | close it (ephemerals go)                   |
//! | `PUT /v1/nodes/{path}`                  | create (flags, data)                       |
//! | `POST /v1/nodes/{path}`                 | set data `{data|text, version}`            |
//! | `GET /v1/nodes/{path}`                  | data + stat (`?consistency=stale`)         |
//! | `DELETE /v1/nodes/{path}`               | delete (`?version=N&recursive=true`)       |
//! | `GET /v1/children/{path}`               | child names + stat                         |
//! | `GET /v1/stat/{path}`                   | stat or null                               |
//! | `POST /v1/multi`                        | atomic transaction with checks             |
//! | `POST /v1/sync`                         | sync                                       |
//! | `GET /v1/watch?path=&kind=&last_zxid=`  | NDJSON event stream (see [`super::wire::WatchLine`]) |
//! | `GET /v1/cluster`                       | cluster status                             |
//! | `POST /v1/cluster/members`              | add learner / promote / remove             |
//!
//! Writes carry `X-Vigil-Session` and `X-Vigil-Request-Id` headers: the request id makes a retry
//! (same id) return the original result instead of applying twice.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use serde::de::DeserializeOwned;

use super::ApiError;
use super::backend::SharedBackend;
use super::hub::WatchHub;
use super::wire::{REQUEST_ID_HEADER, SESSION_HEADER};
use super::{nodes, streams};
use crate::session::{SessionConfig, SessionId};
use crate::tree::MAX_DATA_LEN;

/// Settings of one API server.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Required bearer token, if any.
    pub token: Option<String>,
    /// Largest accepted request body. The default fits 1 MiB of data in base64 plus overhead.
    pub body_limit: usize,
    /// Session timeout bounds.
    pub sessions: SessionConfig,
    /// Interval of heartbeat lines on watch streams.
    pub watch_heartbeat: Duration,
    /// Recent events kept for resuming watch streams.
    pub watch_ring: usize,
    /// Largest subtree a recursive delete removes in one transaction.
    pub recursive_delete_limit: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            token: None,
            body_limit: MAX_DATA_LEN * 4 / 3 + 64 * 1024,
            sessions: SessionConfig::default(),
            watch_heartbeat: Duration::from_secs(5),
            watch_ring: 10_000,
            recursive_delete_limit: 1_000,
        }
    }
}

/// What every handler sees.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) backend: SharedBackend,
    pub(crate) hub: Arc<WatchHub>,
    pub(crate) config: Arc<ApiConfig>,
}

/// Live numbers of one API server, for metrics. Cheap to clone.
#[derive(Clone)]
pub struct ApiStats {
    hub: Arc<WatchHub>,
}

impl std::fmt::Debug for ApiStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiStats")
            .field("watches", &self.watches())
            .finish()
    }
}

impl ApiStats {
    /// Watches registered through this server's watch streams now.
    pub fn watches(&self) -> u64 {
        self.hub.registrations() as u64
    }
}

/// The `/v1` router over `backend`. Must be called inside a tokio runtime (it starts the watch
/// pump task).
pub fn router(backend: SharedBackend, config: ApiConfig) -> Router {
    router_with_stats(backend, config).0
}

/// [`router`], with a handle on its live numbers.
pub fn router_with_stats(backend: SharedBackend, config: ApiConfig) -> (Router, ApiStats) {
    let hub = WatchHub::start(&backend, config.watch_ring);
    let stats = ApiStats {
        hub: Arc::clone(&hub),
    };
    let body_limit = config.body_limit;
    let state = AppState {
        backend,
        hub,
        config: Arc::new(config),
    };
    let router = Router::new()
        .route("/v1/sessions", post(nodes::create_session))
        .route("/v1/sessions/{id}/heartbeat", post(nodes::heartbeat))
        .route(
            "/v1/sessions/{id}",
            axum::routing::delete(nodes::close_session),
        )
        .route(
            "/v1/nodes",
            get(nodes::get_root)
                .put(nodes::create_root)
                .post(nodes::set_root),
        )
        .route(
            "/v1/nodes/{*path}",
            get(nodes::get_node)
                .put(nodes::create_node)
                .post(nodes::set_node)
                .delete(nodes::delete_node),
        )
        .route("/v1/children", get(nodes::children_root))
        .route("/v1/children/{*path}", get(nodes::children))
        .route("/v1/stat", get(nodes::stat_root))
        .route("/v1/stat/{*path}", get(nodes::stat))
        .route("/v1/multi", post(nodes::multi))
        .route("/v1/sync", post(nodes::sync))
        .route("/v1/watch", get(streams::watch))
        .route("/v1/cluster", get(streams::cluster_status))
        .route("/v1/cluster/members", post(streams::change_membership))
        .fallback(|| async { ApiError::NoRoute })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state);
    (router, stats)
}

/// Serves `router` on `listener` until `shutdown` completes; open connections (watch streams
/// included) are dropped then.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    // Without TCP_NODELAY, a watch event written while the previous one on the same stream is
    // unacknowledged waits for the client's delayed ACK (up to 40 ms on Linux): Nagle's
    // algorithm, on a stream of small writes.
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY on an API connection");
        }
    });
    tokio::select! {
        result = axum::serve(listener, router) => result,
        () = shutdown => Ok(()),
    }
}

async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if let Some(token) = &state.config.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| constant_time_eq(g.as_bytes(), token.as_bytes())) {
            return axum::response::IntoResponse::into_response(ApiError::Unauthorized);
        }
    }
    next.run(req).await
}

/// Compares in time independent of where the inputs differ (only the length may leak).
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A JSON body whose every failure is a JSON 4xx (`BadRequest` or `PayloadTooLarge`).
pub(crate) struct JsonBody<T>(pub(crate) T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(rejection.body_text())
            }
        })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
    }
}

/// The session and request id of a write.
pub(crate) fn write_headers(headers: &HeaderMap) -> Result<(SessionId, u64), ApiError> {
    let session = number_header(headers, SESSION_HEADER)?;
    let request_id = number_header(headers, REQUEST_ID_HEADER)?;
    Ok((SessionId(session), request_id))
}

fn number_header(headers: &HeaderMap, name: &str) -> Result<u64, ApiError> {
    let value = headers
        .get(name)
        .ok_or_else(|| ApiError::BadRequest(format!("header {name} is required for writes")))?;
    value
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::BadRequest(format!("header {name} must be a decimal u64")))
}

#[cfg(test)]
mod tests {
    use super::constant_time_eq;

    #[test]
    fn token_comparison() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }
}

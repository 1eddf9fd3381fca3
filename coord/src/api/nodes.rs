//! Handlers for sessions, nodes, multi and sync.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response as HttpResponse};
use serde::Deserialize;

use super::ApiError;
use super::backend::Consistency;
use super::v1::{AppState, JsonBody, write_headers};
use super::wire::{
    ChildrenJson, CreateJson, CreateSessionJson, MultiJson, MultiResultJson, NodeJson,
    OpResultJson, SessionJson, SetJson, StatJson, WriteJson,
};
use crate::request::{Command, Op, OpResult, Request, Response};
use crate::session::SessionId;

/// An error response, with per-operation results for a failed multi.
pub(crate) struct Failure {
    error: ApiError,
    results: Option<Vec<OpResultJson>>,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure {
            error,
            results: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> HttpResponse {
        let mut body = self.error.body();
        body.results = self.results;
        (self.error.status(), Json(body)).into_response()
    }
}

type Handler<T> = Result<T, Failure>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReadQuery {
    #[serde(default)]
    consistency: Consistency,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteQuery {
    version: Option<i32>,
    #[serde(default)]
    recursive: bool,
}

fn node_path(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(p) = path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    Ok(format!("/{p}"))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

fn unexpected(response: &Response) -> ApiError {
    ApiError::Unavailable(format!("unexpected backend response {response:?}"))
}

fn session_id(id: Result<Path<u64>, PathRejection>) -> Result<SessionId, ApiError> {
    id.map(|Path(id)| SessionId(id))
        .map_err(|e| ApiError::BadRequest(e.body_text()))
}

pub(crate) async fn create_session(
    State(s): State<AppState>,
    JsonBody(body): JsonBody<CreateSessionJson>,
) -> Handler<(StatusCode, Json<SessionJson>)> {
    let cmd = Command::create_session_with(body.timeout_ms, body.liveness, &s.config.sessions);
    match s.backend.write(cmd).await? {
        Response::SessionCreated {
            session,
            timeout_ms,
        } => Ok((
            StatusCode::CREATED,
            Json(SessionJson {
                session: session.0,
                timeout_ms,
                liveness: body.liveness,
            }),
        )),
        Response::Error(e) => Err(ApiError::from(e).into()),
        other => Err(unexpected(&other).into()),
    }
}

pub(crate) async fn heartbeat(
    State(s): State<AppState>,
    id: Result<Path<u64>, PathRejection>,
) -> Handler<StatusCode> {
    s.backend.heartbeat(session_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) async fn close_session(
    State(s): State<AppState>,
    id: Result<Path<u64>, PathRejection>,
) -> Handler<StatusCode> {
    let session = session_id(id)?;
    match s.backend.write(Command::CloseSession { session }).await? {
        Response::SessionClosed => Ok(StatusCode::NO_CONTENT),
        Response::Error(e) => Err(ApiError::from(e).into()),
        other => Err(unexpected(&other).into()),
    }
}

/// Runs a client write; failures carry `path` (or the failing op's path in a multi).
async fn write(
    s: &AppState,
    headers: &HeaderMap,
    request: Request,
    paths: &[String],
) -> Result<Response, Failure> {
    let (session, request_id) = write_headers(headers)?;
    let response = s
        .backend
        .write(Command::Write {
            session,
            request_id,
            request,
        })
        .await?;
    match &response {
        Response::Error(e) => Err(ApiError::Tree {
            error: *e,
            path: if *e == crate::Error::SessionExpired {
                None
            } else {
                paths.first().cloned()
            },
        }
        .into()),
        Response::Op(OpResult::Error(e)) => Err(ApiError::Tree {
            error: *e,
            path: paths.first().cloned(),
        }
        .into()),
        Response::Multi(results) => match response.error() {
            None => Ok(response),
            Some(error) => {
                let at = results
                    .iter()
                    .position(|r| matches!(r, OpResult::Error(e) if *e == error));
                Err(Failure {
                    error: ApiError::Tree {
                        error,
                        path: at.and_then(|i| paths.get(i).cloned()),
                    },
                    results: Some(results.iter().map(OpResultJson::from).collect()),
                })
            }
        },
        _ => Ok(response),
    }
}

async fn do_create(
    s: &AppState,
    headers: &HeaderMap,
    path: String,
    body: &CreateJson,
) -> Handler<(StatusCode, Json<WriteJson>)> {
    let op = body.to_op(&path)?;
    match write(s, headers, Request::Single(op), &[path]).await? {
        Response::Op(OpResult::Created { path, stat }) => Ok((
            StatusCode::CREATED,
            Json(WriteJson {
                path,
                stat: Some(stat),
            }),
        )),
        other => Err(unexpected(&other).into()),
    }
}

async fn do_set(
    s: &AppState,
    headers: &HeaderMap,
    path: String,
    body: &SetJson,
) -> Handler<Json<WriteJson>> {
    let op = Op::SetData {
        path: path.clone(),
        data: body.data.decode()?,
        version: body.version,
    };
    match write(s, headers, Request::Single(op), std::slice::from_ref(&path)).await? {
        Response::Op(OpResult::DataSet { stat }) => Ok(Json(WriteJson {
            path,
            stat: Some(stat),
        })),
        other => Err(unexpected(&other).into()),
    }
}

async fn do_get(s: &AppState, path: &str, q: &ReadQuery) -> Handler<Json<NodeJson>> {
    let (data, stat) = s.backend.get(q.consistency, path).await?;
    Ok(Json(NodeJson::new(path, &data, stat)))
}

async fn do_children(s: &AppState, path: String, q: &ReadQuery) -> Handler<Json<ChildrenJson>> {
    let (children, stat) = s.backend.children(q.consistency, &path).await?;
    Ok(Json(ChildrenJson {
        path,
        children,
        stat,
    }))
}

async fn do_stat(s: &AppState, path: String, q: &ReadQuery) -> Handler<Json<StatJson>> {
    let stat = s.backend.exists(q.consistency, &path).await?;
    Ok(Json(StatJson { path, stat }))
}

pub(crate) async fn create_node(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateJson>,
) -> Handler<(StatusCode, Json<WriteJson>)> {
    do_create(&s, &headers, node_path(path)?, &body).await
}

pub(crate) async fn create_root(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<CreateJson>,
) -> Handler<(StatusCode, Json<WriteJson>)> {
    do_create(&s, &headers, "/".into(), &body).await
}

pub(crate) async fn set_node(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SetJson>,
) -> Handler<Json<WriteJson>> {
    do_set(&s, &headers, node_path(path)?, &body).await
}

pub(crate) async fn set_root(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<SetJson>,
) -> Handler<Json<WriteJson>> {
    do_set(&s, &headers, "/".into(), &body).await
}

pub(crate) async fn get_node(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<NodeJson>> {
    do_get(&s, &node_path(path)?, &query(q)?).await
}

pub(crate) async fn get_root(
    State(s): State<AppState>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<NodeJson>> {
    do_get(&s, "/", &query(q)?).await
}

pub(crate) async fn children(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<ChildrenJson>> {
    do_children(&s, node_path(path)?, &query(q)?).await
}

pub(crate) async fn children_root(
    State(s): State<AppState>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<ChildrenJson>> {
    do_children(&s, "/".into(), &query(q)?).await
}

pub(crate) async fn stat(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<StatJson>> {
    do_stat(&s, node_path(path)?, &query(q)?).await
}

pub(crate) async fn stat_root(
    State(s): State<AppState>,
    q: Result<Query<ReadQuery>, QueryRejection>,
) -> Handler<Json<StatJson>> {
    do_stat(&s, "/".into(), &query(q)?).await
}

pub(crate) async fn delete_node(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    q: Result<Query<DeleteQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Handler<Json<WriteJson>> {
    let path = node_path(path)?;
    let q = query(q)?;
    if !q.recursive {
        let op = Op::Delete {
            path: path.clone(),
            version: q.version,
        };
        write(
            &s,
            &headers,
            Request::Single(op),
            std::slice::from_ref(&path),
        )
        .await?;
        return Ok(Json(WriteJson { path, stat: None }));
    }
    let limit = s.config.recursive_delete_limit;
    let Some(mut nodes) = s
        .backend
        .subtree(Consistency::Linearizable, &path, limit)
        .await?
    else {
        return Err(ApiError::BadRequest(format!(
            "subtree of {path} has more than {limit} nodes; delete it in parts"
        ))
        .into());
    };
    // Children before parents; the version applies to the top node only.
    nodes.reverse();
    let ops = nodes
        .iter()
        .map(|p| Op::Delete {
            path: p.clone(),
            version: if *p == path { q.version } else { None },
        })
        .collect();
    write(&s, &headers, Request::Multi(ops), &nodes).await?;
    Ok(Json(WriteJson { path, stat: None }))
}

pub(crate) async fn multi(
    State(s): State<AppState>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<MultiJson>,
) -> Handler<Json<MultiResultJson>> {
    let ops = body
        .ops
        .iter()
        .map(super::wire::OpJson::to_op)
        .collect::<Result<Vec<_>, _>>()?;
    let paths: Vec<String> = body.ops.iter().map(|o| o.path().to_owned()).collect();
    match write(&s, &headers, Request::Multi(ops), &paths).await? {
        Response::Multi(results) => Ok(Json(MultiResultJson {
            results: results.iter().map(OpResultJson::from).collect(),
        })),
        other => Err(unexpected(&other).into()),
    }
}

pub(crate) async fn sync(
    State(s): State<AppState>,
    headers: HeaderMap,
) -> Handler<Json<serde_json::Value>> {
    match write(&s, &headers, Request::Sync, &[]).await? {
        Response::Synced => Ok(Json(
            serde_json::json!({ "zxid": crate::zxid::through(s.backend.applied_index()) }),
        )),
        other => Err(unexpected(&other).into()),
    }
}

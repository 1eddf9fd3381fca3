//! Handlers for the NDJSON watch stream and the cluster endpoints.

use std::convert::Infallible;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiError;
use super::backend::{ClusterStatus, MembershipChange};
use super::hub::{Registration, encode_line};
use super::nodes::Failure;
use super::v1::{AppState, JsonBody};
use super::wire::{WatchLine, WatchQuery, parse_watch_kind};
use crate::tree::path;
use crate::watch::WatchKind;

struct StreamState {
    registration: Registration,
    heartbeat: tokio::time::Interval,
    first: Option<WatchLine>,
    one_shot: bool,
    done: bool,
}

pub(crate) async fn watch(
    State(s): State<AppState>,
    q: Result<Query<WatchQuery>, QueryRejection>,
) -> Result<Response, Failure> {
    let Query(q) = q.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let kind = parse_watch_kind(&q.kind)?;
    path::validate(&q.path, false).map_err(|e| ApiError::at(e.into(), &q.path))?;
    let registration = s.hub.register(&q.path, kind, q.last_zxid);
    let period = s.config.watch_heartbeat;
    let state = StreamState {
        first: Some(WatchLine::Registered {
            zxid: registration.zxid,
            replayed: registration.replayed,
        }),
        registration,
        heartbeat: tokio::time::interval_at(tokio::time::Instant::now() + period, period),
        one_shot: matches!(kind, WatchKind::Data | WatchKind::Children),
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        if let Some(first) = st.first.take() {
            return Some((Ok::<_, Infallible>(encode_line(&first)), st));
        }
        let out: Bytes = tokio::select! {
            line = st.registration.rx.recv() => {
                let line = line?;
                st.done = st.one_shot && line.event;
                line.bytes
            }
            _ = st.heartbeat.tick() => encode_line(&WatchLine::Heartbeat),
        };
        Some((Ok(out), st))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(stream),
    )
        .into_response())
}

pub(crate) async fn cluster_status(
    State(s): State<AppState>,
) -> Result<Json<ClusterStatus>, Failure> {
    Ok(Json(s.backend.status().await?))
}

pub(crate) async fn change_membership(
    State(s): State<AppState>,
    JsonBody(change): JsonBody<MembershipChange>,
) -> Result<Json<ClusterStatus>, Failure> {
    Ok(Json(s.backend.change_membership(change).await?))
}

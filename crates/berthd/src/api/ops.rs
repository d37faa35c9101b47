//! `pause`, `unpause`, `update` and `stats` of /containers.

use super::body::{flag, json_body, Q};
use super::{json, ApiError, Shared};
use crate::engine::Engine;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use std::time::Duration;

pub async fn pause(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.engine.pause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn unpause(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.engine.unpause_container(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn update(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let body: Map<String, Value> = json_body(&headers, &body)?;
    let warnings = s.engine.update_container(&id, body).await?;
    // Docker: `{"Warnings":null}` when there are none
    let w = if warnings.is_empty() {
        Value::Null
    } else {
        json!(warnings)
    };
    Ok(json(StatusCode::OK, &json!({ "Warnings": w })))
}

/// Adds the previous reading as `precpu_stats`/`preread`.
fn with_previous(mut v: Value, prev: Option<&Value>) -> Value {
    if let Some(p) = prev {
        v["precpu_stats"] = p["cpu_stats"].clone();
        v["preread"] = p["read"].clone();
    }
    v
}

fn line(v: &Value) -> Bytes {
    let mut b = serde_json::to_vec(v).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// `stream` (default on): a reading every second until the container stops. `stream=false`:
/// one reading with a previous one a second before (for CPU %); `one-shot=true` skips that.
pub async fn stats(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let c = s.engine.find(&id)?;
    let stream = !q.contains_key("stream") || flag(&q, "stream");
    let engine: Arc<Engine> = s.engine.clone();
    let headers = [(header::CONTENT_TYPE, "application/json")];
    if !stream {
        let e = engine.clone();
        let c2 = c.clone();
        let first = tokio::task::spawn_blocking(move || e.stats_sample(&c2))
            .await
            .ok()
            .flatten();
        let v = match first {
            None => engine.stats_empty(&c),
            Some(v) if flag(&q, "one-shot") => v,
            Some(prev) => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let e = engine.clone();
                let c2 = c.clone();
                match tokio::task::spawn_blocking(move || e.stats_sample(&c2))
                    .await
                    .ok()
                    .flatten()
                {
                    Some(v) => with_previous(v, Some(&prev)),
                    None => engine.stats_empty(&c),
                }
            }
        };
        return Ok((StatusCode::OK, headers, line(&v)).into_response());
    }
    let body = futures::stream::unfold(
        (engine, c, None::<Value>, true),
        |(e, c, prev, first)| async move {
            if !first && prev.is_none() {
                return None;
            }
            if !first {
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            let (e2, c2) = (e.clone(), c.clone());
            let now = tokio::task::spawn_blocking(move || e2.stats_sample(&c2))
                .await
                .ok()
                .flatten();
            let out = match &now {
                Some(v) => with_previous(v.clone(), prev.as_ref()),
                // not running (any more): Docker's zeroed reading, then the end
                None => e.stats_empty(&c),
            };
            Some((Ok::<_, std::io::Error>(line(&out)), (e, c, now, false)))
        },
    );
    Ok((StatusCode::OK, headers, Body::from_stream(body)).into_response())
}

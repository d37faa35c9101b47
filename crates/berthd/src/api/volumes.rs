//! /volumes routes: create, list, inspect, remove, prune.

use super::body::{filters, flag, json_body, Q};
use super::{json, ApiError, Shared};
use crate::engine::volumes::CreateRequest;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn list(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let f = filters(&q)?;
    let vols = s.engine.list_volumes(&f)?;
    Ok(json(
        StatusCode::OK,
        &json!({ "Volumes": vols, "Warnings": null }),
    ))
}

pub async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // an empty body asks for an anonymous volume with the defaults
    let req: CreateRequest = if body.is_empty() {
        CreateRequest::default()
    } else {
        json_body(&headers, &body)?
    };
    let e = s.engine.clone();
    let v = tokio::task::spawn_blocking(move || e.create_volume(req))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(json(StatusCode::CREATED, &v))
}

pub async fn inspect(
    State(s): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &s.engine.inspect_volume(&name)?))
}

pub async fn remove(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let e = s.engine.clone();
    let force = flag(&q, "force");
    tokio::task::spawn_blocking(move || e.remove_volume(&name, force))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let f = filters(&q)?;
    let e = s.engine.clone();
    let (deleted, size) = tokio::task::spawn_blocking(move || e.prune_volumes(&f))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    Ok(json(
        StatusCode::OK,
        &json!({ "VolumesDeleted": deleted, "SpaceReclaimed": size }),
    ))
}

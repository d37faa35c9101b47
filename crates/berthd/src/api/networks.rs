//! /networks routes.

use super::body::{filters, json_body, Q};
use super::{json, ApiError, Shared};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::{NetworkCreateRequest, NetworkCreateResponse, NetworksPruneReport};

pub async fn list(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let nets = s.ctl.list(filters(&q)?)?;
    Ok(json(StatusCode::OK, &nets))
}

pub async fn inspect(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    if let Some(v) = q.get("verbose") {
        if ![
            "", "0", "1", "true", "false", "t", "f", "TRUE", "FALSE", "True", "False",
        ]
        .contains(&v.as_str())
        {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("invalid value for verbose: {v}: strconv.ParseBool: parsing {v:?}: invalid syntax"),
            ));
        }
    }
    let n = s.ctl.inspect(&id)?;
    if let Some(scope) = q.get("scope").filter(|sc| !sc.is_empty()) {
        if *scope != n.scope {
            return Err(ApiError(
                StatusCode::NOT_FOUND,
                format!("network {id} not found"),
            ));
        }
    }
    Ok(json(StatusCode::OK, &n))
}

pub async fn create(
    State(s): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: NetworkCreateRequest = json_body(&headers, &body)?;
    let id = s.ctl.create(&req).await?;
    Ok(json(
        StatusCode::CREATED,
        &NetworkCreateResponse {
            id,
            warning: String::new(),
        },
    ))
}

pub async fn remove(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    s.ctl.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn prune(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let deleted = s.ctl.prune(filters(&q)?).await?;
    Ok(json(
        StatusCode::OK,
        &NetworksPruneReport {
            networks_deleted: (!deleted.is_empty()).then_some(deleted),
        },
    ))
}

/// `POST /networks/{id}/connect` and `/disconnect`, `{id}` possibly holding '/'.
pub async fn connect_or_disconnect(
    s: State<Shared>,
    Path(rest): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Some(id) = rest.strip_suffix("/connect") {
        return connect(s, id.to_string(), headers, body).await;
    }
    if let Some(id) = rest.strip_suffix("/disconnect") {
        return disconnect(s, id.to_string(), headers, body).await;
    }
    Err(ApiError(StatusCode::NOT_FOUND, "page not found".into()))
}

async fn connect(
    State(s): State<Shared>,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: berth_api::NetworkConnectRequest = json_body(&headers, &body)?;
    s.engine
        .connect(&id, &req.container, req.endpoint_config)
        .await?;
    Ok(StatusCode::OK.into_response())
}

async fn disconnect(
    State(s): State<Shared>,
    id: String,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: berth_api::NetworkDisconnectRequest = json_body(&headers, &body)?;
    s.engine.disconnect(&id, &req.container, req.force).await?;
    Ok(StatusCode::OK.into_response())
}

//! `POST /containers/{id}/rename?name=NEW` (docker rename; docker-compose's recreate).

use super::body::Q;
use super::{ApiError, Shared};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

pub async fn rename(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<StatusCode, ApiError> {
    let new = q.get("name").map(String::as_str).unwrap_or("");
    s.engine.rename_container(&id, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

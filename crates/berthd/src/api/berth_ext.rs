//! berth's own extensions of the Engine API (not Docker's): `/berth/v1/diagnose` and
//! `/berth/v1/graph`.

use super::body::Q;
use super::{json, ApiError, Shared};
use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

fn flag(q: &std::collections::HashMap<String, String>, k: &str) -> Result<bool, ApiError> {
    match q.get(k).map(String::as_str) {
        None | Some("") | Some("0") | Some("false") => Ok(false),
        Some("1") | Some("true") => Ok(true),
        Some(v) => Err(ApiError(
            StatusCode::BAD_REQUEST,
            format!("invalid value for {k}: {v:?} (true or false)"),
        )),
    }
}

/// `GET /berth/v1/diagnose?from=A&to=B[&probe=1][&format=text]`: the report as JSON, or as
/// the CLI's text.
pub async fn diagnose(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let need = |k: &str| {
        q.get(k).filter(|v| !v.is_empty()).cloned().ok_or_else(|| {
            ApiError(
                StatusCode::BAD_REQUEST,
                format!("missing query parameter {k:?}"),
            )
        })
    };
    let (from, to) = (need("from")?, need("to")?);
    let probe = flag(&q, "probe")?;
    let r = s.engine.diagnose(&from, &to, probe).await?;
    match q.get("format").map(String::as_str) {
        Some("text") => Ok(text(r.text())),
        None | Some("") | Some("json") => Ok(json(StatusCode::OK, &r)),
        Some(f) => Err(bad_format(f)),
    }
}

/// `GET /berth/v1/graph?format=json|text|dot`.
pub async fn graph(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let g = s.engine.graph();
    match q.get("format").map(String::as_str) {
        None | Some("") | Some("json") => Ok(json(StatusCode::OK, &g)),
        Some("text") => Ok(text(g.text())),
        Some("dot") => Ok(text(g.dot())),
        Some(f) => Err(bad_format(f)),
    }
}

fn bad_format(f: &str) -> ApiError {
    ApiError(
        StatusCode::BAD_REQUEST,
        format!("invalid format {f:?}: json, text or dot"),
    )
}

fn text(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

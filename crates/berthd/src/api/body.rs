//! Request bodies and query strings with Docker's checks and messages.

use super::ApiError;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// A JSON body: if present its Content-Type must be JSON; an empty one is Docker's EOF error.
pub fn json_body<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, ApiError> {
    if body.is_empty() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "got EOF while reading request body".into(),
        ));
    }
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("");
        if !ct.starts_with("application/json") {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("Content-Type specified ({ct}) must be 'application/json'"),
            ));
        }
    }
    serde_json::from_slice(body).map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))
}

pub fn filters(
    q: &std::collections::HashMap<String, String>,
) -> Result<berth_api::Filters, ApiError> {
    match q.get("filters") {
        None => Ok(Default::default()),
        Some(raw) => berth_api::parse_filters(raw)
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e)),
    }
}

/// Query parameters as the handlers read them.
pub type Q = axum::extract::Query<std::collections::HashMap<String, String>>;

/// Go's `httputils.BoolValue`: false only for "", 0, no, false, none (any case).
pub fn flag(q: &std::collections::HashMap<String, String>, k: &str) -> bool {
    q.get(k).is_some_and(|v| {
        !["", "0", "no", "false", "none"].contains(&v.trim().to_ascii_lowercase().as_str())
    })
}

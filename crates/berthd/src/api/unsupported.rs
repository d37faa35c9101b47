//! What berth leaves out on purpose (issue 15): image build, commit, diff, registry push and
//! search, managed plugins. Each is answered with Docker's status for an unknown object first
//! (a client that checks existence sees Docker's 404 and wording), then `501 Not Implemented`
//! with a message that says what to do instead, never a bare "page not found".

use super::body::Q;
use super::{ApiError, Shared};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;

fn not_implemented(what: &str) -> ApiError {
    ApiError(StatusCode::NOT_IMPLEMENTED, what.to_string())
}

const NO_BUILD: &str = "berth does not build images: build them with Docker or buildah, `docker save` them and `berth load` the archive (or `berth import` a filesystem tarball)";
const NO_REGISTRY: &str = "berth reaches no registry";

/// `POST /build`, `POST /build/prune`, `POST /session`
pub async fn build() -> ApiError {
    not_implemented(NO_BUILD)
}

/// `POST /commit?container=`
pub async fn commit(State(s): State<Shared>, Query(q): Q) -> Result<(), ApiError> {
    let id = q.get("container").cloned().unwrap_or_default();
    s.engine.find(&id)?;
    Err(not_implemented(&format!(
        "berth does not commit containers to images (docker commit): {NO_BUILD}"
    )))
}

/// `GET /containers/{id}/changes`
pub async fn changes(State(s): State<Shared>, Path(id): Path<String>) -> Result<(), ApiError> {
    s.engine.find(&id)?;
    Err(not_implemented(
        "berth does not report a container's filesystem changes (docker diff)",
    ))
}

/// `POST /images/{name}/push`
pub fn push(s: &Shared, name: &str) -> ApiError {
    if s.engine.images.resolve(name).is_err() {
        return ApiError(
            StatusCode::NOT_FOUND,
            format!("An image does not exist locally with the tag: {name}"),
        );
    }
    not_implemented(&format!(
        "{NO_REGISTRY}: {name} cannot be pushed; `berth save` it and load it where it is needed"
    ))
}

/// `GET /images/search`, `GET /distribution/{name}/json`
pub async fn registry() -> ApiError {
    not_implemented(&format!(
        "{NO_REGISTRY}: image search and registry lookups are not available"
    ))
}

/// `GET /plugins`: berth installs no managed plugins (legacy plugins found through
/// `--plugins-dir` are listed by `GET /info` under `Plugins`).
pub async fn plugins_list() -> axum::response::Response {
    super::json(StatusCode::OK, &serde_json::json!([]))
}

/// `/plugins/{name}/...` of a managed plugin: none exists.
pub async fn plugin(Path(rest): Path<String>) -> ApiError {
    let name = rest.split('/').next().unwrap_or_default();
    match name {
        "pull" | "privileges" | "create" => not_implemented(
            "berth does not install managed plugins: run the plugin yourself and let berthd find its socket (--plugins-dir)",
        ),
        _ => ApiError(
            StatusCode::NOT_FOUND,
            format!("plugin \"{name}\" not found"),
        ),
    }
}

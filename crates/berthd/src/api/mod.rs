//! The Engine API: routes, JSON in and out, errors to status codes. No logic lives here.

mod archive;
mod berth_ext;
mod body;
mod containers;
mod exec;
mod hijack;
mod images;
mod networks;
mod ops;
mod rename;
mod swarm;
mod system;
mod unsupported;
mod volumes;

use crate::engine::Engine;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use berth_api::{API_VERSION, MIN_API_VERSION};
use berth_net::{Controller, ErrorKind, NetError};
use std::sync::Arc;
use tower::Layer;

pub struct AppState {
    pub ctl: Arc<Controller>,
    pub engine: Arc<Engine>,
    pub data_root: String,
    pub instance: String,
    pub started: std::time::Instant,
}

impl AppState {
    pub fn new(engine: Arc<Engine>, args: &crate::config::Args, instance: &str) -> Self {
        AppState {
            ctl: engine.net.clone(),
            engine,
            data_root: args.data_root.display().to_string(),
            instance: instance.to_string(),
            started: std::time::Instant::now(),
        }
    }
}

pub type Shared = Arc<AppState>;

pub const SERVER: &str = concat!("Berth/", env!("CARGO_PKG_VERSION"), " (linux)");

/// An error reply: `{"message": ...}` with the status its kind maps to.
pub struct ApiError(pub StatusCode, pub String);

impl From<NetError> for ApiError {
    fn from(e: NetError) -> Self {
        let code = match e.kind {
            ErrorKind::InvalidParameter => StatusCode::BAD_REQUEST,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::NotImplemented => StatusCode::NOT_IMPLEMENTED,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError(code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json(self.0, &berth_api::ErrorResponse { message: self.1 })
    }
}

/// JSON the way Go's encoder writes it: a trailing newline.
pub fn json<T: serde::Serialize>(status: StatusCode, v: &T) -> Response {
    let mut body = serde_json::to_vec(v).expect("serializable");
    body.push(b'\n');
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// The API routes, wrapped so that the `/vX.Y` prefix is checked and stripped *before* routing
/// and Docker's headers are stamped on every reply.
pub async fn serve(
    listener: tokio::net::UnixListener,
    state: Shared,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // the version prefix is stripped before routing, so the middleware wraps the router
    let app = axum::middleware::from_fn(versioned).layer(routes(state));
    axum::serve(
        listener,
        axum::ServiceExt::<Request>::into_make_service(app),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Every route of the Engine API.
fn routes(state: Shared) -> Router {
    Router::new()
        .route("/_ping", get(system::ping).head(system::ping_head))
        .route("/version", get(system::version))
        .route("/info", get(system::info))
        .route("/networks", get(networks::list))
        .route("/networks/", get(networks::list))
        .route("/networks/create", post(networks::create))
        .route("/networks/prune", post(networks::prune))
        // a network's name may hold '/' (Docker's routes take `{id:.*}`)
        .route(
            "/networks/{*id}",
            get(networks::inspect)
                .delete(networks::remove)
                .post(networks::connect_or_disconnect),
        )
        .route("/containers/create", post(containers::create))
        .route("/containers/json", get(containers::list))
        .route("/containers/prune", post(containers::prune))
        .route("/containers/{id}/top", get(containers::top))
        .route("/containers/{id}/json", get(containers::inspect))
        .route("/containers/{id}/start", post(containers::start))
        .route("/containers/{id}/stop", post(containers::stop))
        .route("/containers/{id}/restart", post(containers::restart))
        .route("/containers/{id}/kill", post(containers::kill))
        .route("/containers/{id}/wait", post(containers::wait))
        .route("/containers/{id}/attach", post(containers::attach))
        .route("/containers/{id}/resize", post(containers::resize))
        .route("/containers/{id}/logs", get(containers::logs))
        .route("/containers/{id}/rename", post(rename::rename))
        .route("/containers/{id}/pause", post(ops::pause))
        .route("/containers/{id}/unpause", post(ops::unpause))
        .route("/containers/{id}/update", post(ops::update))
        .route("/containers/{id}/stats", get(ops::stats))
        .route("/containers/{id}/exec", post(exec::create))
        .route(
            "/containers/{id}/archive",
            get(archive::get)
                .head(archive::head)
                .put(archive::put)
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route("/volumes", get(volumes::list))
        .route("/volumes/", get(volumes::list))
        .route("/volumes/create", post(volumes::create))
        .route("/volumes/prune", post(volumes::prune))
        .route(
            "/volumes/{name}",
            get(volumes::inspect).delete(volumes::remove),
        )
        .route(
            "/containers/{id}",
            axum::routing::delete(containers::remove),
        )
        // a link's name, `parent/alias` (`DELETE ...?link=1`); other methods: no such route
        .route(
            "/containers/{id}/{alias}",
            axum::routing::delete(containers::remove_nested)
                .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "page not found".into()) }),
        )
        .route("/exec/{id}/start", post(exec::start))
        .route("/exec/{id}/resize", post(exec::resize))
        .route("/exec/{id}/json", get(exec::inspect))
        .route("/images/json", get(images::list))
        .route(
            "/images/create",
            post(images::create).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/images/load",
            post(images::load).layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .route(
            "/images/{*rest}",
            get(images::get).post(images::post).delete(images::remove),
        )
        .route("/images/search", get(unsupported::registry))
        .route("/distribution/{*rest}", get(unsupported::registry))
        .route("/build", post(unsupported::build))
        .route("/build/prune", post(unsupported::build))
        .route("/session", post(unsupported::build))
        .route("/commit", post(unsupported::commit))
        .route("/containers/{id}/changes", get(unsupported::changes))
        .route("/plugins", get(unsupported::plugins_list))
        .route("/plugins/{*rest}", any(unsupported::plugin))
        // berth's own extensions (documented in the README)
        .route("/berth/v1/diagnose", get(berth_ext::diagnose))
        .route("/berth/v1/graph", get(berth_ext::graph))
        .merge(swarm_routes())
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "page not found".into()) })
        .with_state(state)
}

/// Every swarm-mode route prefix, answered as a node outside any swarm (see `swarm`).
fn swarm_routes() -> Router<Shared> {
    let mut r = Router::new();
    for p in ["swarm", "nodes", "services", "tasks", "secrets", "configs"] {
        r = r
            .route(&format!("/{p}"), any(swarm::handle))
            .route(&format!("/{p}/{{*rest}}"), any(swarm::handle));
    }
    r
}

#[cfg(test)]
mod tests_props;

async fn versioned(mut req: Request, next: axum::middleware::Next) -> Response {
    let mut resp = match strip_version(&mut req) {
        Err(r) => *r,
        Ok(()) => next.run(req).await,
    };
    stamp(&mut resp);
    resp
}

fn version_check(v: &str) -> Result<(), Box<Response>> {
    let parse = |s: &str| -> (u32, u32) {
        let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        (it.next().unwrap_or(0), it.next().unwrap_or(0))
    };
    if parse(v) > parse(API_VERSION) {
        return Err(Box::new(
            ApiError(
                StatusCode::BAD_REQUEST,
                format!(
                    "client version {v} is too new. Maximum supported API version is {API_VERSION}"
                ),
            )
            .into_response(),
        ));
    }
    if parse(v) < parse(MIN_API_VERSION) {
        return Err(Box::new(
            (
                StatusCode::BAD_REQUEST,
                format!("client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"),
            )
                .into_response(),
        ));
    }
    Ok(())
}

fn strip_version(req: &mut Request) -> Result<(), Box<Response>> {
    let path = req.uri().path();
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok(());
    };
    let (ver, tail) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if ver.is_empty() || !ver.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok(());
    }
    version_check(ver)?;
    let pq = match req.uri().query() {
        Some(q) => format!("{tail}?{q}"),
        None => tail.to_string(),
    };
    // made of a valid URI's own parts: a failure would leave the request as it came
    let mut parts = req.uri().clone().into_parts();
    let Ok(pq) = pq.parse() else {
        return Ok(());
    };
    parts.path_and_query = Some(pq);
    if let Ok(uri) = axum::http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    Ok(())
}

fn stamp(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert("Api-Version", HeaderValue::from_static(API_VERSION));
    h.insert("Docker-Experimental", HeaderValue::from_static("false"));
    h.insert("Ostype", HeaderValue::from_static("linux"));
    h.insert(header::SERVER, HeaderValue::from_static(SERVER));
}

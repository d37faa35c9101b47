//! The swarm-mode routes (`/swarm`, `/nodes`, `/services`, `/tasks`, `/secrets`, `/configs`),
//! answered as a Docker daemon that is not in a swarm answers them: clients such as docker-py
//! call `POST /swarm/leave?force=1` in every tearDown and only tolerate Docker's 503.
//! berth never joins a swarm, so `init` and `join` are refused with the same status.

use super::ApiError;
use axum::extract::Request;
use axum::http::{Method, StatusCode};

/// moby daemon/cluster/errors.go `errNoSwarm`: leaving a swarm never joined.
pub const NO_SWARM: &str = "This node is not part of a swarm";
/// moby daemon/cluster `errNoManager` for a node with no swarm at all.
pub const NO_MANAGER: &str = "This node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again.";
/// Not Docker's (Docker would form a swarm): berth has no swarm mode.
pub const UNSUPPORTED: &str =
    "berth does not support swarm mode: this node cannot initialize or join a swarm";

/// The reply to one swarm route, or `None` for a path moby does not route (404 page not found).
pub fn reply(method: &Method, path: &str) -> Option<(StatusCode, &'static str)> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    let known = match (segs[0], &segs[1..]) {
        ("swarm", []) => method == Method::GET,
        ("swarm", ["leave"]) => return (method == Method::POST).then_some((unavailable, NO_SWARM)),
        ("swarm", ["init" | "join"]) => {
            return (method == Method::POST).then_some((unavailable, UNSUPPORTED))
        }
        ("swarm", ["unlockkey"]) => method == Method::GET,
        ("swarm", ["update" | "unlock"]) => method == Method::POST,
        ("nodes" | "services" | "tasks" | "secrets" | "configs", []) => method == Method::GET,
        ("services" | "secrets" | "configs", ["create"]) => method == Method::POST,
        ("services" | "tasks", [_, "logs"]) => method == Method::GET,
        ("nodes" | "services" | "secrets" | "configs", [_, "update"]) => method == Method::POST,
        ("nodes" | "services" | "tasks" | "secrets" | "configs", [_]) => {
            method == Method::GET || (method == Method::DELETE && segs[0] != "tasks")
        }
        _ => false,
    };
    known.then_some((unavailable, NO_MANAGER))
}

/// Handler for every swarm route prefix.
pub async fn handle(req: Request) -> ApiError {
    match reply(req.method(), req.uri().path()) {
        Some((code, msg)) => ApiError(code, msg.into()),
        None => ApiError(StatusCode::NOT_FOUND, "page not found".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leave_is_no_swarm_and_the_rest_no_manager() {
        let r = |m: Method, p: &str| reply(&m, p).map(|(c, t)| (c.as_u16(), t));
        assert_eq!(r(Method::POST, "/swarm/leave"), Some((503, NO_SWARM)));
        assert_eq!(r(Method::GET, "/swarm"), Some((503, NO_MANAGER)));
        assert_eq!(r(Method::POST, "/swarm/init"), Some((503, UNSUPPORTED)));
        for p in [
            "/nodes",
            "/services",
            "/tasks",
            "/secrets",
            "/configs",
            "/tasks/x/logs",
        ] {
            assert_eq!(r(Method::GET, p), Some((503, NO_MANAGER)), "{p}");
        }
        assert_eq!(r(Method::POST, "/secrets/create"), Some((503, NO_MANAGER)));
        assert_eq!(r(Method::DELETE, "/nodes/abc"), Some((503, NO_MANAGER)));
        // what moby does not route stays a 404
        assert_eq!(r(Method::DELETE, "/tasks/abc"), None);
        assert_eq!(r(Method::GET, "/swarm/leave"), None);
        assert_eq!(r(Method::GET, "/nodes/a/b/c"), None);
    }
}

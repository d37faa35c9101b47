//! The CLI's only way to the daemon: HTTP/1.1 over the unix socket, Engine API v1.41.

use anyhow::{anyhow, Context};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::path::PathBuf;

pub struct Client {
    socket: PathBuf,
    display: String,
}

/// An error the daemon answered with; printed as docker prints it.
#[derive(Debug)]
pub struct DaemonError {
    pub status: StatusCode,
    pub message: String,
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Error response from daemon: {}", self.message)
    }
}

impl std::error::Error for DaemonError {}

impl Client {
    /// `host` is `unix://PATH` (from -H, BERTH_HOST or DOCKER_HOST).
    pub fn new(host: &str) -> anyhow::Result<Client> {
        let path = host
            .strip_prefix("unix://")
            .ok_or_else(|| anyhow!("unsupported host {host:?}: berth speaks to unix://PATH"))?;
        Ok(Client {
            socket: PathBuf::from(path),
            display: host.to_string(),
        })
    }

    /// The daemon's socket, for connections that leave HTTP (attach, exec: see `hijack`).
    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// The host as the user gave it, for error messages.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Sends one request; a non-2xx reply becomes a `DaemonError`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let bytes = json(body)?;
        self.send(method, path, bytes).await
    }

    /// Sends a request with a body of any type (a tar for `import`/`load`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<(StatusCode, Bytes)> {
        let resp = self.request(method, path, body).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            return Err(DaemonError::from_reply(status, &body).into());
        }
        Ok((status, body))
    }

    /// A HEAD request's headers (`cp` reads the path stat from one).
    pub async fn head(&self, path: &str) -> anyhow::Result<hyper::HeaderMap> {
        let resp = self.request(Method::HEAD, path, None).await?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await?.to_bytes();
        if !status.is_success() {
            return Err(DaemonError::from_reply(status, &body).into());
        }
        Ok(headers)
    }

    /// One request on a fresh connection (as the docker CLI does per invocation); the reply
    /// as soon as its head is in.
    async fn request(
        &self,
        method: Method,
        path: &str,
        body: Option<(&str, Bytes)>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .with_context(|| {
                format!(
                    "Cannot connect to the berth daemon at {}. Is the berth daemon running?",
                    self.display
                )
            })?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(format!("/v{}{path}", berth_api::API_VERSION))
            .header("Host", "berth")
            .header(
                "User-Agent",
                concat!("berth-cli/", env!("CARGO_PKG_VERSION")),
            );
        let bytes = match body {
            Some((ctype, b)) => {
                req = req.header("Content-Type", ctype);
                b
            }
            None => Bytes::new(),
        };
        Ok(sender.send_request(req.body(Full::new(bytes))?).await?)
    }

    pub async fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let (_, body) = self.call(Method::GET, path, None).await?;
        Ok(serde_json::from_slice(&body)?)
    }
}

fn json(body: Option<&Value>) -> anyhow::Result<Option<(&'static str, Bytes)>> {
    Ok(match body {
        Some(v) => Some(("application/json", Bytes::from(serde_json::to_vec(v)?))),
        None => None,
    })
}

/// Percent-encodes a query value.
pub fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// Streaming replies (wait, logs -f) and error bodies read outside hyper (hijacked connections).
impl Client {
    /// Sends one request and returns as soon as the reply's head is in, leaving the body to be
    /// read later. `docker run` depends on this: the wait request must be registered with the
    /// daemon (its headers received) before the container is started.
    pub async fn open(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> anyhow::Result<hyper::Response<hyper::body::Incoming>> {
        let bytes = json(body)?;
        let resp = self.request(method, path, bytes).await?;
        let status = resp.status();
        if !status.is_success() && status != StatusCode::NOT_MODIFIED {
            let body = resp.into_body().collect().await?.to_bytes();
            return Err(DaemonError::from_reply(status, &body).into());
        }
        Ok(resp)
    }
}

impl DaemonError {
    /// The error a reply carries: `{"message": ...}`, or the raw text of older daemons.
    pub fn from_reply(status: StatusCode, body: &[u8]) -> DaemonError {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("message")?.as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string());
        DaemonError { status, message }
    }
}

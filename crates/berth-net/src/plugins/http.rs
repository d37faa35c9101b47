//! One plugin call on the wire: `POST /<Interface>.<Method>` over a unix socket, TCP or TLS,
//! on a fresh connection, with Docker's headers, a dial timeout, an optional call timeout and
//! a bounded reply.

use super::discovery::{scheme, Spec};
use super::error::{errno_text, PluginError};
use super::tls;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::Request;
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};

/// Docker's Accept header (the code's, not the docs' `v1+json`).
pub const ACCEPT: &str = "application/vnd.docker.plugins.v1.2+json";
/// The Host header for unix sockets (moby v25+; a socket path is no valid Host).
pub const UNIX_HOST: &str = "plugin.moby.localhost";

/// Limits of one call.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// go-connections' dial timeout (32 s).
    pub dial: Duration,
    /// Docker has none; berth bounds a call so a hung plugin fails the operation.
    pub call: Option<Duration>,
    /// Largest reply body accepted.
    pub max_reply: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            dial: Duration::from_secs(32),
            call: Some(Duration::from_secs(120)),
            max_reply: 1 << 20,
        }
    }
}

enum Dial {
    Unix(PathBuf),
    Tcp {
        hostport: String,
        tls: Option<(
            Arc<rustls::ClientConfig>,
            rustls_pki_types::ServerName<'static>,
        )>,
    },
}

/// How to reach one plugin.
pub struct Transport {
    dial: Dial,
    /// `http://%2Frun%2Fdocker%2Fplugins%2Fx.sock` or `http://host:port`: the URL of error texts.
    url_base: String,
    host: String,
    limits: Limits,
}

/// A failed exchange: `retry` when the plugin could not be reached or dropped the
/// connection before answering (Docker retries those), not on a timeout or a bad body.
pub struct Failure {
    pub error: PluginError,
    pub retry: bool,
}

/// Go's `url.PathEscape`-style escaping of a socket path used as the URL host.
fn escape_host(path: &str) -> String {
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Transport {
    pub fn new(spec: &Spec, limits: Limits) -> Result<Transport, PluginError> {
        let scheme =
            scheme(&spec.addr).ok_or_else(|| PluginError::Lookup("Unknown protocol".into()))?;
        let rest = &spec.addr[scheme.len() + 3..];
        if scheme == "unix" {
            let path = rest.to_string();
            return Ok(Transport {
                url_base: format!("http://{}", escape_host(&path)),
                dial: Dial::Unix(PathBuf::from(path)),
                host: UNIX_HOST.to_string(),
                limits,
            });
        }
        // tcp, http, https (anything else is plain HTTP over TCP, as in Docker)
        let hostport = rest.split('/').next().unwrap_or_default().to_string();
        if hostport.is_empty() {
            return Err(PluginError::Lookup(format!(
                "invalid plugin address {}",
                spec.addr
            )));
        }
        let tls = if scheme == "https" {
            let files = spec.tls.clone().unwrap_or_default();
            let host = hostport
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or(&hostport)
                .trim_matches(['[', ']']);
            Some(tls::client(&files, spec.tls.is_none(), host)?)
        } else {
            None
        };
        let url_scheme = if tls.is_some() { "https" } else { "http" };
        Ok(Transport {
            url_base: format!("{url_scheme}://{hostport}"),
            host: hostport.clone(),
            dial: Dial::Tcp { hostport, tls },
            limits,
        })
    }

    pub fn url(&self, method: &str) -> String {
        format!("{}/{method}", self.url_base)
    }

    /// Sends one call; the reply's status and body.
    pub async fn post(&self, method: &str, body: Bytes) -> Result<(u16, Bytes), Failure> {
        let url = self.url(method);
        let exchange = self.exchange(method, body, &url);
        match self.limits.call {
            Some(t) => match tokio::time::timeout(t, exchange).await {
                Ok(r) => r,
                Err(_) => Err(Failure {
                    error: PluginError::Timeout { url },
                    retry: false,
                }),
            },
            None => exchange.await,
        }
    }

    async fn exchange(
        &self,
        method: &str,
        body: Bytes,
        url: &str,
    ) -> Result<(u16, Bytes), Failure> {
        let transport = |msg: String| Failure {
            error: PluginError::Transport {
                url: url.to_string(),
                msg,
            },
            retry: true,
        };
        let dial_timeout = |what: String| transport(format!("{what}: i/o timeout"));
        let req = Request::post(format!("/{method}"))
            .header("Host", &self.host)
            .header("Accept", ACCEPT)
            .header("User-Agent", "Go-http-client/1.1")
            // Go sends it for every POST, 0 for the argument-less calls
            .header("Content-Length", body.len())
            .body(Full::new(body))
            .map_err(|e| transport(e.to_string()))?;
        let resp = match &self.dial {
            Dial::Unix(path) => {
                let what = format!("dial unix {}", path.display());
                let s =
                    tokio::time::timeout(self.limits.dial, tokio::net::UnixStream::connect(path))
                        .await
                        .map_err(|_| dial_timeout(what.clone()))?
                        .map_err(|e| transport(format!("{what}: connect: {}", errno_text(&e))))?;
                send(s, req).await
            }
            Dial::Tcp { hostport, tls } => {
                let what = format!("dial tcp {hostport}");
                let s = tokio::time::timeout(
                    self.limits.dial,
                    tokio::net::TcpStream::connect(hostport.as_str()),
                )
                .await
                .map_err(|_| dial_timeout(what.clone()))?
                .map_err(|e| transport(format!("{what}: connect: {}", errno_text(&e))))?;
                let _ = s.set_nodelay(true);
                match tls {
                    None => send(s, req).await,
                    Some((cfg, name)) => {
                        let c = tokio_rustls::TlsConnector::from(cfg.clone());
                        let s = c
                            .connect(name.clone(), s)
                            .await
                            .map_err(|e| transport(format!("remote error: tls: {e}")))?;
                        send(s, req).await
                    }
                }
            }
        };
        let (resp, conn) = resp.map_err(|e| transport(hyper_text(&e)))?;
        let status = resp.status().as_u16();
        let too_large = || Failure {
            error: PluginError::Reply {
                method: method.to_string(),
                msg: format!("reply larger than {} bytes", self.limits.max_reply),
            },
            retry: false,
        };
        let declared = resp
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.limits.max_reply as u64) {
            return Err(too_large());
        }
        let body = Limited::new(resp.into_body(), self.limits.max_reply)
            .collect()
            .await
            .map_err(|e| {
                if e.is::<http_body_util::LengthLimitError>() {
                    return too_large();
                }
                Failure {
                    error: PluginError::Reply {
                        method: method.to_string(),
                        msg: format!("reading the reply: {e}"),
                    },
                    retry: false,
                }
            })?
            .to_bytes();
        drop(conn);
        Ok((status, body))
    }
}

/// Go's wording for the common failures after connecting.
fn hyper_text(e: &hyper::Error) -> String {
    if e.is_incomplete_message() {
        "EOF".into()
    } else if e.is_parse() {
        format!("malformed HTTP response: {e}")
    } else {
        e.to_string()
    }
}

/// The HTTP/1 exchange on a connected stream; the connection task lives as long as the guard.
async fn send<S>(
    stream: S,
    req: Request<Full<Bytes>>,
) -> Result<(hyper::Response<hyper::body::Incoming>, AbortOnDrop), hyper::Error>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake(TokioIo::new(stream))
        .await?;
    let task = tokio::spawn(async move {
        let _ = conn.await;
    });
    let guard = AbortOnDrop(task);
    let resp = sender.send_request(req).await?;
    Ok((resp, guard))
}

/// Ends the connection task when the call is over (or abandoned on a timeout).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

//! Hijacked connections (attach, exec): after a `101 UPGRADED` the HTTP connection becomes a
//! raw byte stream both ways, framed with Docker's stdcopy headers unless there is a TTY.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use hyper_util::rt::TokioIo;
use std::future::Future;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};

pub type Io = TokioIo<hyper::upgrade::Upgraded>;
pub type Reader = ReadHalf<Io>;
pub type Writer = WriteHalf<Io>;

/// Whether the client asked to upgrade (the docker CLI always does).
pub fn wants_upgrade(req: &Request) -> bool {
    req.headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("tcp"))
}

/// Answers `101` and runs `session` on the upgraded connection once hyper hands it over.
pub fn upgrade<F, Fut>(mut req: Request, session: F) -> Response
where
    F: FnOnce(Reader, Writer) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(up) => {
                let (rd, wr) = tokio::io::split(TokioIo::new(up));
                session(rd, wr).await;
            }
            Err(e) => tracing::debug!("upgrade failed: {e}"),
        }
    });
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.docker.raw-stream"),
    );
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("tcp"));
    resp
}

/// Writes one piece of output: framed (no TTY) or raw.
pub async fn write_out(w: &mut Writer, tty: bool, stream: u8, data: &[u8]) -> bool {
    let r = if tty {
        w.write_all(data).await
    } else {
        w.write_all(&crate::engine::streams::frame(stream, data))
            .await
    };
    r.is_ok() && w.flush().await.is_ok()
}

/// After the output's end of file, the client's unread input is read and dropped until it
/// closes (or a grace period passes): closing a socket that still holds unread bytes makes the
/// client's next read fail with "connection reset by peer" instead of ending cleanly, e.g.
/// `head -c 1M /dev/zero | berth exec -i c true`. `input`: the task reading the client's
/// input, which must keep reading (and dropping) once the process's input is gone.
pub async fn drain_then_close(input: tokio::task::JoinHandle<()>) {
    let abort = input.abort_handle();
    if tokio::time::timeout(std::time::Duration::from_secs(2), input)
        .await
        .is_err()
    {
        abort.abort();
    }
}

//! `/containers/{id}/archive`: `docker cp` in (PUT) and out (GET), and HEAD for the stat.

use super::body::{flag, Q};
use super::{ApiError, Shared};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use berth_runtime::container::archive::PathStat;
use berth_runtime::container::archive_put::PutOptions;

const STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn stat_header(st: &PathStat) -> HeaderValue {
    let j = serde_json::to_vec(st).expect("serializable");
    let b = base64::engine::general_purpose::STANDARD.encode(j);
    HeaderValue::from_str(&b).expect("base64 is a valid header value")
}

fn path_of(q: &std::collections::HashMap<String, String>) -> String {
    q.get("path").cloned().unwrap_or_default()
}

pub async fn head(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let path = path_of(&q);
    let t = s.engine.archive_target(&id, &path).await?;
    let st = s.engine.archive_stat(t, path).await?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut().insert(STAT_HEADER, stat_header(&st));
    Ok(r)
}

/// Writes into a channel the response body reads from.
struct ChannelWriter(tokio::sync::mpsc::Sender<std::io::Result<Bytes>>);

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::BrokenPipe))?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub async fn get(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let path = path_of(&q);
    let t = s.engine.archive_target(&id, &path).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(16);
    // the tar is written in 64 KiB pieces, not one channel message per small write
    let out = std::io::BufWriter::with_capacity(64 * 1024, ChannelWriter(tx));
    let (st, _job) = s.engine.archive_get(t, path, out).await?;
    let body = Body::from_stream(tokio_stream_of(rx));
    let mut r = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-tar")],
        body,
    )
        .into_response();
    r.headers_mut().insert(STAT_HEADER, stat_header(&st));
    Ok(r)
}

fn tokio_stream_of(
    mut rx: tokio::sync::mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures::Stream<Item = std::io::Result<Bytes>> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

pub async fn put(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
    body: Body,
) -> Result<Response, ApiError> {
    let path = path_of(&q);
    let t = s.engine.archive_target(&id, &path).await?;
    let mut opts = PutOptions {
        no_overwrite_dir_non_dir: flag(&q, "noOverwriteDirNonDir"),
        owner: None,
    };
    if flag(&q, "copyUIDGID") {
        // the container's user, numeric (berth does not read the image's passwd file)
        let user = s.engine.find(&id)?.snapshot().config.user;
        let (u, g) = user.split_once(':').unwrap_or((&user, ""));
        opts.owner = Some((u.parse().unwrap_or(0), g.parse().unwrap_or(0)));
    }
    let e = s.engine.clone();
    super::images::feed(body, move |r| e.archive_put(&t, &path, r, &opts)).await?;
    Ok(StatusCode::OK.into_response())
}

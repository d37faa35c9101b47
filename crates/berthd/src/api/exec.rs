//! /containers/{id}/exec and /exec routes.

use super::body::json_body;
use super::hijack::{self, write_out};
use super::{json, ApiError, Shared};
use crate::engine::streams::{DetachMatcher, STDERR, STDOUT};
use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::{ExecCreateRequest, ExecStartRequest};
use berth_runtime::container::ExecProcess;
use serde_json::json;
use std::os::fd::OwnedFd;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub async fn create(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ExecCreateRequest = json_body(&headers, &body)?;
    let id = s.engine.exec_create(&id, req)?;
    Ok(json(StatusCode::CREATED, &json!({ "Id": id })))
}

pub async fn inspect(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(json(StatusCode::OK, &s.engine.exec_get(&id)?.inspect()))
}

pub async fn resize(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.engine.exec_get(&id)?;
    Ok(StatusCode::OK)
}

pub async fn start(
    State(s): State<Shared>,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20)
        .await
        .map_err(|e| ApiError(StatusCode::BAD_REQUEST, e.to_string()))?;
    let start: ExecStartRequest = if bytes.is_empty() {
        ExecStartRequest::default()
    } else {
        json_body(&parts.headers, &bytes)?
    };
    let e = s.engine.exec_get(&id)?;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    if !start.detach && !hijack::wants_upgrade(&req) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "exec needs a connection upgrade (Upgrade: tcp)".into(),
        ));
    }
    if start.detach {
        return s
            .engine
            .exec_start(&e, true)
            .await
            .map(|_| StatusCode::OK.into_response())
            .map_err(Into::into);
    }
    // Refusals are HTTP answers; then, in Docker's order, the connection is taken over first
    // and the process started after: its first output never travels with the 101 response,
    // which a client reading that response through a buffer (docker-py) would lose.
    s.engine.exec_startable(&e)?;
    let engine = s.engine.clone();
    // Docker frames the stream unless *start* asked for a TTY: an exec created with a
    // terminal and started without one sends its (terminal) output as stdout frames.
    let raw = start.tty;
    Ok(hijack::upgrade(req, move |rd, mut wr| async move {
        let mut input = None;
        match engine.exec_start(&e, false).await {
            Ok(p) => {
                // Detach keys apply to a terminal's input only, as in Docker.
                let keys = (e.req.tty && e.req.attach_stdin)
                    .then(|| berth_api::keys::parse_detach_keys(&e.req.detach_keys).ok())
                    .flatten();
                let (w, detached, i) = session(p, rd, wr, raw, keys).await;
                (wr, input) = (w, i);
                if detached {
                    let _ = write_out(&mut wr, raw, STDOUT, DETACHED.as_bytes()).await;
                } else {
                    // The CLI reads the exit code right after the stream ends: it must be
                    // known by then.
                    e.wait().await;
                }
            }
            // As Docker: the error goes into the stream (as stdout); the CLI then reads the
            // exit code (126/127) from the exec's inspect.
            Err(err) => {
                let text = format!("{}\r\n", err.message);
                write_out(&mut wr, raw, STDOUT, text.as_bytes()).await;
            }
        }
        let _ = wr.shutdown().await;
        if let Some(h) = input {
            hijack::drain_then_close(h).await;
        }
    }))
}

/// What Docker writes into the stream when the user detaches from an exec.
const DETACHED: &str = "exec attach failed: error on attach stdin: read escape sequence\r\n";

fn reader(fd: OwnedFd) -> Option<tokio::fs::File> {
    Some(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

/// Pumps the process's output to the client and the client's input to the process, until
/// the output ends (the process ended) or the user typed the detach keys (`keys`: a terminal's
/// input only). Returns the writer, whether the user detached, and the input pump, which keeps
/// reading (and, once the process's input is gone, dropping) what the client sends until it
/// closes. A detached process keeps running, its output read and dropped so that it never
/// blocks on a full terminal.
async fn session(
    p: ExecProcess,
    mut rd: hijack::Reader,
    mut wr: hijack::Writer,
    raw: bool,
    keys: Option<Vec<u8>>,
) -> (hijack::Writer, bool, Option<tokio::task::JoinHandle<()>>) {
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    // Input: the client's bytes to the process; its half-close becomes end-of-file there.
    let stdin = match (&p.console, p.stdin) {
        (Some(m), _) => m.try_clone().ok(),
        (None, s) => s,
    };
    let input = stdin.map(|fd| {
        tokio::spawn(async move {
            let mut w = Some(tokio::fs::File::from_std(std::fs::File::from(fd)));
            let mut matcher = keys.map(DetachMatcher::new);
            let mut buf = vec![0u8; 8192];
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (pass, detached) = match matcher.as_mut() {
                    Some(m) => m.feed(&buf[..n]),
                    None => (buf[..n].to_vec(), false),
                };
                if let (false, Some(f)) = (pass.is_empty(), w.as_mut()) {
                    if f.write_all(&pass).await.is_err() || f.flush().await.is_err() {
                        // the process stopped reading: the rest is dropped, not refused
                        w = None;
                    }
                }
                if detached {
                    let _ = detach_tx.send(());
                    return;
                }
            }
        })
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let outs = [(STDOUT, p.console.or(p.stdout)), (STDERR, p.stderr)];
    for (st, fd) in outs {
        let Some(mut f) = fd.and_then(reader) else {
            continue;
        };
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match f.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        // After a detach nobody listens: keep reading until the end anyway.
                        let _ = tx.send((st, buf[..n].to_vec())).await;
                    }
                }
            }
        });
    }
    drop(tx);
    let mut detached = false;
    // whether the input may still detach (a finished oneshot must not be polled again)
    let mut input_open = true;
    loop {
        tokio::select! {
            // output first: what the process wrote before the keys still goes out
            biased;
            got = rx.recv() => match got {
                Some((st, data)) => {
                    if !write_out(&mut wr, raw, st, &data).await {
                        break;
                    }
                }
                None => break,
            },
            r = &mut detach_rx, if input_open => {
                if r.is_ok() {
                    detached = true;
                    break;
                }
                // no input, or it ended without the keys: the output goes on
                input_open = false;
            }
        }
    }
    // the pumps live on until the process ends (detached, or the client went away): their
    // output goes nowhere, and the process never blocks on a full pipe or terminal
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    (wr, detached, input)
}

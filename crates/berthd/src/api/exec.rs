//! /containers/{id}/exec and /exec routes.

use super::body::json_body;
use super::hijack::{self, write_out};
use super::{json, ApiError, Shared};
use crate::engine::streams::{STDERR, STDOUT};
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
            .exec_start(&e, start.tty, true)
            .await
            .map(|_| StatusCode::OK.into_response())
            .map_err(Into::into);
    }
    // Refusals are HTTP answers; then, in Docker's order, the connection is taken over first
    // and the process started after: its first output never travels with the 101 response,
    // which a client reading that response through a buffer (docker-py) would lose.
    s.engine.exec_startable(&e)?;
    let engine = s.engine.clone();
    let tty = start.tty || e.req.tty;
    Ok(hijack::upgrade(req, move |rd, mut wr| async move {
        match engine.exec_start(&e, start.tty, false).await {
            Ok(p) => {
                let input;
                (wr, input) = session(p, rd, wr, tty).await;
                // The CLI reads the exit code right after the stream ends: it must be known by then.
                e.wait().await;
                let _ = wr.shutdown().await;
                if let Some(h) = input {
                    hijack::drain_then_close(h).await;
                }
                return;
            }
            // As Docker: the error goes into the stream (as stdout); the CLI then reads the
            // exit code (126/127) from the exec's inspect.
            Err(err) => {
                let text = format!("{}\r\n", err.message);
                write_out(&mut wr, tty, STDOUT, text.as_bytes()).await;
            }
        }
        let _ = wr.shutdown().await;
    }))
}

fn reader(fd: OwnedFd) -> Option<tokio::fs::File> {
    Some(tokio::fs::File::from_std(std::fs::File::from(fd)))
}

/// Pumps the process's output to the client until it ends; returns the writer and the input
/// pump, which keeps reading (and, once the process's input is gone, dropping) what the
/// client sends until it closes.
async fn session(
    p: ExecProcess,
    mut rd: hijack::Reader,
    mut wr: hijack::Writer,
    tty: bool,
) -> (hijack::Writer, Option<tokio::task::JoinHandle<()>>) {
    // Input: the client's bytes to the process; its half-close becomes end-of-file there.
    let stdin = match (&p.console, p.stdin) {
        (Some(m), _) => m.try_clone().ok(),
        (None, s) => s,
    };
    let input = stdin.map(|fd| {
        tokio::spawn(async move {
            let mut w = Some(tokio::fs::File::from_std(std::fs::File::from(fd)));
            let mut buf = vec![0u8; 8192];
            loop {
                match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let Some(f) = w.as_mut() else { continue };
                        if f.write_all(&buf[..n]).await.is_err() || f.flush().await.is_err() {
                            // the process stopped reading: the rest is dropped, not refused
                            w = None;
                        }
                    }
                }
            }
        })
    });
    let (tx, mut rx) = tokio::sync::mpsc::channel::<(u8, Vec<u8>)>(16);
    let mut pumps = Vec::new();
    let outs = [(STDOUT, p.console.or(p.stdout)), (STDERR, p.stderr)];
    for (st, fd) in outs {
        let Some(mut f) = fd.and_then(reader) else {
            continue;
        };
        let tx = tx.clone();
        pumps.push(tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match f.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if tx.send((st, buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                }
            }
        }));
    }
    drop(tx);
    while let Some((st, data)) = rx.recv().await {
        if !write_out(&mut wr, tty, st, &data).await {
            break;
        }
    }
    (wr, input)
}

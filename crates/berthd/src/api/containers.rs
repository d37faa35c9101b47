//! /containers routes.

use super::body::{filters, flag, json_body, Q};
use super::hijack::{self, write_out};
use super::{json, ApiError, Shared};
use crate::engine::lifecycle::Started;
use crate::engine::streams::DetachMatcher;
use crate::engine::{Ctr, Engine};
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use berth_api::{ContainerCreateRequest, ContainerCreateResponse};
use serde_json::json;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub async fn create(
    State(s): State<Shared>,
    Query(q): Q,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: ContainerCreateRequest = json_body(&headers, &body)?;
    let (id, warnings) = s.engine.create(q.get("name").cloned(), req).await?;
    Ok(json(
        StatusCode::CREATED,
        &ContainerCreateResponse { id, warnings },
    ))
}

pub async fn list(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let f = filters(&q)?;
    let all = flag(&q, "all");
    let limit: Option<usize> = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .filter(|&l| l > 0);
    let mut out = Vec::new();
    for c in s.engine.all() {
        let sum = s.engine.summary(&c);
        // paused and restarting containers count as running (Docker's `IsRunning`)
        let up = matches!(sum.state.as_str(), "running" | "paused" | "restarting");
        if !all && !up && !f.contains_key("status") {
            continue;
        }
        if !crate::engine::filter::matches(&s.engine, &sum, &f)? {
            continue;
        }
        out.push(sum);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then(b.id.cmp(&a.id)));
    if let Some(l) = limit {
        out.truncate(l);
    }
    Ok(json(StatusCode::OK, &out))
}

pub async fn inspect(
    State(s): State<Shared>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let c = s.engine.find(&id)?;
    Ok(json(StatusCode::OK, &s.engine.inspect_container(&c)))
}

pub async fn start(State(s): State<Shared>, Path(id): Path<String>) -> Result<Response, ApiError> {
    match s.engine.start_container(&id).await? {
        Started::Now => Ok(no_content()),
        Started::AlreadyRunning => Ok(StatusCode::NOT_MODIFIED.into_response()),
    }
}

pub async fn stop(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let t = q.get("t").and_then(|t| t.parse().ok());
    if s.engine.stop_container(&id, t).await? {
        Ok(no_content())
    } else {
        Ok(StatusCode::NOT_MODIFIED.into_response())
    }
}

pub async fn restart(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let t = q.get("t").and_then(|t| t.parse().ok());
    s.engine.restart_container(&id, t).await?;
    Ok(no_content())
}

pub async fn kill(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let sig = q.get("signal").cloned().unwrap_or_default();
    s.engine.kill_container(&id, &sig).await?;
    Ok(no_content())
}

pub async fn remove(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    if flag(&q, "link") {
        s.engine.remove_link(&id).await?;
    } else {
        s.engine
            .remove_with_volumes(&id, flag(&q, "force"), flag(&q, "v"))
            .await?;
    }
    Ok(no_content())
}

/// `DELETE /containers/{parent}/{alias}`: a name with a '/', which only a link has.
pub async fn remove_nested(
    s: State<Shared>,
    Path((id, alias)): Path<(String, String)>,
    q: Q,
) -> Result<Response, ApiError> {
    remove(s, Path(format!("{id}/{alias}")), q).await
}

/// Headers go out at once, the body when the condition holds: `docker run` sends `wait`
/// before `start` and blocks until it sees the headers.
pub async fn wait(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let cond = q.get("condition").cloned().unwrap_or_default();
    let fut = s.engine.wait_container(&id, &cond)?;
    let body = futures::stream::once(async move {
        let code = fut.await;
        let mut b = serde_json::to_vec(&json!({"Error": null, "StatusCode": code})).unwrap();
        b.push(b'\n');
        Ok::<_, std::io::Error>(Bytes::from(b))
    });
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(body),
    )
        .into_response())
}

pub async fn resize(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<StatusCode, ApiError> {
    let c = s.engine.find(&id)?;
    let dim = |k: &str| -> Result<u16, ApiError> {
        q.get(k)
            .map(|v| v.parse::<u16>())
            .unwrap_or(Ok(0))
            .map_err(|e| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("strconv.Atoi: parsing {k}: {e}"),
                )
            })
    };
    Engine::resize(&c, dim("h")?, dim("w")?);
    Ok(StatusCode::OK)
}

pub async fn logs(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let c = s.engine.find(&id)?;
    let (out, err) = (flag(&q, "stdout"), flag(&q, "stderr"));
    if !out && !err {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Bad parameters: you must choose at least one stream".into(),
        ));
    }
    if c.snapshot().host_config.log_config.r#type == crate::engine::logconf::NONE {
        return Err(ApiError(
            StatusCode::NOT_IMPLEMENTED,
            "configured logging driver does not support reading".into(),
        ));
    }
    let o = crate::engine::streams::LogOptions {
        stdout: out,
        stderr: err,
        follow: flag(&q, "follow"),
        // "all", and anything not a count, is everything (as Docker)
        tail: q.get("tail").and_then(|t| t.parse::<usize>().ok()),
        since: timestamp(&q, "since")?,
        until: timestamp(&q, "until")?,
        timestamps: flag(&q, "timestamps"),
    };
    let tty = c.snapshot().config.tty;
    let rx = s.engine.logs(&c, o);
    let stream = futures::stream::unfold(rx, move |mut rx| async move {
        let (st, data) = rx.recv().await?;
        let bytes = if tty {
            data
        } else {
            crate::engine::streams::frame(st, &data)
        };
        Some((Ok::<_, std::io::Error>(Bytes::from(bytes)), rx))
    });
    // Docker 20.10 sends logs without a Content-Type.
    Ok((StatusCode::OK, Body::from_stream(stream)).into_response())
}

/// `since`/`until` of `logs`: absent or empty is no bound.
fn timestamp(
    q: &std::collections::HashMap<String, String>,
    k: &str,
) -> Result<Option<i64>, ApiError> {
    match q.get(k).map(String::as_str) {
        None | Some("") => Ok(None),
        Some(v) => Ok(Some(crate::engine::streams::parse_timestamp(v)?)),
    }
}

pub async fn attach(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
    req: Request,
) -> Result<Response, ApiError> {
    let c = s.engine.find(&id)?;
    let rec = c.snapshot();
    // A stopped container may be attached to: `docker start -a` attaches, then starts.
    if rec.state.status == crate::engine::record::Status::Removing {
        return Err(ApiError(
            StatusCode::CONFLICT,
            format!("container {} is marked for removal", rec.id),
        ));
    }
    let keys = crate::engine::streams::parse_detach_keys(
        q.get("detachKeys").map(String::as_str).unwrap_or(""),
    )?;
    let (want_in, want_out, want_err) = (flag(&q, "stdin"), flag(&q, "stdout"), flag(&q, "stderr"));
    // `logs=1`: what the container wrote so far comes first; `stream=0`: nothing more (no
    // live output, no input), and the connection ends after the logs. berth's clients have
    // always meant a stream when they left `stream` out, so only an explicit 0 turns it off.
    let live = q.get("stream").is_none_or(|_| flag(&q, "stream"));
    let rx = attach_streams(&s.engine, &c, flag(&q, "logs"), live, want_out, want_err);
    let want_in = want_in && live;
    let tty = rec.config.tty;
    if !hijack::wants_upgrade(&req) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "attach needs a connection upgrade (Upgrade: tcp)".into(),
        ));
    }
    let engine = s.engine.clone();
    let replay = flag(&q, "logs");
    Ok(hijack::upgrade(req, move |rd, wr| async move {
        let input = Input {
            engine,
            stdin: want_in,
            keys,
        };
        if replay {
            // The logs are there at once: written right behind the 101 they would reach a
            // client reading the response through a buffer (docker-py's http.client) in the
            // same read, and be lost to it. Docker is slow enough here not to show it.
            tokio::time::sleep(REPLAY_DELAY).await;
        }
        attach_session(c, input, rd, wr, rx, tty).await
    }))
}

/// How long an attach with `logs=1` leaves the client to read the 101 before the logs.
const REPLAY_DELAY: std::time::Duration = std::time::Duration::from_millis(50);

/// The output of an attach: the logs so far and/or what comes next, in that order.
fn attach_streams(
    engine: &Arc<Engine>,
    c: &Arc<Ctr>,
    logs: bool,
    live: bool,
    stdout: bool,
    stderr: bool,
) -> tokio::sync::mpsc::Receiver<(u8, Vec<u8>)> {
    // the live stream starts now, before the logs are read: nothing falls between them
    let mut live_rx = live.then(|| engine.attach_output(c, stdout, stderr));
    let mut logs_rx = logs.then(|| {
        let o = crate::engine::streams::LogOptions {
            stdout,
            stderr,
            ..Default::default()
        };
        engine.logs(c, o)
    });
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        for src in [logs_rx.as_mut(), live_rx.as_mut()].into_iter().flatten() {
            while let Some(item) = src.recv().await {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// The input side of an attach: whether it was asked for, and the detach keys.
struct Input {
    engine: Arc<Engine>,
    stdin: bool,
    keys: Vec<u8>,
}

async fn attach_session(
    c: Arc<Ctr>,
    Input {
        engine,
        stdin,
        keys,
    }: Input,
    mut rd: hijack::Reader,
    mut wr: hijack::Writer,
    mut rx: tokio::sync::mpsc::Receiver<(u8, Vec<u8>)>,
    tty: bool,
) {
    // Resolves Ok only on the detach keys; Err when input ended otherwise (output goes on).
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel::<()>();
    let mut input_open = true;
    let input = if stdin && c.snapshot().config.open_stdin {
        let c = c.clone();
        Some(tokio::spawn(async move {
            // `docker run -i` attaches before it starts the container: hold the input (the
            // connection buffers it) until the process has a stdin to write to.
            // Woken by the container's state changes (the start sets stdin, then bumps).
            let exits0 = c.exits();
            let mut changed = c.subscribe();
            while c.stdin.lock().unwrap().is_none() {
                if c.exits() > exits0 || c.removed.load(std::sync::atomic::Ordering::SeqCst) {
                    return;
                }
                if changed.changed().await.is_err() {
                    return;
                }
            }
            let mut m = DetachMatcher::new(if tty { keys } else { Vec::new() });
            let mut buf = vec![0u8; 8192];
            // false once the process's input is gone: the client's bytes are then dropped
            let mut open = true;
            loop {
                let n = match rd.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let (pass, detached) = m.feed(&buf[..n]);
                if open && !pass.is_empty() {
                    let c2 = c.clone();
                    open = tokio::task::spawn_blocking(move || Engine::write_stdin(&c2, &pass))
                        .await
                        .unwrap_or(false);
                    if !open {
                        engine.close_stdin(&c);
                    }
                }
                if detached {
                    let _ = detach_tx.send(());
                    return;
                }
            }
            if open {
                engine.close_stdin(&c);
            }
        }))
    } else {
        drop(detach_tx);
        input_open = false;
        None
    };
    loop {
        tokio::select! {
            item = rx.recv() => match item {
                Some((st, data)) => {
                    if !write_out(&mut wr, tty, st, &data).await {
                        break;
                    }
                }
                None => break,
            },
            r = &mut detach_rx, if input_open => {
                if r.is_ok() {
                    break;
                }
                input_open = false;
            }
        }
    }
    let _ = wr.shutdown().await;
    if let Some(h) = input {
        hijack::drain_then_close(h).await;
    }
}

/// `GET /containers/{id}/top?ps_args=`
pub async fn top(
    State(s): State<Shared>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Result<Response, ApiError> {
    let ps_args = q.get("ps_args").cloned().unwrap_or_default();
    Ok(json(StatusCode::OK, &s.engine.top(&id, &ps_args).await?))
}

/// `POST /containers/prune?filters=`
pub async fn prune(State(s): State<Shared>, Query(q): Q) -> Result<Response, ApiError> {
    let (deleted, space) = s.engine.prune_containers(&filters(&q)?).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({
            "ContainersDeleted": (!deleted.is_empty()).then_some(deleted),
            "SpaceReclaimed": space,
        }),
    ))
}

//! Pieces shared by the commands that attach to a container (`run`, `start -a`, `attach`,
//! `exec`): the attach request, the exit-code wait, signal forwarding, TTY size.

use super::path;
use crate::client::{query_escape, Client};
use crate::hijack::{self, term};
use anyhow::anyhow;
use http_body_util::BodyExt;
use hyper::Method;
use serde_json::Value;

/// `POST /containers/{id}/attach?stream=1...`, hijacked. Query keys in Go's sorted order.
pub async fn attach(
    c: &Client,
    id: &str,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    detach_keys: Option<&str>,
) -> anyhow::Result<hijack::Conn> {
    let mut q = Vec::new();
    if let Some(k) = detach_keys.filter(|k| !k.is_empty()) {
        q.push(format!("detachKeys={}", query_escape(k)));
    }
    for (on, key) in [(stderr, "stderr"), (stdin, "stdin"), (stdout, "stdout")] {
        if on {
            q.push(format!("{key}=1"));
        }
    }
    q.push("stream=1".into());
    hijack::open(c, &path(id, &format!("/attach?{}", q.join("&"))), None).await
}

/// A `POST /containers/{id}/wait` whose head has arrived: the daemon watches the container
/// from now on, and the body (the exit status) comes when the condition is met.
pub struct Wait(anyhow::Result<hyper::Response<hyper::body::Incoming>>);

impl Wait {
    /// `condition`: `next-exit`, `removed`, or none (`not-running`).
    pub async fn open(c: &Client, id: &str, condition: Option<&str>) -> Wait {
        let q = condition.map_or(String::new(), |c| format!("?condition={c}"));
        Wait(
            c.open(Method::POST, &path(id, &format!("/wait{q}")), None)
                .await,
        )
    }

    /// The exit status, or the error the daemon reported (`{"Error":{"Message":..}}`).
    pub async fn result(self) -> anyhow::Result<i64> {
        let body = self.0?.into_body().collect().await?.to_bytes();
        let v: Value = serde_json::from_slice(&body)?;
        if let Some(m) = v["Error"]["Message"].as_str() {
            return Err(anyhow!("{m}"));
        }
        Ok(v["StatusCode"].as_i64().unwrap_or(0))
    }

    /// After a failed start with `--rm`: the daemon removes the container, and docker waits for
    /// that; bounded here so a daemon that does not remove it cannot hang us.
    pub async fn removed(self) {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), self.result()).await;
    }

    /// `docker run`'s reading of it: problems are logged and become 125.
    pub async fn status(self) -> i32 {
        match self.result().await {
            Ok(code) => code as i32,
            Err(e) => {
                eprintln!("error waiting for container: {}", super::render(&e));
                125
            }
        }
    }
}

/// `In().CheckTty`: a TTY session needs a terminal on our stdin.
pub fn check_tty(attach_stdin: bool, tty: bool) -> Result<(), String> {
    if tty && attach_stdin && !term::isatty(0) {
        return Err("the input device is not a TTY".into());
    }
    Ok(())
}

/// `--sig-proxy`: signals we receive go to the container's process instead of ending us.
/// As in docker, a third SIGINT/SIGTERM gives up on the container and exits.
pub fn forward_signals(c: &Client, id: &str) {
    use std::sync::atomic::{AtomicU32, Ordering};
    use tokio::signal::unix::{signal, SignalKind};
    static INTERRUPTS: AtomicU32 = AtomicU32::new(0);
    let kinds = [
        (SignalKind::interrupt(), "INT"),
        (SignalKind::terminate(), "TERM"),
        (SignalKind::hangup(), "HUP"),
        (SignalKind::quit(), "QUIT"),
        (SignalKind::user_defined1(), "USR1"),
        (SignalKind::user_defined2(), "USR2"),
    ];
    for (kind, name) in kinds {
        let Ok(mut sig) = signal(kind) else { continue };
        let Ok(c) = Client::new(c.display()) else {
            return;
        };
        let p = path(id, &format!("/kill?signal={name}"));
        tokio::spawn(async move {
            while sig.recv().await.is_some() {
                if matches!(name, "INT" | "TERM") && INTERRUPTS.fetch_add(1, Ordering::SeqCst) >= 2
                {
                    term::restore();
                    eprintln!("got 3 SIGTERM/SIGINTs, forcefully exiting");
                    std::process::exit(1);
                }
                if let Err(e) = c.call(Method::POST, &p, None).await {
                    eprintln!("error sending signal: {}", super::render(&e));
                }
            }
        });
    }
}

/// Keeps the container's (or exec's) TTY the size of our terminal: once now, retried a few
/// times while the process is starting, then at every SIGWINCH. `resize` is the resource
/// path, `/containers/{id}/resize` or `/exec/{id}/resize`.
pub fn monitor_tty_size(c: &Client, resize: String) {
    let Ok(c) = Client::new(c.display()) else {
        return;
    };
    tokio::spawn(async move {
        for attempt in 0..10u64 {
            if send(&c, &resize).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis((attempt + 1) * 10)).await;
        }
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut winch) = signal(SignalKind::window_change()) else {
            return;
        };
        while winch.recv().await.is_some() {
            let _ = send(&c, &resize).await;
        }
    });
}

async fn send(c: &Client, resize: &str) -> anyhow::Result<()> {
    let (h, w) = term::size(1).unwrap_or((0, 0));
    c.call(Method::POST, &format!("{resize}?h={h}&w={w}"), None)
        .await
        .map(|_| ())
}

/// The container's `GET /containers/{name}/json`.
pub async fn inspect(c: &Client, name: &str) -> anyhow::Result<Value> {
    c.get_json(&path(name, "/json")).await
}

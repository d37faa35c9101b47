//! `run`, `create` and `start`: docker's request order (create → attach → wait → start), its
//! error texts and its exit codes (125 for the daemon's failures, the container's own status
//! otherwise).

use super::create_args::{self, Host, Spec};
use super::session::{self, Wait};
use super::{daemon_status, path, render, CreateArgs, RunArgs, StartArgs};
use crate::client::{query_escape, Client};
use crate::hijack::{self, keys, term, End, Wiring};
use anyhow::bail;
use hyper::{Method, StatusCode};
use serde_json::Value;

fn host_env(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn build(flags: &create_args::CreateFlags, detach: bool) -> Result<Spec, String> {
    let host = Host {
        env: &host_env,
        console: term::size(1).unwrap_or((0, 0)),
    };
    create_args::build(flags, &host, detach)
}

/// docker's `withHelp`: the error, then a pointer to the command's help.
fn print_with_help(cmd: &str, err: &str) {
    eprintln!("berth: {err}\n\nRun 'berth {cmd} --help' for more information");
}

/// docker's `toStatusError`: 127 when the command was not found, 126 when it could not be
/// run, 125 for every other failure of the daemon.
fn status_error(cmd: &str, e: &anyhow::Error) -> i32 {
    let msg = render(e);
    print_with_help(cmd, &msg);
    if [
        "executable file not found",
        "no such file or directory",
        "system cannot find the file specified",
    ]
    .iter()
    .any(|s| msg.contains(s))
    {
        127
    } else if msg.contains("permission denied") || msg.contains("is a directory") {
        126
    } else {
        125
    }
}

/// What docker prints for a missing image: the reference as it would pull it, `:latest`
/// added when no tag or digest was given. `None` for image IDs, which are never pulled.
pub fn familiar_ref(image: &str) -> Option<String> {
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    if hex64(image) || image.starts_with("sha256:") {
        return None;
    }
    let name = image
        .strip_prefix("docker.io/library/")
        .or_else(|| image.strip_prefix("docker.io/"))
        .unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    if name.contains('@') || last.contains(':') {
        Some(name.to_string())
    } else {
        Some(format!("{name}:latest"))
    }
}

/// `POST /containers/create[?name=]`; prints the daemon's warnings. A 404 means the image
/// is missing: docker says so before it pulls, and berth has no registry to pull from.
async fn create_container(c: &Client, spec: &Spec, name: Option<&str>) -> anyhow::Result<String> {
    let p = match name {
        Some(n) => format!("/containers/create?name={}", query_escape(n)),
        None => "/containers/create".to_string(),
    };
    match c.call(Method::POST, &p, Some(&spec.body)).await {
        Ok((_, body)) => {
            let v: Value = serde_json::from_slice(&body)?;
            for w in v["Warnings"].as_array().into_iter().flatten() {
                eprintln!("WARNING: {}", w.as_str().unwrap_or_default());
            }
            Ok(v["Id"].as_str().unwrap_or_default().to_string())
        }
        Err(e) => {
            let missing = daemon_status(&e) == Some(StatusCode::NOT_FOUND)
                && render(&e).contains("No such image");
            if let Some(r) = familiar_ref(&spec.image).filter(|_| missing) {
                eprintln!("Unable to find image '{r}' locally");
            }
            Err(e)
        }
    }
}

pub async fn create(c: &Client, a: CreateArgs) -> anyhow::Result<i32> {
    let spec = match build(&a.flags, false) {
        Ok(s) => s,
        Err(e) => {
            print_with_help("create", &e);
            return Ok(125);
        }
    };
    let id = create_container(c, &spec, a.flags.name.as_deref()).await?;
    println!("{id}");
    Ok(0)
}

pub async fn run(c: &Client, a: RunArgs) -> anyhow::Result<i32> {
    // the daemon refuses them at attach time: refuse before anything is created
    keys::check(a.detach_keys.as_deref())?;
    let spec = match build(&a.flags, a.detach) {
        Ok(s) => s,
        Err(e) => {
            print_with_help("run", &e);
            return Ok(125);
        }
    };
    if !a.detach {
        if let Err(e) = session::check_tty(spec.attach_stdin, spec.tty) {
            eprintln!("{e}");
            return Ok(1);
        }
    }
    let id = match create_container(c, &spec, a.flags.name.as_deref()).await {
        Ok(id) => id,
        Err(e) => return Ok(status_error("run", &e)),
    };
    let attached = spec.attach_stdin || spec.attach_stdout || spec.attach_stderr;
    if !attached {
        println!("{id}");
    }
    start_created(c, &id, &spec, a.detach_keys.as_deref(), a.sig_proxy).await
}

/// `run` once the container exists: attach as the spec says, register the wait, start,
/// stream until the container ends (or the user detaches), and return its exit status.
/// `berth compose run` runs its one-off containers through here too.
pub async fn start_created(
    c: &Client,
    id: &str,
    spec: &Spec,
    detach_keys: Option<&str>,
    sig_proxy: bool,
) -> anyhow::Result<i32> {
    let attached = spec.attach_stdin || spec.attach_stdout || spec.attach_stderr;
    let conn = if attached {
        let (i, o, e) = (spec.attach_stdin, spec.attach_stdout, spec.attach_stderr);
        Some(session::attach(c, id, i, o, e, detach_keys).await?)
    } else {
        None
    };
    let condition = if spec.auto_remove {
        "removed"
    } else {
        "next-exit"
    };
    let wait = Wait::open(c, id, Some(condition)).await;
    if let Err(e) = c.call(Method::POST, &path(id, "/start"), None).await {
        drop(conn);
        if spec.auto_remove {
            wait.removed().await;
        }
        return Ok(status_error("run", &e));
    }
    // only now: before the start there is no process to signal
    if sig_proxy {
        session::forward_signals(c, id);
    }
    let Some(conn) = conn else {
        return Ok(0);
    };
    if spec.tty && term::isatty(1) {
        session::monitor_tty_size(c, path(id, "/resize"));
    }
    let wiring = Wiring {
        tty: spec.tty,
        stdin: spec.attach_stdin,
        detach_keys: keys::resolve(detach_keys),
    };
    match hijack::stream(conn, wiring).await {
        Ok(End::Detached) => return Ok(0),
        Ok(End::Closed) => {}
        Err(e) => {
            eprintln!("{}", render(&e));
            return Ok(1);
        }
    }
    Ok(wait.status().await)
}

pub async fn start(c: &Client, a: StartArgs) -> anyhow::Result<i32> {
    // the daemon refuses them at attach time: refuse before anything is created
    keys::check(a.detach_keys.as_deref())?;
    if !a.attach && !a.interactive {
        let mut failed = Vec::new();
        for name in &a.containers {
            match c.call(Method::POST, &path(name, "/start"), None).await {
                Ok(_) => println!("{name}"),
                Err(e) => {
                    eprintln!("{}", render(&e));
                    failed.push(name.as_str());
                }
            }
        }
        if failed.is_empty() {
            return Ok(0);
        }
        bail!("Error: failed to start containers: {}", failed.join(", "));
    }
    if a.containers.len() > 1 {
        bail!("you cannot start and attach multiple containers at once");
    }
    let v = session::inspect(c, &a.containers[0]).await?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    let tty = v["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = a.interactive && v["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    let auto_remove = v["HostConfig"]["AutoRemove"].as_bool().unwrap_or(false);
    let conn = session::attach(c, &id, stdin, true, true, a.detach_keys.as_deref()).await?;
    let condition = if auto_remove { "removed" } else { "next-exit" };
    let wait = Wait::open(c, &id, Some(condition)).await;
    if let Err(e) = c.call(Method::POST, &path(&id, "/start"), None).await {
        drop(conn);
        if auto_remove {
            wait.removed().await;
        }
        return Err(e);
    }
    if !tty {
        session::forward_signals(c, &id);
    }
    if tty && term::isatty(1) {
        session::monitor_tty_size(c, path(&id, "/resize"));
    }
    let wiring = Wiring {
        tty,
        stdin,
        detach_keys: keys::resolve(a.detach_keys.as_deref()),
    };
    if hijack::stream(conn, wiring).await? == End::Detached {
        return Ok(0);
    }
    Ok(wait.status().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names_as_docker_prints_them() {
        assert_eq!(familiar_ref("busybox").unwrap(), "busybox:latest");
        assert_eq!(familiar_ref("busybox:1.36").unwrap(), "busybox:1.36");
        assert_eq!(
            familiar_ref("docker.io/library/alpine").unwrap(),
            "alpine:latest"
        );
        assert_eq!(
            familiar_ref("localhost:5000/x/y").unwrap(),
            "localhost:5000/x/y:latest"
        );
        assert_eq!(familiar_ref("x@sha256:abcd").unwrap(), "x@sha256:abcd");
        assert_eq!(familiar_ref(&"a".repeat(64)), None);
        assert_eq!(familiar_ref("sha256:0123"), None);
    }
}

//! `berth exec`: create the exec, start it hijacked (or detached), exit with its exit code.

use super::create_args::validate_env;
use super::session;
use super::{path, ExecArgs};
use crate::client::{query_escape, Client};
use crate::hijack::{self, keys, term, End, Wiring};
use anyhow::bail;
use hyper::Method;
use serde_json::{json, Value};

/// The `POST /containers/{id}/exec` body, as docker 28 sends it.
fn exec_body(
    a: &ExecArgs,
    env: &dyn Fn(&str) -> Option<String>,
    console: (u16, u16),
) -> anyhow::Result<Value> {
    let env = a
        .env
        .iter()
        .map(|e| {
            validate_env(e, env).map_err(|err| {
                anyhow::anyhow!("invalid argument {e:?} for \"-e, --env\" flag: {err}")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let attach = !a.detach;
    let mut body = serde_json::Map::new();
    body.insert("User".into(), json!(a.user.clone().unwrap_or_default()));
    body.insert("Privileged".into(), json!(a.privileged));
    body.insert("Tty".into(), json!(a.tty));
    if a.tty {
        body.insert("ConsoleSize".into(), json!([console.0, console.1]));
    }
    body.insert("AttachStdin".into(), json!(attach && a.interactive));
    body.insert("AttachStderr".into(), json!(attach));
    body.insert("AttachStdout".into(), json!(attach));
    body.insert("Detach".into(), json!(false));
    body.insert(
        "DetachKeys".into(),
        json!(a.detach_keys.clone().unwrap_or_default()),
    );
    body.insert(
        "Env".into(),
        if env.is_empty() {
            Value::Null
        } else {
            json!(env)
        },
    );
    body.insert(
        "WorkingDir".into(),
        json!(a.workdir.clone().unwrap_or_default()),
    );
    body.insert("Cmd".into(), json!(a.command));
    Ok(Value::Object(body))
}

pub async fn exec(c: &Client, a: ExecArgs) -> anyhow::Result<i32> {
    // the daemon refuses them at attach time: refuse before anything is created
    keys::check(a.detach_keys.as_deref())?;
    let container = &a.container;
    let body = exec_body(
        &a,
        &|k| std::env::var(k).ok(),
        term::size(1).unwrap_or((0, 0)),
    )?;
    // "no such container" before anything else, and no exec left behind by a TTY mistake
    session::inspect(c, container).await?;
    let stdin = !a.detach && a.interactive;
    if !a.detach {
        if let Err(e) = session::check_tty(stdin, a.tty) {
            bail!("{e}");
        }
    }
    let (_, resp) = c
        .call(Method::POST, &path(container, "/exec"), Some(&body))
        .await?;
    let v: Value = serde_json::from_slice(&resp)?;
    let id = v["Id"].as_str().unwrap_or_default().to_string();
    if id.is_empty() {
        bail!("exec ID empty");
    }
    let start = format!("/exec/{}/start", query_escape(&id));
    if a.detach {
        let body = json!({"Detach": true, "Tty": a.tty});
        c.call(Method::POST, &start, Some(&body)).await?;
        return Ok(0);
    }
    let conn = hijack::open(c, &start, Some(&json!({"Detach": false, "Tty": a.tty}))).await?;
    if a.tty && term::isatty(0) {
        session::monitor_tty_size(c, format!("/exec/{}/resize", query_escape(&id)));
    }
    let wiring = Wiring {
        tty: a.tty,
        stdin,
        detach_keys: keys::resolve(a.detach_keys.as_deref()),
    };
    if hijack::stream(conn, wiring).await? == End::Detached {
        bail!(hijack::DETACHED);
    }
    let v = c
        .get_json(&format!("/exec/{}/json", query_escape(&id)))
        .await?;
    Ok(v["ExitCode"].as_i64().unwrap_or(0) as i32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        a: ExecArgs,
    }

    fn body(args: &[&str]) -> Value {
        let t = T::try_parse_from(std::iter::once("exec").chain(args.iter().copied())).unwrap();
        let env = |k: &str| (k == "HOME").then(|| "/root".to_string());
        exec_body(&t.a, &env, (24, 80)).unwrap()
    }

    #[test]
    fn body_like_docker() {
        assert_eq!(
            serde_json::to_string(&body(&["c1", "sh", "-c", "echo hello-out; exit 3"])).unwrap(),
            r#"{"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":null,"WorkingDir":"","Cmd":["sh","-c","echo hello-out; exit 3"]}"#
        );
        let b = body(&[
            "-it", "-e", "A=1", "-e", "HOME", "-w", "/tmp", "-u", "nobody", "c1", "sh",
        ]);
        assert_eq!(b["Tty"], true);
        assert_eq!(b["ConsoleSize"], json!([24, 80]));
        assert_eq!(b["AttachStdin"], true);
        assert_eq!(b["Env"], json!(["A=1", "HOME=/root"]));
        assert_eq!(b["WorkingDir"], "/tmp");
        assert_eq!(b["User"], "nobody");
        let b = body(&["-d", "-i", "c1", "sleep", "9"]);
        assert_eq!(
            (&b["AttachStdin"], &b["AttachStdout"], &b["AttachStderr"]),
            (&json!(false), &json!(false), &json!(false))
        );
    }

    #[test]
    fn command_flags_after_the_container_are_the_command_s() {
        let b = body(&["c1", "ls", "-l", "-d", "--help"]);
        assert_eq!(b["Cmd"], json!(["ls", "-l", "-d", "--help"]));
        assert_eq!(b["AttachStdout"], true);
        let b = body(&["-i", "c1", "-x"]);
        assert_eq!(b["Cmd"], json!(["-x"]));
        assert_eq!(b["AttachStdin"], true);
        assert!(T::try_parse_from(["exec", "c1"]).is_err());
    }
}

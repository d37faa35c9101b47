//! `stop`, `kill`, `restart`, `rm`, `wait`: one request per container, all at once like
//! docker's `parallelOperation`; each name that worked is printed in the order given, the
//! errors come together at the end (exit 1).

use super::{daemon_status, path, render, KillArgs, RestartArgs, RmArgs, StopArgs, WaitArgs};
use crate::client::{query_escape, Client};
use futures::future::join_all;
use hyper::{Method, StatusCode};

/// `POST /containers/{name}{rest}` for every name concurrently, results in order.
async fn post_all(c: &Client, names: &[String], rest: &str) -> Vec<anyhow::Result<()>> {
    join_all(
        names
            .iter()
            .map(|n| async move { c.call(Method::POST, &path(n, rest), None).await.map(|_| ()) }),
    )
    .await
}

/// Prints the names that worked; the errors, if any, are the command's error.
fn report(names: &[String], results: Vec<anyhow::Result<()>>) -> anyhow::Result<i32> {
    let mut errs = Vec::new();
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(()) => println!("{n}"),
            Err(e) => errs.push(render(&e)),
        }
    }
    if errs.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errs.join("\n"));
    Ok(1)
}

/// Query string from the parameters that are set, keys in Go's sorted order.
fn query(params: &[(&str, Option<String>)]) -> String {
    let set: Vec<String> = params
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", query_escape(v))))
        .collect();
    if set.is_empty() {
        String::new()
    } else {
        format!("?{}", set.join("&"))
    }
}

fn stop_query(a: &StopArgs) -> String {
    query(&[
        ("signal", a.signal.clone().filter(|s| !s.is_empty())),
        ("t", a.time.map(|t| t.to_string())),
    ])
}

pub async fn stop(c: &Client, a: StopArgs) -> anyhow::Result<i32> {
    let rest = format!("/stop{}", stop_query(&a));
    report(&a.containers, post_all(c, &a.containers, &rest).await)
}

pub async fn restart(c: &Client, a: RestartArgs) -> anyhow::Result<i32> {
    let rest = format!("/restart{}", stop_query(&a));
    report(&a.containers, post_all(c, &a.containers, &rest).await)
}

pub async fn kill(c: &Client, a: KillArgs) -> anyhow::Result<i32> {
    let rest = format!(
        "/kill{}",
        query(&[("signal", a.signal.clone().filter(|s| !s.is_empty()))])
    );
    report(&a.containers, post_all(c, &a.containers, &rest).await)
}

pub async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<i32> {
    let on = |b: bool| b.then(|| "1".to_string());
    let q = query(&[
        ("force", on(a.force)),
        ("link", on(a.link)),
        ("v", on(a.volumes)),
    ]);
    let results = join_all(a.containers.iter().map(|n| {
        let q = &q;
        async move {
            let n = n.trim_matches('/');
            if n.is_empty() {
                anyhow::bail!("Container name cannot be empty");
            }
            c.call(Method::DELETE, &path(n, q), None).await.map(|_| ())
        }
    }))
    .await;
    let mut errs = Vec::new();
    for (n, r) in a.containers.iter().zip(results) {
        match r {
            Ok(()) => println!("{n}"),
            // with --force a missing container is only worth a note
            Err(e) if a.force && daemon_status(&e) == Some(StatusCode::NOT_FOUND) => {
                eprintln!("{}", render(&e))
            }
            Err(e) => errs.push(render(&e)),
        }
    }
    if errs.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errs.join("\n"));
    Ok(1)
}

pub async fn wait(c: &Client, a: WaitArgs) -> anyhow::Result<i32> {
    let mut errs = Vec::new();
    for n in &a.containers {
        match super::session::Wait::open(c, n, None).await.result().await {
            Ok(code) => println!("{code}"),
            Err(e) => errs.push(render(&e)),
        }
    }
    if errs.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errs.join("\n"));
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_in_go_order() {
        let a = StopArgs {
            signal: Some("SIGINT".into()),
            time: Some(3),
            containers: vec![],
        };
        assert_eq!(stop_query(&a), "?signal=SIGINT&t=3");
        let a = StopArgs {
            signal: None,
            time: None,
            containers: vec![],
        };
        assert_eq!(stop_query(&a), "");
        assert_eq!(
            query(&[
                ("force", Some("1".into())),
                ("link", None),
                ("v", Some("1".into()))
            ]),
            "?force=1&v=1"
        );
    }
}

//! `pause`, `unpause`, `update`: one request per container, the names that worked printed
//! in order, the errors together at the end (exit 1), as docker does.

use super::resource_args::ResourceFlags;
use super::{path, render};
use crate::client::Client;
use clap::Args;
use futures::future::join_all;
use hyper::Method;
use serde_json::Value;

#[derive(Args)]
pub struct PauseArgs {
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

#[derive(Args)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub flags: ResourceFlags,
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

async fn each(
    c: &Client,
    names: &[String],
    rest: &str,
    body: Option<&Value>,
) -> anyhow::Result<i32> {
    let results = join_all(
        names
            .iter()
            .map(|n| async move { c.call(Method::POST, &path(n, rest), body).await }),
    )
    .await;
    let mut errs = Vec::new();
    for (n, r) in names.iter().zip(results) {
        match r {
            Ok(_) => println!("{n}"),
            Err(e) => errs.push(render(&e)),
        }
    }
    if errs.is_empty() {
        return Ok(0);
    }
    eprintln!("{}", errs.join("\n"));
    Ok(1)
}

pub async fn pause(c: &Client, a: PauseArgs) -> anyhow::Result<i32> {
    each(c, &a.containers, "/pause", None).await
}

pub async fn unpause(c: &Client, a: PauseArgs) -> anyhow::Result<i32> {
    each(c, &a.containers, "/unpause", None).await
}

pub async fn update(c: &Client, a: UpdateArgs) -> anyhow::Result<i32> {
    let body = a
        .flags
        .to_map(|v, flag, e| format!("invalid argument \"{v}\" for \"{flag}\" flag: {e}"))
        .map_err(anyhow::Error::msg)?;
    if body.is_empty() {
        anyhow::bail!("You must provide one or more flags when using this command.");
    }
    each(c, &a.containers, "/update", Some(&Value::Object(body))).await
}

//! The Engine API calls compose makes, over the CLI's one client. Everything compose does
//! goes through these, so the real docker-compose and berth compose see the same objects.

use crate::client::{query_escape, Client, DaemonError};
use hyper::{Method, StatusCode};
use serde_json::{json, Value};

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VERSION: &str = "com.docker.compose.version";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const SLUG: &str = "com.docker.compose.slug";
/// The docker-compose release whose labels and hash berth reproduces: docker-compose checks
/// the version label of what it finds.
pub const COMPOSE_VERSION: &str = "1.29.2";

fn not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<DaemonError>()
        .is_some_and(|d| d.status == StatusCode::NOT_FOUND)
}

/// A container of the list (`GET /containers/json`), as compose reads it.
#[derive(Debug, Clone)]
pub struct Ctr {
    pub id: String,
    pub name: String,
    pub service: String,
    pub number: Option<u32>,
    pub hash: Option<String>,
    pub running: bool,
    pub state: String,
    pub status: String,
    pub command: String,
    pub ports: Vec<Value>,
    pub created: i64,
}

impl Ctr {
    fn from_summary(v: &Value) -> Ctr {
        let label = |k: &str| v["Labels"][k].as_str().map(str::to_string);
        Ctr {
            id: v["Id"].as_str().unwrap_or_default().to_string(),
            name: v["Names"][0]
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_string(),
            service: label(SERVICE).unwrap_or_default(),
            number: label(NUMBER).and_then(|n| n.parse().ok()),
            hash: label(CONFIG_HASH),
            running: v["State"] == "running",
            state: v["State"].as_str().unwrap_or_default().to_string(),
            status: v["Status"].as_str().unwrap_or_default().to_string(),
            command: v["Command"].as_str().unwrap_or_default().to_string(),
            ports: v["Ports"].as_array().cloned().unwrap_or_default(),
            created: v["Created"].as_i64().unwrap_or(0),
        }
    }

    pub fn short_id(&self) -> &str {
        &self.id[..self.id.len().min(12)]
    }
}

/// The project's containers (all states), optionally of one service and one-off or not,
/// oldest first.
pub async fn containers(
    c: &Client,
    project: &str,
    service: Option<&str>,
    oneoff: Option<bool>,
) -> anyhow::Result<Vec<Ctr>> {
    let mut labels = vec![format!("{PROJECT}={project}")];
    if let Some(s) = service {
        labels.push(format!("{SERVICE}={s}"));
    }
    if let Some(o) = oneoff {
        labels.push(format!("{ONEOFF}={}", if o { "True" } else { "False" }));
    }
    let filters = json!({ "label": labels }).to_string();
    let v = c
        .get_json(&format!(
            "/containers/json?all=1&filters={}",
            query_escape(&filters)
        ))
        .await?;
    let mut out: Vec<Ctr> = v
        .as_array()
        .into_iter()
        .flatten()
        .map(Ctr::from_summary)
        .collect();
    out.sort_by_key(|c| (c.created, c.number));
    Ok(out)
}

fn cpath(id: &str, rest: &str) -> String {
    format!("/containers/{}{rest}", query_escape(id))
}

pub async fn inspect_container(c: &Client, id: &str) -> anyhow::Result<Value> {
    c.get_json(&cpath(id, "/json")).await
}

/// `GET /images/{name}/json`; None when the image does not exist.
pub async fn image_id(c: &Client, image: &str) -> anyhow::Result<Option<String>> {
    match c.get_json(&format!("/images/{image}/json")).await {
        Ok(v) => Ok(v["Id"].as_str().map(str::to_string)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

/// `GET /networks/{name}`; None when there is no such network.
pub async fn inspect_network(c: &Client, name: &str) -> anyhow::Result<Option<Value>> {
    match c
        .get_json(&format!("/networks/{}", query_escape(name)))
        .await
    {
        Ok(v) => Ok(Some(v)),
        Err(e) if not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn create_network(c: &Client, body: &Value) -> anyhow::Result<()> {
    c.call(Method::POST, "/networks/create", Some(body)).await?;
    Ok(())
}

pub async fn remove_network(c: &Client, name: &str) -> anyhow::Result<()> {
    c.call(
        Method::DELETE,
        &format!("/networks/{}", query_escape(name)),
        None,
    )
    .await?;
    Ok(())
}

pub async fn create_container(c: &Client, name: &str, body: &Value) -> anyhow::Result<String> {
    let (_, resp) = c
        .call(
            Method::POST,
            &format!("/containers/create?name={}", query_escape(name)),
            Some(body),
        )
        .await?;
    let v: Value = serde_json::from_slice(&resp)?;
    Ok(v["Id"].as_str().unwrap_or_default().to_string())
}

pub async fn connect(c: &Client, network: &str, body: &Value) -> anyhow::Result<()> {
    c.call(
        Method::POST,
        &format!("/networks/{}/connect", query_escape(network)),
        Some(body),
    )
    .await?;
    Ok(())
}

pub async fn disconnect(c: &Client, network: &str, id: &str) -> anyhow::Result<()> {
    let body = json!({"Container": id, "Force": false});
    c.call(
        Method::POST,
        &format!("/networks/{}/disconnect", query_escape(network)),
        Some(&body),
    )
    .await?;
    Ok(())
}

pub async fn start(c: &Client, id: &str) -> anyhow::Result<()> {
    c.call(Method::POST, &cpath(id, "/start"), None).await?;
    Ok(())
}

pub async fn stop(c: &Client, id: &str, timeout: u32) -> anyhow::Result<()> {
    c.call(
        Method::POST,
        &cpath(id, &format!("/stop?t={timeout}")),
        None,
    )
    .await?;
    Ok(())
}

pub async fn remove(c: &Client, id: &str, force: bool) -> anyhow::Result<()> {
    let q = if force { "?force=1" } else { "" };
    match c.call(Method::DELETE, &cpath(id, q), None).await {
        Err(e) if !not_found(&e) => Err(e),
        _ => Ok(()),
    }
}

pub async fn rename(c: &Client, id: &str, name: &str) -> anyhow::Result<()> {
    c.call(
        Method::POST,
        &cpath(id, &format!("/rename?name={}", query_escape(name))),
        None,
    )
    .await?;
    Ok(())
}

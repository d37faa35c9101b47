//! `berth volume create/ls/inspect/rm/prune`, as the docker CLI prints them.

use crate::client::{query_escape, Client};
use crate::format;
use clap::{Args, Subcommand};
use hyper::Method;
use serde_json::{json, Value};
use std::collections::BTreeMap;

const LS_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
const LS_HEADERS: &[(&str, &str)] = &[
    ("Driver", "DRIVER"),
    ("Name", "VOLUME NAME"),
    ("Mountpoint", "MOUNTPOINT"),
    ("Labels", "LABELS"),
    ("Scope", "SCOPE"),
    ("Links", "LINKS"),
    ("Size", "SIZE"),
];

#[derive(Subcommand)]
pub enum VolumeCmd {
    /// Create a volume
    Create(CreateArgs),
    /// List volumes
    #[command(visible_alias = "list")]
    Ls(LsArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// Remove one or more volumes
    #[command(visible_alias = "remove")]
    Rm(RmArgs),
    /// Remove all unused local volumes
    Prune(PruneArgs),
}

#[derive(Args)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short, long, default_value = "local")]
    driver: String,
    /// Set driver specific options
    #[arg(short, long = "opt")]
    opt: Vec<String>,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    name_flag: Option<String>,
    name: Option<String>,
}

#[derive(Args)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short, long)]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short, long)]
    filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
pub struct InspectArgs {
    /// Format output using a custom template
    #[arg(short, long)]
    format: Option<String>,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short, long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long)]
    filter: Vec<String>,
}

pub async fn run(c: &Client, cmd: VolumeCmd) -> anyhow::Result<i32> {
    match cmd {
        VolumeCmd::Create(a) => create(c, a).await,
        VolumeCmd::Ls(a) => ls(c, a).await,
        VolumeCmd::Inspect(a) => inspect(c, a).await,
        VolumeCmd::Rm(a) => rm(c, a).await,
        VolumeCmd::Prune(a) => prune(c, a).await,
    }
}

fn key_values(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|s| match s.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (s.clone(), String::new()),
        })
        .collect()
}

async fn create(c: &Client, a: CreateArgs) -> anyhow::Result<i32> {
    if a.name.is_some() && a.name_flag.is_some() {
        anyhow::bail!(
            "conflicting options: either specify --name or provide positional arg, not both"
        );
    }
    let name = a.name.or(a.name_flag).unwrap_or_default();
    let body = json!({
        "Name": name,
        "Driver": a.driver,
        "DriverOpts": key_values(&a.opt),
        "Labels": key_values(&a.label),
    });
    let (_, reply) = c.call(Method::POST, "/volumes/create", Some(&body)).await?;
    let v: Value = serde_json::from_slice(&reply)?;
    println!("{}", v["Name"].as_str().unwrap_or(""));
    Ok(0)
}

fn row(v: &Value) -> Value {
    let labels = v["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    json!({
        "Driver": v["Driver"],
        "Name": v["Name"],
        "Mountpoint": v["Mountpoint"],
        "Labels": labels,
        "Scope": v["Scope"],
        "Links": "N/A",
        "Size": "N/A",
    })
}

async fn ls(c: &Client, a: LsArgs) -> anyhow::Result<i32> {
    let v = c
        .get_json(&format!(
            "/volumes{}",
            super::network::filters_param(&a.filter)?
        ))
        .await?;
    let mut vols = v["Volumes"].as_array().cloned().unwrap_or_default();
    vols.sort_by(|x, y| x["Name"].as_str().cmp(&y["Name"].as_str()));
    let rows: Vec<Value> = vols.iter().map(row).collect();
    let fmt = if a.quiet {
        "{{.Name}}"
    } else {
        format::resolve_list_format(a.format.as_deref(), LS_TABLE)
    };
    let headers = format::header_map(LS_HEADERS);
    let out = format::render_list(fmt, &headers, &rows).map_err(anyhow::Error::msg)?;
    print!("{out}");
    Ok(0)
}

async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in &a.volumes {
        match c.get_json(&format!("/volumes/{}", query_escape(n))).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(crate::render_error(&e)),
        }
    }
    Ok(format::print_inspect(a.format.as_deref(), &found, errors))
}

async fn rm(c: &Client, a: RmArgs) -> anyhow::Result<i32> {
    let mut code = 0;
    let force = if a.force { "?force=1" } else { "" };
    for n in &a.volumes {
        let path = format!("/volumes/{}{force}", query_escape(n));
        match c.call(Method::DELETE, &path, None).await {
            Ok(_) => println!("{n}"),
            Err(e) => {
                eprintln!("{}", crate::render_error(&e));
                code = 1;
            }
        }
    }
    Ok(code)
}

async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<i32> {
    if !a.force && !super::prune::confirm("all local volumes not used by at least one container")? {
        return Ok(0);
    }
    let path = format!(
        "/volumes/prune{}",
        super::network::filters_param(&a.filter)?
    );
    let (_, body) = c.call(Method::POST, &path, None).await?;
    let v: Value = serde_json::from_slice(&body)?;
    super::prune::print_deleted(&v, "VolumesDeleted", "Volumes");
    super::prune::print_reclaimed(&v);
    Ok(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_as_docker_prints_them() {
        let human_size = |n: u64| crate::format::human_size(n as f64, 4);
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(14), "14B");
        assert_eq!(human_size(1500), "1.5kB");
    }
}

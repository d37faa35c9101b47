//! `berth container prune`: removes the stopped containers (`POST /containers/prune`), with
//! docker's confirmation prompt, `--filter` and report.

use super::stats::decimal_size;
use crate::client::{query_escape, Client};
use clap::Args;
use hyper::Method;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Args)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short, long)]
    pub force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long)]
    pub filter: Vec<String>,
}

pub async fn prune(c: &Client, a: PruneArgs) -> anyhow::Result<i32> {
    let mut f: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for it in &a.filter {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("bad format of filter (expected name=value)"))?;
        f.entry(k.trim().to_lowercase())
            .or_default()
            .push(v.trim().to_string());
    }
    if !a.force {
        print!("WARNING! This will remove all stopped containers.\nAre you sure you want to continue? [y/N] ");
        std::io::stdout().flush()?;
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        if !matches!(line.trim().to_lowercase().as_str(), "y" | "yes") {
            return Ok(0);
        }
    }
    let q = if f.is_empty() {
        String::new()
    } else {
        format!("?filters={}", query_escape(&berth_api::encode_filters(&f)))
    };
    let (_, body) = c
        .call(Method::POST, &format!("/containers/prune{q}"), None)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    if let Some(ids) = v["ContainersDeleted"].as_array().filter(|a| !a.is_empty()) {
        println!("Deleted Containers:");
        for id in ids {
            println!("{}", id.as_str().unwrap_or(""));
        }
        println!();
    }
    let space = v["SpaceReclaimed"].as_u64().unwrap_or(0) as f64;
    println!("Total reclaimed space: {}", decimal_size(space));
    Ok(0)
}

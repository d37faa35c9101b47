//! `berth container prune`: removes the stopped containers (`POST /containers/prune`), with
//! docker's confirmation prompt, `--filter` and report.

use crate::client::Client;
use clap::Args;
use hyper::Method;
use serde_json::Value;

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
    let q = crate::cmd::network::filters_param(&a.filter)?;
    if !a.force && !crate::cmd::prune::confirm("all stopped containers")? {
        return Ok(0);
    }
    let (_, body) = c
        .call(Method::POST, &format!("/containers/prune{q}"), None)
        .await?;
    let v: Value = serde_json::from_slice(&body)?;
    crate::cmd::prune::print_deleted(&v, "ContainersDeleted", "Containers");
    crate::cmd::prune::print_reclaimed(&v);
    Ok(0)
}

//! `berth network diagnose A B` and `berth network graph`: berth's own API extension
//! (`/berth/v1/diagnose`, `/berth/v1/graph`), printed as the daemon renders it.

use crate::client::{query_escape, Client};
use clap::Args;
use hyper::Method;

#[derive(Args)]
pub struct DiagnoseArgs {
    /// Source: container name or id, `host`, or an address
    from: String,
    /// Destination: container name or id, NAME:PORT[/PROTO], `host`, or an address
    to: String,
    /// Also send real traffic (ping or TCP connect) from inside the source's namespace
    #[arg(long)]
    probe: bool,
    /// Output: text (default) or json
    #[arg(long, default_value = "text")]
    format: String,
}

#[derive(Args)]
pub struct GraphArgs {
    /// Output: text (default), dot or json
    #[arg(long, default_value = "text")]
    format: String,
}

/// Exit status: 0 when reachable, 1 when not (scripts can test it).
pub async fn diagnose(c: &Client, a: DiagnoseArgs) -> anyhow::Result<i32> {
    if !matches!(a.format.as_str(), "text" | "json") {
        anyhow::bail!("invalid --format {:?}: text or json", a.format);
    }
    let path = format!(
        "/berth/v1/diagnose?from={}&to={}&probe={}",
        query_escape(&a.from),
        query_escape(&a.to),
        a.probe
    );
    let v = c.get_json(&path).await?;
    if a.format == "json" {
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", render(&v));
    }
    // scripts tell the three verdicts apart: 2 is "small packets only" (an MTU mismatch)
    Ok(
        match (v["reachable"].as_bool(), v["packet_limit"].is_object()) {
            (Some(true), false) => 0,
            (Some(true), true) => 2,
            _ => 1,
        },
    )
}

/// The daemon's text form, from the JSON report.
fn render(v: &serde_json::Value) -> String {
    let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_string();
    let mut out = format!("{}: {}\n", s(&v["summary"]), s(&v["verdict"]));
    for l in v["lines"].as_array().into_iter().flatten() {
        let (k, t) = (s(&l["kind"]), s(&l["text"]));
        if k.is_empty() {
            out.push_str(&format!("  {t}\n"));
        } else {
            out.push_str(&format!("  {k}: {t}\n"));
        }
    }
    if let Some(p) = v.get("probe").filter(|p| !p.is_null()) {
        let agree = if p["agrees"].as_bool() == Some(true) {
            "agrees with the verdict"
        } else {
            "DISAGREES with the verdict (please report this as a bug)"
        };
        let reached = if p["reached"].as_bool() == Some(true) {
            "answered"
        } else {
            "failed"
        };
        out.push_str(&format!(
            "  probe: {} {reached} ({}); {agree}\n",
            s(&p["method"]),
            s(&p["detail"])
        ));
    }
    out
}

pub async fn graph(c: &Client, a: GraphArgs) -> anyhow::Result<i32> {
    if !matches!(a.format.as_str(), "text" | "dot" | "json") {
        anyhow::bail!("invalid --format {:?}: text, dot or json", a.format);
    }
    let (_, body) = c
        .call(
            Method::GET,
            &format!("/berth/v1/graph?format={}", a.format),
            None,
        )
        .await?;
    print!("{}", String::from_utf8_lossy(&body));
    Ok(0)
}

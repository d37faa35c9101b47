//! `berth stats`: docker's table of CPU, memory, network and block I/O per container, live
//! (redrawn every second) or once (`--no-stream`). Figures as docker's CLI computes them.

use super::path;
use crate::client::Client;
use crate::format::bytes_size;
use crate::format::table::tabwrite;
use clap::Args;
use futures::future::join_all;
use serde_json::Value;

#[derive(Args)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long = "no-stream")]
    pub no_stream: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    #[arg(value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

const HEADER: &str =
    "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS";

/// go-units `HumanSizeWithPrecision(v, 3)`: what `docker stats` prints for I/O.
fn human_size(v: f64) -> String {
    crate::format::human_size(v, 3)
}

fn u(v: &Value) -> f64 {
    v.as_u64().unwrap_or(0) as f64
}

/// One row of the table from one stats reading (docker's `calculate*` functions).
pub fn row(s: &Value, no_trunc: bool) -> String {
    let id = s["id"].as_str().unwrap_or("");
    let id = if no_trunc {
        id
    } else {
        &id[..id.len().min(12)]
    };
    let name = s["name"].as_str().unwrap_or("").trim_start_matches('/');
    let (cpu, pre) = (&s["cpu_stats"], &s["precpu_stats"]);
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let online = match cpu["online_cpus"].as_u64() {
        Some(n) if n > 0 => n as f64,
        _ => cpu["cpu_usage"]["percpu_usage"]
            .as_array()
            .map_or(0, Vec::len) as f64,
    };
    let cpu_pct = if sys_delta > 0.0 && cpu_delta > 0.0 {
        cpu_delta / sys_delta * online * 100.0
    } else {
        0.0
    };
    let m = &s["memory_stats"];
    // page cache that can be dropped does not count (v1: total_inactive_file, v2: inactive_file)
    let inactive = m["stats"]
        .get("total_inactive_file")
        .or_else(|| m["stats"].get("inactive_file"))
        .map(u)
        .unwrap_or(0.0);
    let usage = u(&m["usage"]);
    let mem = if inactive < usage {
        usage - inactive
    } else {
        usage
    };
    let limit = u(&m["limit"]);
    let mem_pct = if limit > 0.0 {
        mem / limit * 100.0
    } else {
        0.0
    };
    let (mut rx, mut tx) = (0.0, 0.0);
    if let Some(n) = s["networks"].as_object() {
        for i in n.values() {
            rx += u(&i["rx_bytes"]);
            tx += u(&i["tx_bytes"]);
        }
    }
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .into_iter()
        .flatten()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += u(&e["value"]),
            Some("write") => wr += u(&e["value"]),
            _ => {}
        }
    }
    format!(
        "{id}\t{name}\t{cpu_pct:.2}%\t{} / {}\t{mem_pct:.2}%\t{} / {}\t{} / {}\t{}",
        bytes_size(mem),
        bytes_size(limit),
        human_size(rx),
        human_size(tx),
        human_size(rd),
        human_size(wr),
        s["pids_stats"]["current"].as_u64().unwrap_or(0)
    )
}

async fn names(c: &Client, a: &StatsArgs) -> anyhow::Result<Vec<String>> {
    if !a.containers.is_empty() {
        return Ok(a.containers.clone());
    }
    let list = c
        .get_json(&format!(
            "/containers/json{}",
            if a.all { "?all=1" } else { "" }
        ))
        .await?;
    Ok(list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["Id"].as_str().map(str::to_string))
        .collect())
}

/// One table: a reading of each container (with a previous one a second before).
async fn table(c: &Client, names: &[String], no_trunc: bool) -> (String, Vec<String>) {
    let readings = join_all(
        names
            .iter()
            .map(|n| async move { c.get_json(&path(n, "/stats?stream=false")).await }),
    )
    .await;
    let mut text = format!("{HEADER}\n");
    let mut errs = Vec::new();
    for r in readings {
        match r {
            Ok(s) => {
                text.push_str(&row(&s, no_trunc));
                text.push('\n');
            }
            Err(e) => errs.push(super::render(&e)),
        }
    }
    (tabwrite(&text), errs)
}

pub async fn stats(c: &Client, a: StatsArgs) -> anyhow::Result<i32> {
    if a.no_stream {
        let names = names(c, &a).await?;
        let (text, errs) = table(c, &names, a.no_trunc).await;
        if !errs.is_empty() {
            eprintln!("{}", errs.join("\n"));
            return Ok(1);
        }
        print!("{text}");
        return Ok(0);
    }
    loop {
        // without names: the set of containers is looked up again at every redraw
        let names = names(c, &a).await?;
        let (text, errs) = table(c, &names, a.no_trunc).await;
        if !errs.is_empty() && !a.containers.is_empty() {
            eprintln!("{}", errs.join("\n"));
            return Ok(1);
        }
        // clear the screen and go home, as docker redraws
        print!("\x1b[2J\x1b[H{text}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        if names.is_empty() {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_like_go_units() {
        assert_eq!(bytes_size(316.0 * 1024.0), "316KiB");
        assert_eq!(bytes_size(25275973632.0), "23.54GiB");
        assert_eq!(human_size(736.0), "736B");
        assert_eq!(human_size(0.0), "0B");
        assert_eq!(human_size(1_234_567.0), "1.23MB");
    }

    #[test]
    fn a_row_as_docker_computes_it() {
        let s = json!({"id": "318a0526b7f9a719f2dd", "name": "/ops-s",
            "cpu_stats": {"cpu_usage": {"total_usage": 200}, "system_cpu_usage": 2000, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 100}, "system_cpu_usage": 1000},
            "memory_stats": {"usage": 2048, "limit": 4096, "stats": {"total_inactive_file": 1024}},
            "networks": {"eth0": {"rx_bytes": 500, "tx_bytes": 236}, "eth1": {"rx_bytes": 236, "tx_bytes": 0}},
            "blkio_stats": {"io_service_bytes_recursive": [{"op": "Read", "value": 4096}]},
            "pids_stats": {"current": 1}});
        assert_eq!(
            row(&s, false),
            "318a0526b7f9\tops-s\t20.00%\t1KiB / 4KiB\t25.00%\t736B / 236B\t4.1kB / 0B\t1"
        );
    }
}

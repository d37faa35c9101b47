//! `GET /containers/{id}/top?ps_args=`: the host's `ps` (default `-ef`), only the lines of
//! the container's processes (those of its cgroup), as moby's `ContainerTop` builds them.

use super::{Engine, Result};
use berth_net::NetError;
use serde_json::{json, Value};
use std::process::Command;

/// The pids in the cgroup of `pid` (the container's init): the pids controller's (cgroup v1),
/// else the unified hierarchy's; only `pid` when neither can be read.
fn cgroup_pids(pid: i32) -> Vec<u32> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
    let mut dirs = Vec::new();
    for l in own.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or(""));
        if ctrls.split(',').any(|c| c == "pids") {
            dirs.insert(0, format!("/sys/fs/cgroup/pids{path}"));
        } else if ctrls.is_empty() && path != "/" {
            dirs.push(format!("/sys/fs/cgroup{path}"));
            dirs.push(format!("/sys/fs/cgroup/unified{path}"));
        }
    }
    for d in dirs {
        if let Ok(s) = std::fs::read_to_string(format!("{d}/cgroup.procs")) {
            let pids: Vec<u32> = s.lines().filter_map(|l| l.trim().parse().ok()).collect();
            if !pids.is_empty() {
                return pids;
            }
        }
    }
    vec![pid as u32]
}

/// moby's `parsePSOutput`: titles from the first line; a line is kept when its PID column is
/// one of `pids`, and what overhangs the titles joins the last column (the command).
fn parse_ps(out: &str, pids: &[u32]) -> Result<Value> {
    let mut lines = out.lines();
    let titles: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    let Some(at) = titles.iter().position(|t| *t == "PID") else {
        return Err(NetError::internal("Couldn't find PID field in ps output"));
    };
    let mut procs = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let raw = fields.get(at).copied().unwrap_or("");
        let p: u32 = raw.parse().map_err(|e| {
            NetError::internal(format!(
                "Unexpected pid '{raw}': strconv.Atoi: parsing {raw:?}: {e}"
            ))
        })?;
        if pids.contains(&p) && fields.len() >= titles.len() {
            let mut row: Vec<String> = fields[..titles.len() - 1]
                .iter()
                .map(|s| s.to_string())
                .collect();
            row.push(fields[titles.len() - 1..].join(" "));
            procs.push(row);
        }
    }
    Ok(json!({"Titles": titles, "Processes": procs}))
}

impl Engine {
    pub async fn top(&self, key: &str, ps_args: &str) -> Result<Value> {
        let c = self.require_alive(key)?;
        let pid = c.snapshot().state.pid;
        let args: Vec<String> = match ps_args {
            "" => vec!["-ef".to_string()],
            a => a.split(' ').map(str::to_string).collect(),
        };
        let out = tokio::task::spawn_blocking(move || {
            let pids = cgroup_pids(pid);
            let o = Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| NetError::internal(format!("ps: {e}")))?;
            if !o.status.success() {
                return Err(NetError::internal(format!(
                    "ps: {}: {}",
                    o.status,
                    String::from_utf8_lossy(&o.stderr).trim()
                )));
            }
            parse_ps(&String::from_utf8_lossy(&o.stdout), &pids)
        })
        .await
        .map_err(|e| NetError::internal(e.to_string()))??;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_containers_lines_and_joins_the_command() {
        let out = "UID   PID  PPID  C STIME TTY   TIME     CMD\n\
                   root    1     0  0 10:00 ?     00:00:01 /sbin/init\n\
                   root  4242  4200  0 10:01 ?    00:00:00 sleep 60\n";
        let v = parse_ps(out, &[4242]).unwrap();
        assert_eq!(v["Titles"][1], "PID");
        assert_eq!(
            v["Processes"],
            json!([["root", "4242", "4200", "0", "10:01", "?", "00:00:00", "sleep 60"]])
        );
        assert!(parse_ps("USER CMD\nroot x\n", &[1]).is_err());
    }
}

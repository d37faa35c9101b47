//! The flags of `create`/`run` and `update` that become HostConfig resources: `--restart`,
//! CPU and memory limits, `--pids-limit`, `--blkio-weight`; plus `--group-add` and
//! `--runtime` for create. Parsed as docker's CLI parses them (go-units sizes, messages).

use clap::Args;
use serde_json::{json, Map, Value};

#[derive(Args, Debug, Default, Clone)]
pub struct ResourceFlags {
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS (Completely Fair Scheduler) quota
    #[arg(long = "cpu-quota", allow_negative_numbers = true)]
    pub cpu_quota: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Memory limit
    #[arg(short = 'm', long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_negative_numbers = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_negative_numbers = true)]
    pub pids_limit: Option<i64>,
    /// Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)
    #[arg(long = "blkio-weight")]
    pub blkio_weight: Option<u16>,
}

/// `--group-add` and `--runtime`: create only.
#[derive(Args, Debug, Default, Clone)]
pub struct CreateOnlyFlags {
    /// Add additional groups to join
    #[arg(long = "group-add")]
    pub group_add: Vec<String>,
    /// Runtime to use for this container
    #[arg(long)]
    pub runtime: Option<String>,
}

/// docker's `opts.ParseRestartPolicy`.
pub fn restart_policy(s: &str) -> Result<Value, String> {
    if s.is_empty() {
        return Ok(json!({"Name": "", "MaximumRetryCount": 0}));
    }
    let (name, max) = match s.split_once(':') {
        None => (s, 0),
        Some((n, m)) => (
            n,
            m.parse::<i64>().map_err(|_| {
                "invalid restart policy format: maximum retry count must be an integer".to_string()
            })?,
        ),
    };
    Ok(json!({"Name": name, "MaximumRetryCount": max}))
}

/// go-units `RAMInBytes`: `300m`, `1g`, `512k`, `1024b`, `1024` (binary multiples).
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let bad = || format!("invalid size: '{s}'");
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: f64 = n.parse().map_err(|_| bad())?;
    let unit = unit.to_ascii_lowercase();
    let mul: f64 = match unit.trim_end_matches(['b', 'i']) {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return Err(bad()),
    };
    Ok((n * mul) as i64)
}

impl ResourceFlags {
    /// The HostConfig keys these flags set (only those given). `update` sends the same.
    pub fn to_map(
        &self,
        flag_err: impl Fn(&str, &str, String) -> String,
    ) -> Result<Map<String, Value>, String> {
        let mut m = Map::new();
        if let Some(r) = &self.restart {
            m.insert("RestartPolicy".into(), restart_policy(r)?);
        }
        let mut int = |k: &str, v: Option<i64>| {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        };
        int("CpuShares", self.cpu_shares);
        int("CpuPeriod", self.cpu_period);
        int("CpuQuota", self.cpu_quota);
        int("PidsLimit", self.pids_limit);
        int("BlkioWeight", self.blkio_weight.map(i64::from));
        if let Some(c) = &self.cpus {
            let n: f64 = c.parse().map_err(|_| {
                flag_err(
                    c,
                    "--cpus",
                    format!("failed to parse {c} as a rational number"),
                )
            })?;
            m.insert("NanoCpus".into(), json!((n * 1e9) as i64));
        }
        for (k, v) in [
            ("CpusetCpus", &self.cpuset_cpus),
            ("CpusetMems", &self.cpuset_mems),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), json!(v));
            }
        }
        for (k, flag, v) in [
            ("Memory", "--memory", &self.memory),
            (
                "MemoryReservation",
                "--memory-reservation",
                &self.memory_reservation,
            ),
        ] {
            if let Some(v) = v {
                m.insert(
                    k.into(),
                    json!(ram_in_bytes(v).map_err(|e| flag_err(v, flag, e))?),
                );
            }
        }
        if let Some(v) = &self.memory_swap {
            let n = if v == "-1" {
                -1
            } else {
                ram_in_bytes(v).map_err(|e| flag_err(v, "--memory-swap", e))?
            };
            m.insert("MemorySwap".into(), json!(n));
        }
        Ok(m)
    }
}

impl CreateOnlyFlags {
    pub fn apply(&self, hc: &mut Map<String, Value>) {
        if !self.group_add.is_empty() {
            hc.insert("GroupAdd".into(), json!(self.group_add));
        }
        if let Some(r) = &self.runtime {
            hc.insert("Runtime".into(), json!(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_policies_as_docker_parses_them() {
        assert_eq!(
            restart_policy("on-failure:3").unwrap(),
            json!({"Name": "on-failure", "MaximumRetryCount": 3})
        );
        assert_eq!(restart_policy("always").unwrap()["Name"], "always");
        assert_eq!(
            restart_policy("on-failure:x").unwrap_err(),
            "invalid restart policy format: maximum retry count must be an integer"
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("300m").unwrap(), 300 << 20);
        assert_eq!(ram_in_bytes("1g").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("1024").unwrap(), 1024);
        assert_eq!(ram_in_bytes("64MiB").unwrap(), 64 << 20);
        assert!(ram_in_bytes("lots").is_err());
    }

    #[test]
    fn only_given_flags() {
        let f = ResourceFlags {
            cpu_shares: Some(512),
            memory: Some("300m".into()),
            memory_swap: Some("-1".into()),
            cpus: Some("0.5".into()),
            ..Default::default()
        };
        let m = f.to_map(|v, fl, e| format!("{v} {fl} {e}")).unwrap();
        assert_eq!(
            Value::Object(m),
            json!({"CpuShares": 512, "Memory": 314572800, "MemorySwap": -1, "NanoCpus": 500000000})
        );
    }
}

//! The `HostConfig` fields berth applies beyond networking: cgroup limits (`CpuShares`,
//! `CpuQuota`, `Memory`, ...), `GroupAdd`, `Runtime` and `RestartPolicy`. Checked and given
//! Docker's defaults at create; the same checks guard `update`.

use super::restart::Policy;
use super::Result;
use berth_api::HostConfig;
use berth_net::NetError;
use berth_runtime::container::resources::Resources;
use serde_json::{json, Map, Value};

/// Docker's floor for a memory limit.
const MIN_MEMORY: i64 = 6 * 1024 * 1024;

/// The resource keys `POST /containers/{id}/update` may change (and berth applies).
pub const UPDATABLE: &[&str] = &[
    "CpuShares",
    "CpuPeriod",
    "CpuQuota",
    "NanoCpus",
    "CpusetCpus",
    "CpusetMems",
    "Memory",
    "MemorySwap",
    "MemoryReservation",
    "PidsLimit",
    "BlkioWeight",
];

fn int(m: &Map<String, Value>, k: &str) -> Result<i64> {
    match m.get(k) {
        None | Some(Value::Null) => Ok(0),
        Some(v) => v.as_i64().ok_or_else(|| {
            NetError::invalid(format!(
                "json: cannot unmarshal {v} into Go struct field HostConfig.{k} of type int64"
            ))
        }),
    }
}

fn text(m: &Map<String, Value>, k: &str) -> Option<String> {
    m.get(k)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Docker's checks of the resource values in `m` (a HostConfig or an update body).
pub fn check(m: &Map<String, Value>) -> Result<()> {
    let mem = int(m, "Memory")?;
    if mem != 0 && mem < MIN_MEMORY {
        return Err(NetError::invalid("Minimum memory limit allowed is 6MB"));
    }
    let swap = int(m, "MemorySwap")?;
    if mem > 0 && swap > 0 && swap < mem {
        return Err(NetError::invalid(
            "Minimum memoryswap limit should be larger than memory limit, see usage",
        ));
    }
    if int(m, "NanoCpus")? != 0 && (int(m, "CpuQuota")? != 0 || int(m, "CpuPeriod")? != 0) {
        return Err(NetError::invalid(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set",
        ));
    }
    let period = int(m, "CpuPeriod")?;
    if period != 0 && !(1000..=1_000_000).contains(&period) {
        return Err(NetError::invalid(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)",
        ));
    }
    let quota = int(m, "CpuQuota")?;
    if quota > 0 && quota < 1000 {
        return Err(NetError::invalid(
            "CPU cfs quota can not be less than 1ms (i.e. 1000)",
        ));
    }
    let w = int(m, "BlkioWeight")?;
    if w != 0 && !(10..=1000).contains(&w) {
        return Err(NetError::invalid(
            "Range of blkio weight is from 10 to 1000",
        ));
    }
    for k in ["CpuShares", "PidsLimit", "MemoryReservation"] {
        int(m, k)?;
    }
    Ok(())
}

/// Create time: every check, then Docker's defaults as inspect shows them.
pub fn check_create(hc: &mut HostConfig) -> Result<()> {
    let policy = Policy::from_json(hc.extra.get("RestartPolicy"))?;
    if hc.auto_remove && policy != Policy::No {
        return Err(NetError::invalid(
            "can't create 'AutoRemove' container with restart policy",
        ));
    }
    match hc.extra.get("Runtime").and_then(Value::as_str) {
        None | Some("") | Some("runc") => {}
        Some(other) => {
            return Err(NetError::invalid(format!(
                "Unknown runtime specified {other}"
            )))
        }
    }
    check(&hc.extra)?;
    groups(hc)?;
    let e = &mut hc.extra;
    if !e.get("RestartPolicy").is_some_and(Value::is_object) {
        e.insert("RestartPolicy".into(), policy.to_json());
    }
    e.insert("Runtime".into(), json!("runc"));
    // Docker's default swap: as much again as the memory limit
    let (mem, swap) = (int(e, "Memory")?, int(e, "MemorySwap")?);
    if mem > 0 && swap == 0 {
        e.insert("MemorySwap".into(), json!(mem * 2));
    }
    Ok(())
}

/// The limits to give the container's cgroup.
pub fn of(hc: &HostConfig) -> Resources {
    let m = &hc.extra;
    let pos = |k: &str| int(m, k).ok().filter(|&v| v > 0);
    let mut r = Resources {
        cpu_shares: pos("CpuShares").map(|v| v as u64),
        cpu_period: pos("CpuPeriod").map(|v| v as u64),
        cpu_quota: pos("CpuQuota"),
        cpuset_cpus: text(m, "CpusetCpus"),
        cpuset_mems: text(m, "CpusetMems"),
        memory: pos("Memory"),
        memory_swap: int(m, "MemorySwap").ok().filter(|&v| v > 0 || v == -1),
        memory_reservation: pos("MemoryReservation"),
        pids_limit: pos("PidsLimit"),
        blkio_weight: pos("BlkioWeight").map(|v| v as u16),
    };
    if let Some(n) = pos("NanoCpus") {
        // Docker's --cpus: a quota over a 100 ms period
        r.cpu_period = Some(100_000);
        r.cpu_quota = Some(n * 100_000 / 1_000_000_000);
    }
    r
}

/// `GroupAdd`: numbers (docker-py sends ints or strings) or group names.
pub fn groups(hc: &HostConfig) -> Result<Vec<String>> {
    let Some(v) = hc.extra.get("GroupAdd").filter(|v| !v.is_null()) else {
        return Ok(vec![]);
    };
    let list = v
        .as_array()
        .ok_or_else(|| NetError::invalid("GroupAdd: a list of groups is expected"))?;
    list.iter()
        .map(|g| match g {
            Value::String(s) if !s.is_empty() => Ok(s.clone()),
            Value::Number(n) if n.is_u64() => Ok(n.to_string()),
            other => Err(NetError::invalid(format!(
                "GroupAdd: invalid group {other}"
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hc(v: Value) -> HostConfig {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn defaults_and_refusals() {
        let mut h = hc(json!({"Memory": 10_000_000}));
        check_create(&mut h).unwrap();
        assert_eq!(h.extra["MemorySwap"], 20_000_000);
        assert_eq!(h.extra["Runtime"], "runc");
        assert_eq!(h.extra["RestartPolicy"]["Name"], "no");
        let err = |v: Value| check_create(&mut hc(v)).unwrap_err().message;
        assert_eq!(
            err(json!({"Memory": 1000})),
            "Minimum memory limit allowed is 6MB"
        );
        assert_eq!(
            err(json!({"Runtime": "kata"})),
            "Unknown runtime specified kata"
        );
        assert_eq!(
            err(json!({"AutoRemove": true, "RestartPolicy": {"Name": "always"}})),
            "can't create 'AutoRemove' container with restart policy"
        );
        assert!(err(json!({"GroupAdd": [true]})).contains("invalid group"));
    }

    #[test]
    fn limits_for_the_cgroup() {
        let r = of(&hc(
            json!({"CpuShares": 512, "Memory": 300 << 20, "MemorySwap": -1,
                              "NanoCpus": 500_000_000, "PidsLimit": 0}),
        ));
        assert_eq!(r.cpu_shares, Some(512));
        assert_eq!(r.memory, Some(300 << 20));
        assert_eq!(r.memory_swap, Some(-1));
        assert_eq!((r.cpu_period, r.cpu_quota), (Some(100_000), Some(50_000)));
        assert_eq!(r.pids_limit, None);
        assert!(of(&hc(json!({}))).is_empty());
        assert_eq!(
            groups(&hc(json!({"GroupAdd": [1000, "staff"]}))).unwrap(),
            ["1000", "staff"]
        );
    }
}

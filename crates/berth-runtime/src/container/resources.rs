//! The cgroup limits berth applies to a container (Docker's `HostConfig` resources), as the
//! OCI `linux.resources` object: written into the bundle at start, handed to `runc update`
//! for a running container.

use serde_json::{json, Map, Value};

/// What Docker calls the container's resources; `None`/0 means "not limited".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpu_shares: Option<u64>,
    pub cpu_period: Option<u64>,
    pub cpu_quota: Option<i64>,
    pub cpuset_cpus: Option<String>,
    pub cpuset_mems: Option<String>,
    pub memory: Option<i64>,
    /// Memory + swap; -1: unlimited swap.
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    /// -1: unlimited.
    pub pids_limit: Option<i64>,
    pub blkio_weight: Option<u16>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Resources::default()
    }

    /// The OCI `LinuxResources` JSON (runc's `update -r` takes the same object).
    pub fn to_oci(&self) -> Value {
        let mut out = Map::new();
        let mut cpu = Map::new();
        if let Some(v) = self.cpu_shares {
            cpu.insert("shares".into(), json!(v));
        }
        if let Some(v) = self.cpu_period {
            cpu.insert("period".into(), json!(v));
        }
        if let Some(v) = self.cpu_quota {
            cpu.insert("quota".into(), json!(v));
        }
        if let Some(v) = &self.cpuset_cpus {
            cpu.insert("cpus".into(), json!(v));
        }
        if let Some(v) = &self.cpuset_mems {
            cpu.insert("mems".into(), json!(v));
        }
        if !cpu.is_empty() {
            out.insert("cpu".into(), Value::Object(cpu));
        }
        let mut mem = Map::new();
        if let Some(v) = self.memory {
            mem.insert("limit".into(), json!(v));
        }
        if let Some(v) = self.memory_swap {
            mem.insert("swap".into(), json!(v));
        }
        if let Some(v) = self.memory_reservation {
            mem.insert("reservation".into(), json!(v));
        }
        if !mem.is_empty() {
            out.insert("memory".into(), Value::Object(mem));
        }
        if let Some(v) = self.pids_limit {
            out.insert("pids".into(), json!({ "limit": v }));
        }
        if let Some(v) = self.blkio_weight {
            out.insert("blockIO".into(), json!({ "weight": v }));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_set() {
        assert_eq!(Resources::default().to_oci(), json!({}));
        let r = Resources {
            cpu_shares: Some(512),
            memory: Some(300 << 20),
            memory_swap: Some(-1),
            pids_limit: Some(50),
            ..Default::default()
        };
        assert_eq!(
            r.to_oci(),
            json!({"cpu": {"shares": 512}, "memory": {"limit": 314572800, "swap": -1},
                   "pids": {"limit": 50}})
        );
        // the bundle's typed resources accept it
        let typed: oci_spec::runtime::LinuxResources = serde_json::from_value(r.to_oci()).unwrap();
        assert_eq!(typed.cpu().as_ref().unwrap().shares(), Some(512));
    }
}

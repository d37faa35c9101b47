//! `POST /containers/{id}/update`: new cgroup limits and restart policy. Docker's rule: a
//! value left at zero keeps what the container had. A running container gets the limits
//! through `runc update` first; the record changes only once they are applied.

use super::resources::{self, UPDATABLE};
use super::restart::Policy;
use super::{blocking, Engine, Result};
use berth_net::NetError;
use serde_json::{Map, Value};
use std::sync::Arc;

fn is_zero(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

impl Engine {
    /// Returns Docker's warnings (none).
    pub async fn update_container(
        self: &Arc<Self>,
        key: &str,
        body: Map<String, Value>,
    ) -> Result<Vec<String>> {
        let c = self.find(key)?;
        resources::check(&body)?;
        let policy = match body.get("RestartPolicy").filter(|p| !p.is_null()) {
            Some(p) => {
                // an empty name leaves the policy as it is (Docker's `docker update` without --restart)
                if p.get("Name")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    None
                } else {
                    Some((Policy::from_json(Some(p))?, p.clone()))
                }
            }
            None => None,
        };
        let _op = c.op.lock().await;
        let rec = c.snapshot();
        let cannot =
            |why: String| NetError::conflict(format!("Cannot update container {}: {why}", rec.id));
        if policy.as_ref().is_some_and(|(p, _)| *p != Policy::No) && rec.host_config.auto_remove {
            return Err(cannot(
                "Restart policy cannot be updated because AutoRemove is enabled for the container"
                    .into(),
            ));
        }
        let mut hc = rec.host_config.clone();
        let changes: Vec<(&str, &Value)> = UPDATABLE
            .iter()
            .filter_map(|k| body.get(*k).filter(|v| !is_zero(v)).map(|v| (*k, v)))
            .collect();
        for (k, v) in &changes {
            hc.extra.insert(k.to_string(), (*v).clone());
        }
        // a new memory limit above the swap limit needs a new swap limit too (Docker's check)
        let num = |k: &str| hc.extra.get(k).and_then(Value::as_i64).unwrap_or(0);
        if body.get("MemorySwap").is_none_or(is_zero)
            && num("MemorySwap") > 0
            && num("Memory") > num("MemorySwap")
        {
            return Err(cannot("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time".into()));
        }
        if let Some((_, p)) = &policy {
            hc.extra.insert("RestartPolicy".into(), p.clone());
        }
        if !changes.is_empty() && rec.running() {
            let rt = self.rt.clone();
            let (id, r) = (c.id.clone(), resources::of(&hc));
            blocking(move || rt.update(&id, &r)).await.map_err(|e| {
                NetError::internal(format!("Cannot update container {}: {}", c.id, e.message))
            })?;
        }
        self.update(&c, |r| r.host_config = hc)?;
        Ok(vec![])
    }
}

//! The project's networks on the daemon: created with docker-compose's labels when missing,
//! checked against the file when present (docker-compose's `check_remote_network_config`),
//! required to exist when external.

use super::api::{self, COMPOSE_VERSION, NETWORK, PROJECT, VERSION};
use super::model::{Network, Project};
use crate::client::Client;
use anyhow::bail;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// The networks the services use, by their key in the file, with their definitions.
pub fn used(p: &Project, services: &[String]) -> BTreeMap<String, Network> {
    let mut out = BTreeMap::new();
    for name in services {
        let s = p.service(name).expect("validated");
        for (key, _) in s.attachments() {
            let def = p.networks.get(&key).cloned().unwrap_or_default();
            out.insert(key, def);
        }
    }
    out
}

/// The `POST /networks/create` body, as docker-py sends it for docker-compose.
pub fn create_body(p: &Project, key: &str, def: &Network) -> Value {
    let mut labels: BTreeMap<String, String> = def.labels.clone().unwrap_or_default();
    labels.insert(PROJECT.into(), p.name.clone());
    labels.insert(NETWORK.into(), key.to_string());
    labels.insert(VERSION.into(), COMPOSE_VERSION.into());
    let ipam = def.ipam.as_ref().map(|i| {
        let config: Vec<Value> = i
            .config
            .iter()
            .map(|c| {
                json!({
                    "Subnet": c.subnet, "IPRange": c.ip_range, "Gateway": c.gateway,
                    "AuxiliaryAddresses": c.aux_addresses,
                })
            })
            .collect();
        let mut m = Map::new();
        m.insert(
            "Driver".into(),
            json!(i.driver.as_deref().unwrap_or("default")),
        );
        m.insert("Config".into(), json!(config));
        if let Some(o) = &i.options {
            m.insert("Options".into(), json!(o));
        }
        Value::Object(m)
    });
    let mut body = json!({
        "Name": def.full_name(&p.name, key),
        "Driver": def.driver,
        "Options": def.driver_opts,
        "IPAM": ipam,
        "CheckDuplicate": true,
        "Labels": labels,
        "Attachable": def.attachable.unwrap_or(true),
    });
    if def.internal == Some(true) {
        body["Internal"] = json!(true);
    }
    if def.enable_ipv6 == Some(true) {
        body["EnableIPv6"] = json!(true);
    }
    // docker-py leaves out what is unset (None) rather than sending null
    if let Value::Object(m) = &mut body {
        m.retain(|_, v| !v.is_null());
    }
    body
}

/// What differs between the network on the daemon and the file, as docker-compose words it
/// (`Network "x" needs to be recreated - driver has changed`).
pub fn changed(remote: &Value, def: &Network) -> Option<String> {
    if let Some(d) = &def.driver {
        if remote["Driver"].as_str() != Some(d) {
            return Some("driver".into());
        }
    }
    let ropts = remote["Options"].as_object().cloned().unwrap_or_default();
    let lopts = def.driver_opts.clone().unwrap_or_default();
    let keys: std::collections::BTreeSet<&String> = ropts.keys().chain(lopts.keys()).collect();
    for k in keys {
        if ropts.get(k).and_then(Value::as_str) != lopts.get(k).map(String::as_str) {
            return Some(format!("option \"{k}\""));
        }
    }
    if let Some(i) = &def.ipam {
        if let Some(d) = &i.driver {
            if remote["IPAM"]["Driver"].as_str() != Some(d) {
                return Some("IPAM driver".into());
            }
        }
        if !i.config.is_empty() {
            let remote_cfg = remote["IPAM"]["Config"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if remote_cfg.len() != i.config.len() {
                return Some("IPAM configs".into());
            }
            for lc in &i.config {
                let Some(rc) = remote_cfg
                    .iter()
                    .find(|r| r["Subnet"].as_str() == lc.subnet.as_deref())
                else {
                    return Some("IPAM config subnet".into());
                };
                if lc.gateway.is_some() && rc["Gateway"].as_str() != lc.gateway.as_deref() {
                    return Some("IPAM config gateway".into());
                }
                if rc["IPRange"].as_str() != lc.ip_range.as_deref() {
                    return Some("IPAM config ip_range".into());
                }
            }
        }
    }
    if let Some(internal) = def.internal {
        if remote["Internal"].as_bool().unwrap_or(false) != internal {
            return Some("internal".into());
        }
    }
    if let Some(v6) = def.enable_ipv6 {
        if remote["EnableIPv6"].as_bool().unwrap_or(false) != v6 {
            return Some("enable_ipv6".into());
        }
    }
    None
}

/// Makes sure the network exists as the file describes it; the name when this call created it.
pub async fn ensure(
    c: &Client,
    p: &Project,
    key: &str,
    def: &Network,
) -> anyhow::Result<Option<String>> {
    let full = def.full_name(&p.name, key);
    let remote = api::inspect_network(c, &full).await?;
    if def.external {
        if remote.is_none() {
            bail!("Network {full} declared as external, but could not be found. Please create the network manually using `berth network create {full}` and try again.");
        }
        return Ok(None);
    }
    if let Some(r) = remote {
        if let Some(what) = changed(&r, def) {
            bail!("Network \"{full}\" needs to be recreated - {what} has changed");
        }
        return Ok(None);
    }
    let driver = match &def.driver {
        Some(d) => format!("driver \"{d}\""),
        None => "the default driver".into(),
    };
    eprintln!("Creating network \"{full}\" with {driver}");
    api::create_network(c, &create_body(p, key, def))
        .await
        .map_err(|e| anyhow::anyhow!("network \"{full}\": {}", super::up::daemon_text(&e)))?;
    Ok(Some(full))
}

//! `docker ps --filter`: id, name, status, label, network, ancestor, exited.

use super::{Engine, Result};
use berth_api::{ContainerSummary, Filters};
use berth_net::NetError;

const ACCEPTED: &[&str] = &[
    "ancestor",
    "before",
    "expose",
    "exited",
    "health",
    "id",
    "isolation",
    "is-task",
    "label",
    "name",
    "network",
    "publish",
    "since",
    "status",
    "volume",
];
const STATUSES: &[&str] = &[
    "created",
    "restarting",
    "running",
    "removing",
    "paused",
    "exited",
    "dead",
];

fn regex_match(pattern: &str, s: &str) -> bool {
    pattern == s
        || regex::Regex::new(pattern)
            .map(|r| r.is_match(s))
            .unwrap_or(false)
}

pub fn matches(e: &Engine, c: &ContainerSummary, f: &Filters) -> Result<bool> {
    for (k, vals) in f {
        if !ACCEPTED.contains(&k.as_str()) {
            return Err(NetError::invalid(format!("Invalid filter '{k}'")));
        }
        if vals.is_empty() {
            continue;
        }
        let ok = match k.as_str() {
            "id" => vals.iter().any(|v| c.id.starts_with(v.as_str())),
            "name" => vals.iter().any(|v| {
                let name = c.names[0].trim_start_matches('/');
                regex_match(v.trim_start_matches('/'), name)
            }),
            "status" => {
                for v in vals {
                    if !STATUSES.contains(&v.as_str()) {
                        return Err(NetError::invalid(format!("Invalid filter 'status={v}'")));
                    }
                }
                vals.contains(&c.state)
            }
            "exited" => {
                let code = c
                    .status
                    .strip_prefix("Exited (")
                    .and_then(|s| s.split(')').next())
                    .map(str::to_string);
                vals.iter().any(|v| Some(v) == code.as_ref())
            }
            "label" => vals.iter().all(|v| match v.split_once('=') {
                Some((k, val)) => c.labels.get(k).map(String::as_str) == Some(val),
                None => c.labels.contains_key(v.as_str()),
            }),
            "ancestor" => vals.iter().any(|v| {
                c.image == *v
                    || c.image_id
                        .trim_start_matches("sha256:")
                        .starts_with(v.trim_start_matches("sha256:"))
            }),
            "network" => {
                let nets = c.network_settings["Networks"]
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                vals.iter().any(|v| {
                    nets.iter().any(|(name, ep)| {
                        name == v
                            || ep["NetworkID"]
                                .as_str()
                                .is_some_and(|id| !id.is_empty() && id.starts_with(v.as_str()))
                    }) || e
                        .net
                        .network_ref(v)
                        .is_ok_and(|n| nets.contains_key(&n.name))
                })
            }
            // a volume's name or a mount's path in the container (Docker's `volume=`)
            "volume" => vals.iter().any(|v| {
                c.mounts
                    .iter()
                    .any(|m| m["Name"].as_str() == Some(v) || m["Destination"].as_str() == Some(v))
            }),
            _ => true,
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

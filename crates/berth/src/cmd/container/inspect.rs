//! `inspect` (any object, tried in docker's order), `container inspect`, and `port`.

use super::ports::{join_host_port, natural_less};
use super::{daemon_status, path, render, ContainerInspectArgs, InspectArgs, PortArgs};
use crate::client::{query_escape, Client};
use crate::format;
use anyhow::bail;
use hyper::StatusCode;
use serde_json::Value;

/// docker's object types, in the order `docker inspect` tries them when no `--type` is given
/// (swarm objects are skipped: berth is never a swarm manager).
const TYPES: &[&str] = &[
    "config",
    "container",
    "image",
    "network",
    "node",
    "plugin",
    "secret",
    "service",
    "task",
    "volume",
];
const AUTODETECT: &[&str] = &["container", "image", "network", "volume", "plugin"];

fn object_path(kind: &str, name: &str, size: bool) -> String {
    let n = query_escape(name);
    match kind {
        "container" => path(name, if size { "/json?size=1" } else { "/json" }),
        "image" => format!("/images/{n}/json"),
        "network" => format!("/networks/{n}"),
        "volume" => format!("/volumes/{n}"),
        "plugin" => format!("/plugins/{n}/json"),
        swarm => format!("/{swarm}s/{n}"),
    }
}

/// docker's `isErrSkippable`: try the next type.
fn skippable(e: &anyhow::Error) -> bool {
    let msg = render(e);
    daemon_status(e) == Some(StatusCode::NOT_FOUND)
        || msg.contains("not supported")
        || msg.contains("invalid reference format")
}

async fn find(c: &Client, name: &str, kind: Option<&str>, size: bool) -> Result<Value, String> {
    let Some(kind) = kind else {
        for kind in AUTODETECT {
            match c.get_json(&object_path(kind, name, size)).await {
                Ok(v) => {
                    if size && *kind != "container" {
                        eprintln!("WARNING: --size ignored for {kind}");
                    }
                    return Ok(v);
                }
                Err(e) if skippable(&e) => continue,
                Err(e) => return Err(render(&e)),
            }
        }
        return Err(format!("Error: No such object: {name}"));
    };
    c.get_json(&object_path(kind, name, size))
        .await
        .map_err(|e| render(&e))
}

pub async fn inspect(c: &Client, a: InspectArgs) -> anyhow::Result<i32> {
    let kind = a.kind.as_deref();
    if let Some(k) = kind {
        if k.is_empty() {
            bail!("type is empty: must be one of \"{}\"", TYPES.join("\", \""));
        }
        if !TYPES.contains(&k) {
            bail!(
                "unknown type: {k:?}: must be one of \"{}\"",
                TYPES.join("\", \"")
            );
        }
    }
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    for n in &a.names {
        match find(c, n, kind, a.size).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    Ok(format::print_inspect(a.format.as_deref(), &found, errors))
}

pub async fn container_inspect(c: &Client, a: ContainerInspectArgs) -> anyhow::Result<i32> {
    let (mut found, mut errors) = (Vec::new(), Vec::new());
    for n in &a.names {
        match find(c, n, Some("container"), a.size).await {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    Ok(format::print_inspect(a.format.as_deref(), &found, errors))
}

/// The lines `docker port` prints for a container's `NetworkSettings.Ports`.
fn port_lines(ports: &Value, want: Option<&str>, container: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let bindings = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .map(|b| {
                join_host_port(
                    b["HostIp"].as_str().unwrap_or_default(),
                    b["HostPort"].as_str().unwrap_or_default(),
                )
            })
            .collect()
    };
    match want {
        Some(spec) => {
            let (port, proto) = spec.split_once('/').unwrap_or((spec, ""));
            let proto = if proto.is_empty() { "tcp" } else { proto };
            if port.parse::<u16>().is_err() {
                bail!(
                    "Error: invalid port ({port}): strconv.ParseUint: parsing {port:?}: {}",
                    if port.parse::<u64>().is_ok() {
                        "value out of range"
                    } else {
                        "invalid syntax"
                    }
                );
            }
            out = bindings(&ports[format!("{port}/{proto}")]);
            if out.is_empty() {
                bail!("Error: No public port '{spec}' published for {container}");
            }
        }
        None => {
            for (from, frontends) in ports.as_object().into_iter().flatten() {
                out.extend(
                    bindings(frontends)
                        .into_iter()
                        .map(|b| format!("{from} -> {b}")),
                );
            }
        }
    }
    out.sort_by(|x, y| match (natural_less(x, y), natural_less(y, x)) {
        (true, _) => std::cmp::Ordering::Less,
        (_, true) => std::cmp::Ordering::Greater,
        _ => std::cmp::Ordering::Equal,
    });
    Ok(out)
}

pub async fn port(c: &Client, a: PortArgs) -> anyhow::Result<i32> {
    let v = c.get_json(&path(&a.container, "/json")).await?;
    let lines = port_lines(
        &v["NetworkSettings"]["Ports"],
        a.port.as_deref(),
        &a.container,
    )?;
    if !lines.is_empty() {
        println!("{}", lines.join("\n"));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn port_output() {
        let ports = json!({
            "7000/tcp": null,
            "81/udp": [{"HostIp":"127.0.0.1","HostPort":"18081"}],
            "80/tcp": [{"HostIp":"::","HostPort":"18080"},{"HostIp":"0.0.0.0","HostPort":"18080"}],
        });
        assert_eq!(
            port_lines(&ports, None, "c").unwrap(),
            [
                "80/tcp -> 0.0.0.0:18080",
                "80/tcp -> [::]:18080",
                "81/udp -> 127.0.0.1:18081"
            ]
        );
        assert_eq!(
            port_lines(&ports, Some("80"), "c").unwrap(),
            ["0.0.0.0:18080", "[::]:18080"]
        );
        assert_eq!(
            port_lines(&ports, Some("81/udp"), "c").unwrap(),
            ["127.0.0.1:18081"]
        );
        assert_eq!(
            port_lines(&ports, Some("7000"), "c")
                .unwrap_err()
                .to_string(),
            "Error: No public port '7000' published for c"
        );
        assert_eq!(
            port_lines(&ports, Some("http"), "c")
                .unwrap_err()
                .to_string(),
            "Error: invalid port (http): strconv.ParseUint: parsing \"http\": invalid syntax"
        );
    }

    #[test]
    fn object_paths() {
        assert_eq!(
            object_path("container", "web", true),
            "/containers/web/json?size=1"
        );
        assert_eq!(
            object_path("image", "busybox:latest", false),
            "/images/busybox%3Alatest/json"
        );
        assert_eq!(object_path("network", "n1", false), "/networks/n1");
        assert_eq!(object_path("service", "s", false), "/services/s");
    }
}

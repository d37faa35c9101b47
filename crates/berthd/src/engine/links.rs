//! Legacy `--link` on the default bridge, where there is no embedded DNS: the target's name
//! and alias go into `/etc/hosts`, and Docker's link environment variables into the process.
//! On user-defined networks links are names of the embedded DNS instead (berth-net resolver).

use super::record::Record;
use super::{Engine, Result};
use berth_api::HostConfig;
use berth_net::resolver::names::parse_link;
use berth_net::NetError;

/// One resolved link of a container on the default bridge.
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    pub alias: String,
    /// Target's name, without '/'.
    pub name: String,
    pub hostname: String,
    pub ip: String,
    pub env: Vec<String>,
    /// `port/proto`, sorted by port.
    pub ports: Vec<(u16, String)>,
}

/// Docker's link variables (`links.Link.ToEnv`), for a link named `alias` from `parent`.
pub fn env_of(parent: &str, l: &Link) -> Vec<String> {
    let p = l.alias.to_ascii_uppercase().replace('-', "_");
    let mut env = Vec::new();
    if let Some((port, proto)) = l.ports.first() {
        env.push(format!("{p}_PORT={proto}://{}:{port}", l.ip));
    }
    for (port, proto) in &l.ports {
        let k = format!("{p}_PORT_{port}_{}", proto.to_ascii_uppercase());
        env.push(format!("{k}={proto}://{}:{port}", l.ip));
        env.push(format!("{k}_ADDR={}", l.ip));
        env.push(format!("{k}_PORT={port}"));
        env.push(format!("{k}_PROTO={proto}"));
    }
    env.push(format!("{p}_NAME=/{parent}/{}", l.alias));
    for e in &l.env {
        let Some((k, v)) = e.split_once('=') else {
            continue;
        };
        if matches!(k, "HOME" | "HOSTNAME" | "PATH") {
            continue;
        }
        env.push(format!("{p}_ENV_{k}={v}"));
    }
    env
}

/// The `/etc/hosts` line of a link: address, alias, then the target's hostname and name.
pub fn hosts_line(l: &Link) -> String {
    let mut names = vec![l.alias.as_str()];
    for n in [l.hostname.as_str(), l.name.as_str()] {
        if !n.is_empty() && !names.contains(&n) {
            names.push(n);
        }
    }
    format!("{}\t{}\n", l.ip, names.join(" "))
}

impl Engine {
    /// `DELETE /containers/{parent}/{alias}?link=1`: the parent forgets the link (its record,
    /// and at once the line of its `/etc/hosts`), as Docker's `rmLink`. The target is left
    /// alone; the variables already in the parent's process stay (no process's environment
    /// can change), as in Docker.
    pub async fn remove_link(&self, name: &str) -> Result<()> {
        let full = name.trim_start_matches('/');
        let not_found = || NetError::not_found(format!("No such container: {name}"));
        let Some((parent, alias)) = full.rsplit_once('/') else {
            // Docker resolves the name first: only a container's own name is this conflict
            self.find(full).map_err(|_| not_found())?;
            return Err(NetError::internal(
                "Conflict, cannot remove the default link name of the container",
            ));
        };
        let c = self.find(parent).map_err(|_| not_found())?;
        let _op = c.op.lock().await;
        let alias = alias.to_ascii_lowercase();
        let is_it = |spec: &String| parse_link(spec).is_some_and(|(a, _)| a == alias);
        let linked = c.snapshot().host_config.links.iter().flatten().any(is_it);
        if !linked {
            return Err(not_found());
        }
        let rec = self.update(&c, |r| {
            if let Some(links) = r.host_config.links.as_mut() {
                links.retain(|l| !is_it(l));
                if links.is_empty() {
                    r.host_config.links = None;
                }
            }
        })?;
        if rec.running() && !rec.shares_netns() {
            self.write_hosts(&rec)?;
        }
        Ok(())
    }

    /// The container's links when it runs on the default bridge (nothing elsewhere).
    fn legacy_link_specs(hc: &HostConfig) -> Vec<&String> {
        if berth_api::NetworkMode::parse(&hc.network_mode) != berth_api::NetworkMode::Bridge {
            return vec![];
        }
        hc.links.iter().flatten().collect()
    }

    /// At create: every target of a default-bridge link must exist.
    pub(super) fn check_links(&self, hc: &HostConfig) -> Result<()> {
        for spec in Self::legacy_link_specs(hc) {
            let (_, target) = parse_link(spec)
                .ok_or_else(|| NetError::invalid(format!("invalid link format: {spec}")))?;
            self.find(&target)
                .map_err(|_| NetError::invalid(format!("could not get container for {target}")))?;
        }
        Ok(())
    }

    /// At start: the links, resolved against running targets on the default bridge.
    pub(super) fn legacy_links(&self, rec: &Record) -> Result<Vec<Link>> {
        let mut out = Vec::new();
        for spec in Self::legacy_link_specs(&rec.host_config) {
            let (alias, target) = parse_link(spec)
                .ok_or_else(|| NetError::invalid(format!("invalid link format: {spec}")))?;
            let t = self
                .find(&target)
                .map_err(|_| NetError::invalid(format!("could not get container for {target}")))?
                .snapshot();
            if !t.running() {
                return Err(NetError::invalid(format!(
                    "Cannot link to a non running container: /{} AS /{}/{alias}",
                    t.name, rec.name
                )));
            }
            let ip = self
                .net
                .endpoints_of(&t.id)
                .into_iter()
                .find(|(net, _)| net == "bridge")
                .map(|(_, s)| s.ip_address)
                .unwrap_or_default();
            // a container with many ports keeps them compacted in its record
            let (config, _) = super::ports::shown(&t);
            let mut ports: Vec<(u16, String)> = config
                .exposed_ports
                .iter()
                .flatten()
                .filter_map(|(k, _)| {
                    let (p, proto) = k.split_once('/').unwrap_or((k, "tcp"));
                    Some((p.parse().ok()?, proto.to_string()))
                })
                .collect();
            ports.sort();
            out.push(Link {
                alias,
                name: t.name.clone(),
                hostname: t.config.hostname.clone(),
                ip,
                env: t.config.env.clone().unwrap_or_default(),
                ports,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_link_variables() {
        let l = Link {
            alias: "my-db".into(),
            name: "db".into(),
            hostname: "0123456789ab".into(),
            ip: "172.17.0.2".into(),
            env: vec!["PATH=/bin".into(), "PG=1".into(), "HOME=/".into()],
            ports: vec![(5432, "tcp".into()), (5433, "udp".into())],
        };
        assert_eq!(
            env_of("web", &l),
            [
                "MY_DB_PORT=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP=tcp://172.17.0.2:5432",
                "MY_DB_PORT_5432_TCP_ADDR=172.17.0.2",
                "MY_DB_PORT_5432_TCP_PORT=5432",
                "MY_DB_PORT_5432_TCP_PROTO=tcp",
                "MY_DB_PORT_5433_UDP=udp://172.17.0.2:5433",
                "MY_DB_PORT_5433_UDP_ADDR=172.17.0.2",
                "MY_DB_PORT_5433_UDP_PORT=5433",
                "MY_DB_PORT_5433_UDP_PROTO=udp",
                "MY_DB_NAME=/web/my-db",
                "MY_DB_ENV_PG=1",
            ]
        );
        assert_eq!(hosts_line(&l), "172.17.0.2\tmy-db 0123456789ab db\n");
    }
}

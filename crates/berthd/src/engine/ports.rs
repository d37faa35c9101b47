//! A container's published ports: checked at create, published once its networks are
//! attached, taken back when they are released; and shown by inspect and ps in Docker's shapes.
//! The decisions and the kernel work are the network controller's (`berth_net::portmap`).

use super::port_runs;
use super::record::Record;
use super::{Engine, Result};
use berth_api::{Config, HostConfig, PortBinding};
use berth_net::portmap::{runs, spec, Want};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// Docker's create-time checks of `PortBindings` and `ExposedPorts`; every published port is
/// also exposed (the docker CLI adds them itself; API clients may not).
pub(super) fn check_and_expose(config: &mut Config, hc: &HostConfig) -> Result<()> {
    spec::wants(
        config.exposed_ports.as_ref(),
        hc.port_bindings.as_ref(),
        hc.publish_all_ports,
    )?;
    if let Some(b) = hc.port_bindings.as_ref().filter(|b| !b.is_empty()) {
        let exposed = config.exposed_ports.get_or_insert_with(Default::default);
        for key in b.keys() {
            let (proto, port) = spec::parse_key(key)?;
            exposed
                .entry(format!("{port}/{}", proto.as_str()))
                .or_insert_with(|| json!({}));
        }
    }
    Ok(())
}

/// A container with thousands of published ports goes through as many JSON values and
/// parse nodes at create and start; glibc keeps what is freed in its free lists, where it
/// would stay in berthd's RSS for good. Giving it back costs ~1 ms, only for such containers.
pub(super) fn give_back_memory_if_big(rec: &Record) {
    let n = rec
        .host_config
        .port_bindings
        .as_ref()
        .map_or(0, |b| b.len())
        + rec.config.exposed_ports.as_ref().map_or(0, |e| e.len())
        + rec.port_runs.as_ref().map_or(0, |r| r.len());
    if n > 1000 {
        // in the background: walking the heap takes milliseconds nobody has to wait for
        tokio::task::spawn_blocking(|| {
            // SAFETY: glibc's malloc_trim only walks the allocator's own free lists.
            unsafe {
                libc::malloc_trim(0);
            }
        });
    }
}

/// The bindings to make: those kept in runs translate directly (10,001 of them in ~1 ms);
/// the rest, and `-P`, go through Docker's rules.
pub(super) fn wants_of(rec: &Record) -> Result<Vec<Want>> {
    let runs = match &rec.port_runs {
        Some(r) if !rec.host_config.publish_all_ports => r,
        // -P needs every exposed port and binding at once
        _ => {
            let (exposed, bindings) =
                port_runs::whole(rec.port_runs.as_ref(), &rec.config, &rec.host_config);
            return spec::wants(
                exposed.as_ref(),
                bindings.as_ref(),
                rec.host_config.publish_all_ports,
            );
        }
    };
    let mut out = spec::wants(None, rec.host_config.port_bindings.as_ref(), false)?;
    for r in &runs.bound {
        let host_ip = spec::parse_host_ip(&r.host_ip)?;
        for i in 0..r.count {
            let h = (r.host_first as u32 + i) as u16;
            out.push(Want {
                proto: r.proto,
                container_port: (r.first as u32 + i) as u16,
                host_ip,
                host_ports: Some((h, h)),
            });
        }
    }
    out.sort_by_key(|w| (w.container_port, w.proto));
    Ok(out)
}

/// The record's exposed ports, whole.
fn exposed_keys(rec: &Record) -> Vec<String> {
    let (exposed, _) = match &rec.port_runs {
        None => (rec.config.exposed_ports.clone(), None),
        Some(r) => port_runs::whole(Some(r), &rec.config, &HostConfig::default()),
    };
    exposed.into_iter().flatten().map(|(k, _)| k).collect()
}

/// `Config` and `HostConfig` as the container was created: what inspect shows.
pub fn shown(rec: &Record) -> (Config, HostConfig) {
    let (mut config, mut hc) = (rec.config.clone(), rec.host_config.clone());
    if let Some(r) = &rec.port_runs {
        port_runs::expand(r, &mut config, &mut hc);
    }
    (config, hc)
}

impl Engine {
    /// Publishes the container's ports on its first non-internal network. Host and
    /// container network modes publish nothing (Docker discards the bindings).
    pub(super) async fn publish_ports(&self, rec: &Record) -> Result<()> {
        if rec.shares_netns() {
            return Ok(());
        }
        let t0 = std::time::Instant::now();
        let wants = wants_of(rec)?;
        let t_parse = t0.elapsed();
        let r = self.net.publish(&rec.id, &wants).await.map(|_| ());
        give_back_memory_if_big(rec);
        tracing::debug!(
            "container {}: ports parsed in {t_parse:?}, published in {:?}",
            rec.short_id(),
            t0.elapsed() - t_parse
        );
        r
    }

    /// After a `network connect` of a running container: its ports, if none are published
    /// (it was only on internal networks, or the network carrying them was disconnected), go
    /// on the network that now can carry them, as Docker does. A failure leaves the container
    /// connected, without ports.
    pub(super) async fn publish_ports_again(&self, rec: &Record) {
        if let Err(e) = self.publish_ports(rec).await {
            tracing::warn!("container {}: publishing its ports: {e}", rec.short_id());
        }
    }

    /// Inspect's `NetworkSettings.Ports`: every exposed port (`null` when not published) and
    /// the bindings made; `{}` for a container that is not running.
    pub fn ports_map(&self, rec: &Record) -> BTreeMap<String, Option<Vec<PortBinding>>> {
        let mut m = BTreeMap::new();
        if !rec.running() {
            return m;
        }
        for k in exposed_keys(rec) {
            let key = match spec::parse_key(&k) {
                Ok((proto, port)) => format!("{port}/{}", proto.as_str()),
                Err(_) => k,
            };
            m.insert(key, None);
        }
        for (k, list) in runs::port_map(&self.net.published(&rec.id)) {
            m.insert(k, Some(list));
        }
        m
    }

    /// `GET /containers/json`'s `Ports`: one entry per binding, and one without `IP` and
    /// `PublicPort` per exposed port that is not published.
    pub fn ports_list(&self, rec: &Record) -> Vec<Value> {
        let mut out = Vec::new();
        for (key, bindings) in self.ports_map(rec) {
            let Ok((proto, port)) = spec::parse_key(&key) else {
                continue;
            };
            let ty = proto.as_str();
            match bindings {
                None => out.push(json!({"PrivatePort": port, "Type": ty})),
                Some(list) => {
                    for b in list {
                        let public: u16 = b.host_port.parse().unwrap_or(0);
                        out.push(json!({"IP": b.host_ip, "PrivatePort": port, "PublicPort": public, "Type": ty}));
                    }
                }
            }
        }
        if !rec.running() {
            // stopped: the exposed ports only
            for k in exposed_keys(rec) {
                if let Ok((proto, port)) = spec::parse_key(&k) {
                    out.push(json!({"PrivatePort": port, "Type": proto.as_str()}));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_checks_and_exposes() {
        let mut config = Config::default();
        let hc: HostConfig = serde_json::from_value(json!({
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "8080"}], "53/udp": null}
        }))
        .unwrap();
        check_and_expose(&mut config, &hc).unwrap();
        let keys: Vec<&String> = config.exposed_ports.as_ref().unwrap().keys().collect();
        assert_eq!(keys, ["53/udp", "80/tcp"]);

        let bad: HostConfig = serde_json::from_value(json!({
            "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "http"}]}
        }))
        .unwrap();
        let e = check_and_expose(&mut Config::default(), &bad).unwrap_err();
        assert_eq!(e.message, "invalid port specification: \"http\"");
        assert_eq!(e.kind, berth_net::ErrorKind::InvalidParameter);
    }
}

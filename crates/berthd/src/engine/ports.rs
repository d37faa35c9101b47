//! A container's published ports: checked at create, published once its networks are
//! attached, taken back when they are released; and shown by inspect and ps in Docker's shapes.
//! The decisions and the kernel work are the network controller's (`berth_net::portmap`).

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

fn wants_of(rec: &Record) -> Result<Vec<Want>> {
    spec::wants(
        rec.config.exposed_ports.as_ref(),
        rec.host_config.port_bindings.as_ref(),
        rec.host_config.publish_all_ports,
    )
}

impl Engine {
    /// Publishes the container's ports on its first non-internal network. Host and
    /// container network modes publish nothing (Docker discards the bindings).
    pub(super) async fn publish_ports(&self, rec: &Record) -> Result<()> {
        if rec.shares_netns() {
            return Ok(());
        }
        let wants = wants_of(rec)?;
        self.net.publish(&rec.id, &wants).await.map(|_| ())
    }

    /// Inspect's `NetworkSettings.Ports`: every exposed port (`null` when not published) and
    /// the bindings made; `{}` for a container that is not running.
    pub fn ports_map(&self, rec: &Record) -> BTreeMap<String, Option<Vec<PortBinding>>> {
        let mut m = BTreeMap::new();
        if !rec.running() {
            return m;
        }
        for k in rec.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
            let key = match spec::parse_key(k) {
                Ok((proto, port)) => format!("{port}/{}", proto.as_str()),
                Err(_) => k.clone(),
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
            for k in rec.config.exposed_ports.iter().flatten().map(|(k, _)| k) {
                if let Ok((proto, port)) = spec::parse_key(k) {
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

//! The topology as one picture: networks (driver, subnet, bridge, flags), their containers
//! (address, interface, veth, published ports) and remote peers; as text, dot or JSON.

use crate::controller::inspect::Model;
use crate::portmap::runs::Run;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Clone, Serialize)]
pub struct GContainer {
    pub id: String,
    pub name: String,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub ifname: String,
    pub veth: String,
    /// Remote endpoints: the host they live on.
    pub host: Option<String>,
    pub ports: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GNetwork {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnets: Vec<String>,
    pub bridge: Option<String>,
    pub internal: bool,
    pub icc: bool,
    pub containers: Vec<GContainer>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    pub networks: Vec<GNetwork>,
}

fn port_text(r: &Run) -> String {
    let c = if r.count > 1 {
        format!(
            "{}-{}",
            r.container_port,
            r.container_port as u32 + r.count - 1
        )
    } else {
        r.container_port.to_string()
    };
    let h = if r.count > 1 {
        format!("{}-{}", r.host_port, r.host_last())
    } else {
        r.host_port.to_string()
    };
    format!("{}:{h}->{c}/{}", r.host_ip, r.proto.as_str())
}

/// Builds the graph; `ports`: container id → published runs.
pub fn build(m: &Model, ports: &HashMap<String, Vec<Run>>) -> Graph {
    let mut nets: Vec<GNetwork> = m
        .networks
        .iter()
        .map(|n| GNetwork {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            subnets: n
                .subnets
                .iter()
                .map(|s| s.pool.subnet.to_string())
                .collect(),
            bridge: n
                .bridge
                .as_ref()
                .map(|b| b.name.clone())
                .or_else(|| n.overlay.as_ref().map(|o| format!("vxlan VNI {}", o.vni))),
            internal: n.internal,
            icc: n.bridge.as_ref().is_none_or(|b| b.icc),
            containers: vec![],
        })
        .collect();
    nets.sort_by(|a, b| a.name.cmp(&b.name));
    let plugin_nets: Vec<&str> = m
        .networks
        .iter()
        .filter(|n| n.plugin().is_some())
        .map(|n| n.id.as_str())
        .collect();
    for e in &m.endpoints {
        if let Some(n) = nets.iter_mut().find(|n| n.id == e.network_id) {
            // a plugin's host side is its own, not a veth of berth's
            let veth = if plugin_nets.contains(&n.id.as_str()) {
                String::new()
            } else {
                e.host_if.clone()
            };
            n.containers.push(GContainer {
                id: e.container_id.clone(),
                name: e.container_name.clone(),
                ipv4: e.ipv4.map(|a| a.to_string()),
                ipv6: e.ipv6.map(|a| a.to_string()),
                ifname: e.ifname.clone(),
                veth,
                host: None,
                ports: ports
                    .get(&e.container_id)
                    .map(|r| r.iter().map(port_text).collect())
                    .unwrap_or_default(),
            });
        }
    }
    for r in &m.remote {
        if let Some(n) = nets.iter_mut().find(|n| n.id == r.network_id) {
            n.containers.push(GContainer {
                id: r.container_id.clone(),
                name: r.container_name.clone(),
                ipv4: r.ipv4.map(|a| a.to_string()),
                ipv6: r.ipv6.map(|a| a.to_string()),
                ifname: String::new(),
                veth: String::new(),
                host: Some(format!("{} (VTEP {})", r.host, r.vtep)),
                ports: vec![],
            });
        }
    }
    for n in &mut nets {
        n.containers.sort_by(|a, b| a.name.cmp(&b.name));
    }
    Graph { networks: nets }
}

impl Graph {
    pub fn text(&self) -> String {
        let mut s = String::new();
        for n in &self.networks {
            let mut flags = vec![n.driver.clone()];
            flags.extend(n.subnets.iter().cloned());
            if let Some(b) = &n.bridge {
                flags.push(b.clone());
            }
            if n.internal {
                flags.push("internal".into());
            }
            if !n.icc {
                flags.push("icc=false".into());
            }
            s.push_str(&format!("{} ({})\n", n.name, flags.join(", ")));
            let k = n.containers.len();
            for (i, c) in n.containers.iter().enumerate() {
                let branch = if i + 1 == k { "└─" } else { "├─" };
                let mut parts = vec![c.ipv4.clone().or(c.ipv6.clone()).unwrap_or_default()];
                if let Some(h) = &c.host {
                    parts.push(format!("on {h}"));
                } else if c.veth.is_empty() {
                    parts.push(format!("{} (host side: the plugin's)", c.ifname));
                } else {
                    parts.push(format!("{} <-> {}", c.ifname, c.veth));
                }
                if !c.ports.is_empty() {
                    parts.push(format!("ports {}", c.ports.join(" ")));
                }
                s.push_str(&format!("  {branch} {} {}\n", c.name, parts.join("  ")));
            }
        }
        s
    }

    pub fn dot(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""));
        let mut s = String::from("graph berth {\n  rankdir=LR;\n  node [shape=box];\n");
        for n in &self.networks {
            let label = format!("{}\\n{} {}", n.name, n.driver, n.subnets.join(" "));
            s.push_str(&format!(
                "  {} [shape=ellipse, label={}];\n",
                q(&format!("net:{}", n.id)),
                q(&label)
            ));
            for c in &n.containers {
                s.push_str(&format!(
                    "  {} [label={}];\n  {} -- {} [label={}];\n",
                    q(&format!("ctr:{}", c.id)),
                    q(&c.name),
                    q(&format!("net:{}", n.id)),
                    q(&format!("ctr:{}", c.id)),
                    q(c.ipv4.as_deref().unwrap_or(""))
                ));
            }
        }
        s.push_str("}\n");
        s
    }
}

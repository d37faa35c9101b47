//! Checks across the merged project, before anything is created: every service has an image,
//! every network, service and dependency named exists, no dependency cycle, fixed addresses
//! lie in their network's subnet, no two services claim one host port or container name.
//! Messages name the service.

use super::model::{Project, Published, Service};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

pub fn project(p: &Project) -> Result<(), String> {
    let mut errors = Vec::new();
    for s in &p.services {
        service(p, s, &mut errors);
    }
    if errors.is_empty() {
        if let Err(e) = start_order(p) {
            errors.push(e);
        }
    }
    unique_claims(p, &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("\n"))
    }
}

fn service(p: &Project, s: &Service, errors: &mut Vec<String>) {
    let name = &s.name;
    let mut err = |m: String| errors.push(format!("{}: service \"{name}\": {m}", s.at));
    if s.image.as_deref().is_none_or(str::is_empty) {
        err("no image given (berth compose runs images, it does not build them)".into());
    }
    for d in s.depends_on.iter().flatten() {
        if p.service(d).is_none() {
            err(format!("depends on service \"{d}\", which is not defined"));
        }
    }
    for l in s.links.iter().flatten() {
        if p.service(&l.service).is_none() {
            err(format!(
                "links to service \"{}\", which is not defined",
                l.service
            ));
        }
    }
    if let Some(mode) = &s.network_mode {
        if let Some(other) = mode.strip_prefix("service:") {
            if p.service(other).is_none() {
                err(format!(
                    "uses the network stack of service \"{other}\", which is not defined"
                ));
            }
        }
        let shares_stack = mode.starts_with("container:") || mode.starts_with("service:");
        if shares_stack && s.ports.as_ref().is_some_and(|v| !v.is_empty()) {
            err(format!("cannot publish ports with network_mode {mode}: the ports belong to the other container"));
        }
    }
    for (net, cfg) in s.attachments() {
        let Some(def) = p.networks.get(&net) else {
            if net != "default" {
                err(format!(
                    "uses network \"{net}\", which is not defined under the top-level networks"
                ));
                continue;
            }
            // the implicit default network has no configured subnet
            for ip in [&cfg.ipv4_address, &cfg.ipv6_address].into_iter().flatten() {
                err(format!("fixed address {ip} on network \"default\" needs a subnet configured for it (networks.default.ipam.config)"));
            }
            continue;
        };
        let subnets: Vec<IpNet> = def
            .ipam
            .iter()
            .flat_map(|i| &i.config)
            .filter_map(|c| c.subnet.as_deref())
            .filter_map(|s| s.parse().ok())
            .collect();
        for (ip, v6) in [(&cfg.ipv4_address, false), (&cfg.ipv6_address, true)] {
            let Some(ip) = ip else { continue };
            let addr: IpAddr = match ip.parse::<IpAddr>() {
                Ok(a) if a.is_ipv6() == v6 => a,
                _ => {
                    err(format!(
                        "{} {ip:?} on network \"{net}\" is not an IPv{} address",
                        if v6 { "ipv6_address" } else { "ipv4_address" },
                        if v6 { 6 } else { 4 }
                    ));
                    continue;
                }
            };
            if def.external {
                continue; // the network's subnets are the daemon's to check
            }
            let family: Vec<&IpNet> = subnets
                .iter()
                .filter(|n| n.addr().is_ipv6() == v6)
                .collect();
            if family.is_empty() {
                err(format!(
                    "fixed address {ip} on network \"{net}\" needs a subnet configured for that network (networks.{net}.ipam.config)"
                ));
            } else if !family.iter().any(|n| n.contains(&addr)) {
                let list: Vec<String> = family.iter().map(|n| n.to_string()).collect();
                err(format!(
                    "address {ip} is outside the subnet of network \"{net}\" ({})",
                    list.join(", ")
                ));
            }
        }
    }
}

/// Services in an order that starts every dependency first (file order otherwise), or the
/// cycle that prevents one.
pub fn start_order(p: &Project) -> Result<Vec<String>, String> {
    let mut order: Vec<String> = Vec::new();
    let mut state: BTreeMap<&str, u8> = BTreeMap::new(); // 1 visiting, 2 done
    fn visit<'a>(
        p: &'a Project,
        s: &'a Service,
        state: &mut BTreeMap<&'a str, u8>,
        order: &mut Vec<String>,
        path: &mut Vec<&'a str>,
    ) -> Result<(), String> {
        match state.get(s.name.as_str()) {
            Some(2) => return Ok(()),
            Some(_) => {
                let start = path.iter().position(|n| *n == s.name).unwrap_or(0);
                let mut cycle: Vec<&str> = path[start..].to_vec();
                cycle.push(&s.name);
                return Err(format!(
                    "circular dependency between services: {}",
                    cycle.join(" -> ")
                ));
            }
            None => {}
        }
        state.insert(&s.name, 1);
        path.push(&s.name);
        for d in s.dependencies() {
            if let Some(dep) = p.service(&d) {
                visit(p, dep, state, order, path)?;
            }
        }
        path.pop();
        state.insert(&s.name, 2);
        order.push(s.name.clone());
        Ok(())
    }
    for s in &p.services {
        visit(p, s, &mut state, &mut order, &mut Vec::new())?;
    }
    Ok(order)
}

/// Two services cannot both have one container name or publish one host port.
fn unique_claims(p: &Project, errors: &mut Vec<String>) {
    let mut names: BTreeMap<&str, &str> = BTreeMap::new();
    let mut ports: BTreeMap<(String, u16, String), &str> = BTreeMap::new();
    for s in &p.services {
        if let Some(n) = &s.container_name {
            if let Some(other) = names.insert(n, &s.name) {
                errors.push(format!(
                    "{}: services \"{other}\" and \"{}\" both have container_name \"{n}\"",
                    s.at, s.name
                ));
            }
        }
        for port in s.ports.iter().flatten() {
            let Some(Published::Port(h)) = port.published else {
                continue;
            };
            let proto = port.protocol.clone().unwrap_or_else(|| "tcp".into());
            let ip = port.host_ip.clone().unwrap_or_default();
            let key = (ip.clone(), h, proto.clone());
            match ports.get(&key) {
                Some(other) if *other != s.name => errors.push(format!(
                    "{}: services \"{other}\" and \"{}\" both publish host port {}{h}/{proto}",
                    s.at,
                    s.name,
                    if ip.is_empty() {
                        String::new()
                    } else {
                        format!("{ip}:")
                    }
                )),
                _ => {
                    ports.insert(key, &s.name);
                }
            }
        }
    }
}

//! From the host to a container: the bridge route, and its published ports.

use super::attach::check_attachment;
use super::{route_dev, Ctx, Target};
use crate::endpoint::Endpoint;

pub(super) fn host_to(c: &mut Ctx, dname: &str, eps: &[&Endpoint], to: &Target) -> bool {
    let e = eps[0];
    let Some(net) = c.net(&e.network_id) else {
        return false;
    };
    let Some(ip) = e.ipv4.map(|n| n.addr()) else {
        return false;
    };
    c.dest = Some(ip);
    if net.overlay.is_some() {
        c.say(
            "",
            format!(
                "{dname} is on overlay network {}: the host itself cannot reach overlay addresses",
                net.name
            ),
        );
        c.say(
            "fix",
            format!(
                "publish the port (-p) or reach it from a container on {}",
                net.name
            ),
        );
        return false;
    }
    if let Some(driver) = net.plugin() {
        return super::plugin::host_to(c, dname, e, ip, net, driver);
    }
    let bridge = c.bridge_of(net);
    c.say(
        "path",
        format!("host -> {bridge} -> {} -> {dname} {}", e.host_if, e.ifname),
    );
    if !check_attachment(c, dname, e, &bridge) {
        return false;
    }
    match c.f.host.route_to(ip) {
        Some(r) if r.oif.map(|i| c.f.host.name_of(i)) == Some(bridge.clone()) => {}
        Some(r) => {
            c.say("kernel", format!("the host routes {ip} through {} ({}), not {bridge}: an address conflict with a host route", route_dev(&c.f.host, r), r.dst));
            c.say(
                "fix",
                format!(
                    "remove the host route {} or recreate {} with another --subnet",
                    r.dst, net.name
                ),
            );
            return false;
        }
        None => {
            c.say("kernel", format!("the host has no route to {ip}"));
            return false;
        }
    }
    if let Some(port) = to.port {
        let runs =
            c.f.published
                .get(&e.container_id)
                .cloned()
                .unwrap_or_default();
        let hits: Vec<_> = runs
            .iter()
            .filter(|r| {
                r.proto.as_str() == to.proto
                    && (r.container_port as u32..r.container_port as u32 + r.count)
                        .contains(&(port as u32))
            })
            .collect();
        let binding = |r: &crate::portmap::runs::Run| {
            format!(
                "{}:{}",
                r.host_ip,
                r.host_port as u32 + (port - r.container_port) as u32
            )
        };
        if hits.is_empty() {
            c.say("ports", format!("{port}/{} is not published: this host reaches it at {ip}:{port}, other machines cannot", to.proto));
            c.say("fix", format!("recreate {dname} with -p {port}:{port}"));
        } else if hits.iter().all(|r| r.host_ip.is_loopback()) {
            let b: Vec<String> = hits.iter().map(|r| binding(r)).collect();
            c.say("ports", format!("published on {} only: this host reaches it, other machines and containers cannot", b.join(", ")));
            c.say(
                "fix",
                format!(
                    "recreate {dname} with -p {}:{port} (all addresses)",
                    hits[0].host_port
                ),
            );
        } else {
            let b: Vec<String> = hits.iter().map(|r| binding(r)).collect();
            let map = if ip.is_ipv4() { "ports4" } else { "ports6" };
            c.say(
                "ports",
                format!(
                    "published as {} (DNAT element in table inet {}, map {map} or ranges)",
                    b.join(", "),
                    c.table.clone().unwrap_or_default()
                ),
            );
        }
    }
    true
}

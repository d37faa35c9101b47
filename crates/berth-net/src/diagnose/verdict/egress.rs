//! From a container out of its networks: to an outside address, or to the host.

use super::attach::check_attachment;
use super::local::foreign;
use super::nft::{self, Packet, Verdict};
use super::{route_dev, Ctx};
use crate::endpoint::Endpoint;
use std::net::IpAddr;

pub(super) fn egress(c: &mut Ctx, sname: &str, eps: &[&Endpoint], ip: IpAddr) -> bool {
    let cid = eps[0].container_id.clone();
    let Some(ns) = c.sandbox(&cid) else {
        c.say("kernel", format!("{sname}'s namespace could not be read"));
        return false;
    };
    let internal: Vec<String> = eps
        .iter()
        .filter_map(|e| c.net(&e.network_id))
        .filter(|n| n.internal)
        .map(|n| n.name.clone())
        .collect();
    let route = ns.route_to(ip).filter(|r| r.kind == "unicast").cloned();
    let Some(route) = route else {
        c.say("", format!("{sname} has no route to {ip}"));
        if internal.len() == eps.len() {
            c.say("", format!("{sname} is only on internal network(s) {}: they reach nothing outside themselves", internal.join(", ")));
            c.say(
                "fix",
                format!("berth network connect NETWORK {sname}   (a non-internal network)"),
            );
        }
        return false;
    };
    let dev = route.oif.map(|i| ns.name_of(i)).unwrap_or_default();
    let Some(ep) = eps.iter().find(|e| e.ifname == dev) else {
        c.say(
            "kernel",
            format!("{sname}'s route to {ip} leaves through {dev}, which is no berth endpoint"),
        );
        return false;
    };
    let Some(net) = c.net(&ep.network_id) else {
        return false;
    };
    if let Some(driver) = net.plugin() {
        return super::plugin::egress(c, sname, ep, ip, net, driver);
    }
    let bridge = c.bridge_of(net);
    if !check_attachment(c, sname, ep, &bridge) {
        return false;
    }
    if net.overlay.is_some() {
        c.say(
            "",
            format!(
                "{sname}'s route to {ip} goes through overlay network {}, which has no way out",
                net.name
            ),
        );
        return false;
    }
    if c.f.sysctls.ip_forward == Some(false) {
        c.say(
            "path",
            format!(
                "{sname} {} -> {} -> {bridge} -> host",
                ep.ifname, ep.host_if
            ),
        );
        c.say(
            "kernel",
            "net.ipv4.ip_forward is 0: the host does not route containers' traffic",
        );
        c.say("fix", "sysctl -w net.ipv4.ip_forward=1");
        return false;
    }
    let Some(hr) =
        c.f.host
            .route_to(ip)
            .filter(|r| r.kind == "unicast")
            .cloned()
    else {
        c.say(
            "path",
            format!(
                "{sname} {} -> {} -> {bridge} -> host",
                ep.ifname, ep.host_if
            ),
        );
        c.say("", format!("the host has no route to {ip}"));
        c.say(
            "fix",
            "give the host a route (e.g. a default route) to that address",
        );
        return false;
    };
    let out = hr.oif.map(|i| c.f.host.name_of(i)).unwrap_or_default();
    c.say(
        "path",
        format!(
            "{sname} {} -> {} -> {bridge} -> host -> {}",
            ep.ifname,
            ep.host_if,
            route_dev(&c.f.host, &hr)
        ),
    );
    if c.fw_note() {
        let p = Packet {
            iif: bridge.clone(),
            oif: out.clone(),
            saddr: ep.ipv4.map(|n| n.addr()).unwrap_or(ip),
            daddr: ip,
            proto: "tcp",
            dport: None,
            dnat: false,
        };
        let fw = nft::forward(&c.f.rules, c.table.as_deref(), &p, false, false);
        if let Some(o) = fw.berth.as_ref().filter(|o| o.verdict == Verdict::Drop) {
            c.say(
                "firewall",
                format!("dropped ({})", o.by.clone().unwrap_or_default()),
            );
            if net.internal {
                c.say(
                    "",
                    format!(
                        "{} is an internal network: it reaches nothing outside itself",
                        net.name
                    ),
                );
                c.say(
                    "fix",
                    format!("berth network connect NETWORK {sname}   (a non-internal network)"),
                );
            }
            return false;
        }
        if let Some(d) = &fw.foreign_drop {
            foreign(c, d, &bridge);
            return false;
        }
        let masq = c
            .table
            .as_deref()
            .is_some_and(|t| c.f.rules.set_has(t, "masq", &bridge));
        c.say(
            "firewall",
            if masq {
                format!(
                    "forwarded, masqueraded on the way out (table inet {}, set masq)",
                    c.table.clone().unwrap_or_default()
                )
            } else {
                format!(
                    "forwarded, not masqueraded: the far side needs a route back to {}",
                    ep.ipv4.map(|n| n.trunc().to_string()).unwrap_or_default()
                )
            },
        );
    }
    c.say(
        "note",
        format!("checked up to the host's interface {out}; beyond the host is not checked"),
    );
    true
}

pub(super) fn to_host(c: &mut Ctx, sname: &str, eps: &[&Endpoint]) -> bool {
    let gw = eps.iter().find_map(|e| e.gateway4);
    match gw {
        Some(g) => {
            c.dest = Some(g);
            c.say("path", format!("{sname} -> its gateway {g} (the host)"));
            c.say("note", "the host's input firewall is not evaluated");
            true
        }
        None => {
            c.say("", format!("{sname} has no gateway to the host"));
            false
        }
    }
}

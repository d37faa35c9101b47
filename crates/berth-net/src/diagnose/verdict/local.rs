//! Two containers on this host that share a network: the path, the kernel and the firewall.

use super::apart::different_networks;
use super::attach::{check_attachment, ifindex};
use super::nft::{self, Packet, Verdict};
use super::plugin;
use super::{mac_text, route_dev, Ctx, Target};
use crate::endpoint::Endpoint;
use crate::network::Network;
use std::net::IpAddr;

pub(super) fn local_pair(
    c: &mut Ctx,
    sname: &str,
    seps: &[&Endpoint],
    dname: &str,
    deps: &[&Endpoint],
    to: &Target,
) -> bool {
    let shared = seps.iter().find_map(|a| {
        deps.iter()
            .find(|b| b.network_id == a.network_id)
            .map(|b| (*a, *b))
    });
    let Some((a, b)) = shared else {
        return different_networks(c, sname, seps, dname, deps, to);
    };
    let Some(net) = c.net(&a.network_id) else {
        c.say("", "the shared network is not in the controller's model");
        return false;
    };
    if let Some(driver) = net.plugin() {
        return plugin::pair(c, (sname, a), (dname, b), net, driver);
    }
    let bridge = c.bridge_of(net);
    let dip = b.ipv4.map(|n| n.addr()).or(b.ipv6.map(|n| n.addr()));
    c.dest = dip;
    let overlay_ns = if net.overlay.is_some() {
        " (overlay namespace)"
    } else {
        ""
    };
    c.say(
        "path",
        format!(
            "{sname} {} -> {} -> {bridge}{overlay_ns} -> {} -> {dname} {}",
            a.ifname, a.host_if, b.host_if, b.ifname
        ),
    );
    let mut ok = check_attachment(c, sname, a, &bridge);
    ok &= check_attachment(c, dname, b, &bridge);
    // the source's route to the peer must leave through the shared interface
    if let (Some(ns), Some(ip)) = (c.sandbox(&a.container_id), dip) {
        let want = ifindex(Some(ns), &a.ifname);
        match ns.route_to(ip) {
            Some(r) if r.oif == want && r.gateway.is_none() => {}
            Some(r) => {
                c.say("kernel", format!("{sname}'s route to {ip} goes {} ({}), not straight out of {}: a conflicting route", route_dev(ns, r), r.dst, a.ifname));
                c.say(
                    "fix",
                    format!("remove the route to {} inside {sname}", r.dst),
                );
                ok = false;
            }
            None => {
                c.say("kernel", format!("{sname} has no route to {ip}"));
                ok = false;
            }
        }
        if let Some(n) = ns
            .neigh
            .iter()
            .find(|n| n.ip == ip && Some(n.ifindex) == want)
        {
            if let Some(mac) = n.mac {
                if mac != b.mac && !n.failed {
                    c.say(
                        "kernel",
                        format!(
                            "{sname}'s neighbour entry for {ip} is stale: {} but {dname} has {}",
                            mac_text(&mac),
                            mac_text(&b.mac)
                        ),
                    );
                    c.say("fix", format!("berth exec {sname} ip neigh flush {ip}"));
                    ok = false;
                }
            }
        }
    }
    if !ok {
        return false;
    }
    if net.overlay.is_some() {
        c.say(
            "firewall",
            "same overlay network on this host: bridged in its namespace, no filtering",
        );
        return true;
    }
    same_bridge_firewall(c, net, &bridge, a, dip, to)
}

pub(super) fn same_bridge_firewall(
    c: &mut Ctx,
    net: &Network,
    bridge: &str,
    a: &Endpoint,
    dip: Option<IpAddr>,
    to: &Target,
) -> bool {
    if !c.fw_note() {
        return true;
    }
    let (Some(sip), Some(dip)) = (a.ipv4.map(|n| n.addr()), dip) else {
        return true;
    };
    let p = Packet {
        iif: bridge.into(),
        oif: bridge.into(),
        saddr: sip,
        daddr: dip,
        proto: if to.port.is_some() {
            proto_static(&to.proto)
        } else {
            "icmp"
        },
        dport: to.port,
        dnat: false,
    };
    let bnf = c.f.sysctls.bridge_nf == Some(true);
    let fw = nft::forward(&c.f.rules, c.table.as_deref(), &p, true, bnf);
    let icc = net.bridge.as_ref().is_none_or(|b| b.icc);
    if let Some(d) = &fw.foreign_drop {
        foreign(c, d, bridge);
        return false;
    }
    if !bnf {
        let why = if c.f.sysctls.bridge_nf.is_none() {
            "br_netfilter is not loaded"
        } else {
            "net.bridge.bridge-nf-call-iptables=0"
        };
        c.say("firewall", format!("same network, bridged inside {bridge}: the IP forward hook does not see it ({why})"));
        if !icc {
            c.say(
                "note",
                format!(
                    "{} has icc=false, which is not enforced while {why}",
                    net.name
                ),
            );
        }
        return true;
    }
    match fw.berth {
        Some(o) if o.verdict == Verdict::Drop => {
            let by = o.by.unwrap_or_default();
            if !icc {
                c.say(
                    "",
                    format!(
                        "{} has inter-container communication off (icc=false)",
                        net.name
                    ),
                );
                c.say("firewall", format!("dropped ({by}, set noicc)"));
                c.say("fix", format!("recreate {} without -o com.docker.network.bridge.enable_icc=false, or connect both containers to another network", net.name));
            } else {
                c.say("firewall", format!("dropped ({by})"));
            }
            false
        }
        Some(o) => {
            c.say(
                "firewall",
                format!(
                    "same network, accepted ({})",
                    o.by.unwrap_or_else(|| "no rule drops it".into())
                ),
            );
            true
        }
        None => {
            c.say(
                "firewall",
                "berth's table is missing from the ruleset: nothing filters this bridge",
            );
            c.say("fix", "restart berthd (it recreates its table)");
            true
        }
    }
}

pub(super) fn proto_static(p: &str) -> &'static str {
    match p {
        "udp" => "udp",
        "sctp" => "sctp",
        _ => "tcp",
    }
}

pub(super) fn foreign(c: &mut Ctx, d: &nft::Outcome, bridge: &str) {
    let by = d.by.clone().unwrap_or_default();
    let may = if d.sure {
        ""
    } else {
        " (a rule whose matches berth cannot fully evaluate: it may)"
    };
    c.say(
        "firewall",
        format!("dropped by a rule outside berth's table{may}: {by}"),
    );
    let fix = match by.split_once(", rule ") {
        Some((chain, rest)) => {
            let handle = rest
                .split(|ch: char| !ch.is_ascii_digit())
                .next()
                .unwrap_or("");
            let (t, ch) = chain
                .trim_start_matches("table ")
                .split_once(", chain ")
                .unwrap_or((chain, ""));
            format!("nft delete rule {t} {ch} handle {handle}   (or accept forwarding for {bridge} before it)")
        }
        None => format!(
            "accept forwarded traffic of {bridge} in that chain, or set its policy to accept"
        ),
    };
    c.say("fix", fix);
}
